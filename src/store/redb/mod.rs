//! The default backend: all state in one redb file. No redb type leaves this module: callers
//! speak in domain terms (`tx.put_user(..)`, `store.session(..)`).
//!
//! Reads open a short read transaction and never wait for the writer. Writes go to the one
//! writer thread (see `writer`), which commits many callers' changes in one durable
//! transaction.

mod accounts;
mod admin;
mod applications;
mod backup;
mod codes;
mod devices;
mod directory;
mod failures;
mod keys;
mod listing;
mod load_journal;
mod loading;
mod overview;
mod tasks;
mod tokens;
mod transfer;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use redb::{
    Database, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTable,
    ReadableTableMetadata, TableDefinition,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use admin::TokenPage;
pub use backup::{IntegrityReport, RestoreReport};
use load_journal::Prior;
use writer::{TypedJob, Writer};

use super::StoreError;
use super::records::{
    AccessToken, Application, Consent, ContentType, DeviceGrant, ExpiringKind, FamilyId, Grant,
    Group, IdToken, OidcSession, PeriodicTask, PermissionRecord, RefreshToken, SecretKey, Session,
    SigningKey, Timestamp, User,
};

/// Bumped when a change needs a real migration (a new optional field does not).
pub const SCHEMA_VERSION: u64 = 4;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const USERS: TableDefinition<u64, &[u8]> = TableDefinition::new("users");
const USERNAMES: TableDefinition<&str, u64> = TableDefinition::new("users_by_username");
const GROUPS: TableDefinition<u64, &[u8]> = TableDefinition::new("groups");
const GROUP_NAMES: TableDefinition<&str, u64> = TableDefinition::new("groups_by_name");
/// Django's `auth_permission` and `django_content_type` rows, by pk, as dumps bring them.
const PERMISSIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("permissions");
const CONTENT_TYPES: TableDefinition<u64, &[u8]> = TableDefinition::new("content_types");
const APPLICATIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("applications");
const CLIENT_IDS: TableDefinition<&str, u64> = TableDefinition::new("applications_by_client_id");
const SESSIONS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("sessions");
/// Each user's sessions, so a deactivation or a password change ends them all (schema 3).
const SESSIONS_BY_USER: MultimapTableDefinition<u64, [u8; 32]> =
    MultimapTableDefinition::new("sessions_by_user");
/// When each expiring record expires (a refresh token: when it was created, since its lifetime
/// is today's setting counted from then; a revoked one also when it was revoked), by kind then
/// time, so the cleanup walks exactly the rows of one kind that are due.
const EXPIRY: TableDefinition<(u8, i64, [u8; 32]), ()> = TableDefinition::new("expiry_by_kind");
/// Schema 1's expiry index, ordered by time first.
const LEGACY_EXPIRY: TableDefinition<(i64, u8, [u8; 32]), ()> = TableDefinition::new("expiry");

// Tables of the OAuth/OIDC layers, created with the schema so the file layout is fixed from
// version 1 on. Token-like rows are keyed by `SecretKey::of_token` (an ordering prefix and the
// SHA-256 for tokens oxidot minted, DOT's `token_checksum` for imported ones); the `*_BY_*` multimaps let revocation and logout touch only what they must.
const ACCESS_TOKENS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("access_tokens");
const REFRESH_TOKENS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("refresh_tokens");
const GRANTS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("grants");
const ID_TOKENS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("id_tokens");
const DEVICE_GRANTS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("device_grants");
const DEVICE_USER_CODES: TableDefinition<&str, [u8; 32]> =
    TableDefinition::new("device_grants_by_user_code");
const CONSENTS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("consents");
const TOKENS_BY_USER: MultimapTableDefinition<u64, (u8, [u8; 32])> =
    MultimapTableDefinition::new("tokens_by_user");
const TOKENS_BY_CLIENT: MultimapTableDefinition<u64, (u8, [u8; 32])> =
    MultimapTableDefinition::new("tokens_by_client");
const TOKENS_BY_FAMILY: MultimapTableDefinition<[u8; 16], (u8, [u8; 32])> =
    MultimapTableDefinition::new("tokens_by_family");
/// One row per grant family: who and which client it belongs to. Tokens of a family are found
/// through `TOKENS_BY_FAMILY`; the user and client indexes hold the family once (as a
/// `FAMILY_ENTRY` row), so rotating a refresh token does not rewrite them.
const FAMILIES: TableDefinition<[u8; 16], &[u8]> = TableDefinition::new("families");
const PERIODIC_TASKS: TableDefinition<&str, &[u8]> = TableDefinition::new("periodic_tasks");

/// The kind byte of a family row in `TOKENS_BY_USER` / `TOKENS_BY_CLIENT` (its key is the
/// family id, zero-padded to 32 bytes).
const FAMILY_ENTRY: u8 = 0x10;
const SIGNING_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("signing_keys");

macro_rules! storage_error {
    ($($error:ty),*) => {$(
        impl From<$error> for StoreError {
            fn from(error: $error) -> Self {
                StoreError::Storage(error.to_string())
            }
        }
    )*};
}
storage_error!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl From<redb::DatabaseError> for StoreError {
    fn from(error: redb::DatabaseError) -> Self {
        StoreError::Storage(error.to_string())
    }
}

fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>, StoreError> {
    rmp_serde::to_vec_named(record).map_err(|error| StoreError::Corrupt(error.to_string()))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    rmp_serde::from_slice(bytes).map_err(|error| StoreError::Corrupt(error.to_string()))
}

/// Who a grant family belongs to.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct FamilyRecord {
    user: Option<u64>,
    application: u64,
    #[serde(default)]
    session: Option<OidcSession>,
}

fn family_entry(family: FamilyId) -> (u8, [u8; 32]) {
    let mut padded = [0u8; 32];
    padded[..16].copy_from_slice(&family.0);
    (FAMILY_ENTRY, padded)
}

/// What happened when the file was opened.
#[derive(Debug, Clone, Copy)]
pub struct OpenReport {
    pub created: bool,
    /// The previous process did not close the file cleanly and redb had to repair it.
    pub repaired: bool,
    /// The schema version the file had, when this open upgraded it.
    pub upgraded_from: Option<u64>,
    /// A `loaddata` was interrupted (a crash) and what it had written was rolled back.
    pub interrupted_load_rolled_back: bool,
}

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<Database>,
    writer: Writer,
    path: PathBuf,
    failures: crate::store::MemoryFailures,
    /// Leases by name: holder and expiry (see `redb/tasks.rs`).
    leases: std::sync::Mutex<std::collections::HashMap<String, (String, Timestamp)>>,
}

