//! One exclusive lock per web server under the cairn configuration
//! directory, so two cairn runs never edit the same server at once.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use crate::Error;

/// Held while a configuration is being changed; released on drop (and by
/// the kernel if the process dies).
#[derive(Debug)]
pub struct ServerLock {
    _file: File,
    path: PathBuf,
}

impl ServerLock {
    /// Takes `CONFIG_DIR/locks/install-SERVER.lock` without waiting:
    /// [`Error::Locked`] when another process holds it.
    pub fn acquire(config_dir: &Path, server: &str) -> Result<Self, Error> {
        let dir = config_dir.join("locks");
        create_dir_all(&dir)?;
        let path = dir.join(format!("install-{server}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o644)
            .open(&path)
            .map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file, path }),
            Err(TryLockError::WouldBlock) => Err(Error::Locked(path)),
            Err(TryLockError::Error(source)) => Err(Error::Io { path, source }),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `mkdir -p` with mode 0755 for what it creates.
pub(crate) fn create_dir_all(dir: &Path) -> Result<(), Error> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let temp = tempfile::tempdir().expect("tempdir");
        let first = ServerLock::acquire(temp.path(), "nginx").expect("first");
        let err = ServerLock::acquire(temp.path(), "nginx").expect_err("held");
        assert!(
            matches!(err, Error::Locked(ref p) if p == first.path()),
            "{err}"
        );
        assert!(err.to_string().contains("another cairn"), "{err}");
        // Another server has its own lock.
        let _apache = ServerLock::acquire(temp.path(), "apache").expect("apache");
        drop(first);
        ServerLock::acquire(temp.path(), "nginx").expect("free again");
    }
}
