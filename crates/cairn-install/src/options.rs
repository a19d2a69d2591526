//! The shared TLS options file (`options-ssl-nginx.conf`,
//! `options-ssl-apache.conf`) under the cairn configuration directory,
//! which every HTTPS block cairn manages includes.
//!
//! cairn records the SHA-256 of what it wrote in `FILE.sha256` beside it.
//! A copy whose hash no longer matches was edited by someone, and is never
//! overwritten: cairn warns instead, and the edits stay in force.

use std::fs;
use std::path::{Path, PathBuf};

use aws_lc_rs::digest;

use crate::Error;
use crate::checkpoint::write_atomic;

/// What [`ensure`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionsFile {
    /// The file was missing (or cairn's own, older copy) and was written.
    Written,
    /// The file is cairn's, up to date: nothing written.
    Current,
    /// Someone changed the file (or it was not cairn's): left alone.
    UserEdited,
}

/// The digest file recording what cairn wrote to `options_file`.
pub fn digest_path(options_file: &Path) -> PathBuf {
    let mut name = options_file.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}

/// Makes `options_file` hold `contents` unless a person edited it: writes
/// it when missing or when it is an unedited earlier copy of cairn's;
/// returns [`OptionsFile::UserEdited`] (and logs a warning) otherwise.
pub fn ensure(options_file: &Path, contents: &str) -> Result<OptionsFile, Error> {
    let digest_file = digest_path(options_file);
    let wanted = hex(contents.as_bytes());
    let current = match fs::read(options_file) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(Error::Io {
                path: options_file.to_path_buf(),
                source,
            });
        }
    };
    if let Some(current) = current {
        let recorded = fs::read_to_string(&digest_file).ok();
        let ours = recorded.as_deref().map(str::trim) == Some(hex(&current).as_str());
        if !ours {
            tracing::warn!(
                file = %options_file.display(),
                "the TLS options file was changed by someone else; cairn leaves it as it is \
                 (delete it and its .sha256 file to get cairn's current settings)"
            );
            return Ok(OptionsFile::UserEdited);
        }
        if hex(&current) == wanted {
            return Ok(OptionsFile::Current);
        }
    }
    if let Some(dir) = options_file.parent() {
        crate::lock::create_dir_all(dir)?;
    }
    write_atomic(options_file, contents.as_bytes(), 0o644)?;
    write_atomic(&digest_file, format!("{wanted}\n").as_bytes(), 0o644)?;
    Ok(OptionsFile::Written)
}

fn hex(bytes: &[u8]) -> String {
    digest::digest(&digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_once_updated_when_ours_and_never_overwritten_when_edited() {
        let temp = tempfile::tempdir().expect("tempdir");
        let file = temp.path().join("options-ssl-nginx.conf");
        assert_eq!(
            ensure(&file, "ssl_protocols TLSv1.2 TLSv1.3;\n").expect("ensure"),
            OptionsFile::Written
        );
        assert_eq!(
            fs::read_to_string(&file).expect("read"),
            "ssl_protocols TLSv1.2 TLSv1.3;\n"
        );
        assert_eq!(
            ensure(&file, "ssl_protocols TLSv1.2 TLSv1.3;\n").expect("ensure"),
            OptionsFile::Current
        );
        // A newer cairn updates its own unedited copy.
        assert_eq!(
            ensure(&file, "ssl_protocols TLSv1.3;\n").expect("ensure"),
            OptionsFile::Written
        );
        // A person's edit stays.
        fs::write(&file, "ssl_protocols TLSv1.3; # mine\n").expect("edit");
        assert_eq!(
            ensure(&file, "ssl_protocols TLSv1.2 TLSv1.3;\n").expect("ensure"),
            OptionsFile::UserEdited
        );
        assert_eq!(
            fs::read_to_string(&file).expect("read"),
            "ssl_protocols TLSv1.3; # mine\n"
        );
        // A file cairn did not write (no digest) is not cairn's.
        let other = temp.path().join("other.conf");
        fs::write(&other, "x\n").expect("write");
        assert_eq!(
            ensure(&other, "y\n").expect("ensure"),
            OptionsFile::UserEdited
        );
        assert_eq!(fs::read_to_string(&other).expect("read"), "x\n");
    }
}
