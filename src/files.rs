//! Files that hold secrets — the database (password hashes, and signing keys unless they are
//! sealed), its backups and the control socket — are made readable by their owner only,
//! whatever the umask: created with mode 0600 (directories 0700) rather than narrowed after
//! the fact, so there is no moment at which another local user can open them.

use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Owner read and write.
pub const PRIVATE_FILE: u32 = 0o600;
const PRIVATE_DIR: u32 = 0o700;

/// Creates `path` as an empty owner-only file unless it exists.
pub fn create_private(path: &Path) -> io::Result<()> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

/// Narrows an existing file to owner-only.
pub fn make_private(path: &Path) -> io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(PRIVATE_FILE))
}

/// Creates a directory (and its parents) whose last component only its owner can enter.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(PRIVATE_DIR))
}

/// The file's permission bits when its group or other users may read or write it.
pub fn open_to_others(path: &Path) -> io::Result<Option<u32>> {
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
    Ok((mode & 0o077 != 0).then_some(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_and_directories_are_owner_only_and_existing_files_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        create_private(&file).unwrap();
        assert_eq!(open_to_others(&file).unwrap(), None);
        std::fs::write(&file, b"kept").unwrap();
        create_private(&file).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"kept");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(open_to_others(&file).unwrap(), Some(0o644));
        make_private(&file).unwrap();
        assert_eq!(open_to_others(&file).unwrap(), None);
        let nested = dir.path().join("a/b");
        create_private_dir(&nested).unwrap();
        assert_eq!(
            std::fs::metadata(&nested).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}
