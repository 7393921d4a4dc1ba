//! Online backups: a consistent copy of every table, read through one read transaction (a
//! snapshot, so the server keeps writing meanwhile) into a new file, which is then reopened
//! and checked before it takes its final name. Never a raw copy of a file being written.

use std::path::{Path, PathBuf};

use redb::{Database, MultimapTableDefinition, ReadableDatabase, TableDefinition};

use super::*;
use crate::store::BackupReport;

/// Rows written per transaction of the copy: redb keeps a transaction's pages in memory until
/// it commits, so one transaction for the whole copy would hold the whole database in RAM.
const ROWS_PER_COMMIT: u64 = 20_000;

/// The copy's transactions: committed without an fsync every `ROWS_PER_COMMIT` rows (one
/// durable commit ends the copy).
pub(super) struct Copier<'d> {
    db: &'d Database,
    rows: u64,
}

impl<'d> Copier<'d> {
    fn begin(&self) -> Result<redb::WriteTransaction, StoreError> {
        super::writer::begin(self.db, false)
    }

    pub(super) fn copy_table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &mut self,
        from: &redb::ReadTransaction,
        table: TableDefinition<K, V>,
    ) -> Result<(), StoreError> {
        let source = match from.open_table(table) {
            Ok(source) => source,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(error) => return Err(error.into()),
        };
        let mut rows = source.iter()?;
        loop {
            let txn = self.begin()?;
            let mut more = false;
            {
                let mut target = txn.open_table(table)?;
                let mut written = 0;
                for row in rows.by_ref() {
                    let (key, value) = row?;
                    target.insert(key.value(), value.value())?;
                    written += 1;
                    if written == ROWS_PER_COMMIT {
                        more = true;
                        break;
                    }
                }
                self.rows += written;
            }
            txn.commit()?;
            if !more {
                return Ok(());
            }
        }
    }

    fn copy_multimap<K: redb::Key + 'static, V: redb::Key + 'static>(
        &mut self,
        from: &redb::ReadTransaction,
        table: MultimapTableDefinition<K, V>,
    ) -> Result<(), StoreError> {
        let source = match from.open_multimap_table(table) {
            Ok(source) => source,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(error) => return Err(error.into()),
        };
        // One key may hold a million values (a client's tokens): commit inside it too.
        let mut entries = source.iter()?;
        let mut current = None;
        loop {
            let txn = self.begin()?;
            let mut more = false;
            {
                let mut target = txn.open_multimap_table(table)?;
                let mut written = 0;
                'fill: loop {
                    if current.is_none() {
                        match entries.next() {
                            Some(entry) => current = Some(entry?),
                            None => break 'fill,
                        }
                    }
                    if let Some((key, values)) = current.as_mut() {
                        for value in values.by_ref() {
                            target.insert(key.value(), value?.value())?;
                            written += 1;
                            if written == ROWS_PER_COMMIT {
                                more = true;
                                break 'fill;
                            }
                        }
                    }
                    current = None;
                }
                self.rows += written;
            }
            txn.commit()?;
            if !more {
                return Ok(());
            }
        }
    }
}

impl Store {
    /// Copies the database to `destination` (a new file; refused if it exists).
    pub fn backup_to(&self, destination: &Path) -> Result<BackupReport, StoreError> {
        if destination.exists() {
            return Err(StoreError::Storage(format!(
                "{} exists already; a backup never overwrites a file",
                destination.display()
            )));
        }
        let partial = destination.with_extension("partial");
        let _ = std::fs::remove_file(&partial);
        // A backup holds what the database holds: owner-only, whatever the umask.
        crate::files::create_private(&partial)
            .map_err(|error| StoreError::Storage(format!("cannot create the backup: {error}")))?;
        let snapshot = self.inner.db.begin_read()?;
        // A small page cache: the copy is written once, never read back here.
        let copy = Database::builder()
            .set_cache_size(8 << 20)
            .create(&partial)?;
        let mut copier = Copier { db: &copy, rows: 0 };
        copier.copy_table(&snapshot, META)?;
        copier.copy_table(&snapshot, USERS)?;
        copier.copy_table(&snapshot, USERNAMES)?;
        copier.copy_table(&snapshot, GROUPS)?;
        copier.copy_table(&snapshot, GROUP_NAMES)?;
        copier.copy_table(&snapshot, PERMISSIONS)?;
        copier.copy_table(&snapshot, CONTENT_TYPES)?;
        copier.copy_table(&snapshot, APPLICATIONS)?;
        copier.copy_table(&snapshot, CLIENT_IDS)?;
        copier.copy_table(&snapshot, SESSIONS)?;
        copier.copy_multimap(&snapshot, SESSIONS_BY_USER)?;
        copier.copy_table(&snapshot, EXPIRY)?;
        copier.copy_table(&snapshot, ACCESS_TOKENS)?;
        copier.copy_table(&snapshot, REFRESH_TOKENS)?;
        copier.copy_table(&snapshot, GRANTS)?;
        copier.copy_table(&snapshot, ID_TOKENS)?;
        copier.copy_table(&snapshot, DEVICE_GRANTS)?;
        copier.copy_table(&snapshot, DEVICE_USER_CODES)?;
        copier.copy_table(&snapshot, CONSENTS)?;
        copier.copy_multimap(&snapshot, TOKENS_BY_USER)?;
        copier.copy_multimap(&snapshot, TOKENS_BY_CLIENT)?;
        copier.copy_multimap(&snapshot, TOKENS_BY_FAMILY)?;
        copier.copy_table(&snapshot, FAMILIES)?;
        copier.copy_table(&snapshot, PERIODIC_TASKS)?;
        copier.copy_table(&snapshot, SIGNING_KEYS)?;
        // A load in progress is copied with its journal: the copy rolls it back when opened.
        load_journal::copy_tables(&mut copier, &snapshot)?;
        let rows = copier.rows;
        // One durable commit puts every batch on disk.
        super::writer::begin(&copy, true)?.commit()?;
        drop(snapshot);
        drop(copy);
        // Reopened and checked before it counts as a backup.
        let reopened = Database::open(&partial)?;
        let check = reopened.begin_read()?;
        let version: Option<u64> = check
            .open_table(META)?
            .get("schema_version")?
            .map(|value| decode(value.value()))
            .transpose()?;
        if version != Some(SCHEMA_VERSION) {
            return Err(StoreError::Storage(
                "the copy does not read back: no backup was made".to_owned(),
            ));
        }
        drop(check);
        drop(reopened);
        std::fs::rename(&partial, destination)
            .map_err(|error| StoreError::Storage(format!("cannot name the backup: {error}")))?;
        let bytes = std::fs::metadata(destination).map_or(0, |meta| meta.len());
        Ok(BackupReport {
            path: destination.to_owned(),
            rows,
            bytes,
        })
    }
}

