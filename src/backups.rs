//! Backups as the CLI and the `backup` task make them: a consistent online copy into a file
//! named by its time, the oldest removed beyond the number to keep.

use std::path::{Path, PathBuf};

use crate::store::{Storage, StoreError, Timestamp};

const PREFIX: &str = "oxidot-";
const SUFFIX: &str = ".redb";

/// `oxidot-20261129T041500Z.redb` (sorts by time).
fn file_name(at: Timestamp) -> String {
    let at = at.to_datetime();
    format!(
        "{PREFIX}{:04}{:02}{:02}T{:02}{:02}{:02}Z{SUFFIX}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// Copies the database to `destination`: that file, or a time-named file in that directory.
pub async fn backup(
    store: &dyn Storage,
    destination: &Path,
    now: Timestamp,
) -> Result<String, StoreError> {
    let target = if destination.is_dir() {
        destination.join(file_name(now))
    } else {
        destination.to_owned()
    };
    let report = store.back_up(target).await?;
    Ok(format!(
        "backup written to {} ({} rows, {} bytes)",
        report.path.display(),
        report.rows,
        report.bytes
    ))
}

/// The scheduled backup: a new copy in `directory`, then only the newest `keep` remain.
pub async fn backup_and_prune(
    store: &dyn Storage,
    directory: &Path,
    keep: usize,
    now: Timestamp,
) -> Result<String, StoreError> {
    // Before the directory is made: a database that backs up otherwise makes nothing here.
    store.backs_up_to_files()?;
    crate::files::create_private_dir(directory).map_err(|error| {
        StoreError::Storage(format!("cannot create {}: {error}", directory.display()))
    })?;
    let written = backup(store, directory, now).await?;
    let mut copies: Vec<PathBuf> = std::fs::read_dir(directory)
        .map_err(|error| StoreError::Storage(error.to_string()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with(PREFIX) && name.ends_with(SUFFIX))
        })
        .collect();
    copies.sort();
    let excess = copies.len().saturating_sub(keep);
    for old in &copies[..excess] {
        std::fs::remove_file(old).map_err(|error| {
            StoreError::Storage(format!("cannot remove {}: {error}", old.display()))
        })?;
    }
    Ok(format!("{written}; {excess} older removed"))
}
