-- Every stored hash is of the whole token, so the links minted since stay
-- valid when they are looked up by hash again.
ALTER TABLE invitations ADD CONSTRAINT invitations_token_hash_key UNIQUE (token_hash);
DROP TABLE invitation_links_before_selectors;
