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

-- The highest id each kind of record ever had: a new one goes above it, so a deleted record's
-- leftovers (tokens, grants) never meet a newcomer. A new id locks its kind's row.
CREATE TABLE oxidot_id_marks (
    kind TEXT PRIMARY KEY,
    mark BIGINT NOT NULL
);
INSERT INTO oxidot_id_marks (kind, mark) VALUES ('user', 0), ('group', 0), ('application', 0);

-- Login sessions, keyed by the SHA-256 of the cookie value.
CREATE TABLE oxidot_sessions (
    key BYTEA PRIMARY KEY,
    user_id BIGINT NOT NULL,
    expires BIGINT NOT NULL,
    record JSONB NOT NULL
);
CREATE INDEX oxidot_sessions_user ON oxidot_sessions (user_id);
CREATE INDEX oxidot_sessions_expires ON oxidot_sessions (expires);

-- Django's groups, permissions and content types, as loaded from a DOT dump or edited.
CREATE TABLE oxidot_groups (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    record JSONB NOT NULL
);

CREATE TABLE oxidot_permissions (
    pk BIGINT PRIMARY KEY,
    record JSONB NOT NULL
);

CREATE TABLE oxidot_content_types (
    pk BIGINT PRIMARY KEY,
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

-- Failed attempts to prove who one is (logins, client secrets, device user codes), shared by
-- every instance so that throttles count across them. `nonce` tells apart failures of one key
-- in the same microsecond. Expired rows go as new failures arrive.
CREATE TABLE oxidot_failures (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    at BIGINT NOT NULL,
    nonce BIGINT NOT NULL,
    PRIMARY KEY (scope, key, at, nonce)
);
CREATE INDEX oxidot_failures_at ON oxidot_failures (scope, at);

-- The periodic tasks (django-celery-beat's table), by name.
CREATE TABLE oxidot_periodic_tasks (
    name TEXT PRIMARY KEY,
    record JSONB NOT NULL
);

-- Leases: the one instance that runs a job (the scheduler) holds its row until `expires`,
-- renewing it; another takes it over once it has expired. No advisory locks (they do not
-- exist on PostgreSQL-compatible distributed databases).
CREATE TABLE oxidot_leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires BIGINT NOT NULL
);

-- ID token signing keys by kid (private parts sealed when a key-encryption secret is set).
CREATE TABLE oxidot_signing_keys (
    kid TEXT PRIMARY KEY,
    record JSONB NOT NULL
);

-- Versions that instances poll to notice a change made through another one.
CREATE TABLE oxidot_versions (
    name TEXT PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO oxidot_versions (name, version) VALUES ('key_ring', 0);
