DELETE FROM batches WHERE kind = 'password_reset';
ALTER TABLE batches DROP CONSTRAINT batches_kind_check,
    ADD CONSTRAINT batches_kind_check CHECK (kind IN ('invitation', 'credentials', 'welcome'));
ALTER TABLE action_tokens DROP COLUMN outbox_id;
ALTER TABLE invitations DROP COLUMN outbox_id;
ALTER TABLE outbox DROP COLUMN opened_at;
