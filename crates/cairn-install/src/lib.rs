//! Web-server installers as a library: no ACME in here. Given certificate
//! files on disk, put them into an nginx or Apache configuration and turn
//! HTTPS on, the way certbot's `--nginx` and `--apache` plugins do, but with
//! byte-preserving edits, a checkpoint before every change, the server's own
//! config test before and after, and every byte put back on any failure.
//!
//! The parts:
//!
//! - [`nginx`] and [`apache`]: a lossless parser per config language (parse
//!   then print gives back every byte), include resolution, choosing the
//!   block for a name the way the server would, and edits. These are pure:
//!   they read the configuration files, and produce a [`ChangeSet`] — they
//!   never write.
//! - [`WebServer`]: one running server (nginx or Apache): where its
//!   configuration is, how to test it and how to reload it. Programs are run
//!   directly, never through a shell.
//! - [`Installer`] (in `transaction`): the safe sequence around an edit —
//!   lock, test before, checkpoint, write, test after, reload; restore every
//!   file byte for byte on any failure.
//! - `checkpoint`: copies + manifest before each change; rollback of any
//!   number of them.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod apache;
pub mod checkpoint;
pub mod diff;
pub mod lock;
pub mod nginx;
pub mod options;
pub mod transaction;

pub use transaction::{Applied, Installer, TemporaryChange};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The marker every line we add or change ends with.
pub const MARKER: &str = "# managed by cairn";

/// The certificate files a server should reference (a lineage's `live/NAME/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPaths {
    /// The leaf followed by its chain (`fullchain.pem`).
    pub fullchain: PathBuf,
    /// The private key (`privkey.pem`).
    pub key: PathBuf,
    /// The leaf alone (`cert.pem`).
    pub cert: PathBuf,
    /// The chain without the leaf (`chain.pem`).
    pub chain: PathBuf,
}

/// What `enhance` can turn on, with certbot's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Enhancement {
    /// Plain HTTP answers with a permanent redirect to HTTPS (`--redirect`).
    Redirect,
    /// HTTPS responses carry `Strict-Transport-Security` (`--hsts`).
    Hsts,
    /// HTTPS responses carry `Content-Security-Policy:
    /// upgrade-insecure-requests` (`--uir`).
    Uir,
    /// OCSP stapling (`--staple-ocsp`): always refused, cairn's CAs publish
    /// CRLs and no OCSP.
    StapleOcsp,
}

/// Settings that shape edits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The port HTTPS blocks listen on (`--https-port`, default 443).
    pub https_port: u16,
    /// The port plain HTTP blocks listen on, where http-01 arrives
    /// (`--http-01-port`, default 80).
    pub http_port: u16,
    /// The shared TLS options file that HTTPS blocks include
    /// (`options-ssl-nginx.conf` / `options-ssl-apache.conf`), absolute.
    pub options_file: PathBuf,
}

/// The new contents of every file an edit touches, beside what was read.
/// Applying it writes `after` to each path; `before == None` is a new file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// Path (absolute) → change.
    pub files: BTreeMap<PathBuf, Change>,
}

/// One file's change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The bytes read, or `None` for a file the edit creates.
    pub before: Option<Vec<u8>>,
    /// The bytes to write.
    pub after: Vec<u8>,
}

impl ChangeSet {
    /// True when applying it would change no byte.
    pub fn is_empty(&self) -> bool {
        self.files
            .values()
            .all(|c| c.before.as_deref() == Some(c.after.as_slice()))
    }
}

/// A parsed configuration of one server, edited in memory. Each method
/// changes the in-memory copy; [`Config::changes`] gives what differs
/// from the files as read. Running the same edit twice changes nothing the
/// second time.
pub trait Config: std::fmt::Debug + Send {
    /// Every name the configuration serves (`server_name` /
    /// `ServerName`+`ServerAlias`), wildcards included, regexes and `_`
    /// left out; sorted, without duplicates.
    fn server_names(&self) -> Vec<String>;

