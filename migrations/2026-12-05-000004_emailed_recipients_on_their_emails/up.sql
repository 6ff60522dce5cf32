-- A batch recipient who is emailed is written once, on the email. Their
-- result was already numbered there; their entry as given moves there too,
-- and only where it differs from the address (a name before it, say), so a
-- recipient emailed no longer writes a row of `batch_items` and its index
-- entry, and a follower reads each such result from the email alone.
-- `batch_items` keeps the recipients not emailed: an invalid address, a
-- repeat, a person already there or already invited.
ALTER TABLE outbox ADD COLUMN batch_input text;
UPDATE outbox o SET batch_input = b.input
FROM batch_items b
WHERE b.batch_id = o.batch_id AND b.position = o.batch_position AND b.input <> o.recipient;
-- A withdrawn email's result was made final on its recipient's row.
UPDATE outbox o SET finished_at = b.finished_at, finished_seq = b.finished_seq
FROM batch_items b
WHERE b.batch_id = o.batch_id AND b.position = o.batch_position
    AND b.finished_seq IS NOT NULL AND o.finished_seq IS NULL;
DELETE FROM batch_items b USING outbox o
WHERE o.batch_id = b.batch_id AND o.batch_position = b.position;
