//! Online backups: a consistent copy of every table, read through one read transaction (a
//! snapshot, so the server keeps writing meanwhile) into a new file, which is then reopened
//! and checked before it takes its final name. Never a raw copy of a file being written.

use std::path::{Path, PathBuf};

use redb::{Database, MultimapTableDefinition, ReadableDatabase, TableDefinition};

use super::*;

fn copy_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    from: &redb::ReadTransaction,
    to: &redb::WriteTransaction,
    table: TableDefinition<K, V>,
) -> Result<u64, StoreError> {
    let source = match from.open_table(table) {
        Ok(source) => source,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(error) => return Err(error.into()),
    };
    let mut target = to.open_table(table)?;
    let mut rows = 0;
    for row in source.iter()? {
        let (key, value) = row?;
        target.insert(key.value(), value.value())?;
        rows += 1;
    }
    Ok(rows)
}

fn copy_multimap<K: redb::Key + 'static, V: redb::Key + 'static>(
    from: &redb::ReadTransaction,
    to: &redb::WriteTransaction,
    table: MultimapTableDefinition<K, V>,
) -> Result<u64, StoreError> {
    let source = match from.open_multimap_table(table) {
        Ok(source) => source,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(error) => return Err(error.into()),
    };
    let mut target = to.open_multimap_table(table)?;
    let mut rows = 0;
    for entry in source.iter()? {
        let (key, values) = entry?;
        for value in values {
            target.insert(key.value(), value?.value())?;
            rows += 1;
        }
    }
    Ok(rows)
}

/// What a backup wrote.
#[derive(Debug, Clone)]
pub struct BackupReport {
    pub path: PathBuf,
    pub rows: u64,
    pub bytes: u64,
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
        let snapshot = self.inner.db.begin_read()?;
        let copy = Database::create(&partial)?;
        let txn = copy.begin_write()?;
        let mut rows = 0;
        rows += copy_table(&snapshot, &txn, META)?;
        rows += copy_table(&snapshot, &txn, USERS)?;
        rows += copy_table(&snapshot, &txn, USERNAMES)?;
        rows += copy_table(&snapshot, &txn, GROUPS)?;
        rows += copy_table(&snapshot, &txn, GROUP_NAMES)?;
        rows += copy_table(&snapshot, &txn, APPLICATIONS)?;
        rows += copy_table(&snapshot, &txn, CLIENT_IDS)?;
        rows += copy_table(&snapshot, &txn, SESSIONS)?;
        rows += copy_table(&snapshot, &txn, EXPIRY)?;
        rows += copy_table(&snapshot, &txn, ACCESS_TOKENS)?;
        rows += copy_table(&snapshot, &txn, REFRESH_TOKENS)?;
        rows += copy_table(&snapshot, &txn, GRANTS)?;
        rows += copy_table(&snapshot, &txn, ID_TOKENS)?;
        rows += copy_table(&snapshot, &txn, DEVICE_GRANTS)?;
        rows += copy_table(&snapshot, &txn, DEVICE_USER_CODES)?;
        rows += copy_table(&snapshot, &txn, CONSENTS)?;
        rows += copy_multimap(&snapshot, &txn, TOKENS_BY_USER)?;
        rows += copy_multimap(&snapshot, &txn, TOKENS_BY_CLIENT)?;
        rows += copy_multimap(&snapshot, &txn, TOKENS_BY_FAMILY)?;
        rows += copy_table(&snapshot, &txn, FAMILIES)?;
        rows += copy_table(&snapshot, &txn, PERIODIC_TASKS)?;
        rows += copy_table(&snapshot, &txn, SIGNING_KEYS)?;
        txn.commit()?;
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
        std::fs::copy(source, &incoming)
            .and_then(|_| std::fs::File::open(&incoming)?.sync_all())
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
