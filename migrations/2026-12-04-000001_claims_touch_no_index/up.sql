-- A worker's claim (queued to sending, with its lease) now changes no
-- indexed column, so its new row version stays on its page as a heap-only
-- tuple and writes no index entry. The due index was kept to the states
-- 'queued' and 'sending', so every claim and every record wrote a version
-- of the row into all five of the outbox's indexes, and the claims scanned
-- past the entries of the versions they had left behind. It is now kept to
-- the rows that have a time for their next try, and settling an email (sent
-- or failed) clears that time. Half of each page is left free for the
-- claim's version: a claim takes a run of neighbouring rows at once.
ALTER TABLE outbox ALTER COLUMN next_attempt_at DROP NOT NULL;
UPDATE outbox SET next_attempt_at = NULL WHERE state IN ('sent', 'failed');
ALTER TABLE outbox ADD CONSTRAINT outbox_due_until_settled
    CHECK ((next_attempt_at IS NULL) = (state IN ('sent', 'failed')));
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE next_attempt_at IS NOT NULL;
ALTER TABLE outbox SET (fillfactor = 50);
