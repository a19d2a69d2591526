//! [`Installer`]: the safe sequence around every configuration change.
//!
//! 1. Take the server's lock (two cairn runs never edit at once).
//! 2. Put back what a crashed temporary change left behind.
//! 3. Run the server's config test: a configuration that is already broken
//!    is refused, quoting the server, and nothing is changed.
//! 4. Parse, edit in memory, compute the [`ChangeSet`]; nothing to change
//!    means nothing is written (idempotence) and no checkpoint is taken.
//! 5. Write the shared TLS options file (once; never over a person's edits).
//! 6. Save a checkpoint (copies + manifest, synced) before the first write.
//! 7. Write every file atomically, keeping its mode.
//! 8. Run the config test again, then reload the server (gracefully).
//!
//! Any failure in 7 or 8 puts back every byte of every file, removes the
//! created ones, and leaves the server running its old configuration.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::checkpoint::{Checkpoint, Checkpoints, write_atomic};
use crate::lock::ServerLock;
use crate::options::{self, OptionsFile};
use crate::{ChangeSet, Config, Error, Settings, WebServer};

/// What [`Installer::apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The checkpoint taken before the change; `None` when nothing changed.
    pub checkpoint: Option<u64>,
    /// The files written or created.
    pub files: Vec<PathBuf>,
    /// What happened to the shared TLS options file.
    pub options: Option<OptionsFile>,
    /// The whole change, from taking the lock to the end of the reload.
    pub elapsed: Duration,
    /// Of that, the time the server's own programs took (config tests and
    /// reload, with any sleep after it): the rest is cairn's overhead.
    pub server_elapsed: Duration,
}

/// Changes one server's configuration safely. See the module docs.
#[derive(Debug, Clone)]
pub struct Installer {
    server: Arc<dyn WebServer>,
    config_dir: PathBuf,
    checkpoints: Checkpoints,
}

impl Installer {
    /// An installer for `server`, keeping its lock, checkpoints and the
    /// options file under `config_dir` (cairn's configuration directory).
    pub fn new(server: Arc<dyn WebServer>, config_dir: &Path) -> Self {
        let checkpoints = Checkpoints::new(config_dir, server.name());
        Self {
            server,
            config_dir: config_dir.to_path_buf(),
            checkpoints,
        }
    }

    /// The server this installer changes.
    pub fn server(&self) -> &dyn WebServer {
        &*self.server
    }

    /// Where the shared TLS options file goes: `CONFIG_DIR/NAME`.
    pub fn options_file(&self) -> PathBuf {
        self.config_dir.join(self.server.options_file_name())
    }

    /// The edit settings for these ports, with this installer's options file.
    pub fn settings(&self, https_port: u16, http_port: u16) -> Settings {
        Settings {
            https_port,
            http_port,
            options_file: self.options_file(),
        }
    }

    /// Every name the server's configuration serves.
    pub fn server_names(&self) -> Result<Vec<String>, Error> {
        Ok(self.server.load()?.server_names())
    }

    /// What `edit` would change, without writing anything.
    pub fn plan(
        &self,
        edit: impl FnOnce(&mut dyn Config) -> Result<(), Error>,
    ) -> Result<ChangeSet, Error> {
        let mut config = self.server.load()?;
        edit(&mut *config)?;
        Ok(only_changed(config.changes()))
    }

    /// The unified diff `edit` would apply (`--dry-run`); empty when it
    /// would change nothing. Writes nothing.
    pub fn dry_run(
        &self,
        edit: impl FnOnce(&mut dyn Config) -> Result<(), Error>,
    ) -> Result<String, Error> {
        Ok(crate::diff::unified(&self.plan(edit)?))
    }

