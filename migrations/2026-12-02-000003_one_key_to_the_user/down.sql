ALTER TABLE invitations
    ADD CONSTRAINT invitations_organization_id_fkey
        FOREIGN KEY (organization_id) REFERENCES organizations (id) ON DELETE CASCADE,
    ADD CONSTRAINT invitations_batch_id_fkey
        FOREIGN KEY (batch_id) REFERENCES batches (id) ON DELETE SET NULL;
ALTER TABLE outbox
    ADD CONSTRAINT outbox_organization_id_fkey
        FOREIGN KEY (organization_id) REFERENCES organizations (id) ON DELETE CASCADE,
    ADD CONSTRAINT outbox_batch_id_fkey
        FOREIGN KEY (batch_id) REFERENCES batches (id) ON DELETE SET NULL,
    ADD CONSTRAINT outbox_invitation_id_fkey
        FOREIGN KEY (invitation_id) REFERENCES invitations (id) ON DELETE CASCADE,
    ADD CONSTRAINT outbox_action_token_id_fkey
        FOREIGN KEY (action_token_id) REFERENCES action_tokens (id) ON DELETE CASCADE;
