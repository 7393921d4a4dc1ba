//! The database a `database` setting names — a `postgres://` URL or a redb file's path —
//! opened, and the operations on a redb file as a whole (compact, check, restore). The server
//! and the CLI go through here, so no backend type is named outside `store`.

use std::path::Path;

use super::postgres::{self, PgStore};
use super::redb::{IntegrityReport, RestoreReport, Store};
use super::{SharedStorage, StoreError, Timestamp};

/// How to open: the redb page cache, PostgreSQL's connections.
#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    pub cache_bytes: usize,
    pub pool_size: usize,
}

/// What opening found.
#[derive(Debug, Clone, Default)]
pub struct Opening {
    /// The database was empty (a new file, or a PostgreSQL database with no schema).
    pub created: bool,
    /// The schema version it had when this open upgraded it.
    pub upgraded_from: Option<u64>,
    /// The schema version it has now.
    pub schema_version: u64,
    /// A redb file the previous process did not close cleanly, repaired.
    pub repaired: bool,
    /// A `loaddata` a crash interrupted, rolled back (redb; PostgreSQL never sees one).
    pub interrupted_load_rolled_back: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// PostgreSQL cannot be reached or refuses (`name` never holds the URL's password).
    #[error("database: cannot use {name}: {error}")]
    Unusable { name: String, error: StoreError },
    #[error("database: cannot migrate {name}: {error}")]
    Migration { name: String, error: StoreError },
    /// A redb file that cannot be opened (`StoreError::AlreadyOpen`: a server holds it).
    #[error(transparent)]
    File(StoreError),
}

/// An open database: its storage for the services, and the redb file behind it when it is
/// one (its server serves commands for it on the control socket, and closes it cleanly).
pub struct Database {
    storage: SharedStorage,
    file: Option<Store>,
}

impl Database {
    /// Opens the redb file (created when missing, upgraded, repaired) or connects to
    /// PostgreSQL and applies its migrations (safe while other instances run).
    pub async fn open(database: &Path, options: OpenOptions) -> Result<(Self, Opening), OpenError> {
        if let Some(url) = postgres::url_in(database) {
            let name = postgres::describe_url(url);
            let store = PgStore::connect(url, options.pool_size)
                .await
                .map_err(|error| OpenError::Unusable {
                    name: name.clone(),
                    error,
                })?;
            let before = store
                .migrate()
                .await
                .map_err(|error| OpenError::Migration { name, error })?;
            let (before, latest) = (u64::from(before.unsigned_abs()), schema_version(database));
            let opening = Opening {
                created: before == 0,
                upgraded_from: (before > 0 && before < latest).then_some(before),
                schema_version: latest,
                ..Opening::default()
            };
            let storage: SharedStorage = std::sync::Arc::new(store);
            return Ok((
                Self {
                    storage,
                    file: None,
                },
                opening,
            ));
        }
        let (store, report) =
            tokio::task::block_in_place(|| Store::open(database, options.cache_bytes))
                .map_err(OpenError::File)?;
        let opening = Opening {
            created: report.created,
            upgraded_from: report.upgraded_from,
            schema_version: super::redb::SCHEMA_VERSION,
            repaired: report.repaired,
            interrupted_load_rolled_back: report.interrupted_load_rolled_back,
        };
        Ok((
            Self {
                storage: std::sync::Arc::new(store.clone()),
                file: Some(store),
            },
            opening,
        ))
    }

    pub fn storage(&self) -> SharedStorage {
        self.storage.clone()
    }

    /// The redb file's path, when the database is one.
    pub fn file_path(&self) -> Option<&Path> {
        self.file.as_ref().map(Store::path)
    }

    /// Closes a redb file cleanly (the next open needs no repair); PostgreSQL's connections
    /// close with the last handle.
    pub fn close(self) -> Result<(), StoreError> {
        match self.file {
            Some(store) => tokio::task::block_in_place(|| store.close()),
            None => Ok(()),
        }
    }
}

/// The schema version this build brings a database to.
pub fn schema_version(database: &Path) -> u64 {
    match postgres::url_in(database) {
        Some(_) => u64::from(PgStore::schema_version().unsigned_abs()),
        None => super::redb::SCHEMA_VERSION,
    }
}

/// Rewrites a redb file without its free pages; its size before and after.
pub fn compact_file(path: &Path) -> Result<(u64, u64), StoreError> {
    Store::compact(path)
}

/// Checks (and repairs) a redb file that no process holds.
pub fn check_file(path: &Path) -> Result<IntegrityReport, StoreError> {
    Store::check_integrity(path)
}

/// Puts a backup in place of the redb file, keeping the file it replaces beside it.
pub fn restore_file(
    source: &Path,
    database: &Path,
    now: Timestamp,
) -> Result<RestoreReport, StoreError> {
    Store::restore(source, database, now)
}