    /// Serves `cert` for `names` over HTTPS on `settings.https_port`: adds
    /// the certificate and key (and the options file) to the block that
    /// serves each name, making that block listen with TLS or adding an
    /// HTTPS block/vhost next to the HTTP one.
    fn deploy(
        &mut self,
        names: &[String],
        cert: &CertPaths,
        settings: &Settings,
    ) -> Result<(), Error>;

    /// Turns `what` on for `names` (after [`Config::deploy`]).
    fn enhance(
        &mut self,
        names: &[String],
        what: Enhancement,
        settings: &Settings,
    ) -> Result<(), Error>;

    /// Makes the HTTP blocks for `names` serve
    /// `/.well-known/acme-challenge/TOKEN` from the file
    /// `challenge_dir/TOKEN` (http-01 through the running server). Undone
    /// by restoring the checkpoint taken before.
    fn serve_http01(
        &mut self,
        names: &[String],
        challenge_dir: &Path,
        settings: &Settings,
    ) -> Result<(), Error>;

    /// What differs from the files as read.
    fn changes(&self) -> ChangeSet;
}

/// One web server: where its configuration is, how to parse, test and
/// reload it. Implemented by [`nginx::Nginx`] and [`apache::Apache`].
pub trait WebServer: std::fmt::Debug + Send + Sync {
    /// `nginx` or `apache`, for messages and file names.
    fn name(&self) -> &'static str;
    /// The directory of the main configuration file (`--nginx-server-root`,
    /// `--apache-server-root`).
    fn server_root(&self) -> &Path;
    /// Parses the configuration as the server would read it, includes
    /// followed.
    fn load(&self) -> Result<Box<dyn Config>, Error>;
    /// The server's own configuration test (`nginx -t`, `apachectl
    /// configtest`); [`Error::ConfigTest`] quotes its output on failure.
    fn config_test(&self) -> Result<(), Error>;
    /// A graceful reload (never a restart): running connections finish on
    /// the old configuration.
    fn reload(&self) -> Result<(), Error>;
    /// File name of the shared TLS options file (`options-ssl-nginx.conf`).
    fn options_file_name(&self) -> &'static str;
    /// What cairn writes into that file: modern TLS settings (Mozilla
    /// "intermediate": TLS 1.2 and 1.3), no dhparam needed.
    fn options_file_contents(&self) -> &'static str;
}

/// Errors of the installers, in their own terms.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A configuration file does not parse.
    #[error("{path}:{line}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong there.
        message: String,
    },
    /// No block serves the name, and none can be made for it.
    #[error("no {server} block serves {name}: {hint}")]
    NoBlock {
        /// `nginx` or `Apache`.
        server: &'static str,
        /// The name.
        name: String,
        /// What to do.
        hint: String,
    },
    /// Several blocks could serve the name equally well.
    #[error("{name} is served by several {server} blocks: {}; make one of them the only one for it, or name it in one server_name/ServerName", .candidates.join("; "))]
    Ambiguous {
        /// `nginx` or `Apache`.
        server: &'static str,
        /// The name.
        name: String,
        /// `file:line` of each candidate.
        candidates: Vec<String>,
    },
    /// An enhancement cairn does not provide.
    #[error("{0}")]
    Unsupported(String),
    /// The server's own config test failed.
    #[error("{program} says the configuration is broken:\n{output}")]
    ConfigTest {
        /// The command line run.
        program: String,
        /// What it printed.
        output: String,
    },
    /// A server command (reload, version) failed or could not run.
    #[error("`{program}` failed: {message}")]
    Command {
        /// The command line run.
        program: String,
        /// What went wrong, with its output.
        message: String,
    },
    /// Another cairn is editing this server's configuration.
    #[error("another cairn is changing {0} now (lock held); try again when it is done")]
    Locked(PathBuf),
    /// A checkpoint is missing or damaged.
    #[error("checkpoint {id}: {message}")]
    Checkpoint {
        /// The checkpoint.
        id: String,
        /// What is wrong.
        message: String,
    },
}
