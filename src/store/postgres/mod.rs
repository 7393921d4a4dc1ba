//! The PostgreSQL backend: several stateless oxidot instances on one database. Concurrency is
//! decided by the database (row locks taken by each unit of work's transaction), never by a
//! process; the SQL keeps to what PostgreSQL-compatible distributed databases also run (no
//! advisory locks, no `LOCK TABLE`). No PostgreSQL type leaves this module.
//!
//! Migrations are embedded and applied in order, each in its own transaction with the row that
//! records it, so instances starting at once apply each migration exactly once: the second
//! waits on the first's row and then finds it applied.

mod accounts;
mod applications;
mod codes;
mod devices;
mod directory;
mod failures;
mod keys;
mod listing;
mod loading;
mod overview;
mod tasks;
mod tls;
pub(crate) mod tokens;
mod transfer;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Json;

pub use tls::{TlsMode, advice as tls_advice};

use super::StoreError;

/// The migrations, in order; a released one is never edited (a new one is added).
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("migrations/0001_initial.sql")),
    (2, include_str!("migrations/0002_loads.sql")),
    (3, include_str!("migrations/0003_user_list.sql")),
];

/// Longest a unit of work waits for a pooled connection, or for a new one to open.
const CONNECTION_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A pool of connections to one PostgreSQL database.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// The database as messages show it (`describe_config`: no password).
    location: std::sync::Arc<str>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("PgStore").finish_non_exhaustive()
    }
}

/// Whether a database setting names PostgreSQL rather than a redb file.
pub fn is_postgres_url(database: &str) -> bool {
    database.starts_with("postgres://") || database.starts_with("postgresql://")
}

/// The URL a database setting holds when it names PostgreSQL (else it is a redb file's path).
pub fn url_in(database: &std::path::Path) -> Option<&str> {
    database.to_str().filter(|text| is_postgres_url(text))
}

