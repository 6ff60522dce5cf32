SELECT drop_foreign_key_per_statement('batch_items', 'batch_id', 'batches');
SELECT drop_foreign_key_per_statement('outbox', 'user_id', 'users');
SELECT drop_foreign_key_per_statement('invitations', 'role_id', 'roles');
SELECT drop_foreign_key_per_statement('invitations', 'service_area_id', 'service_areas');
SELECT drop_foreign_key_per_statement('invitations', 'user_id', 'users');
ALTER TABLE batch_items
    ADD CONSTRAINT batch_items_batch_id_fkey
        FOREIGN KEY (batch_id) REFERENCES batches (id) ON DELETE CASCADE;
ALTER TABLE outbox
    ADD CONSTRAINT outbox_user_id_fkey
        FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE invitations
    ADD CONSTRAINT invitations_user_id_fkey
        FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    ADD CONSTRAINT invitations_service_area_id_fkey
        FOREIGN KEY (service_area_id) REFERENCES service_areas (id) ON DELETE SET NULL,
    ADD CONSTRAINT invitations_role_id_fkey
        FOREIGN KEY (role_id) REFERENCES roles (id) ON DELETE SET NULL;
