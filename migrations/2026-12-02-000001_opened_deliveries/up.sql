-- Which email carried the link a person opened, so that a delivery can show
-- OPENED: the invitation and the reset token remember the outbox row that
-- carried their current token (set when it is minted, in the same
-- statement), and viewing the link stamps that row.
ALTER TABLE outbox ADD COLUMN opened_at timestamptz;
ALTER TABLE invitations ADD COLUMN outbox_id uuid;
ALTER TABLE action_tokens ADD COLUMN outbox_id uuid;

-- An admin may now send reset links (for people who have a password) as well
-- as welcome emails in bulk.
ALTER TABLE batches DROP CONSTRAINT batches_kind_check,
    ADD CONSTRAINT batches_kind_check
        CHECK (kind IN ('invitation', 'credentials', 'welcome', 'password_reset'));
