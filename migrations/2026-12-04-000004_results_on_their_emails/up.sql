-- A batch recipient who is emailed gets their result on the email itself,
-- when its outcome is recorded: that update rewrites every index of the
-- outbox already (settling takes the email out of the due index), so
-- numbering the result there writes nothing more, where updating the
-- recipient's `batch_items` row was a second new row version with two index
-- entries of its own. `batch_items` keeps every recipient's input, and the
-- results decided without an email (an invalid address, a repeat, a person
-- already there, a withdrawn email). Both draw from
-- `batch_items_finished_seq`, so a follower reads one ordered series.
ALTER TABLE outbox
    ADD COLUMN finished_at timestamptz,
    ADD COLUMN finished_seq bigint,
    ADD CONSTRAINT outbox_finished_with_its_number
        CHECK ((finished_at IS NULL) = (finished_seq IS NULL));
DROP INDEX outbox_batch;
CREATE INDEX outbox_batch ON outbox (batch_id, finished_seq);
