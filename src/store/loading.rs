//! `loaddata`'s writes: one load of Django fixtures, all or nothing, in steps small enough that
//! memory stays bounded however large the dump. What the records mean (ids, references, DOT's
//! token pairs) is decided once, in `crate::fixtures`, over `LoadTx`; each backend only says how
//! the load stays undoable:
//!
//! - redb commits each step (a running server keeps issuing tokens between them) and journals
//!   what every write replaced, so a failure, or a crash, puts everything back;
//! - PostgreSQL runs the whole load in one transaction (other instances keep serving what was
//!   there before, and see the load at once when it commits).
//!
//! The methods are blocking: a load reads its files synchronously and hashes plain client
//! secrets, so it runs on a blocking thread (`tokio::task::spawn_blocking`).

use super::{
    AccessToken, Application, ContentType, Group, Record, RefreshToken, SecretKey, StoreError, User,
};

/// Which kind of record a new id is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    User,
    Group,
    Application,
}

/// The reads and writes of one step of a load.
pub trait LoadTx {
    fn user(&mut self, id: u64) -> Result<Option<User>, StoreError>;
    fn user_by_username(&mut self, username: &str) -> Result<Option<User>, StoreError>;
    fn group(&mut self, id: u64) -> Result<Option<Group>, StoreError>;
    fn group_id_by_name(&mut self, name: &str) -> Result<Option<u64>, StoreError>;
    fn application(&mut self, id: u64) -> Result<Option<Application>, StoreError>;
    fn content_type(&mut self, pk: u64) -> Result<Option<ContentType>, StoreError>;
    fn access_token(&mut self, key: &SecretKey) -> Result<Option<AccessToken>, StoreError>;
    fn refresh_token(&mut self, key: &SecretKey) -> Result<Option<RefreshToken>, StoreError>;

    /// An id for a record the fixture gives none: above every id of its kind ever used (a
    /// deleted record's id is never given again).
    fn next_id(&mut self, kind: IdKind) -> Result<u64, StoreError>;

    /// Stores a record under its own key or id, replacing what held it (as Django's
    /// `loaddata` replaces a record whose pk exists). A load writes content types,
    /// permissions, groups, users, applications, and access, refresh and ID tokens and codes;
    /// a unique name held by another record is `StoreError::Duplicate`.
    fn put(&mut self, record: Record) -> Result<(), StoreError>;

    /// Remembers where a DOT access token (by DOT's pk) went; the refresh token that named it
    /// before it came, if one did.
    fn stage_access_pk(
        &mut self,
        pk: u64,
        key: &SecretKey,
    ) -> Result<Option<SecretKey>, StoreError>;

    /// The access token DOT's pk named earlier in this load, with its key (read together: one
    /// round trip where the backend is remote); when it has not come yet, `refresh` waits for
    /// it (`stage_access_pk` then returns it).
    fn staged_access_token(
        &mut self,
        pk: u64,
        refresh: &SecretKey,
    ) -> Result<Option<(SecretKey, AccessToken)>, StoreError>;
}

/// Why a load stopped.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("another loaddata is in progress; run this one when it has finished")]
    Busy,
    /// What the loader refused (a record it cannot take), carried out of the step's
    /// transaction as the loader's own error.
    #[error("{0}")]
    Refused(Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One step's work: called with the step's transaction, perhaps more than once (redb runs a
/// job again alone when a job committed with it failed), so it keeps no effects of its own.
pub type LoadStep = Box<dyn FnMut(&mut dyn LoadTx) -> Result<(), LoadError> + Send + 'static>;

/// A load under way. Ended by `finish` or `abandon`; one dropped without either is undone
/// (PostgreSQL: its connection is closed, so the server rolls it back; redb: its journal is
/// walked back on a thread of its own, or when the file is next opened after a crash).
pub trait Load: Send {
    /// Runs one step; an error leaves the load to be abandoned.
    fn step(&mut self, step: LoadStep) -> Result<(), LoadError>;

    /// Makes every step's writes the store's, durably.
    fn finish(self: Box<Self>) -> Result<(), StoreError>;

    /// Puts back everything the load wrote.
    fn abandon(self: Box<Self>) -> Result<(), StoreError>;
}

pub trait Loading: Send + Sync {
    /// Starts a load; `LoadError::Busy` while another runs (on any instance).
    fn begin_load(&self) -> Result<Box<dyn Load>, LoadError>;
}
