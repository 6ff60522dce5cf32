-- An invitation link's token now names its invitation: its first 16 bytes
-- are the invitation's id and the other 32 are random. A link is found by
-- that id and checked against the stored hash, so no index holds the hash
-- any more. Minting a link when its email is sent (a new hash, its expiry,
-- the email that carried it) then changes no indexed column: the new row
-- version stays on its page as a heap-only tuple, where it used to write an
-- entry into each of the invitations' five indexes.
--
-- Links sent before this name nothing. They keep working until they are
-- replaced, spent or withdrawn: their hashes are kept here, and only theirs.
CREATE TABLE invitation_links_before_selectors (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    invitation_id uuid NOT NULL REFERENCES invitations (id) ON DELETE CASCADE
);
CREATE INDEX invitation_links_before_selectors_invitation
    ON invitation_links_before_selectors (invitation_id);
INSERT INTO invitation_links_before_selectors (token_hash, invitation_id)
    SELECT token_hash, id FROM invitations WHERE token_hash IS NOT NULL;
ALTER TABLE invitations DROP CONSTRAINT invitations_token_hash_key;
