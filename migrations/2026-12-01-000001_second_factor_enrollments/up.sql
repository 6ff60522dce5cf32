-- A second factor that an active person is setting up at sign-in (when the
-- organisation came to require one after they registered), kept apart from
-- `second_factors` until its first code proves it, so that starting a set-up
-- never turns a factor on.
CREATE TABLE second_factor_enrollments (
    user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    method text NOT NULL CHECK (method IN ('totp', 'email', 'sms')),
    secret_ciphertext bytea,
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
