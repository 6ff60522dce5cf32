-- Emailed recipients get their rows in `batch_items` back, with no result
-- of their own: the build before reads an emailed recipient's result from
-- the email (a withdrawn one too, as FAILED with its reason, which is what
-- it wrote on the recipient's row) and only their entry from the row.
INSERT INTO batch_items (batch_id, position, input, email, user_id, invitation_id)
SELECT batch_id, batch_position, coalesce(batch_input, recipient), recipient, user_id, invitation_id
FROM outbox
WHERE batch_id IS NOT NULL AND batch_position IS NOT NULL;
ALTER TABLE outbox DROP COLUMN batch_input;