    /// Applies `edit` with a checkpoint, the config test before and after,
    /// and a reload; puts every byte back on any failure.
    pub fn apply(
        &self,
        description: &str,
        edit: impl FnOnce(&mut dyn Config) -> Result<(), Error>,
    ) -> Result<Applied, Error> {
        let started = Instant::now();
        let _lock = ServerLock::acquire(&self.config_dir, self.server.name())?;
        self.recover_temporary()?;
        let (result, mut server_elapsed) = timed(|| self.server.config_test());
        result?;
        let changes = self.plan(edit)?;
        if changes.files.is_empty() {
            tracing::info!(
                server = self.server.name(),
                "configuration already as wanted; nothing written"
            );
            return Ok(Applied {
                checkpoint: None,
                files: Vec::new(),
                options: None,
                elapsed: started.elapsed(),
                server_elapsed,
            });
        }
        let options = options::ensure(&self.options_file(), self.server.options_file_contents())?;
        // The options file is cairn's own (written above, never over a
        // person's edits), not part of the server's change.
        let mut changes = changes;
        changes.files.remove(&self.options_file());
        let checkpoint = self.checkpoints.save(&changes, description, false)?;
        server_elapsed += self.write_test_reload(&changes, &checkpoint)?;
        let elapsed = started.elapsed();
        tracing::info!(
            server = self.server.name(),
            checkpoint = checkpoint.id,
            files = changes.files.len(),
            total_ms = elapsed.as_secs_f64() * 1e3,
            server_ms = server_elapsed.as_secs_f64() * 1e3,
            cairn_ms = elapsed.saturating_sub(server_elapsed).as_secs_f64() * 1e3,
            "configuration changed and reloaded"
        );
        Ok(Applied {
            checkpoint: Some(checkpoint.id),
            files: changes.files.keys().cloned().collect(),
            options: Some(options),
            elapsed,
            server_elapsed,
        })
    }

    /// Tests the configuration and reloads the server (after new
    /// certificate files were put in place by a renewal).
    pub fn reload(&self) -> Result<(), Error> {
        let _lock = self.begin()?;
        self.server.reload()
    }

    /// Every checkpoint, oldest first (`cairn config_changes`).
    pub fn checkpoints(&self) -> Result<Vec<Checkpoint>, Error> {
        self.checkpoints.list()
    }

    /// Undoes the last `count` checkpoints, newest first, then tests the
    /// configuration and reloads. Returns the checkpoints undone.
    pub fn rollback(&self, count: usize) -> Result<Vec<Checkpoint>, Error> {
        let _lock = ServerLock::acquire(&self.config_dir, self.server.name())?;
        self.recover_temporary()?;
        let all = self.checkpoints.list()?;
        let undo: Vec<Checkpoint> = all.into_iter().rev().take(count).collect();
        if undo.is_empty() {
            return Ok(undo);
        }
        for checkpoint in &undo {
            self.checkpoints
                .restore(checkpoint)
                .map_err(|e| Error::Checkpoint {
                    id: checkpoint.id.to_string(),
                    message: format!("rolling back failed: {e}"),
                })?;
            self.checkpoints.remove(checkpoint)?;
        }
        self.server.config_test()?;
        self.server.reload()?;
        Ok(undo)
    }

    /// Applies `edit` for as long as the returned guard lives (http-01
    /// through the running server): the lock stays held, and dropping or
    /// [`TemporaryChange::restore`]-ing the guard puts the files back and
    /// reloads. A crash meanwhile is undone by the next cairn run.
    pub fn temporary(
        &self,
        description: &str,
        edit: impl FnOnce(&mut dyn Config) -> Result<(), Error>,
    ) -> Result<TemporaryChange, Error> {
        let lock = self.begin()?;
        let changes = self.plan(edit)?;
        let checkpoint = if changes.files.is_empty() {
            None
        } else {
            let checkpoint = self.checkpoints.save(&changes, description, true)?;
            let took = self.write_test_reload(&changes, &checkpoint)?;
            tracing::debug!(
                server = self.server.name(),
                server_ms = took.as_secs_f64() * 1e3,
                "temporary change in place"
            );
            Some(checkpoint)
        };
        Ok(TemporaryChange {
            installer: self.clone(),
            checkpoint,
            lock: Some(lock),
        })
    }

