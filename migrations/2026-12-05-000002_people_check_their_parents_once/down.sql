SELECT drop_foreign_key_per_statement('access_grants', 'user_id', 'users');
SELECT drop_foreign_key_per_statement('users', 'organization_id', 'organizations');
DROP FUNCTION drop_foreign_key_per_statement(text, text, text);
DROP FUNCTION foreign_key_per_statement(text, text, text, text);
DROP FUNCTION null_children();
DROP FUNCTION keep_children();
DROP FUNCTION delete_children();
DROP FUNCTION check_parent();
DROP FUNCTION check_parents();
ALTER TABLE access_grants
    ADD CONSTRAINT access_grants_user_id_fkey
        FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE users
    ADD CONSTRAINT users_organization_id_fkey
        FOREIGN KEY (organization_id) REFERENCES organizations (id) ON DELETE CASCADE;
