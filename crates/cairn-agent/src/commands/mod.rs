//! One module per group of subcommands; `main` dispatches here.

mod account;
mod certonly;
mod install;
mod manage;
mod renew;

use std::path::PathBuf;

pub(crate) use self::account::account;
pub(crate) use self::certonly::{certonly, register};
pub(crate) use self::install::{config_changes, enhance, install, rollback, run};
pub(crate) use self::manage::{certificates, delete, revoke};
pub(crate) use self::renew::renew;

use crate::storage::ConfigDir;

/// What every command gets.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) dir: ConfigDir,
    /// A person can answer questions (a terminal, no --non-interactive).
    pub(crate) interactive: bool,
    /// For --webroot: each `-d` value and the `-w` that applies to it.
    pub(crate) webroot_map: Vec<(String, PathBuf)>,
}

/// A command line that parsed but does not make sense: exit status 2.
#[derive(Debug)]
pub(crate) struct UsageError(pub(crate) String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Some renewals failed: exit status 3.
#[derive(Debug)]
pub(crate) struct RenewalsFailed(pub(crate) Vec<String>);

impl std::fmt::Display for RenewalsFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} certificate(s) could not be renewed: {}; see the messages above",
            self.0.len(),
            self.0.join(", ")
        )
    }
}

impl std::error::Error for RenewalsFailed {}

pub(crate) fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}