impl Store {
    /// Opens (creating if absent) the database, exclusively for this process.
    pub fn open(path: &Path, cache_bytes: usize) -> Result<(Self, OpenReport), StoreError> {
        let created = !path.exists();
        if created {
            // Owner-only from the start (redb would create it with the umask's mode).
            crate::files::create_private(path).map_err(|error| {
                StoreError::Storage(format!("cannot create {}: {error}", path.display()))
            })?;
        }
        let repaired = Arc::new(AtomicBool::new(false));
        let repair_flag = repaired.clone();
        let mut builder = Database::builder();
        builder
            .set_cache_size(cache_bytes)
            .set_repair_callback(move |_| repair_flag.store(true, Ordering::Relaxed));
        let db = builder.create(path).map_err(|error| match error {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::AlreadyOpen(path.to_owned()),
            other => StoreError::Storage(format!("cannot open {}: {other}", path.display())),
        })?;
        let upgraded_from = migrate(&db, path)?;
        let interrupted_load_rolled_back = load_journal::recover(&db)?;
        let db = Arc::new(db);
        let writer = Writer::start(db.clone())?;
        let store = Self {
            inner: Arc::new(Inner {
                db,
                writer,
                path: path.to_owned(),
                failures: Default::default(),
                leases: Default::default(),
            }),
        };
        Ok((
            store,
            OpenReport {
                created,
                repaired: repaired.load(Ordering::Relaxed),
                upgraded_from,
                interrupted_load_rolled_back,
            },
        ))
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Rewrites the file without the space freed pages leave behind (offline: it needs the
    /// file to itself). Returns the file size before and after.
    pub fn compact(path: &Path) -> Result<(u64, u64), StoreError> {
        let size = || std::fs::metadata(path).map_or(0, |meta| meta.len());
        if !path.exists() {
            return Err(StoreError::Storage(format!(
                "{} does not exist",
                path.display()
            )));
        }
        let before = size();
        let mut db = Database::builder()
            .create(path)
            .map_err(|error| match error {
                redb::DatabaseError::DatabaseAlreadyOpen => {
                    StoreError::AlreadyOpen(path.to_owned())
                }
                other => StoreError::Storage(format!("cannot open {}: {other}", path.display())),
            })?;
        migrate(&db, path)?;
        // Each pass moves what it can towards the start of the file; a handful suffice.
        for _ in 0..16 {
            let progressed = db
                .compact()
                .map_err(|error| StoreError::Storage(format!("compaction failed: {error}")))?;
            if !progressed {
                break;
            }
        }
        drop(db);
        Ok((before, size()))
    }

    /// Finishes queued writes and closes the file cleanly, so the next open needs no repair.
    pub fn close(self) -> Result<(), StoreError> {
        self.inner.writer.stop();
        match Arc::try_unwrap(self.inner) {
            Ok(inner) => {
                drop(inner.writer);
                match Arc::try_unwrap(inner.db) {
                    Ok(db) => db.close().map_err(StoreError::from),
                    Err(_) => Ok(()),
                }
            }
            // Other handles still exist; the file closes when the last one is dropped.
            Err(_) => Ok(()),
        }
    }

    /// Write transactions the writer has begun since the store opened.
    pub fn write_transactions(&self) -> u64 {
        self.inner.writer.transactions()
    }

    /// Runs `work` in the writer's next transaction and waits until it is durable.
    pub async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnMut(&mut WriteTx<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.write_or_refuse::<StoreError, _, _>(work).await
    }

    /// `write` for work that may refuse with an error of its caller's type `E` (a record a
    /// load cannot take, a user deleted meanwhile); a refused job's changes are not committed.
    pub async fn write_or_refuse<E, T, F>(&self, work: F) -> Result<T, E>
    where
        F: FnMut(&mut WriteTx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (job, receiver) = TypedJob::boxed(work, true);
        self.inner.writer.submit(job)?;
        receiver.await.map_err(|_| StoreError::WriterGone)?
    }

    /// `write` for changes that may reach the disk with the next durable commit rather than
    /// before the answer (work a crash would only cause to be redone, like deleting expired
    /// rows). Follow a series of them with `write` so they end durable.
    pub async fn write_deferred<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnMut(&mut WriteTx<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (job, receiver) = TypedJob::boxed(work, false);
        self.inner.writer.submit(job)?;
        receiver.await.map_err(|_| StoreError::WriterGone)?
    }

    /// `write_deferred` for code that is not async (a load's chunks), refusing as
    /// `write_or_refuse` does.
    pub fn write_deferred_blocking<E, T, F>(&self, work: F) -> Result<T, E>
    where
        F: FnMut(&mut WriteTx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (job, receiver) = TypedJob::boxed(work, false);
        self.inner.writer.submit(job)?;
        receiver
            .blocking_recv()
            .map_err(|_| StoreError::WriterGone)?
    }

    /// `write` for code that is not async (CLI commands).
    pub fn write_blocking<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnMut(&mut WriteTx<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.write_or_refuse_blocking::<StoreError, _, _>(work)
    }

    /// `write_or_refuse` for code that is not async.
    pub fn write_or_refuse_blocking<E, T, F>(&self, work: F) -> Result<T, E>
    where
        F: FnMut(&mut WriteTx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (job, receiver) = TypedJob::boxed(work, true);
        self.inner.writer.submit(job)?;
        receiver
            .blocking_recv()
            .map_err(|_| StoreError::WriterGone)?
    }

    /// Runs `work` on a consistent snapshot. Keep it short: a read transaction pins pages.
    pub fn read<T>(
        &self,
        work: impl FnOnce(&ReadTx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let txn = self.inner.db.begin_read()?;
        work(&ReadTx { txn })
    }

    /// Bytes in pages the database uses (the file may be larger: freed pages are kept for
    /// reuse, and the file grows in steps).
    pub fn allocated_bytes(&self) -> Result<u64, StoreError> {
        let txn = self.inner.db.begin_write()?;
        let stats = txn
            .stats()
            .map_err(|error| StoreError::Storage(error.to_string()))?;
        let bytes = stats.allocated_pages() * stats.page_size() as u64;
        txn.abort()?;
        Ok(bytes)
    }

    pub fn file_size(&self) -> u64 {
        std::fs::metadata(&self.inner.path)
            .map(|meta| meta.len())
            .unwrap_or(0)
    }

    pub fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        self.read(|tx| tx.user_by_username(username))
    }

    pub fn user(&self, id: u64) -> Result<Option<User>, StoreError> {
        self.read(|tx| tx.user(id))
    }

    pub fn session(&self, key: &SecretKey) -> Result<Option<Session>, StoreError> {
        self.read(|tx| tx.session(key))
    }
}

/// Brings the file to `SCHEMA_VERSION`; the version it had when it needed an upgrade.
fn migrate(db: &Database, path: &Path) -> Result<Option<u64>, StoreError> {
    let txn = db.begin_write()?;
    let mut upgraded_from = None;
    {
        let mut meta = txn.open_table(META)?;
        let found = meta
            .get("schema_version")?
            .map(|value| decode::<u64>(value.value()))
            .transpose()?;
        match found {
            Some(version) if version > SCHEMA_VERSION => {
                return Err(StoreError::NewerSchema {
                    path: path.to_owned(),
                    found: version,
                    known: SCHEMA_VERSION,
                });
            }
            Some(SCHEMA_VERSION) => {}
            Some(old) => {
                upgraded_from = Some(old);
                drop(meta);
                if old < 2 {
                    upgrade_expiry_index(&txn)?;
                }
                if old < 3 {
                    index_sessions_by_user(&txn)?;
                }
                if old < 4 {
                    file_refresh_tokens_by_creation(&txn)?;
                }
                txn.open_table(META)?
                    .insert("schema_version", encode(&SCHEMA_VERSION)?.as_slice())?;
            }
            None => {
                meta.insert("schema_version", encode(&SCHEMA_VERSION)?.as_slice())?;
            }
        }
        txn.open_table(USERS)?;
        txn.open_table(USERNAMES)?;
        txn.open_table(GROUPS)?;
        txn.open_table(GROUP_NAMES)?;
        txn.open_table(PERMISSIONS)?;
        txn.open_table(CONTENT_TYPES)?;
        txn.open_table(APPLICATIONS)?;
        txn.open_table(CLIENT_IDS)?;
        txn.open_table(SESSIONS)?;
        txn.open_multimap_table(SESSIONS_BY_USER)?;
        txn.open_table(EXPIRY)?;
        txn.open_table(ACCESS_TOKENS)?;
        txn.open_table(REFRESH_TOKENS)?;
        txn.open_table(GRANTS)?;
        txn.open_table(ID_TOKENS)?;
        txn.open_table(DEVICE_GRANTS)?;
        txn.open_table(DEVICE_USER_CODES)?;
        txn.open_table(CONSENTS)?;
        txn.open_multimap_table(TOKENS_BY_USER)?;
        txn.open_multimap_table(TOKENS_BY_CLIENT)?;
        txn.open_multimap_table(TOKENS_BY_FAMILY)?;
        txn.open_table(FAMILIES)?;
        txn.open_table(PERIODIC_TASKS)?;
        txn.open_table(SIGNING_KEYS)?;
        load_journal::create_tables(&txn)?;
    }
    txn.commit()?;
    Ok(upgraded_from)
}

/// Schema 1 → 2: the expiry index ordered by kind first (the cleanup walks one kind at a
/// time), and revoked refresh tokens filed by their revocation time.
fn upgrade_expiry_index(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    let mut expiry = txn.open_table(EXPIRY)?;
    {
        let legacy = txn.open_table(LEGACY_EXPIRY)?;
        for row in legacy.iter()? {
            let (at, kind, key) = row?.0.value();
            expiry.insert((kind, at, key), ())?;
        }
    }
    txn.delete_table(LEGACY_EXPIRY)?;
    let refresh_tokens = txn.open_table(REFRESH_TOKENS)?;
    for row in refresh_tokens.iter()? {
        let row = row?;
        let token: RefreshToken = decode(row.1.value())?;
        if let Some(revoked) = token.revoked {
            expiry.insert(
                (
                    ExpiringKind::RevokedRefreshToken as u8,
                    revoked.0,
                    row.0.value(),
                ),
                (),
            )?;
        }
    }
    Ok(())
}

/// Schema 2 → 3: every session filed under its user.
fn index_sessions_by_user(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    let sessions = txn.open_table(SESSIONS)?;
    let mut by_user = txn.open_multimap_table(SESSIONS_BY_USER)?;
    for row in sessions.iter()? {
        let row = row?;
        let session: Session = decode(row.1.value())?;
        by_user.insert(session.user_id, row.0.value())?;
    }
    Ok(())
}

/// Schema 3 → 4: refresh tokens filed in the expiry index by creation (they were filed by an
/// expiry of their own, which tokens imported from DOT lacked, so the cleanup never saw them).
fn file_refresh_tokens_by_creation(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    /// What schema 3 stored, as far as this step needs it.
    #[derive(serde::Deserialize)]
    struct Schema3RefreshToken {
        created: Timestamp,
        #[serde(default)]
        expires: Option<Timestamp>,
    }
    let kind = ExpiringKind::RefreshToken as u8;
    let mut expiry = txn.open_table(EXPIRY)?;
    let refresh_tokens = txn.open_table(REFRESH_TOKENS)?;
    for row in refresh_tokens.iter()? {
        let row = row?;
        let key = row.0.value();
        let token: Schema3RefreshToken = decode(row.1.value())?;
        if let Some(expires) = token.expires {
            expiry.remove((kind, expires.0, key))?;
        }
        expiry.insert((kind, token.created.0, key), ())?;
    }
    Ok(())
}

/// A consistent snapshot for reading.
pub struct ReadTx {
    txn: redb::ReadTransaction,
}

impl ReadTx {
    fn record<'k, K: redb::Key + 'static, T: DeserializeOwned>(
        &self,
        table: TableDefinition<K, &'static [u8]>,
        key: impl std::borrow::Borrow<K::SelfType<'k>>,
    ) -> Result<Option<T>, StoreError> {
        let table = self.txn.open_table(table)?;
        let value = table.get(key)?;
        value.map(|value| decode(value.value())).transpose()
    }

    fn all<K: redb::Key + 'static, T: DeserializeOwned>(
        &self,
        table: TableDefinition<K, &'static [u8]>,
    ) -> Result<Vec<T>, StoreError> {
        let table = self.txn.open_table(table)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (_, value) = row?;
            out.push(decode(value.value())?);
        }
        Ok(out)
    }

