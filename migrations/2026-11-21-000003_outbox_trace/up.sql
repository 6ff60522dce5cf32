-- The trace of the request that queued the email, so its send shows in the
-- same trace.
ALTER TABLE outbox ADD COLUMN traceparent text;
