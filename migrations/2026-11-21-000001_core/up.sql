-- Tenants and their onboarding policy.
CREATE TABLE organizations (
    id uuid PRIMARY KEY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    invitation_ttl_secs integer NOT NULL DEFAULT 604800
        CHECK (invitation_ttl_secs BETWEEN 3600 AND 7776000),
    reset_link_ttl_secs integer NOT NULL DEFAULT 3600
        CHECK (reset_link_ttl_secs BETWEEN 300 AND 604800),
    temporary_password_ttl_secs integer NOT NULL DEFAULT 604800
        CHECK (temporary_password_ttl_secs BETWEEN 3600 AND 7776000),
    second_factor_required boolean NOT NULL DEFAULT false,
    -- Empty means every method is allowed.
    second_factor_methods text[] NOT NULL DEFAULT '{}'
        CHECK (second_factor_methods <@ ARRAY['totp', 'email', 'sms']),
    password_min_length integer NOT NULL DEFAULT 12
        CHECK (password_min_length BETWEEN 8 AND 128),
    terms_version integer NOT NULL DEFAULT 0 CHECK (terms_version >= 0),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- Every published version of an organisation's terms; the current one is
-- organizations.terms_version.
CREATE TABLE terms_versions (
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    version integer NOT NULL CHECK (version > 0),
    title text NOT NULL,
    body text NOT NULL,
    url text NOT NULL,
    published_at timestamptz NOT NULL,
    PRIMARY KEY (organization_id, version),
    CHECK (body <> '' OR url <> '')
);

CREATE TABLE service_areas (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX service_areas_name_key ON service_areas (organization_id, lower(name));

CREATE TABLE roles (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX roles_name_key ON roles (organization_id, lower(name));

CREATE TABLE api_keys (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    scopes text[] NOT NULL CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY[
        'platform', 'admin', 'read', 'users.write', 'invitations.write',
        'credentials.write', 'audit.read']),
    -- SHA-256 of the secret; the secret itself is shown once and never stored.
    secret_hash bytea NOT NULL UNIQUE CHECK (length(secret_hash) = 32),
    prefix text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX api_keys_organization ON api_keys (organization_id, id);

-- A person. The status a client sees is computed from lifecycle,
-- deactivated_at and invitation_expires_at when read, so it is never stale.
CREATE TABLE users (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    username text NOT NULL CHECK (length(username) BETWEEN 1 AND 254),
    first_name text NOT NULL DEFAULT '',
    last_name text NOT NULL DEFAULT '',
    mobile text NOT NULL DEFAULT '' CHECK (mobile = '' OR mobile ~ '^\+[1-9][0-9]{6,14}$'),
    lifecycle text NOT NULL DEFAULT 'staged'
        CHECK (lifecycle IN ('staged', 'pending', 'active')),
    -- Set while paused; clearing it returns the user to its lifecycle state.
    deactivated_at timestamptz,
    -- The expiry of the latest invitation's link, while pending by invitation.
    invitation_expires_at timestamptz,
    password_hash text,
    must_change_password boolean NOT NULL DEFAULT false,
    -- When an emailed temporary password stops working.
    password_expires_at timestamptz,
    failed_sign_ins integer NOT NULL DEFAULT 0 CHECK (failed_sign_ins >= 0),
    locked_until timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    activated_at timestamptz,
    last_sign_in_at timestamptz
);
CREATE UNIQUE INDEX users_email_key ON users (organization_id, lower(email));
CREATE UNIQUE INDEX users_username_key ON users (organization_id, lower(username));
CREATE INDEX users_organization_id ON users (organization_id, id);

CREATE TABLE access_grants (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    service_area_id uuid NOT NULL REFERENCES service_areas (id) ON DELETE RESTRICT,
    role_id uuid NOT NULL REFERENCES roles (id) ON DELETE RESTRICT,
    PRIMARY KEY (user_id, service_area_id, role_id)
);
CREATE INDEX access_grants_service_area ON access_grants (service_area_id);
CREATE INDEX access_grants_role ON access_grants (role_id);

-- One bulk send: what was asked and what the input held.
CREATE TABLE batches (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('invitation', 'credentials', 'welcome')),
    actor text NOT NULL,
    idempotency_key text CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    total integer NOT NULL CHECK (total >= 0),
    recognized integer NOT NULL CHECK (recognized >= 0),
    invalid integer NOT NULL CHECK (invalid >= 0),
    duplicates integer NOT NULL CHECK (duplicates >= 0),
    -- Recipients whose result is not final yet; 0 means the batch is done.
    outstanding integer NOT NULL CHECK (outstanding >= 0),
    created_at timestamptz NOT NULL,
    completed_at timestamptz
);
CREATE UNIQUE INDEX batches_idempotency_key ON batches (organization_id, kind, idempotency_key);

-- One result per recipient of a batch; outcome is NULL until final.
CREATE TABLE batch_items (
    batch_id uuid NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    position integer NOT NULL CHECK (position >= 0),
    input text NOT NULL,
    email text NOT NULL DEFAULT '',
    user_id uuid,
    invitation_id uuid,
    outcome text CHECK (outcome IN ('sent', 'invalid_address', 'duplicate_in_request',
        'already_member', 'already_invited', 'failed')),
    reason text NOT NULL DEFAULT '',
    finished_at timestamptz,
    -- Increases as results become final, so a follower resumes from the last
    -- one it saw, on any replica.
    finished_seq bigint,
    PRIMARY KEY (batch_id, position),
    CHECK ((outcome IS NULL) = (finished_seq IS NULL))
);
CREATE SEQUENCE batch_items_finished_seq;
CREATE INDEX batch_items_finished ON batch_items (batch_id, finished_seq) WHERE finished_seq IS NOT NULL;

-- An offer to join. The token is minted when the email is sent and only its
-- SHA-256 hash is kept. EXPIRED is computed from expires_at when read.
CREATE TABLE invitations (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    batch_id uuid REFERENCES batches (id) ON DELETE SET NULL,
    email text NOT NULL,
    service_area_id uuid REFERENCES service_areas (id) ON DELETE SET NULL,
    role_id uuid REFERENCES roles (id) ON DELETE SET NULL,
    token_hash bytea UNIQUE CHECK (length(token_hash) = 32),
    state text NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'sent', 'opened', 'accepted', 'failed', 'revoked')),
    send_count integer NOT NULL DEFAULT 0 CHECK (send_count >= 0),
    last_error text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    sent_at timestamptz,
    opened_at timestamptz,
    accepted_at timestamptz,
    revoked_at timestamptz,
    expires_at timestamptz
);
CREATE INDEX invitations_organization ON invitations (organization_id, id);
CREATE INDEX invitations_user ON invitations (user_id);
CREATE INDEX invitations_batch ON invitations (batch_id);