    pub fn user(&self, id: u64) -> Result<Option<User>, StoreError> {
        self.record(USERS, id)
    }

    pub fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        let names = self.txn.open_table(USERNAMES)?;
        let id = names.get(username)?.map(|id| id.value());
        match id {
            Some(id) => self.user(id),
            None => Ok(None),
        }
    }

    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        self.all(USERS)
    }

    /// Every user in id order, one at a time (none kept).
    pub fn each_user(&self, mut visit: impl FnMut(User)) -> Result<(), StoreError> {
        let table = self.txn.open_table(USERS)?;
        for row in table.iter()? {
            let (_, value) = row?;
            visit(decode(value.value())?);
        }
        Ok(())
    }

    pub fn user_count(&self) -> Result<u64, StoreError> {
        Ok(self.txn.open_table(USERS)?.len()?)
    }

    pub fn groups(&self) -> Result<Vec<Group>, StoreError> {
        self.all(GROUPS)
    }

    /// The groups `user` belongs to.
    pub fn groups_of(&self, user: &User) -> Result<Vec<Group>, StoreError> {
        let table = self.txn.open_table(GROUPS)?;
        let mut groups = Vec::with_capacity(user.groups.len());
        for id in &user.groups {
            if let Some(value) = table.get(id)? {
                groups.push(decode(value.value())?);
            }
        }
        Ok(groups)
    }

    pub fn applications(&self) -> Result<Vec<Application>, StoreError> {
        self.all(APPLICATIONS)
    }

    /// A Django permission by its pk (from a loaded `auth.permission`).
    pub fn permission(&self, pk: u64) -> Result<Option<PermissionRecord>, StoreError> {
        self.record(PERMISSIONS, pk)
    }

    /// Every loaded Django permission, by pk.
    pub fn permissions_by_pk(&self) -> Result<Vec<(u64, PermissionRecord)>, StoreError> {
        let table = self.txn.open_table(PERMISSIONS)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (key, value) = row?;
            out.push((key.value(), decode(value.value())?));
        }
        Ok(out)
    }

    pub fn application_by_client_id(
        &self,
        client_id: &str,
    ) -> Result<Option<Application>, StoreError> {
        let ids = self.txn.open_table(CLIENT_IDS)?;
        let id = ids.get(client_id)?.map(|id| id.value());
        match id {
            Some(id) => self.record(APPLICATIONS, id),
            None => Ok(None),
        }
    }

    pub fn session(&self, key: &SecretKey) -> Result<Option<Session>, StoreError> {
        self.record(SESSIONS, key.0)
    }

    pub fn session_count(&self) -> Result<u64, StoreError> {
        Ok(self.txn.open_table(SESSIONS)?.len()?)
    }

    pub fn application(&self, id: u64) -> Result<Option<Application>, StoreError> {
        self.record(APPLICATIONS, id)
    }

    pub fn access_token(&self, key: &SecretKey) -> Result<Option<AccessToken>, StoreError> {
        self.record(ACCESS_TOKENS, key.0)
    }

    pub fn refresh_token(&self, key: &SecretKey) -> Result<Option<RefreshToken>, StoreError> {
        self.record(REFRESH_TOKENS, key.0)
    }

    pub fn consent(&self, user: u64, application: u64) -> Result<Option<Consent>, StoreError> {
        self.record(CONSENTS, (user, application))
    }

    pub fn grant(&self, key: &SecretKey) -> Result<Option<Grant>, StoreError> {
        self.record(GRANTS, key.0)
    }

    pub fn device_grant_by_user_code(
        &self,
        user_code: &str,
    ) -> Result<Option<(SecretKey, DeviceGrant)>, StoreError> {
        let codes = self.txn.open_table(DEVICE_USER_CODES)?;
        let Some(key) = codes.get(user_code)?.map(|key| SecretKey(key.value())) else {
            return Ok(None);
        };
        Ok(self
            .record::<[u8; 32], DeviceGrant>(DEVICE_GRANTS, key.0)?
            .map(|grant| (key, grant)))
    }

    /// Every token stored for `user` (live, expired or revoked): its lone tokens and the
    /// members of its grant families. For logout, per-user revocation and admin pages.
    pub fn token_keys_of_user(
        &self,
        user: u64,
    ) -> Result<Vec<(ExpiringKind, SecretKey)>, StoreError> {
        let by_user = self.txn.open_multimap_table(TOKENS_BY_USER)?;
        let by_family = self.txn.open_multimap_table(TOKENS_BY_FAMILY)?;
        let kind_of = |byte: u8| {
            [ExpiringKind::AccessToken, ExpiringKind::RefreshToken]
                .into_iter()
                .find(|kind| *kind as u8 == byte)
        };
        let mut keys = Vec::new();
        for row in by_user.get(user)? {
            let (kind, raw) = row?.value();
            if kind == FAMILY_ENTRY {
                let mut family = [0u8; 16];
                family.copy_from_slice(&raw[..16]);
                for member in by_family.get(family)? {
                    let (kind, raw) = member?.value();
                    if let Some(kind) = kind_of(kind) {
                        keys.push((kind, SecretKey(raw)));
                    }
                }
            } else if let Some(kind) = kind_of(kind) {
                keys.push((kind, SecretKey(raw)));
            }
        }
        Ok(keys)
    }

    pub fn id_token(&self, key: &SecretKey) -> Result<Option<IdToken>, StoreError> {
        self.record(ID_TOKENS, key.0)
    }

    pub fn periodic_tasks(&self) -> Result<Vec<PeriodicTask>, StoreError> {
        self.all(PERIODIC_TASKS)
    }

    pub fn periodic_task(&self, name: &str) -> Result<Option<PeriodicTask>, StoreError> {
        self.record(PERIODIC_TASKS, name)
    }

    /// What an OpenID grant keeps for its later ID tokens and userinfo answers.
    pub fn family_session(&self, family: FamilyId) -> Result<Option<OidcSession>, StoreError> {
        let record: Option<FamilyRecord> = self.record(FAMILIES, family.0)?;
        Ok(record.and_then(|record| record.session))
    }

    pub fn signing_keys(&self) -> Result<Vec<SigningKey>, StoreError> {
        let table = self.txn.open_table(SIGNING_KEYS)?;
        let mut keys = Vec::new();
        for row in table.iter()? {
            keys.push(decode(row?.1.value())?);
        }
        Ok(keys)
    }

    pub fn access_token_count(&self) -> Result<u64, StoreError> {
        Ok(self.txn.open_table(ACCESS_TOKENS)?.len()?)
    }

    pub fn refresh_token_count(&self) -> Result<u64, StoreError> {
        Ok(self.txn.open_table(REFRESH_TOKENS)?.len()?)
    }

    pub fn schema_version(&self) -> Result<u64, StoreError> {
        self.meta_number("schema_version")
    }

    /// A number kept in the meta table (0 when absent).
    pub(super) fn meta_number(&self, name: &str) -> Result<u64, StoreError> {
        let meta = self.txn.open_table(META)?;
        let value = meta.get(name)?;
        value
            .map(|value| decode(value.value()))
            .transpose()
            .map(|number| number.unwrap_or(0))
    }
}

