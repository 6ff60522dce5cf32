-- The time step of the last authenticator code accepted at sign-in: a code
-- is good once, so one seen over a shoulder or in a log cannot be replayed
-- within its 30 seconds.
ALTER TABLE second_factors ADD COLUMN last_totp_step bigint;