    /// Steps 1–3: lock, recover, test before.
    fn begin(&self) -> Result<ServerLock, Error> {
        let lock = ServerLock::acquire(&self.config_dir, self.server.name())?;
        self.recover_temporary()?;
        self.server.config_test()?;
        Ok(lock)
    }

    /// A temporary change a crashed run left in place is undone first.
    fn recover_temporary(&self) -> Result<(), Error> {
        if let Some(left) = self.checkpoints.temporary()? {
            tracing::warn!(
                server = self.server.name(),
                description = %left.description,
                "undoing a temporary change an earlier cairn run left in place"
            );
            self.checkpoints.restore(&left)?;
            self.checkpoints.remove(&left)?;
            if self.server.config_test().is_ok() {
                self.server.reload()?;
            }
        }
        Ok(())
    }

    /// Steps 7–8, restoring `checkpoint` (and removing it) on failure.
    fn write_test_reload(
        &self,
        changes: &ChangeSet,
        checkpoint: &Checkpoint,
    ) -> Result<Duration, Error> {
        let mut reloaded = false;
        let mut server_elapsed = Duration::ZERO;
        let result = (|| {
            for (path, change) in &changes.files {
                let mode = std::fs::metadata(path).map_or(0o644, |m| {
                    std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777
                });
                if let Some(dir) = path.parent() {
                    crate::lock::create_dir_all(dir)?;
                }
                write_atomic(path, &change.after, mode)?;
            }
            let (result, took) = timed(|| self.server.config_test());
            server_elapsed += took;
            result?;
            reloaded = true;
            let (result, took) = timed(|| self.server.reload());
            server_elapsed += took;
            result
        })();
        let Err(error) = result else {
            return Ok(server_elapsed);
        };
        tracing::warn!(server = self.server.name(), %error, "the change failed; restoring every file");
        if let Err(restore) = self.checkpoints.restore(checkpoint) {
            return Err(Error::Checkpoint {
                id: checkpoint.id.to_string(),
                message: format!(
                    "{error}; and restoring the files from {} failed too: {restore}; \
                     run `cairn rollback` once the cause is fixed",
                    self.checkpoints.dir().display()
                ),
            });
        }
        let _ = self.checkpoints.remove(checkpoint);
        if reloaded {
            // The reload may have been half done: make the server read the
            // restored files.
            if let Err(e) = self.server.reload() {
                tracing::warn!(server = self.server.name(), error = %e, "reloading the restored configuration failed");
            }
        }
        Err(error)
    }
}

/// A change in force until this guard is restored or dropped.
#[derive(Debug)]
pub struct TemporaryChange {
    installer: Installer,
    checkpoint: Option<Checkpoint>,
    lock: Option<ServerLock>,
}

impl TemporaryChange {
    /// Puts every file back and reloads the server.
    pub fn restore(mut self) -> Result<(), Error> {
        self.undo()
    }

    fn undo(&mut self) -> Result<(), Error> {
        let result = match self.checkpoint.take() {
            None => Ok(()),
            Some(checkpoint) => {
                let checkpoints = &self.installer.checkpoints;
                checkpoints
                    .restore(&checkpoint)
                    .and_then(|()| checkpoints.remove(&checkpoint))
                    .and_then(|()| self.installer.server.config_test())
                    .and_then(|()| self.installer.server.reload())
            }
        };
        self.lock = None;
        result
    }
}

impl Drop for TemporaryChange {
    fn drop(&mut self) {
        if let Err(e) = self.undo() {
            tracing::error!(error = %e, "undoing a temporary configuration change failed");
        }
    }
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let out = f();
    (out, started.elapsed())
}

fn only_changed(mut changes: ChangeSet) -> ChangeSet {
    changes
        .files
        .retain(|_, c| c.before.as_deref() != Some(c.after.as_slice()));
    changes
}

#[cfg(test)]
mod tests;
