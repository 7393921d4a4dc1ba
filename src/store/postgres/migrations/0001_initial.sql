-- oxidot on PostgreSQL, migration 1: users, applications, codes, consent and tokens.
-- Each table has the columns its queries filter or join on, and the whole record as JSONB
-- (readable with psql; a new optional field needs no migration, as in the redb file). Times are
-- microseconds since the Unix epoch, as everywhere in oxidot. Token rows are keyed by the
-- SHA-256 of the token (never the token). No foreign keys: a token may outlive its
-- application's row (it is then refused), as in the redb backend.

CREATE TABLE oxidot_users (
    id BIGINT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    record JSONB NOT NULL
);

CREATE TABLE oxidot_applications (
    id BIGINT PRIMARY KEY,
    client_id TEXT NOT NULL UNIQUE,
    record JSONB NOT NULL
);

-- Tokens issued from one grant share a family: a reuse or a revocation takes them all.
CREATE TABLE oxidot_families (
    id BYTEA PRIMARY KEY,
    application BIGINT NOT NULL,
    user_id BIGINT,
    -- The OpenID authentication the family came from (ID tokens on refresh, logout).
    session JSONB
);

CREATE TABLE oxidot_access_tokens (
    key BYTEA PRIMARY KEY,
    application BIGINT NOT NULL,
    user_id BIGINT,
    family BYTEA,
    expires BIGINT NOT NULL,
    record JSONB NOT NULL
);
CREATE INDEX oxidot_access_tokens_family ON oxidot_access_tokens (family) WHERE family IS NOT NULL;
CREATE INDEX oxidot_access_tokens_expires ON oxidot_access_tokens (expires);
CREATE INDEX oxidot_access_tokens_user ON oxidot_access_tokens (user_id) WHERE user_id IS NOT NULL;

CREATE TABLE oxidot_refresh_tokens (
    key BYTEA PRIMARY KEY,
    application BIGINT NOT NULL,
    user_id BIGINT,
    family BYTEA NOT NULL,
    created BIGINT NOT NULL,
    revoked BIGINT,
    record JSONB NOT NULL
);
CREATE INDEX oxidot_refresh_tokens_family ON oxidot_refresh_tokens (family);
CREATE INDEX oxidot_refresh_tokens_created ON oxidot_refresh_tokens (created);
CREATE INDEX oxidot_refresh_tokens_revoked ON oxidot_refresh_tokens (revoked) WHERE revoked IS NOT NULL;
CREATE INDEX oxidot_refresh_tokens_user ON oxidot_refresh_tokens (user_id) WHERE user_id IS NOT NULL;

CREATE TABLE oxidot_id_tokens (
    key BYTEA PRIMARY KEY,
    application BIGINT NOT NULL,
    user_id BIGINT,
    expires BIGINT NOT NULL,
    record JSONB NOT NULL
);
CREATE INDEX oxidot_id_tokens_expires ON oxidot_id_tokens (expires);

-- Authorization codes (DOT's grants), kept after use until they expire so a replay is known.
CREATE TABLE oxidot_grants (
    key BYTEA PRIMARY KEY,
    application BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    family BYTEA NOT NULL,
    expires BIGINT NOT NULL,
    record JSONB NOT NULL
);
CREATE INDEX oxidot_grants_expires ON oxidot_grants (expires);

-- What each user approved for each application (scopes accumulate).
CREATE TABLE oxidot_consents (
    user_id BIGINT NOT NULL,
    application BIGINT NOT NULL,
    record JSONB NOT NULL,
    PRIMARY KEY (user_id, application)
);

-- Device authorizations (RFC 8628), by the SHA-256 of the device code; a user code belongs to
-- one request at a time.
CREATE TABLE oxidot_device_grants (
    key BYTEA PRIMARY KEY,
    application BIGINT NOT NULL,
    user_code TEXT NOT NULL UNIQUE,
    expires BIGINT NOT NULL,
    record JSONB NOT NULL
);
CREATE INDEX oxidot_device_grants_expires ON oxidot_device_grants (expires);