/// What `oxidot check --db` found.
#[derive(Debug, Clone)]
pub struct IntegrityReport {
    pub schema_version: u64,
    /// redb found damage and repaired it (the file was not closed cleanly, or worse).
    pub repaired: bool,
}

/// What `oxidot restore` did.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    pub schema_version: u64,
    /// Where the database it replaced was kept.
    pub previous: Option<PathBuf>,
}

fn open_alone(path: &Path) -> Result<Database, StoreError> {
    Database::builder().open(path).map_err(|error| match error {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::AlreadyOpen(path.to_owned()),
        other => StoreError::Storage(format!("cannot open {}: {other}", path.display())),
    })
}

/// Runs redb's integrity check on `path` (which must not be in use) and reads its schema.
fn check_file(path: &Path) -> Result<IntegrityReport, StoreError> {
    let mut db = open_alone(path)?;
    let intact = db
        .check_integrity()
        .map_err(|error| StoreError::Storage(format!("{} is damaged: {error}", path.display())))?;
    let schema_version: Option<u64> = {
        let txn = db.begin_read()?;
        match txn.open_table(META) {
            Ok(meta) => meta
                .get("schema_version")?
                .map(|value| decode(value.value()))
                .transpose()?,
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(error) => return Err(error.into()),
        }
    };
    let schema_version = schema_version.ok_or_else(|| {
        StoreError::Storage(format!("{} is not an oxidot database", path.display()))
    })?;
    if schema_version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_owned(),
            found: schema_version,
            known: SCHEMA_VERSION,
        });
    }
    Ok(IntegrityReport {
        schema_version,
        repaired: !intact,
    })
}

impl Store {
    /// `oxidot check --db`: the integrity of a database no process holds.
    pub fn check_integrity(path: &Path) -> Result<IntegrityReport, StoreError> {
        if !path.exists() {
            return Err(StoreError::Storage(format!(
                "{} does not exist",
                path.display()
            )));
        }
        check_file(path)
    }

    /// Replaces the database at `database` (no server may hold it) with the backup `source`,
    /// after checking the backup. The file it replaces is kept beside it.
    pub fn restore(
        source: &Path,
        database: &Path,
        now: Timestamp,
    ) -> Result<RestoreReport, StoreError> {
        if !source.is_file() {
            return Err(StoreError::Storage(format!(
                "{} is not a file",
                source.display()
            )));
        }
        check_file(source)?;
        // Holding the current file while the copy is made keeps a server from starting on it.
        let current = if database.exists() {
            Some(open_alone(database)?)
        } else {
            None
        };
        let incoming = database.with_extension("restoring");
        // Owner-only from its first byte, whatever the backup's own mode.
        let _ = std::fs::remove_file(&incoming);
        crate::files::create_private(&incoming)
            .and_then(|()| {
                let mut from = std::fs::File::open(source)?;
                let mut to = std::fs::OpenOptions::new().write(true).open(&incoming)?;
                std::io::copy(&mut from, &mut to)?;
                to.sync_all()
            })
            .map_err(|error| StoreError::Storage(format!("cannot copy the backup: {error}")))?;
        let previous = match current {
            Some(held) => {
                drop(held);
                let stamp = now.to_rfc3339().replace(':', "");
                let kept = database.with_extension(format!("before-restore-{stamp}.redb"));
                std::fs::rename(database, &kept).map_err(|error| {
                    StoreError::Storage(format!("cannot set the current database aside: {error}"))
                })?;
                Some(kept)
            }
            None => None,
        };
        std::fs::rename(&incoming, database).map_err(|error| {
            StoreError::Storage(format!("cannot put the backup in place: {error}"))
        })?;
        // Opening upgrades an older schema and proves the file serves.
        let (store, _) = Store::open(database, 1 << 20)?;
        store.close()?;
        Ok(RestoreReport {
            schema_version: SCHEMA_VERSION,
            previous,
        })
    }
}
