ALTER TABLE users RESET (fillfactor);
ALTER TABLE invitations RESET (fillfactor);