/// The writer's transaction, seen in domain terms. Changes become durable together when the
/// writer commits; a job that returns an error has none of its changes kept.
pub struct WriteTx<'a> {
    txn: &'a redb::WriteTransaction,
    open: OpenTables<'a>,
}

/// The token tables, opened once per transaction: a batch of a few hundred token writes would
/// otherwise open each table for every row it touches. Every use of these tables in `WriteTx`
/// goes through them (redb refuses to open one table twice at once).
#[derive(Default)]
struct OpenTables<'a> {
    expiry: Option<ExpiryTable<'a>>,
    access_tokens: Option<RecordTable<'a>>,
    refresh_tokens: Option<RecordTable<'a>>,
    grants: Option<RecordTable<'a>>,
    tokens_by_client: Option<IndexTable<'a, u64>>,
    tokens_by_user: Option<IndexTable<'a, u64>>,
    tokens_by_family: Option<IndexTable<'a, [u8; 16]>>,
    families: Option<redb::Table<'a, [u8; 16], &'static [u8]>>,
    /// A load's journal and the sequence number of its next row (`load_journal`).
    journal: Option<(redb::Table<'a, u64, &'static [u8]>, u64)>,
}

#[derive(Clone, Copy)]
enum IndexChange {
    Add,
    Remove,
}

type ExpiryTable<'a> = redb::Table<'a, (u8, i64, [u8; 32]), ()>;
type RecordTable<'a> = redb::Table<'a, [u8; 32], &'static [u8]>;
type IndexTable<'a, K> = redb::MultimapTable<'a, K, (u8, [u8; 32])>;

macro_rules! open_once {
    ($name:ident, $table:ident, $open:ident, $ty:ty) => {
        fn $name(&mut self) -> Result<&mut $ty, StoreError> {
            if self.open.$name.is_none() {
                self.open.$name = Some(self.txn.$open($table)?);
            }
            self.open
                .$name
                .as_mut()
                .ok_or_else(|| StoreError::Storage("table not open".to_owned()))
        }
    };
}

impl<'a> WriteTx<'a> {
    fn new(txn: &'a redb::WriteTransaction) -> Self {
        Self {
            txn,
            open: OpenTables::default(),
        }
    }

