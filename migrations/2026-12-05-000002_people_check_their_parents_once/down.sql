DROP TRIGGER users_grants_kept ON users;
DROP TRIGGER users_grants_deleted ON users;
DROP TRIGGER access_grants_person_moved ON access_grants;
DROP TRIGGER access_grants_person_checked ON access_grants;
DROP TRIGGER organizations_people_kept ON organizations;
DROP TRIGGER organizations_people_deleted ON organizations;
DROP TRIGGER users_organization_moved ON users;
DROP TRIGGER users_organization_checked ON users;
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