/// A PostgreSQL URL with its password (in the user part, or a `password` parameter) replaced
/// by `<redacted>`: what `oxidot check` prints of the `database` setting.
pub fn redacted_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user_info, hosts)) => match user_info.split_once(':') {
            Some((user, _)) => format!("{user}:<redacted>@{hosts}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some(("password", _)) => "password=<redacted>".to_owned(),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", pairs.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// A PostgreSQL URL as messages may show it: database, host and port, never the user's
/// password (URLs often carry one).
pub fn describe_url(url: &str) -> String {
    match tls::Target::parse(url) {
        Ok(target) => describe_config(&target.config),
        Err(_) => "the PostgreSQL database (its URL is not valid)".to_owned(),
    }
}

fn describe_config(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let database = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("PostgreSQL database {database:?} on {host}:{port}")
}

impl PgStore {
    /// Connects to the database a `postgres://` URL names, with at most `pool_size`
    /// connections, and checks that it answers.
    /// TLS as the URL's `sslmode` and `sslrootcert` ask (see `tls`).
    pub async fn connect(url: &str, pool_size: usize) -> Result<Self, StoreError> {
        let target = tls::Target::parse(url)?;
        let connector = target.connector()?;
        Self::connect_through(target.config, connector, pool_size).await
    }

    /// `connect` with a parsed configuration, TLS if the server offers it, unverified
    /// (libpq's `prefer`): the tests' databases.
    #[cfg(test)]
    pub(crate) async fn connect_with(
        config: tokio_postgres::Config,
        pool_size: usize,
    ) -> Result<Self, StoreError> {
        let connector = tls::Target {
            config: config.clone(),
            mode: TlsMode::Prefer,
            root_certificate: None,
            client_certificate: None,
        }
        .connector()?;
        Self::connect_through(config, connector, pool_size).await
    }

    async fn connect_through(
        config: tokio_postgres::Config,
        connector: postgres_openssl::MakeTlsConnector,
        pool_size: usize,
    ) -> Result<Self, StoreError> {
        let location = describe_config(&config).into();
        let manager = Manager::from_config(
            config,
            connector,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        // Waiting for a connection is bounded: a request that cannot get one in time answers
        // 503 rather than queueing without end behind a database that does not answer.
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(CONNECTION_WAIT))
            .create_timeout(Some(CONNECTION_WAIT))
            .build()
            .map_err(|error| StoreError::Storage(error.to_string()))?;
        let store = Self { pool, location };
        // Fails now, naming the database, rather than at the first request.
        drop(store.client().await?);
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(|error| match error {
            // The driver's error and its causes ("connection refused"), not the pool's wrapper.
            deadpool_postgres::PoolError::Backend(error) => {
                StoreError::Unavailable(with_causes(&error))
            }
            other => StoreError::Unavailable(other.to_string()),
        })
    }

    /// The schema version this build migrates to.
    pub fn schema_version() -> i32 {
        MIGRATIONS.last().map_or(0, |(version, _)| *version)
    }

    /// Applies the migrations this database lacks; returns the schema version it had before
    /// (0 for an empty database).
    pub async fn migrate(&self) -> Result<i32, StoreError> {
        let mut client = self.client().await?;
        // Instances creating the table at once: the losers meet a duplicate in the catalog
        // (PostgreSQL reports it as one of three codes) and find the table when they try again.
        for attempt in 0..3 {
            match client
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS oxidot_schema_migrations (
                         version INTEGER PRIMARY KEY,
                         applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
                     )",
                )
                .await
            {
                Ok(()) => break,
                Err(error) if attempt < 2 && is_catalog_race(&error) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        let before: i32 = client
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM oxidot_schema_migrations",
                &[],
            )
            .await?
            .get(0);
        for (version, sql) in MIGRATIONS {
            let transaction = client.transaction().await?;
            // The version row first: a concurrent migrator blocks on it until this one commits,
            // then fails on the duplicate and finds the migration applied.
            let claimed = transaction
                .execute(
                    "INSERT INTO oxidot_schema_migrations (version) VALUES ($1)
                     ON CONFLICT (version) DO NOTHING",
                    &[version],
                )
                .await?;
            if claimed == 0 {
                transaction.rollback().await?;
                continue;
            }
            transaction.batch_execute(sql).await?;
            transaction.commit().await?;
        }
        if let Some((latest, _)) = MIGRATIONS.last()
            && before > *latest
        {
            return Err(StoreError::Storage(format!(
                "the database was migrated by a newer oxidot (schema {before}, this build knows \
                 {latest})"
            )));
        }
        directory::list_unlisted_users(&client).await?;
        Ok(before)
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        // A closed connection (the server went away) is unavailability, not a broken store.
        if let Some(db) = error.as_db_error() {
            // The server's own words ("db error" alone says nothing).
            let said = format!("PostgreSQL {}: {}", db.code().code(), db.message());
            if is_transient(db.code().code()) {
                StoreError::Unavailable(said)
            } else {
                StoreError::Storage(said)
            }
        } else if error.is_closed() || error.code().is_none() {
            StoreError::Unavailable(with_causes(&error))
        } else {
            StoreError::Storage(with_causes(&error))
        }
    }
}

/// Whether an SQLSTATE says "not now" rather than "not this": the connection or the server
/// going away or not taking more (class 08, class 53, 57P01–57P03), and concurrency the
/// database settled by refusing one side (a deadlock, a serialization failure, a lock not
/// available). A request meeting one answers 503 and may be sent again.
fn is_transient(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "40001" | "40P01" | "55P03"
        )
}

/// Prepares statements on a connection ahead of a pipeline: a statement prepared inside one
/// would be sent only after its preparation's round trip — behind a COMMIT sent meanwhile.
/// Each is prepared once per connection (`prepare_cached`); later calls cost nothing.
pub(super) async fn prepare_all(
    client: &deadpool_postgres::Client,
    statements: &[&str],
) -> Result<(), StoreError> {
    for sql in statements {
        client.prepare_cached(sql).await?;
    }
    Ok(())
}

/// Begins a transaction and locks one row in the same round trip (pipelined): `lock` is a
/// `SELECT … FOR UPDATE` of the row whose key is `key`. `then` are the statements the
/// transaction goes on to pipeline with its COMMIT, prepared first (`prepare_all`). On an
/// error the transaction is rolled back.
pub(super) async fn begin_locking(
    client: &deadpool_postgres::Client,
    lock: &str,
    key: &[u8],
    then: &[&str],
) -> Result<Option<Row>, StoreError> {
    let lock = client.prepare_cached(lock).await?;
    prepare_all(client, then).await?;
    let begun = tokio::try_join!(begin(client), async {
        client
            .query_opt(&lock, &[&key])
            .await
            .map_err(StoreError::from)
    },);
    match begun {
        Ok((_, row)) => Ok(row),
        Err(error) => Err(rolled_back(client, error).await),
    }
}

/// BEGIN, as a future of its own: pipelined with the statements that follow it.
pub(super) async fn begin(client: &deadpool_postgres::Client) -> Result<(), StoreError> {
    Ok(client.batch_execute("BEGIN").await?)
}

/// Ends a unit of work `begin_locking` began: `Ok(Ok(outcome))` was committed by the work
/// itself; a refusal (`Ok(Err(_))`) and an error are rolled back.
pub(super) async fn settle<T, R>(
    client: &deadpool_postgres::Client,
    decided: Result<Result<T, R>, StoreError>,
    refused: impl FnOnce(R) -> T,
) -> Result<T, StoreError> {
    match decided {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(refusal)) => {
            client.batch_execute("ROLLBACK").await?;
            Ok(refused(refusal))
        }
        Err(error) => Err(rolled_back(client, error).await),
    }
}

