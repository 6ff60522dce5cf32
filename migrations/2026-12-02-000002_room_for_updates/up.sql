-- Room in each page for a row's next version. An update that changes no
-- indexed column can then stay on its page as a heap-only tuple and touch no
-- index: recording a sent invitation (its state, sent_at, send_count) and
-- stamping a person's invitation expiry at send time become such updates.
-- Pages written before this keep their old packing.
ALTER TABLE users SET (fillfactor = 80);
ALTER TABLE invitations SET (fillfactor = 80);
