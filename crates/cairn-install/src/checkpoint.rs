//! Checkpoints: before every change, a copy of each file's previous bytes
//! and mode, and a manifest naming the files the change creates, under
//! `CONFIG_DIR/backups/SERVER/N/`. Written and synced before the first
//! edit, so a crash in the middle can always be undone; rolling back
//! restores every byte and removes the created files.
//!
//! Layout of one checkpoint:
//!
//! ```text
//! backups/nginx/7/manifest   "cairn-checkpoint 1", time, description,
//!                            one `saved INDEX MODE PATH` or `created PATH` per file
//! backups/nginx/7/0, 1, ...  the previous bytes of each saved file
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::lock::create_dir_all;
use crate::{ChangeSet, Error};

const MAGIC: &str = "cairn-checkpoint 1";
/// The directory name of the checkpoint of a temporary change (http-01
/// through the server), kept apart from the numbered ones.
pub(crate) const TEMPORARY: &str = "temporary";

/// One saved checkpoint, as its manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Its number (1, 2, ...; increasing), or 0 for a temporary change.
    pub id: u64,
    /// When it was taken, seconds since the Unix epoch.
    pub time: u64,
    /// What the change was for (`deploy example.org`).
    pub description: String,
    /// The files whose previous bytes it holds.
    pub saved: Vec<PathBuf>,
    /// The files the change created (removed on rollback).
    pub created: Vec<PathBuf>,
    dir: PathBuf,
    modes: Vec<u32>,
}

/// The checkpoints of one server: `CONFIG_DIR/backups/SERVER/`.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    dir: PathBuf,
}

impl Checkpoints {
    /// The checkpoints of `server` under `config_dir`.
    pub fn new(config_dir: &Path, server: &str) -> Self {
        Self {
            dir: config_dir.join("backups").join(server),
        }
    }

    /// The directory holding them.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every numbered checkpoint, oldest first.
    pub fn list(&self) -> Result<Vec<Checkpoint>, Error> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(Error::Io {
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| Error::Io {
                path: self.dir.clone(),
                source,
            })?;
            if let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u64>().ok())
            {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        ids.into_iter()
            .map(|id| read_manifest(&self.dir.join(id.to_string()), id))
            .collect()
    }