/// Ends a transaction that failed (a COMMIT may already have ended it: a ROLLBACK then only
/// warns), so that the connection goes back to the pool outside any transaction.
pub(super) async fn rolled_back(
    client: &deadpool_postgres::Client,
    error: StoreError,
) -> StoreError {
    let _ = client.batch_execute("ROLLBACK").await;
    error
}

/// An error and its causes, as one line.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        line.push_str(": ");
        line.push_str(&inner.to_string());
        cause = inner.source();
    }
    line
}

/// A concurrent `CREATE … IF NOT EXISTS` lost to another session.
fn is_catalog_race(error: &tokio_postgres::Error) -> bool {
    [
        &SqlState::UNIQUE_VIOLATION,
        &SqlState::DUPLICATE_OBJECT,
        &SqlState::DUPLICATE_TABLE,
    ]
    .into_iter()
    .any(|code| error.code() == Some(code))
}

fn is_unique_violation(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// A unique violation as the store's `Duplicate`, naming the value.
fn duplicate_as(error: tokio_postgres::Error, what: &'static str, value: &str) -> StoreError {
    if is_unique_violation(&error) {
        StoreError::Duplicate {
            what,
            value: value.to_owned(),
        }
    } else {
        error.into()
    }
}

/// Ids are BIGINT columns.
fn pg_id(id: u64) -> Result<i64, StoreError> {
    i64::try_from(id).map_err(|_| StoreError::Storage(format!("id {id} is out of range")))
}

/// The record in column `index` of `row` (JSONB), if not NULL.
fn record<T: DeserializeOwned>(row: &Row, index: usize) -> Result<Option<T>, StoreError> {
    let value: Option<Json<T>> = row
        .try_get(index)
        .map_err(|error| StoreError::Corrupt(error.to_string()))?;
    Ok(value.map(|Json(record)| record))
}

/// A record as a JSONB parameter.
fn json<T: Serialize>(record: &T) -> Json<&T> {
    Json(record)
}

#[cfg(test)]
pub(crate) mod testing {
    //! A fresh database per test, on the server `OXIDOT_TEST_POSTGRES` names (`.ci/postgres`
    //! starts a throwaway one). Without it the PostgreSQL tests skip, unless
    //! `OXIDOT_REQUIRE_POSTGRES` is set (CI), which makes a skip a failure.

    use super::PgStore;

    /// A new, empty database on the test server (None: skipped).
    pub async fn fresh_database() -> Option<tokio_postgres::Config> {
        let Ok(url) = std::env::var("OXIDOT_TEST_POSTGRES") else {
            assert!(
                std::env::var_os("OXIDOT_REQUIRE_POSTGRES").is_none(),
                "OXIDOT_REQUIRE_POSTGRES is set but OXIDOT_TEST_POSTGRES names no server"
            );
            eprintln!("skipped: no PostgreSQL (set OXIDOT_TEST_POSTGRES, see .ci/postgres)");
            return None;
        };
        let base: tokio_postgres::Config = url.parse().expect("OXIDOT_TEST_POSTGRES is a URL");
        let admin = PgStore::connect_with(base.clone(), 1)
            .await
            .expect("the test PostgreSQL answers");
        let mut suffix = [0u8; 8];
        getrandom::fill(&mut suffix).unwrap();
        let name = format!("oxidot_test_{}", u64::from_le_bytes(suffix));
        admin
            .client()
            .await
            .unwrap()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let mut config = base;
        config.dbname(&name);
        Some(config)
    }

    /// A migrated store on a new database.
    pub async fn fresh_store() -> Option<PgStore> {
        let store = PgStore::connect_with(fresh_database().await?, 16)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        Some(store)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::fresh_database;
    use super::*;

    #[test]
    fn transient_refusals_are_unavailability() {
        for code in [
            "08006", "53300", "57P01", "57P03", "40001", "40P01", "55P03",
        ] {
            assert!(is_transient(code), "{code}");
        }
        for code in ["23505", "22021", "42P01", "57014", "XX000"] {
            assert!(!is_transient(code), "{code}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deadlock_is_unavailability_not_a_broken_store() {
        let Some(config) = fresh_database().await else {
            return;
        };
        let store = PgStore::connect_with(config, 2).await.unwrap();
        store.migrate().await.unwrap();
        let (first, second) = (store.client().await.unwrap(), store.client().await.unwrap());
        for client in [&first, &second] {
            client.batch_execute("BEGIN").await.unwrap();
        }
        let lock = "UPDATE oxidot_id_marks SET mark = mark WHERE kind = $1";
        first.execute(lock, &[&"user"]).await.unwrap();
        second.execute(lock, &[&"group"]).await.unwrap();
        // Each now waits for the other's row: PostgreSQL refuses one of them.
        let (a, b) = tokio::join!(
            first.execute(lock, &[&"group"]),
            second.execute(lock, &[&"user"])
        );
        let refused = a.err().or(b.err()).expect("one side is refused");
        let error = StoreError::from(refused);
        assert!(
            matches!(error, StoreError::Unavailable(ref said) if said.contains("40P01")),
            "{error:?}"
        );
    }

    /// Users an older oxidot stored (before migration 3: no list columns) are listed once an
    /// instance of this one starts (`migrate`), in batches, in the rules' order; one whose
    /// record cannot be read stays unlisted and does not stop the start.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn users_stored_by_an_older_oxidot_are_listed_at_the_next_start() {
        use crate::store::{DirectoryStorage, User, UserOrder, UserQuery};
        let Some(config) = fresh_database().await else {
            return;
        };
        let store = PgStore::connect_with(config, 2).await.unwrap();
        store.migrate().await.unwrap();
        let client = store.client().await.unwrap();
        for (id, name) in [(1, "Zed"), (2, "émile"), (3, "ann")] {
            let user = User::sample(id, name);
            client
                .execute(
                    "INSERT INTO oxidot_users (id, username, record) VALUES ($1, $2, $3)",
                    &[&(id as i64), &name, &json(&user)],
                )
                .await
                .unwrap();
        }
        // More than one batch of them, and one whose record cannot be read.
        client
            .execute(
                "INSERT INTO oxidot_users (id, username, record)
                 SELECT n, 'bulk' || n, jsonb_build_object('id', n, 'username', 'bulk' || n,
                     'password', '!', 'is_active', true, 'date_joined', n)
                 FROM generate_series(10, 1209) AS n",
                &[],
            )
            .await
            .unwrap();
        client
            .execute(
                "INSERT INTO oxidot_users (id, username, record) VALUES (5000, 'broken', '{}')",
                &[],
            )
            .await
            .unwrap();
        let query = UserQuery::new("e", UserOrder::Username, false, 1, 10);
        assert_eq!(store.user_page(&query).await.unwrap().matching, 0);
        store.migrate().await.unwrap();
        let bulk = UserQuery::new("BULK", UserOrder::Joined, true, 1, 10);
        let listed = store.user_page(&bulk).await.unwrap();
        assert_eq!(listed.matching, 1200);
        assert_eq!(listed.users[0].username, "bulk1209");
        let listed = store.user_page(&query).await.unwrap();
        let names: Vec<&str> = listed
            .users
            .iter()
            .map(|user| user.username.as_str())
            .collect();
        assert_eq!(names, ["Zed", "émile"]);
        let unlisted = client
            .query_one("SELECT id FROM oxidot_users WHERE search_text IS NULL", &[])
            .await
            .unwrap();
        assert_eq!(unlisted.get::<_, i64>(0), 5000, "only the unreadable one");
    }

    #[test]
    fn a_url_shown_in_full_hides_its_password() {
        assert_eq!(
            redacted_url("postgres://oxidot:s3cret@db:5432/tokens?sslmode=verify-full"),
            "postgres://oxidot:<redacted>@db:5432/tokens?sslmode=verify-full"
        );
        assert_eq!(
            redacted_url("postgresql://u:p%40ss@h1,h2/db?password=x&sslmode=require"),
            "postgresql://u:<redacted>@h1,h2/db?password=<redacted>&sslmode=require"
        );
        assert_eq!(
            redacted_url("postgres://oxidot@127.0.0.1/db"),
            "postgres://oxidot@127.0.0.1/db"
        );
    }

    /// The test server's URL and its TLS CA file (`.ci/postgres` turns TLS on); None
    /// (skipped) without a server, or one without TLS unless the PostgreSQL tests are required.
    async fn tls_test_server() -> Option<(String, String)> {
        fresh_database().await?;
        let url = std::env::var("OXIDOT_TEST_POSTGRES").ok()?;
        let store = PgStore::connect(&url, 1).await.unwrap();
        let client = store.client().await.unwrap();
        let ssl = client.query_one("SHOW ssl", &[]).await.unwrap();
        if ssl.get::<_, String>(0) != "on" {
            assert!(
                std::env::var_os("OXIDOT_REQUIRE_POSTGRES").is_none(),
                "the test PostgreSQL has no TLS (.ci/postgres turns it on)"
            );
            eprintln!("skipped: the test PostgreSQL has no TLS");
            return None;
        }
        let ca = client.query_one("SHOW ssl_ca_file", &[]).await.unwrap();
        Some((url, ca.get(0)))
    }

    /// Whether the store's connection is encrypted, as the server sees it.
    async fn encrypted(store: &PgStore) -> bool {
        let client = store.client().await.unwrap();
        client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tls_is_used_and_the_server_verified_as_sslmode_asks() {
        let Some((url, ca)) = tls_test_server().await else {
            return;
        };
        // The server's certificate names "localhost", not 127.0.0.1.
        let by_name = url.replace("127.0.0.1", "localhost");
        let root = format!(
            "sslrootcert={}",
            percent_encoding::utf8_percent_encode(&ca, percent_encoding::NON_ALPHANUMERIC)
        );
        for (url, expected) in [
            (format!("{url}?sslmode=disable"), Some(false)),
            (url.clone(), Some(true)),
            (format!("{url}?sslmode=require"), Some(true)),
            (format!("{url}?sslmode=verify-ca&{root}"), Some(true)),
            (format!("{by_name}?sslmode=verify-full&{root}"), Some(true)),
            // The name is checked: 127.0.0.1 is not in the certificate.
            (format!("{url}?sslmode=verify-full&{root}"), None),
            // The chain is checked: the test CA is not one of the system's.
            (format!("{by_name}?sslmode=verify-full"), None),
            (format!("{url}?sslmode=verify-ca"), None),
        ] {
            match (PgStore::connect(&url, 1).await, expected) {
                (Ok(store), Some(tls)) => assert_eq!(encrypted(&store).await, tls, "{url}"),
                (Err(error), None) => {
                    assert!(
                        matches!(error, StoreError::Unavailable(_)),
                        "{url}: {error:?}"
                    );
                    assert!(error.to_string().contains("certificate"), "{url}: {error}");
                }
                (Ok(_), None) => panic!("{url}: connected without a verified server"),
                (Err(error), Some(_)) => panic!("{url}: {error}"),
            }
        }

        // A role that may only sign in with a client certificate (`.ci/postgres` makes one,
        // beside the CA, and lets the role in by it only).
        let dir = std::path::Path::new(&ca).parent().unwrap().to_owned();
        let encode = |path: &std::path::Path| {
            percent_encoding::utf8_percent_encode(
                &path.display().to_string(),
                percent_encoding::NON_ALPHANUMERIC,
            )
            .to_string()
        };
        let admin = PgStore::connect(&url, 1).await.unwrap();
        admin
            .client()
            .await
            .unwrap()
            .batch_execute(
                "DO $$ BEGIN CREATE ROLE oxidot_cert LOGIN SUPERUSER;
                 EXCEPTION WHEN duplicate_object THEN NULL; END $$",
            )
            .await
            .unwrap();
        let as_cert_role = format!(
            "{}?sslmode=verify-full&{root}",
            by_name.replacen("oxidot@", "oxidot_cert@", 1)
        );
        let with_certificate = format!(
            "{as_cert_role}&sslcert={}&sslkey={}",
            encode(&dir.join("client.pem")),
            encode(&dir.join("client.key"))
        );
        let store = PgStore::connect(&with_certificate, 1).await.unwrap();
        let row = store
            .client()
            .await
            .unwrap()
            .query_one("SELECT current_user::text", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "oxidot_cert");
        let refused = PgStore::connect(&as_cert_role, 1).await.err().unwrap();
        assert!(
            refused.to_string().contains("certificate"),
            "without its certificate: {refused}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn instances_starting_at_once_apply_each_migration_once() {
        let Some(config) = fresh_database().await else {
            return;
        };
        let mut starting = Vec::new();
        for _ in 0..4 {
            let config = config.clone();
            starting.push(tokio::spawn(async move {
                PgStore::connect_with(config, 2).await?.migrate().await
            }));
        }
        let mut found_empty = 0;
        for start in starting {
            if start.await.unwrap().unwrap() == 0 {
                found_empty += 1;
            }
        }
        assert!(found_empty >= 1);
        let store = PgStore::connect_with(config, 1).await.unwrap();
        let client = store.client().await.unwrap();
        let versions: Vec<i32> = client
            .query(
                "SELECT version FROM oxidot_schema_migrations ORDER BY version",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        drop(client);
        let expected: Vec<i32> = MIGRATIONS.iter().map(|(version, _)| *version).collect();
        assert_eq!(versions, expected);
        // Again: nothing to do.
        assert_eq!(store.migrate().await.unwrap(), *expected.last().unwrap());
    }

    #[tokio::test]
    async fn a_wrong_or_unreachable_url_is_a_clear_error() {
        let error = PgStore::connect("postgres://[broken", 1).await.unwrap_err();
        assert!(
            error.to_string().contains("not a valid PostgreSQL URL"),
            "{error}"
        );
        // A port nothing listens on (bound, then released).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let error = PgStore::connect(&format!("postgres://oxidot@127.0.0.1:{port}/x"), 1)
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    }

    /// A redb file moves onto PostgreSQL whole, and a PostgreSQL database back onto a file:
    /// every record under its key and id (`conformance::check_copy`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn copies_go_between_a_redb_file_and_postgres_both_ways() {
        let Some(empty) = super::testing::fresh_store().await else {
            return;
        };
        let (from_file, _dir) = tokio::task::block_in_place(crate::store::redb::testing::seeded);
        crate::store::conformance::check_copy(&from_file, std::sync::Arc::new(empty)).await;
        let Some(from_postgres) = super::tokens::tests::seeded().await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let (file, _) = crate::store::Store::open(&dir.path().join("copy.redb"), 1 << 20).unwrap();
        crate::store::conformance::check_copy(&from_postgres, std::sync::Arc::new(file)).await;
    }
}
