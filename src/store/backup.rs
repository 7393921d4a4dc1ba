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
