ALTER TABLE outbox RESET (fillfactor);
DROP INDEX outbox_due;
ALTER TABLE outbox DROP CONSTRAINT outbox_due_until_settled;
UPDATE outbox SET next_attempt_at = coalesce(sent_at, created_at) WHERE next_attempt_at IS NULL;
ALTER TABLE outbox ALTER COLUMN next_attempt_at SET NOT NULL;
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE state IN ('queued', 'sending');