    open_once!(expiry, EXPIRY, open_table, ExpiryTable<'a>);
    open_once!(access_tokens, ACCESS_TOKENS, open_table, RecordTable<'a>);
    open_once!(refresh_tokens, REFRESH_TOKENS, open_table, RecordTable<'a>);
    open_once!(grants, GRANTS, open_table, RecordTable<'a>);
    open_once!(
        families,
        FAMILIES,
        open_table,
        redb::Table<'a, [u8; 16], &'static [u8]>
    );
    open_once!(
        tokens_by_client,
        TOKENS_BY_CLIENT,
        open_multimap_table,
        IndexTable<'a, u64>
    );
    open_once!(
        tokens_by_user,
        TOKENS_BY_USER,
        open_multimap_table,
        IndexTable<'a, u64>
    );
    open_once!(
        tokens_by_family,
        TOKENS_BY_FAMILY,
        open_multimap_table,
        IndexTable<'a, [u8; 16]>
    );

    /// Removes a record, returning what it held.
    fn take_record<T: DeserializeOwned>(
        table: &mut RecordTable<'a>,
        key: &SecretKey,
    ) -> Result<Option<T>, StoreError> {
        let removed = table.remove(key.0)?;
        removed.map(|value| decode(value.value())).transpose()
    }

    fn cached_record<T: DeserializeOwned>(
        table: &RecordTable<'a>,
        key: &SecretKey,
    ) -> Result<Option<T>, StoreError> {
        let value = table.get(key.0)?;
        value.map(|value| decode(value.value())).transpose()
    }

    fn record<'k, K: redb::Key + 'static, T: DeserializeOwned>(
        &self,
        table: TableDefinition<K, &'static [u8]>,
        key: impl std::borrow::Borrow<K::SelfType<'k>>,
    ) -> Result<Option<T>, StoreError> {
        let table = self.txn.open_table(table)?;
        let value = table.get(key)?;
        value.map(|value| decode(value.value())).transpose()
    }

    fn next_id(&self, table: TableDefinition<u64, &'static [u8]>) -> Result<u64, StoreError> {
        let table = self.txn.open_table(table)?;
        let last = table.last()?.map(|(key, _)| key.value());
        Ok(last.map_or(1, |id| id + 1))
    }

    /// Keeps a unique name index pointing at `id`; fails when another record holds the name.
    fn claim_name(
        &self,
        index: TableDefinition<&'static str, u64>,
        old_name: Option<&str>,
        new_name: &str,
        id: u64,
        what: &'static str,
    ) -> Result<(), StoreError> {
        let mut names = self.txn.open_table(index)?;
        let holder = names.get(new_name)?.map(|holder| holder.value());
        if holder.is_some_and(|holder| holder != id) {
            return Err(StoreError::Duplicate {
                what,
                value: new_name.to_owned(),
            });
        }
        if let Some(old) = old_name
            && old != new_name
        {
            names.remove(old)?;
        }
        names.insert(new_name, id)?;
        Ok(())
    }

    pub fn user(&self, id: u64) -> Result<Option<User>, StoreError> {
        self.record(USERS, id)
    }

    pub fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        let id = {
            let names = self.txn.open_table(USERNAMES)?;
            names.get(username)?.map(|id| id.value())
        };
        match id {
            Some(id) => self.user(id),
            None => Ok(None),
        }
    }

    /// Above every user id ever used (a deleted user's id is never given again).
    pub fn next_user_id(&self) -> Result<u64, StoreError> {
        Ok(self
            .next_id(USERS)?
            .max(self.id_mark(admin::USER_ID_MARK)? + 1))
    }

    /// Inserts or replaces the user with `user.id`; usernames stay unique.
    pub fn put_user(&mut self, user: &User) -> Result<(), StoreError> {
        let old = self.user(user.id)?;
        self.claim_name(
            USERNAMES,
            old.as_ref().map(|old| old.username.as_str()),
            &user.username,
            user.id,
            "a user named",
        )?;
        let mut users = self.txn.open_table(USERS)?;
        users.insert(user.id, encode(user)?.as_slice())?;
        Ok(())
    }

    pub fn group(&self, id: u64) -> Result<Option<Group>, StoreError> {
        self.record(GROUPS, id)
    }

    /// Above every group id ever used.
    pub fn next_group_id(&self) -> Result<u64, StoreError> {
        Ok(self
            .next_id(GROUPS)?
            .max(self.id_mark(admin::GROUP_ID_MARK)? + 1))
    }

    pub fn put_group(&mut self, group: &Group) -> Result<(), StoreError> {
        let old = self.group(group.id)?;
        self.claim_name(
            GROUP_NAMES,
            old.as_ref().map(|old| old.name.as_str()),
            &group.name,
            group.id,
            "a group named",
        )?;
        let mut groups = self.txn.open_table(GROUPS)?;
        groups.insert(group.id, encode(group)?.as_slice())?;
        Ok(())
    }

    pub fn put_permission(&mut self, pk: u64, record: &PermissionRecord) -> Result<(), StoreError> {
        self.txn
            .open_table(PERMISSIONS)?
            .insert(pk, encode(record)?.as_slice())?;
        Ok(())
    }

    pub fn content_type(&self, pk: u64) -> Result<Option<ContentType>, StoreError> {
        self.record(CONTENT_TYPES, pk)
    }

    pub fn put_content_type(&mut self, pk: u64, record: &ContentType) -> Result<(), StoreError> {
        self.txn
            .open_table(CONTENT_TYPES)?
            .insert(pk, encode(record)?.as_slice())?;
        Ok(())
    }

    pub fn group_id_by_name(&self, name: &str) -> Result<Option<u64>, StoreError> {
        let names = self.txn.open_table(GROUP_NAMES)?;
        Ok(names.get(name)?.map(|id| id.value()))
    }

    pub fn application(&self, id: u64) -> Result<Option<Application>, StoreError> {
        self.record(APPLICATIONS, id)
    }

    /// Inserts or replaces the application with `application.id`; client ids stay unique.
    pub fn put_application(&mut self, application: &Application) -> Result<(), StoreError> {
        let old = self.application(application.id)?;
        self.claim_name(
            CLIENT_IDS,
            old.as_ref().map(|old| old.client_id.as_str()),
            &application.client_id,
            application.id,
            "an application with client_id",
        )?;
        let mut applications = self.txn.open_table(APPLICATIONS)?;
        applications.insert(application.id, encode(application)?.as_slice())?;
        Ok(())
    }

    pub fn put_session(&mut self, key: &SecretKey, session: &Session) -> Result<(), StoreError> {
        self.txn
            .open_table(SESSIONS)?
            .insert(key.0, encode(session)?.as_slice())?;
        self.txn
            .open_multimap_table(SESSIONS_BY_USER)?
            .insert(session.user_id, key.0)?;
        self.expiry()?.insert(
            (ExpiringKind::Session as u8, session.expires_at.0, key.0),
            (),
        )?;
        Ok(())
    }

    pub fn delete_session(&mut self, key: &SecretKey) -> Result<bool, StoreError> {
        let mut sessions = self.txn.open_table(SESSIONS)?;
        let session: Option<Session> = sessions
            .remove(key.0)?
            .map(|removed| decode(removed.value()))
            .transpose()?;
        drop(sessions);
        let Some(session) = session else {
            return Ok(false);
        };
        self.expiry()?
            .remove((ExpiringKind::Session as u8, session.expires_at.0, key.0))?;
        self.txn
            .open_multimap_table(SESSIONS_BY_USER)?
            .remove(session.user_id, key.0)?;
        Ok(true)
    }

    /// Ends every session of `user` but `keep` (the one making a change to its own account).
    /// Returns how many ended.
    pub fn end_sessions_of_user(
        &mut self,
        user: u64,
        keep: Option<&SecretKey>,
    ) -> Result<u64, StoreError> {
        let keys: Vec<[u8; 32]> = {
            let by_user = self.txn.open_multimap_table(SESSIONS_BY_USER)?;
            let mut keys = Vec::new();
            for key in by_user.get(user)? {
                keys.push(key?.value());
            }
            keys
        };
        let mut ended = 0;
        for key in keys {
            if keep.is_some_and(|keep| keep.0 == key) {
                continue;
            }
            if self.delete_session(&SecretKey(key))? {
                ended += 1;
            }
        }
        Ok(ended)
    }

    pub fn access_token(&mut self, key: &SecretKey) -> Result<Option<AccessToken>, StoreError> {
        Self::cached_record(self.access_tokens()?, key)
    }

    pub fn refresh_token(&mut self, key: &SecretKey) -> Result<Option<RefreshToken>, StoreError> {
        Self::cached_record(self.refresh_tokens()?, key)
    }

    /// A token of a refresh family is indexed through its family only (the family's user and
    /// client rows are written once, with its first refresh token), so a rotation rewrites no
    /// user or client rows. A lone token (client credentials, a DOT import without a pair) is
    /// indexed by client and user directly.
    #[allow(clippy::too_many_arguments)]
    fn change_token_index(
        &mut self,
        change: IndexChange,
        kind: ExpiringKind,
        key: &SecretKey,
        user: Option<u64>,
        application: u64,
        family: Option<FamilyId>,
        paired: bool,
    ) -> Result<(), StoreError> {
        let entry = (kind as u8, key.0);
        if !paired || family.is_none() {
            Self::change_row(self.tokens_by_client()?, application, entry, change)?;
            if let Some(user) = user {
                Self::change_row(self.tokens_by_user()?, user, entry, change)?;
            }
        }
        if let Some(family) = family {
            Self::change_row(self.tokens_by_family()?, family.0, entry, change)?;
        }
        Ok(())
    }

    fn change_row<'k, K: redb::Key + 'static>(
        table: &mut IndexTable<'a, K>,
        id: K::SelfType<'k>,
        entry: (u8, [u8; 32]),
        change: IndexChange,
    ) -> Result<(), StoreError> {
        match change {
            IndexChange::Add => table.insert(&id, &entry)?,
            IndexChange::Remove => table.remove(&id, &entry)?,
        };
        Ok(())
    }

    /// Records a family's owner the first time one of its refresh tokens is stored.
    fn ensure_family(
        &mut self,
        family: FamilyId,
        user: Option<u64>,
        application: u64,
    ) -> Result<(), StoreError> {
        if self.families()?.get(family.0)?.is_some() {
            return Ok(());
        }
        let record = FamilyRecord {
            user,
            application,
            session: None,
        };
        self.families()?
            .insert(family.0, encode(&record)?.as_slice())?;
        let entry = family_entry(family);
        self.tokens_by_client()?.insert(application, entry)?;
        if let Some(user) = user {
            self.tokens_by_user()?.insert(user, entry)?;
        }
        Ok(())
    }

    /// Stores a new access token with its index and expiry entries.
    pub fn put_access_token(
        &mut self,
        key: &SecretKey,
        token: &AccessToken,
    ) -> Result<(), StoreError> {
        self.access_tokens()?
            .insert(key.0, encode(token)?.as_slice())?;
        self.expiry()?.insert(
            (ExpiringKind::AccessToken as u8, token.expires.0, key.0),
            (),
        )?;
        self.change_token_index(
            IndexChange::Add,
            ExpiringKind::AccessToken,
            key,
            token.user,
            token.application,
            token.family,
            token.refresh_token.is_some(),
        )
    }

    /// Deletes an access token and its index entries; false when there was none.
    pub fn delete_access_token(&mut self, key: &SecretKey) -> Result<bool, StoreError> {
        let removed: Option<AccessToken> = Self::take_record(self.access_tokens()?, key)?;
        let Some(token) = removed else {
            return Ok(false);
        };
        self.expiry()?
            .remove((ExpiringKind::AccessToken as u8, token.expires.0, key.0))?;
        self.change_token_index(
            IndexChange::Remove,
            ExpiringKind::AccessToken,
            key,
            token.user,
            token.application,
            token.family,
            token.refresh_token.is_some(),
        )?;
        Ok(true)
    }

    /// Stores a refresh token (new, or updated: revoked, re-paired) with its indexes.
    pub fn put_refresh_token(
        &mut self,
        key: &SecretKey,
        token: &RefreshToken,
    ) -> Result<(), StoreError> {
        let previous = self.refresh_token(key)?;
        let (old_created, old_revoked) = previous
            .as_ref()
            .map_or((None, None), |old| (Some(old.created), old.revoked));
        self.refresh_tokens()?
            .insert(key.0, encode(token)?.as_slice())?;
        for (kind, old, new) in [
            (ExpiringKind::RefreshToken, old_created, Some(token.created)),
            (
                ExpiringKind::RevokedRefreshToken,
                old_revoked,
                token.revoked,
            ),
        ] {
            if old == new {
                continue;
            }
            if let Some(old) = old {
                self.expiry()?.remove((kind as u8, old.0, key.0))?;
            }
            if let Some(new) = new {
                self.expiry()?.insert((kind as u8, new.0, key.0), ())?;
            }
        }
        if previous.is_none() {
            self.ensure_family(token.family, token.user, token.application)?;
            self.change_token_index(
                IndexChange::Add,
                ExpiringKind::RefreshToken,
                key,
                token.user,
                token.application,
                Some(token.family),
                true,
            )?;
        }
        Ok(())
    }

    /// Revokes every token of a family: access tokens are deleted, refresh tokens marked
    /// revoked (kept so a later reuse is still recognised). Returns how many were live.
    pub fn revoke_family(&mut self, family: FamilyId, now: Timestamp) -> Result<u64, StoreError> {
        let members: Vec<(u8, [u8; 32])> = {
            let index = self.tokens_by_family()?;
            let mut members = Vec::new();
            for entry in index.get(family.0)? {
                members.push(entry?.value());
            }
            members
        };
        let mut revoked = 0;
        for (kind, raw) in members {
            let key = SecretKey(raw);
            if kind == ExpiringKind::AccessToken as u8 {
                if self.delete_access_token(&key)? {
                    revoked += 1;
                }
            } else if kind == ExpiringKind::RefreshToken as u8
                && let Some(mut token) = self.refresh_token(&key)?
                && token.revoked.is_none()
            {
                token.revoked = Some(now);
                token.access_token = None;
                self.put_refresh_token(&key, &token)?;
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    /// Revokes every token `user` holds for `application` (RP-initiated logout), or for every
    /// application when none is given (a deactivated account): their grant families and their
    /// lone tokens. Returns how many were live.
    pub fn revoke_tokens_of(
        &mut self,
        user: u64,
        application: Option<u64>,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let concerns = |candidate: u64| application.is_none_or(|wanted| wanted == candidate);
        let rows: Vec<(u8, [u8; 32])> = {
            let index = self.tokens_by_user()?;
            let mut rows = Vec::new();
            for row in index.get(user)? {
                rows.push(row?.value());
            }
            rows
        };
        let mut revoked = 0;
        for (kind, raw) in rows {
            let key = SecretKey(raw);
            if kind == FAMILY_ENTRY {
                let mut family = [0u8; 16];
                family.copy_from_slice(&raw[..16]);
                let owner = Self::family_record(self.families()?, FamilyId(family))?;
                if owner.is_some_and(|owner| concerns(owner.application)) {
                    revoked += self.revoke_family(FamilyId(family), now)?;
                }
            } else if kind == ExpiringKind::AccessToken as u8 {
                let belongs = self
                    .access_token(&key)?
                    .is_some_and(|token| concerns(token.application));
                if belongs && self.delete_access_token(&key)? {
                    revoked += 1;
                }
            } else if kind == ExpiringKind::RefreshToken as u8
                && let Some(mut token) = self.refresh_token(&key)?
                && concerns(token.application)
                && token.revoked.is_none()
            {
                token.revoked = Some(now);
                if let Some(access) = token.access_token.take() {
                    self.delete_access_token(&SecretKey(access))?;
                }
                self.put_refresh_token(&key, &token)?;
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    pub fn grant(&mut self, key: &SecretKey) -> Result<Option<Grant>, StoreError> {
        Self::cached_record(self.grants()?, key)
    }

    pub fn consent(&self, user: u64, application: u64) -> Result<Option<Consent>, StoreError> {
        self.record(CONSENTS, (user, application))
    }

    /// Stores an authorization code (new, or marked used).
    pub fn put_grant(&mut self, key: &SecretKey, grant: &Grant) -> Result<(), StoreError> {
        let is_new = self.grant(key)?.is_none();
        self.grants()?.insert(key.0, encode(grant)?.as_slice())?;
        if is_new {
            self.expiry()?
                .insert((ExpiringKind::Grant as u8, grant.expires.0, key.0), ())?;
        }
        Ok(())
    }

    pub fn put_consent(
        &mut self,
        user: u64,
        application: u64,
        consent: &Consent,
    ) -> Result<(), StoreError> {
        self.txn
            .open_table(CONSENTS)?
            .insert((user, application), encode(consent)?.as_slice())?;
        Ok(())
    }

    pub fn device_grant(&self, key: &SecretKey) -> Result<Option<DeviceGrant>, StoreError> {
        self.record(DEVICE_GRANTS, key.0)
    }

    /// Stores a device authorization (new or updated); a new one must have a user code no
    /// other live authorization holds.
    pub fn put_device_grant(
        &mut self,
        key: &SecretKey,
        grant: &DeviceGrant,
    ) -> Result<(), StoreError> {
        let is_new = self.device_grant(key)?.is_none();
        if is_new {
            let mut codes = self.txn.open_table(DEVICE_USER_CODES)?;
            if codes.get(grant.user_code.as_str())?.is_some() {
                return Err(StoreError::Duplicate {
                    what: "device user code",
                    value: grant.user_code.clone(),
                });
            }
            codes.insert(grant.user_code.as_str(), key.0)?;
            drop(codes);
            self.expiry()?.insert(
                (ExpiringKind::DeviceGrant as u8, grant.expires.0, key.0),
                (),
            )?;
        }
        self.txn
            .open_table(DEVICE_GRANTS)?
            .insert(key.0, encode(grant)?.as_slice())?;
        Ok(())
    }

    /// Removes a device authorization once its tokens are issued (its code is single-use).
    pub fn delete_device_grant(&mut self, key: &SecretKey) -> Result<(), StoreError> {
        let Some(grant) = self.device_grant(key)? else {
            return Ok(());
        };
        self.txn.open_table(DEVICE_GRANTS)?.remove(key.0)?;
        self.txn
            .open_table(DEVICE_USER_CODES)?
            .remove(grant.user_code.as_str())?;
        self.expiry()?
            .remove((ExpiringKind::DeviceGrant as u8, grant.expires.0, key.0))?;
        Ok(())
    }

    /// Stores an ID token record (new or replaced) with its expiry row.
    pub fn put_id_token(&mut self, key: &SecretKey, token: &IdToken) -> Result<(), StoreError> {
        let previous: Option<IdToken> = self.record(ID_TOKENS, key.0)?;
        if let Some(previous) = previous {
            self.expiry()?
                .remove((ExpiringKind::IdToken as u8, previous.expires.0, key.0))?;
        }
        self.txn
            .open_table(ID_TOKENS)?
            .insert(key.0, encode(token)?.as_slice())?;
        self.expiry()?
            .insert((ExpiringKind::IdToken as u8, token.expires.0, key.0), ())?;
        Ok(())
    }

    /// Keeps what the family's refreshes need to issue ID tokens (its first refresh token must
    /// already be stored).
    pub fn put_family_session(
        &mut self,
        family: FamilyId,
        session: &OidcSession,
    ) -> Result<(), StoreError> {
        let Some(mut record) = Self::family_record(self.families()?, family)? else {
            return Err(StoreError::Storage("no such token family".to_owned()));
        };
        record.session = Some(session.clone());
        self.families()?
            .insert(family.0, encode(&record)?.as_slice())?;
        Ok(())
    }

    pub fn family_session(&mut self, family: FamilyId) -> Result<Option<OidcSession>, StoreError> {
        Ok(Self::family_record(self.families()?, family)?.and_then(|record| record.session))
    }

    fn family_record(
        table: &redb::Table<'a, [u8; 16], &'static [u8]>,
        family: FamilyId,
    ) -> Result<Option<FamilyRecord>, StoreError> {
        table
            .get(family.0)?
            .map(|value| decode(value.value()))
            .transpose()
    }

    pub fn signing_keys(&self) -> Result<Vec<SigningKey>, StoreError> {
        let table = self.txn.open_table(SIGNING_KEYS)?;
        let mut keys = Vec::new();
        for row in table.iter()? {
            keys.push(decode(row?.1.value())?);
        }
        Ok(keys)
    }

    pub fn periodic_task(&self, name: &str) -> Result<Option<PeriodicTask>, StoreError> {
        self.record(PERIODIC_TASKS, name)
    }

    pub fn periodic_task_names(&self) -> Result<Vec<String>, StoreError> {
        let table = self.txn.open_table(PERIODIC_TASKS)?;
        let mut names = Vec::new();
        for row in table.iter()? {
            names.push(row?.0.value().to_owned());
        }
        Ok(names)
    }

    pub fn put_periodic_task(&mut self, task: &PeriodicTask) -> Result<(), StoreError> {
        self.txn
            .open_table(PERIODIC_TASKS)?
            .insert(task.name.as_str(), encode(task)?.as_slice())?;
        Ok(())
    }

    pub fn delete_periodic_task(&mut self, name: &str) -> Result<bool, StoreError> {
        Ok(self.txn.open_table(PERIODIC_TASKS)?.remove(name)?.is_some())
    }

    pub fn put_signing_key(&mut self, key: &SigningKey) -> Result<(), StoreError> {
        self.txn
            .open_table(SIGNING_KEYS)?
            .insert(key.kid.as_str(), encode(key)?.as_slice())?;
        Ok(())
    }

    /// Deletes a refresh token with its index rows; its family goes too once it has no
    /// members left. False when there was none.
    pub fn delete_refresh_token(&mut self, key: &SecretKey) -> Result<bool, StoreError> {
        let removed: Option<RefreshToken> = Self::take_record(self.refresh_tokens()?, key)?;
        let Some(token) = removed else {
            return Ok(false);
        };
        for (kind, at) in [
            (ExpiringKind::RefreshToken, Some(token.created)),
            (ExpiringKind::RevokedRefreshToken, token.revoked),
        ] {
            if let Some(at) = at {
                self.expiry()?.remove((kind as u8, at.0, key.0))?;
            }
        }
        self.change_token_index(
            IndexChange::Remove,
            ExpiringKind::RefreshToken,
            key,
            token.user,
            token.application,
            Some(token.family),
            true,
        )?;
        let family = token.family;
        if self.tokens_by_family()?.get(family.0)?.next().is_none() {
            let owner = Self::family_record(self.families()?, family)?;
            self.families()?.remove(family.0)?;
            if let Some(owner) = owner {
                let entry = family_entry(family);
                self.tokens_by_client()?.remove(owner.application, entry)?;
                if let Some(user) = owner.user {
                    self.tokens_by_user()?.remove(user, entry)?;
                }
            }
        }
        Ok(true)
    }

    /// Deletes up to `limit` records of `kind` whose row in the expiry index is before
    /// `cutoff`, oldest first, stopping early once `budget` has passed (so the one writer soon
    /// gets back to issuing tokens). Returns how many records were deleted and whether rows
    /// before `cutoff` may remain.
    pub fn clear_expired_batch(
        &mut self,
        kind: ExpiringKind,
        cutoff: Timestamp,
        limit: usize,
        budget: std::time::Duration,
    ) -> Result<(u64, bool), StoreError> {
        /// Rows read from the index at a time: the budget is checked between chunks.
        const CHUNK: usize = 256;
        let started = std::time::Instant::now();
        let mut deleted = 0;
        let mut processed = 0;
        loop {
            let want = CHUNK.min(limit - processed);
            let rows: Vec<(i64, [u8; 32])> = {
                let expiry = self.expiry()?;
                let kind = kind as u8;
                let mut rows = Vec::with_capacity(want);
                for row in expiry.range((kind, i64::MIN, [0u8; 32])..(kind, cutoff.0, [0u8; 32]))? {
                    let (_, at, key) = row?.0.value();
                    rows.push((at, key));
                    if rows.len() == want {
                        break;
                    }
                }
                rows
            };
            if rows.is_empty() {
                return Ok((deleted, false));
            }
            for (at, raw) in rows {
                let key = SecretKey(raw);
                // Each delete removes the record's own expiry row.
                let gone = match kind {
                    ExpiringKind::AccessToken => self.delete_access_token(&key)?,
                    ExpiringKind::RefreshToken | ExpiringKind::RevokedRefreshToken => {
                        self.delete_refresh_token(&key)?
                    }
                    ExpiringKind::Grant => self.delete_grant(&key)?,
                    ExpiringKind::IdToken => self.delete_id_token(&key)?,
                    ExpiringKind::DeviceGrant => {
                        let found = self.device_grant(&key)?.is_some();
                        self.delete_device_grant(&key)?;
                        found
                    }
                    ExpiringKind::Session => self.delete_session(&key)?,
                };
                if gone {
                    deleted += 1;
                } else {
                    // A row whose record was already gone.
                    self.expiry()?.remove((kind as u8, at, raw))?;
                }
                processed += 1;
            }
            if processed >= limit || started.elapsed() > budget {
                return Ok((deleted, true));
            }
        }
    }

    pub fn delete_grant(&mut self, key: &SecretKey) -> Result<bool, StoreError> {
        let removed: Option<Grant> = Self::take_record(self.grants()?, key)?;
        let Some(grant) = removed else {
            return Ok(false);
        };
        self.expiry()?
            .remove((ExpiringKind::Grant as u8, grant.expires.0, key.0))?;
        Ok(true)
    }

    pub fn delete_id_token(&mut self, key: &SecretKey) -> Result<bool, StoreError> {
        let removed: Option<IdToken> = {
            let mut table = self.txn.open_table(ID_TOKENS)?;
            let removed = table.remove(key.0)?;
            removed.map(|value| decode(value.value())).transpose()?
        };
        let Some(token) = removed else {
            return Ok(false);
        };
        self.expiry()?
            .remove((ExpiringKind::IdToken as u8, token.expires.0, key.0))?;
        Ok(true)
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A fresh seeded redb store for the conformance tests (and for copies between backends).

    use std::sync::Arc;

    use super::Store;
    use crate::store::conformance::{self, Seeded};

    /// A fresh redb store with two applications and a user; the directory lives as long as
    /// the test.
    pub fn seeded() -> (Seeded, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("oxidot.redb"), 1 << 20).unwrap();
        let records = conformance::Seed::records();
        store
            .write_blocking(move |tx| {
                for record in &records {
                    tx.import(record)?;
                }
                Ok(())
            })
            .unwrap();
        let scratch = dir.path().join("another.redb");
        let seeded = Seeded {
            storage: Arc::new(store),
            another: Box::new(move || {
                let scratch = scratch.clone();
                Box::pin(async move {
                    let (store, _) = Store::open(&scratch, 1 << 20).unwrap();
                    Arc::new(store) as Arc<dyn crate::store::Storage>
                })
            }),
            application: 1,
            other_application: 2,
            user: 7,
        };
        (seeded, dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_or_panicking_write_costs_its_batch_one_more_transaction_and_stops_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("batch.redb"), 1 << 20).unwrap();
        let writer = &store.inner.writer;
        // A first job holds the writer until the next batch is queued behind it.
        let (started, started_seen) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let released = std::sync::Mutex::new(released);
        let (blocker, blocker_done) = writer::TypedJob::boxed(
            move |_: &mut WriteTx<'_>| {
                let _ = started.send(());
                let _ = released.lock().unwrap().recv();
                Ok::<(), StoreError>(())
            },
            true,
        );
        writer.submit(blocker).unwrap();
        started_seen.recv().unwrap();
        let before = writer.transactions();
        let mut replies = Vec::new();
        for i in 0..10u64 {
            let (job, reply) = match i {
                // A username job 0 took in the same batch.
                3 => writer::TypedJob::boxed(
                    |tx: &mut WriteTx<'_>| tx.put_user(&User::sample(999, "u0")),
                    true,
                ),
                6 => writer::TypedJob::boxed(
                    |_: &mut WriteTx<'_>| -> Result<(), StoreError> { panic!("a bug in a write") },
                    true,
                ),
                _ => writer::TypedJob::boxed(
                    move |tx: &mut WriteTx<'_>| {
                        tx.put_user(&User::sample(100 + i, &format!("u{i}")))
                    },
                    true,
                ),
            };
            writer.submit(job).unwrap();
            replies.push(reply);
        }
        release.send(()).unwrap();
        blocker_done.blocking_recv().unwrap().unwrap();
        for (i, reply) in replies.into_iter().enumerate() {
            let result = reply.blocking_recv().unwrap();
            match i {
                3 => assert!(matches!(result, Err(StoreError::Duplicate { .. }))),
                6 => assert!(matches!(result, Err(StoreError::Storage(_)))),
                _ => assert!(result.is_ok(), "{i}: {result:?}"),
            }
        }
        // Two failures: the batch ran three times, not once per job.
        assert_eq!(writer.transactions() - before, 3);
        let users = store.read(|tx| tx.users()).unwrap();
        assert_eq!(users.len(), 8);
        // The writer is still there.
        store
            .write_blocking(|tx| tx.put_user(&User::sample(200, "after")))
            .unwrap();
    }

    #[test]
    fn schema_1_expiry_rows_move_to_the_kind_ordered_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.redb");
        let revoked_key = [7u8; 32];
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut meta = txn.open_table(META).unwrap();
                meta.insert("schema_version", encode(&1u64).unwrap().as_slice())
                    .unwrap();
                let mut legacy = txn.open_table(LEGACY_EXPIRY).unwrap();
                legacy
                    .insert((1_000, ExpiringKind::AccessToken as u8, [1u8; 32]), ())
                    .unwrap();
                let token = RefreshToken {
                    user: Some(1),
                    application: 1,
                    scope: "read".to_owned(),
                    created: Timestamp(10),
                    revoked: Some(Timestamp(20)),
                    access_token: None,
                    family: FamilyId([0; 16]),
                    tail: String::new(),
                };
                txn.open_table(REFRESH_TOKENS)
                    .unwrap()
                    .insert(revoked_key, encode(&token).unwrap().as_slice())
                    .unwrap();
            }
            txn.commit().unwrap();
        }
        let (store, _) = Store::open(&path, 1 << 20).unwrap();
        assert_eq!(
            store.read(|tx| tx.schema_version()).unwrap(),
            SCHEMA_VERSION
        );
        let rows: Vec<(u8, i64, [u8; 32])> = store
            .read(|tx| {
                let table = tx.txn.open_table(EXPIRY)?;
                let mut rows = Vec::new();
                for row in table.iter()? {
                    rows.push(row?.0.value());
                }
                Ok(rows)
            })
            .unwrap();
        assert_eq!(
            rows,
            [
                (ExpiringKind::AccessToken as u8, 1_000, [1u8; 32]),
                (ExpiringKind::RefreshToken as u8, 10, revoked_key),
                (ExpiringKind::RevokedRefreshToken as u8, 20, revoked_key),
            ]
        );
        store.close().unwrap();
    }

    #[test]
    fn schema_3_refresh_tokens_are_filed_by_creation() {
        /// A schema-3 refresh token: with an expiry of its own, or (imported) without.
        #[derive(serde::Serialize)]
        struct Schema3 {
            user: Option<u64>,
            application: u64,
            scope: String,
            created: Timestamp,
            family: FamilyId,
            expires: Option<Timestamp>,
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v3.redb");
        let kind = ExpiringKind::RefreshToken as u8;
        let (minted, imported) = ([1u8; 32], [2u8; 32]);
        {
            let (store, _) = Store::open(&path, 1 << 20).unwrap();
            store.close().unwrap();
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                txn.open_table(META)
                    .unwrap()
                    .insert("schema_version", encode(&3u64).unwrap().as_slice())
                    .unwrap();
                let mut tokens = txn.open_table(REFRESH_TOKENS).unwrap();
                let mut expiry = txn.open_table(EXPIRY).unwrap();
                for (key, created, expires) in [(minted, 10, Some(610)), (imported, 20, None)] {
                    let record = Schema3 {
                        user: None,
                        application: 1,
                        scope: "read".to_owned(),
                        created: Timestamp(created),
                        family: FamilyId(key[..16].try_into().unwrap()),
                        expires: expires.map(Timestamp),
                    };
                    tokens
                        .insert(key, encode(&record).unwrap().as_slice())
                        .unwrap();
                    if let Some(expires) = expires {
                        expiry.insert((kind, expires, key), ()).unwrap();
                    }
                }
            }
            txn.commit().unwrap();
        }
        let (store, report) = Store::open(&path, 1 << 20).unwrap();
        assert_eq!(report.upgraded_from, Some(3));
        let rows: Vec<(u8, i64, [u8; 32])> = store
            .read(|tx| {
                let table = tx.txn.open_table(EXPIRY)?;
                let mut rows = Vec::new();
                for row in table.iter()? {
                    rows.push(row?.0.value());
                }
                Ok(rows)
            })
            .unwrap();
        assert_eq!(rows, [(kind, 10, minted), (kind, 20, imported)]);
        assert_eq!(
            store
                .read(|tx| tx.refresh_token(&SecretKey(imported)))
                .unwrap()
                .map(|token| token.created),
            Some(Timestamp(20))
        );
        store.close().unwrap();
    }
}
