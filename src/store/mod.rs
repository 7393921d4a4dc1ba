//! The storage boundary. Services speak to storage in domain terms: the records in `records`,
//! and units of work named after what they do (`TokenStorage::rotate_refresh_token`, …), each
//! one transaction in whichever backend sits behind them. The protocol decisions inside those
//! units are plain functions in `crate::rules`, written once for every backend.
//!
//! Backends live in their own folders (`redb/`: one file, the default; `postgres/`: several
//! instances on one PostgreSQL). The older closure API
//! (`Store::read(|tx| …)` / `Store::write(|tx| …)`) is redb-shaped; services move off it onto
//! the traits here one concern at a time (see docs/DESIGN.md, "Storage boundary").

mod accounts;
mod applications;
mod codes;
#[cfg(test)]
mod conformance;
mod database;
mod devices;
mod directory;
mod failures;
mod keys;
mod listing;
mod loading;
mod overview;
pub mod postgres;
mod records;
pub mod redb;
mod tasks;
mod tokens;
mod transfer;
mod user_list;

use std::path::PathBuf;

pub use self::redb::{
    IntegrityReport, OpenReport, ReadTx, RestoreReport, SCHEMA_VERSION, Store, TokenPage, WriteTx,
};
pub use accounts::*;
pub use applications::*;
pub use codes::*;
pub use database::*;
pub use devices::*;
pub use directory::*;
pub use failures::*;
pub use keys::*;
pub use listing::*;
pub use loading::*;
pub use overview::*;
pub use records::{
    AccessToken, Algorithm, Application, ClientType, Consent, ContentType, DeviceDecision,
    DeviceGrant, ExpiringKind, FamilyId, Grant, GrantType, Group, IdToken, OidcSession,
    PeriodicTask, Permission, PermissionRecord, RefreshToken, SecretKey, Session, SigningKey,
    TaskOutcome, TaskSchedule, Timestamp, User,
};
pub use records::{ORDERED_PREFIX_BYTES, ORDERED_TOKEN_BYTES, ORDERED_TOKEN_VERSION};
pub use tasks::*;
pub use tokens::*;
pub use transfer::*;
pub use user_list::*;

/// A backend as services hold it: either kind, shared by every request.
pub type SharedStorage = std::sync::Arc<dyn Storage>;

/// Everything a backend does: the units of work of every concern.
pub trait Storage:
    AccountStorage
    + ApplicationStorage
    + DirectoryStorage
    + TokenStorage
    + CodeStorage
    + DeviceStorage
    + FailureLog
    + TaskStorage
    + CleanupStorage
    + KeyStorage
    + TokenListing
    + Overview
    + Transfer
    + Loading
{
}

impl<
    T: AccountStorage
        + ApplicationStorage
        + DirectoryStorage
        + TokenStorage
        + CodeStorage
        + DeviceStorage
        + FailureLog
        + TaskStorage
        + CleanupStorage
        + KeyStorage
        + TokenListing
        + Overview
        + Transfer
        + Loading,
> Storage for T
{
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the database {} is already in use by another oxidot process; stop that process, or run \
         this command while it serves so that it goes through the running server",
        .0.display()
    )]
    AlreadyOpen(PathBuf),
    #[error("the database {} was written by a newer oxidot (schema {found}, this build knows {known})", .path.display())]
    NewerSchema {
        path: PathBuf,
        found: u64,
        known: u64,
    },
    #[error("storage error: {0}")]
    Storage(String),
    #[error("a stored record cannot be read: {0}")]
    Corrupt(String),
    /// A value that must be unique is held by another record (a username, a group name, a
    /// client id, a device user code). Services check first and refuse in their own terms; this
    /// is what a race between two writers (or instances) meets.
    #[error("{what} {value:?} already exists")]
    Duplicate { what: &'static str, value: String },
    /// What this backend leaves to other tools (a backup of PostgreSQL: pg_dump).
    #[error("{0}")]
    Unsupported(&'static str),
    #[error("the database writer has stopped")]
    WriterGone,
    /// The database cannot be reached now (a PostgreSQL server down or out of connections);
    /// a request meeting it answers 503 and the next one tries again.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
}
