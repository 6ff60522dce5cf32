-- A worker claims a run of neighbouring emails at once and mints their
-- links in one statement: the outbox rows, their invitations and their
-- people each get a new version in the same transaction, before any old
-- one can be pruned. A page that cannot hold all of them sends the rest to
-- other pages, and each of those writes an entry into every index of its
-- table. Leaving three fifths of each page free keeps a whole claim on its
-- pages; half was not enough for a claim of a hundred.
ALTER TABLE outbox SET (fillfactor = 40);
ALTER TABLE invitations SET (fillfactor = 40);
ALTER TABLE users SET (fillfactor = 40);
