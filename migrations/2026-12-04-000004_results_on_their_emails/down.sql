-- Results recorded on emails go back to their recipients' rows.
UPDATE batch_items b SET
    outcome = CASE WHEN o.state = 'sent' THEN 'sent' ELSE 'failed' END,
    reason = o.last_error,
    finished_at = o.finished_at,
    finished_seq = o.finished_seq
FROM outbox o
WHERE o.batch_id = b.batch_id AND o.batch_position = b.position AND o.finished_seq IS NOT NULL;
DROP INDEX outbox_batch;
CREATE INDEX outbox_batch ON outbox (batch_id);
ALTER TABLE outbox
    DROP CONSTRAINT outbox_finished_with_its_number,
    DROP COLUMN finished_seq,
    DROP COLUMN finished_at;
