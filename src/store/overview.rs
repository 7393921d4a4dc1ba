//! What the dashboard, `/metrics`, `/readyz` and `oxidot status` read about the store as a
//! whole: counts, a probe write, and what the backend says about itself.

use std::path::PathBuf;

use async_trait::async_trait;

use super::{StoreError, Timestamp, TokenTable};

/// How many records one token table holds, and how many of them are no longer usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableCount {
    pub table: TokenTable,
    pub stored: u64,
    /// Past their lifetime, waiting for the cleanup (at most the cap asked for).
    pub expired: u64,
    /// Not expired but never usable again, kept for a reason: a revoked refresh token (reuse
    /// detection), a used code (replay detection), a denied device grant (its poll's answer).
    pub spent: u64,
}

impl TableCount {
    pub fn live(&self) -> u64 {
        self.stored
            .saturating_sub(self.expired)
            .saturating_sub(self.spent)
    }
}

/// Which records count as expired: those filed before these times (`cleanup::due_before`);
/// `None` where a kind never expires under the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryCutoffs {
    pub access_tokens: Option<Timestamp>,
    /// Refresh tokens created before this have expired.
    pub refresh_tokens: Option<Timestamp>,
    pub grants: Option<Timestamp>,
    pub id_tokens: Option<Timestamp>,
    pub device_grants: Option<Timestamp>,
}

impl ExpiryCutoffs {
    pub fn of(&self, table: TokenTable) -> Option<Timestamp> {
        match table {
            TokenTable::AccessTokens => self.access_tokens,
            TokenTable::RefreshTokens => self.refresh_tokens,
            TokenTable::Grants => self.grants,
            TokenTable::IdTokens => self.id_tokens,
            TokenTable::DeviceGrants => self.device_grants,
        }
    }
}

pub const TOKEN_TABLES: [TokenTable; 5] = [
    TokenTable::AccessTokens,
    TokenTable::RefreshTokens,
    TokenTable::Grants,
    TokenTable::IdTokens,
    TokenTable::DeviceGrants,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub users: u64,
    pub applications: u64,
    pub sessions: u64,
}

/// What a backend says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// Where the data is: a file's path, or the PostgreSQL database (never its password).
    pub location: String,
    pub schema_version: u64,
    /// The database's size on disk.
    pub bytes: u64,
    /// Write transactions committed by this process (redb's single writer; None on
    /// PostgreSQL, where every instance writes).
    pub write_transactions: Option<u64>,
    /// Connections open to the database and idle among them (PostgreSQL's pool).
    pub connections: Option<(u64, u64)>,
}

#[async_trait]
pub trait Overview: Send + Sync {
    async fn totals(&self) -> Result<Totals, StoreError>;

    /// Every token table's counts, in `TOKEN_TABLES` order; an expired or spent count stops
    /// at `cap` (counting walks rows).
    async fn token_counts(
        &self,
        cutoffs: ExpiryCutoffs,
        now: Timestamp,
        cap: u64,
    ) -> Result<Vec<TableCount>, StoreError>;

    /// A real write that commits: readiness.
    async fn probe(&self, now: Timestamp) -> Result<(), StoreError>;

    async fn describe(&self) -> Result<Described, StoreError>;

    /// Whether `back_up` can write files: PostgreSQL refuses (`StoreError::Unsupported`), its
    /// own tools back it up. Asked before anything is made for a backup (its directory).
    fn backs_up_to_files(&self) -> Result<(), StoreError>;

    /// A consistent copy of everything into the new file `destination` (refused if it
    /// exists); refused as `backs_up_to_files` says.
    async fn back_up(&self, destination: PathBuf) -> Result<BackupReport, StoreError>;
}

/// What a backup wrote.
#[derive(Debug, Clone)]
pub struct BackupReport {
    pub path: PathBuf,
    pub rows: u64,
    pub bytes: u64,
}
