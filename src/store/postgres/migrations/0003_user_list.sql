-- oxidot on PostgreSQL, migration 3: the admin's user list searched, sorted and paged in the
-- database, not by reading every user. The columns hold what `store::user_list` computes from
-- the record when oxidot stores a user (lower-casing done by Rust, so a file and a database
-- agree on every character); users stored before this migration get them at the next start
-- (`PgStore::migrate`), found through the partial index below.
ALTER TABLE oxidot_users
    ADD COLUMN search_text TEXT COLLATE "C",
    ADD COLUMN sort_username TEXT COLLATE "C",
    ADD COLUMN sort_email TEXT COLLATE "C",
    ADD COLUMN sort_name TEXT COLLATE "C",
    ADD COLUMN joined BIGINT,
    ADD COLUMN last_login BIGINT;

-- One index per order, ties by id: read forwards or backwards for either direction.
CREATE INDEX oxidot_users_by_username ON oxidot_users (sort_username, id);
CREATE INDEX oxidot_users_by_email ON oxidot_users (sort_email, id);
CREATE INDEX oxidot_users_by_name ON oxidot_users (sort_name, id);
CREATE INDEX oxidot_users_by_joined ON oxidot_users (joined, id);
CREATE INDEX oxidot_users_by_last_login ON oxidot_users (last_login, id);
CREATE INDEX oxidot_users_unlisted ON oxidot_users (id) WHERE search_text IS NULL;
