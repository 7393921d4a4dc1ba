-- oxidot on PostgreSQL, migration 2: loaddata. A load is one transaction, which holds the
-- `loaddata` row below (`FOR UPDATE NOWAIT`): a second load started meanwhile, on any instance,
-- is told that one is in progress instead of interleaving with it. Rows that exist to be
-- locked, not advisory locks (which PostgreSQL-compatible distributed databases lack).
CREATE TABLE oxidot_locks (
    name TEXT PRIMARY KEY
);
INSERT INTO oxidot_locks (name) VALUES ('loaddata');

-- While a load runs, DOT's refresh tokens are paired with their access tokens, which DOT names
-- by its own pks (oxidot does not keep them): where each access token's pk went, and the
-- refresh tokens that came before their access token. Emptied before the load commits.
CREATE TABLE oxidot_load_access_by_pk (
    pk BIGINT PRIMARY KEY,
    key BYTEA NOT NULL
);
CREATE TABLE oxidot_load_refresh_waiting (
    pk BIGINT PRIMARY KEY,
    key BYTEA NOT NULL
);
