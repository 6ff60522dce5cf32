ALTER TABLE outbox SET (fillfactor = 50);
ALTER TABLE invitations SET (fillfactor = 80);
ALTER TABLE users SET (fillfactor = 80);
