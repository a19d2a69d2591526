//! Files the signer keeps on disk: written whole or not at all (temporary
//! file, `fsync`, rename, `fsync` of the directory), private keys with mode
//! 0600 in directories with mode 0700.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

/// Mode of private key files.
pub(crate) const PRIVATE_FILE_MODE: u32 = 0o600;
/// Mode of certificates and other public files.
pub(crate) const PUBLIC_FILE_MODE: u32 = 0o644;
/// Mode of directories holding private keys.
pub(crate) const PRIVATE_DIR_MODE: u32 = 0o700;

/// Writes a private key (or anything secret): mode 0600, atomically.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    write_atomic(path, contents, PRIVATE_FILE_MODE)
}

/// Writes a certificate or other public file: mode 0644, atomically.
pub(crate) fn write_public(path: &Path, contents: &[u8]) -> io::Result<()> {
    write_atomic(path, contents, PUBLIC_FILE_MODE)
}

/// Replaces `path` with `contents` so that a reader (or a restart after a
/// crash) sees either the old file or the new one, never a part of it.
///
/// The temporary file is created with `mode` from the start, so a secret is
/// never readable by others even for a moment.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let dir = parent(path)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(".{name}.tmp-{}", random_suffix()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have removed bits; it can never have added any, but
        // set the mode explicitly so public files are readable as intended.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        // Best effort: the temporary file is useless now.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates a directory with mode 0700 (its parent must exist).
pub(crate) fn create_private_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new().mode(PRIVATE_DIR_MODE).create(path)?;
    // As with files, the umask can only have narrowed the mode.
    fs::set_permissions(path, fs::Permissions::from_mode(PRIVATE_DIR_MODE))
}

/// Makes sure `path` is a directory that only its owner can enter, and
/// narrows its mode if it was wider. Returns whether it had to be narrowed.
pub(crate) fn restrict_dir(path: &Path) -> io::Result<bool> {
    let mode = fs::metadata(path)?.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return Ok(false);
    }
    fs::set_permissions(path, fs::Permissions::from_mode(PRIVATE_DIR_MODE))?;
    Ok(true)
}

/// Narrows a private key file to 0600 if it is readable by others.
/// Returns whether it had to be narrowed.
pub(crate) fn restrict_file(path: &Path) -> io::Result<bool> {
    let mode = fs::metadata(path)?.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return Ok(false);
    }
    fs::set_permissions(path, fs::Permissions::from_mode(PRIVATE_FILE_MODE))?;
    Ok(true)
}

/// Flushes a directory's entries (a rename or a new file) to disk.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A short random hex string, for names that must not collide.
pub(crate) fn random_suffix() -> String {
    let mut bytes = [0u8; 6];
    super::fill_random(&mut bytes);
    super::serial_hex(&bytes)
}

fn parent(path: &Path) -> io::Result<&Path> {
    match path.parent() {
        Some(p) if p.as_os_str().is_empty() => Ok(Path::new(".")),
        Some(p) => Ok(p),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "path has no parent directory",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).expect("exists").permissions().mode() & 0o777
    }

    #[test]
    fn private_files_are_0600_and_replace_atomically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key.pem");
        write_private(&path, b"first").expect("writes");
        assert_eq!(fs::read(&path).expect("reads"), b"first");
        assert_eq!(mode_of(&path), 0o600);
        write_private(&path, b"second").expect("rewrites");
        assert_eq!(fs::read(&path).expect("reads"), b"second");
        assert_eq!(mode_of(&path), 0o600);
        // No temporary files left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("lists")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("key.pem")]);
    }

    #[test]
    fn public_files_are_0644() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("root.pem");
        write_public(&path, b"cert").expect("writes");
        assert_eq!(mode_of(&path), 0o644);
    }

    #[test]
    fn private_dirs_are_0700_and_get_narrowed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = dir.path().join("pki");
        create_private_dir(&pki).expect("creates");
        assert_eq!(mode_of(&pki), 0o700);
        assert!(!restrict_dir(&pki).expect("checks"));
        fs::set_permissions(&pki, fs::Permissions::from_mode(0o755)).expect("chmod");
        assert!(restrict_dir(&pki).expect("narrows"));
        assert_eq!(mode_of(&pki), 0o700);
    }

    #[test]
    fn writing_into_a_missing_directory_fails_cleanly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("missing").join("key.pem");
        assert!(write_private(&path, b"x").is_err());
    }
}