    /// The checkpoint a temporary change left behind (a crash while it was
    /// in place), if any.
    pub(crate) fn temporary(&self) -> Result<Option<Checkpoint>, Error> {
        let dir = self.dir.join(TEMPORARY);
        if dir.is_dir() {
            read_manifest(&dir, 0).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Saves the files `changes` touches as they are on disk now, before any
    /// of them is written: the next numbered checkpoint, or the temporary
    /// one. Fails if a file differs from what the change was computed from
    /// (someone edited it meanwhile).
    pub(crate) fn save(
        &self,
        changes: &ChangeSet,
        description: &str,
        temporary: bool,
    ) -> Result<Checkpoint, Error> {
        create_dir_all(&self.dir)?;
        let (id, name) = if temporary {
            (0, TEMPORARY.to_owned())
        } else {
            let next = self.list()?.last().map_or(1, |c| c.id + 1);
            (next, next.to_string())
        };
        let partial = self.dir.join(format!(".{name}.partial"));
        let _ = fs::remove_dir_all(&partial);
        create_dir_all(&partial)?;
        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut manifest = format!(
            "{MAGIC}\ntime {time}\ndescription {}\n",
            escape(description.as_bytes())
        );
        let mut checkpoint = Checkpoint {
            id,
            time,
            description: description.to_owned(),
            saved: Vec::new(),
            created: Vec::new(),
            dir: self.dir.join(&name),
            modes: Vec::new(),
        };
        for (path, change) in &changes.files {
            if change.before.as_deref() == Some(change.after.as_slice()) {
                continue;
            }
            match &change.before {
                Some(before) => {
                    let target = resolve(path);
                    let now = fs::read(&target).map_err(|source| Error::Io {
                        path: path.clone(),
                        source,
                    })?;
                    if &now != before {
                        let _ = fs::remove_dir_all(&partial);
                        return Err(Error::Checkpoint {
                            id: name,
                            message: format!(
                                "{} changed while cairn was preparing its edit; run cairn again",
                                path.display()
                            ),
                        });
                    }
                    let mode = fs::metadata(&target)
                        .map_err(|source| Error::Io {
                            path: path.clone(),
                            source,
                        })?
                        .permissions()
                        .mode()
                        & 0o7777;
                    let index = checkpoint.saved.len();
                    write_synced(&partial.join(index.to_string()), &now, 0o600)?;
                    manifest.push_str(&format!(
                        "saved {index} {mode:o} {}\n",
                        escape(path.as_os_str().as_bytes())
                    ));
                    checkpoint.saved.push(path.clone());
                    checkpoint.modes.push(mode);
                }
                None => {
                    if path.exists() {
                        let _ = fs::remove_dir_all(&partial);
                        return Err(Error::Checkpoint {
                            id: name,
                            message: format!(
                                "{} appeared while cairn was preparing to create it; run cairn again",
                                path.display()
                            ),
                        });
                    }
                    manifest.push_str(&format!(
                        "created {}\n",
                        escape(path.as_os_str().as_bytes())
                    ));
                    checkpoint.created.push(path.clone());
                }
            }
        }
        write_synced(&partial.join("manifest"), manifest.as_bytes(), 0o600)?;
        sync_dir(&partial)?;
        let _ = fs::remove_dir_all(&checkpoint.dir);
        fs::rename(&partial, &checkpoint.dir).map_err(|source| Error::Io {
            path: checkpoint.dir.clone(),
            source,
        })?;
        sync_dir(&self.dir)?;
        Ok(checkpoint)
    }

    /// Puts back every saved file byte for byte (with its mode) and removes
    /// the created ones. Goes on past a failure and reports the first one.
    pub(crate) fn restore(&self, checkpoint: &Checkpoint) -> Result<(), Error> {
        let mut first_error = None;
        for (index, (path, mode)) in checkpoint.saved.iter().zip(&checkpoint.modes).enumerate() {
            let copy = checkpoint.dir.join(index.to_string());
            let result = fs::read(&copy)
                .map_err(|source| Error::Io { path: copy, source })
                .and_then(|bytes| write_atomic(path, &bytes, *mode));
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        for path in &checkpoint.created {
            if let Err(source) = fs::remove_file(path)
                && source.kind() != std::io::ErrorKind::NotFound
            {
                first_error.get_or_insert(Error::Io {
                    path: path.clone(),
                    source,
                });
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Deletes a checkpoint (after it was rolled back, or when the change
    /// it guarded was undone).
    pub(crate) fn remove(&self, checkpoint: &Checkpoint) -> Result<(), Error> {
        fs::remove_dir_all(&checkpoint.dir).map_err(|source| Error::Io {
            path: checkpoint.dir.clone(),
            source,
        })
    }
}

/// Writes `contents` to `path` atomically (a temporary file beside it,
/// synced, renamed over it) with `mode`. A symbolic link is followed, so
/// Debian's `sites-enabled/NAME -> ../sites-available/NAME` stays a link.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let target = resolve(path);
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = target
        .parent()
        .ok_or_else(|| io(std::io::Error::other("no parent directory")))?;
    let name = target
        .file_name()
        .ok_or_else(|| io(std::io::Error::other("no file name")))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".cairn-{}.tmp", std::process::id()));
    let temp = dir.join(temp_name);
    let result = write_synced(&temp, contents, mode).and_then(|()| {
        fs::rename(&temp, &target).map_err(io)?;
        sync_dir(dir)
    });
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// The file a path names, symbolic links followed; the path itself when it
/// does not exist yet.
fn resolve(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn write_synced(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let _ = fs::remove_file(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })
}

fn read_manifest(dir: &Path, id: u64) -> Result<Checkpoint, Error> {
    let path = dir.join("manifest");
    let bad = |message: String| Error::Checkpoint {
        id: dir.display().to_string(),
        message,
    };
    let text = fs::read_to_string(&path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Err(bad("the manifest is not a cairn checkpoint manifest".into()));
    }
    let mut checkpoint = Checkpoint {
        id,
        time: 0,
        description: String::new(),
        saved: Vec::new(),
        created: Vec::new(),
        dir: dir.to_path_buf(),
        modes: Vec::new(),
    };
    for line in lines {
        let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "time" => {
                checkpoint.time = rest
                    .parse()
                    .map_err(|_| bad(format!("bad line {line:?}")))?
            }
            "description" => {
                checkpoint.description = String::from_utf8_lossy(&unescape(rest)).into_owned();
            }
            "saved" => {
                let mut parts = rest.splitn(3, ' ');
                let (Some(index), Some(mode), Some(file)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return Err(bad(format!("bad line {line:?}")));
                };
                if index.parse::<usize>().ok() != Some(checkpoint.saved.len()) {
                    return Err(bad(format!("files out of order at {line:?}")));
                }
                let mode = u32::from_str_radix(mode, 8)
                    .map_err(|_| bad(format!("bad mode in {line:?}")))?;
                checkpoint
                    .saved
                    .push(PathBuf::from(std::ffi::OsString::from_vec(unescape(file))));
                checkpoint.modes.push(mode);
            }
            "created" => checkpoint
                .created
                .push(PathBuf::from(std::ffi::OsString::from_vec(unescape(rest)))),
            _ => return Err(bad(format!("unknown line {line:?}"))),
        }
    }
    Ok(checkpoint)
}

/// Printable ASCII as is; `\`, controls and other bytes as `\xHH`.
fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && b != b'\\' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && bytes.get(i + 1) == Some(&b'x')
            && let Some(hex) = text.get(i + 2..i + 4)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::Change;

    fn change(before: Option<&str>, after: &str) -> Change {
        Change {
            before: before.map(|b| b.as_bytes().to_vec()),
            after: after.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_checkpoint_restores_bytes_modes_links_and_removes_created_files() {
        let temp = tempfile::tempdir().expect("tempdir");
        let conf = temp.path().join("conf");
        fs::create_dir_all(conf.join("sites-available")).expect("mkdir");
        fs::create_dir_all(conf.join("sites-enabled")).expect("mkdir");
        let odd = conf.join("we\\ird\nname.conf");
        fs::write(&odd, "a { }\n").expect("write");
        fs::set_permissions(&odd, fs::Permissions::from_mode(0o640)).expect("chmod");
        let real = conf.join("sites-available/site");
        fs::write(&real, "server { }\n").expect("write");
        let link = conf.join("sites-enabled/site");
        symlink("../sites-available/site", &link).expect("symlink");
        let new = conf.join("new.conf");

        let mut changes = ChangeSet::default();
        changes
            .files
            .insert(odd.clone(), change(Some("a { }\n"), "a { b; }\n"));
        changes.files.insert(
            link.clone(),
            change(Some("server { }\n"), "server { x; }\n"),
        );
        changes.files.insert(new.clone(), change(None, "new\n"));
        let checkpoints = Checkpoints::new(&temp.path().join("cairn"), "nginx");
        let saved = checkpoints
            .save(&changes, "deploy a.example", false)
            .expect("save");
        assert_eq!(saved.id, 1);
        for (path, c) in &changes.files {
            write_atomic(path, &c.after, 0o644).expect("write");
        }
        assert!(
            fs::symlink_metadata(&link)
                .expect("meta")
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_to_string(&real).expect("read"), "server { x; }\n");

        let listed = checkpoints.list().expect("list");
        assert_eq!(listed, vec![saved.clone()]);
        assert_eq!(listed[0].description, "deploy a.example");
        assert_eq!(listed[0].created, vec![new.clone()]);
        checkpoints.restore(&listed[0]).expect("restore");
        assert_eq!(fs::read_to_string(&odd).expect("read"), "a { }\n");
        assert_eq!(
            fs::metadata(&odd).expect("meta").permissions().mode() & 0o777,
            0o640
        );
        assert_eq!(fs::read_to_string(&real).expect("read"), "server { }\n");
        assert!(
            fs::symlink_metadata(&link)
                .expect("meta")
                .file_type()
                .is_symlink()
        );
        assert!(!new.exists());

        // The next one is numbered after it; a temporary one is apart.
        assert_eq!(
            checkpoints.save(&changes, "two", false).expect("save").id,
            2
        );
        checkpoints.save(&changes, "temp", true).expect("temp");
        assert_eq!(checkpoints.list().expect("list").len(), 2);
        assert_eq!(
            checkpoints
                .temporary()
                .expect("read")
                .expect("some")
                .description,
            "temp"
        );
    }

    #[test]
    fn a_file_changed_since_it_was_read_is_refused() {
        let temp = tempfile::tempdir().expect("tempdir");
        let file = temp.path().join("a.conf");
        fs::write(&file, "now\n").expect("write");
        let mut changes = ChangeSet::default();
        changes
            .files
            .insert(file, change(Some("then\n"), "later\n"));
        let checkpoints = Checkpoints::new(temp.path(), "nginx");
        let err = checkpoints.save(&changes, "x", false).expect_err("refused");
        assert!(err.to_string().contains("changed while"), "{err}");
        assert!(checkpoints.list().expect("list").is_empty());
    }

    #[test]
    fn escaping_round_trips_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(unescape(&escape(&all)), all);
        assert!(!escape(&all).contains('\n'));
    }
}