-- One-time tokens: password resets and emailed or texted codes.
CREATE TABLE action_tokens (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id uuid REFERENCES users (id) ON DELETE CASCADE,
    invitation_id uuid REFERENCES invitations (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('password_reset', 'email_code', 'sms_code')),
    token_hash bytea UNIQUE CHECK (length(token_hash) = 32),
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    consumed_at timestamptz,
    CHECK (user_id IS NOT NULL OR invitation_id IS NOT NULL)
);
CREATE INDEX action_tokens_user ON action_tokens (user_id);
CREATE INDEX action_tokens_invitation ON action_tokens (invitation_id);

-- The durable email outbox, worked by every replica with
-- FOR UPDATE SKIP LOCKED and a lease. Secrets (link tokens, temporary
-- passwords, codes) are minted when the message is sent, never stored here.
CREATE TABLE outbox (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('invitation', 'credentials', 'password_reset',
        'welcome', 'email_code')),
    recipient text NOT NULL,
    user_id uuid REFERENCES users (id) ON DELETE CASCADE,
    batch_id uuid REFERENCES batches (id) ON DELETE SET NULL,
    batch_position integer,
    invitation_id uuid REFERENCES invitations (id) ON DELETE CASCADE,
    action_token_id uuid REFERENCES action_tokens (id) ON DELETE CASCADE,
    state text NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL,
    lease_until timestamptz,
    leased_by text,
    last_error text NOT NULL DEFAULT '',
    message_id text NOT NULL,
    created_at timestamptz NOT NULL,
    sent_at timestamptz
);
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE state IN ('queued', 'sending');
CREATE INDEX outbox_organization ON outbox (organization_id, id);
CREATE INDEX outbox_batch ON outbox (batch_id);
CREATE INDEX outbox_user ON outbox (user_id);

-- Per-organisation overrides of the system default templates.
CREATE TABLE templates (
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('invitation', 'credentials', 'password_reset',
        'welcome', 'email_code')),
    locale text NOT NULL,
    subject text NOT NULL,
    text_body text NOT NULL,
    html_body text NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (organization_id, kind, locale)
);

-- No foreign keys: the log outlives what it describes.
CREATE TABLE audit_events (
    id uuid PRIMARY KEY,
    organization_id uuid,
    actor text NOT NULL,
    action text NOT NULL,
    target_type text NOT NULL,
    target_id text NOT NULL,
    client_address text NOT NULL DEFAULT '',
    details jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL
);
CREATE INDEX audit_events_organization ON audit_events (organization_id, id);
CREATE INDEX audit_events_target ON audit_events (target_id);

CREATE TABLE terms_acceptances (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    organization_id uuid NOT NULL,
    version integer NOT NULL,
    accepted_at timestamptz NOT NULL,
    client_address text NOT NULL DEFAULT '',
    PRIMARY KEY (user_id, version),
    FOREIGN KEY (organization_id, version) REFERENCES terms_versions (organization_id, version)
);

-- A user's second factor. TOTP secrets are encrypted with the configured key.
CREATE TABLE second_factors (
    user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    method text NOT NULL CHECK (method IN ('totp', 'email', 'sms')),
    secret_ciphertext bytea,
    created_at timestamptz NOT NULL
);
