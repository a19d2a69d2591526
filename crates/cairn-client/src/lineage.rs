//! What cairn keeps on disk, in certbot's layout under the config dir:
//!
//! ```text
//! accounts/<server-host>/<directory-url-hash>/account.json   (0600)
//! archive/NAME/{cert,chain,fullchain,privkey}N.pem           (privkey 0600)
//! live/NAME/{cert,chain,fullchain,privkey}.pem -> ../../archive/NAME/...N.pem
//! renewal/NAME.toml
//! locks/NAME.lock
//! ```
//!
//! Directories that hold keys (accounts, archive, live) are 0700. Files are
//! written under a temporary name and renamed into place, so a crash leaves
//! either the old or the new file, never half of one.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use std::io;

/// Results of this module: I/O errors whose message names the file.
pub type Result<T> = io::Result<T>;

/// Adds what was being done to an I/O error's message, keeping its kind.
trait Context<T> {
    fn with_context<F: FnOnce() -> String>(self, what: F) -> Result<T>;
}

impl<T> Context<T> for Result<T> {
    fn with_context<F: FnOnce() -> String>(self, what: F) -> Result<T> {
        self.map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", what())))
    }
}

impl<T> Context<T> for Option<T> {
    fn with_context<F: FnOnce() -> String>(self, what: F) -> Result<T> {
        self.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, what()))
    }
}

/// An error of `kind` with a formatted message, returned at once.
macro_rules! bail {
    ($kind:ident, $($arg:tt)*) => {
        return Err(io::Error::new(io::ErrorKind::$kind, format!($($arg)*)))
    };
}

/// The four files of every certificate version, in certbot's names.
pub const KINDS: [&str; 4] = ["cert", "chain", "fullchain", "privkey"];

/// The configuration directory and the paths inside it.
#[derive(Clone, Debug)]
pub struct ConfigDir {
    root: PathBuf,
}

impl ConfigDir {
    /// The configuration directory at `root`.
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// `/etc/cairn` for root, else `$XDG_CONFIG_HOME/cairn` or `~/.config/cairn`.
    pub fn default_path() -> PathBuf {
        if running_as_root() {
            return PathBuf::from("/etc/cairn");
        }
        if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(xdg).join("cairn");
        }
        match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => PathBuf::from(home).join(".config/cairn"),
            None => PathBuf::from("/etc/cairn"),
        }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The account directory for a directory URL:
    /// `accounts/<host>/<first 16 hex digits of SHA-256(url)>`.
    pub fn account_dir(&self, directory_url: &str) -> PathBuf {
        let digest =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, directory_url.as_bytes());
        let hash: String = digest.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.root
            .join("accounts")
            .join(server_host_label(directory_url))
            .join(hash)
    }

    /// `renewal/`.
    pub fn renewal_dir(&self) -> PathBuf {
        self.root.join("renewal")
    }

    /// `renewal/NAME.toml`.
    pub fn renewal_file(&self, name: &CertName) -> PathBuf {
        self.renewal_dir().join(format!("{name}.toml"))
    }

    /// `live/NAME/`.
    pub fn live_dir(&self, name: &CertName) -> PathBuf {
        self.root.join("live").join(name.as_str())
    }

    /// `archive/NAME/`.
    pub fn archive_dir(&self, name: &CertName) -> PathBuf {
        self.root.join("archive").join(name.as_str())
    }

    /// `live/NAME/<kind>.pem`.
    pub fn live_file(&self, name: &CertName, kind: &str) -> PathBuf {
        self.live_dir(name).join(format!("{kind}.pem"))
    }

    /// Every saved certificate name (from `renewal/*.toml`), sorted. Files
    /// whose names are not valid certificate names are skipped with a warning.
    pub fn lineage_names(&self) -> Result<Vec<CertName>> {
        let dir = self.renewal_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
            let file = entry.file_name();
            let Some(stem) = file.to_str().and_then(|f| f.strip_suffix(".toml")) else {
                continue;
            };
            match CertName::parse(stem) {
                Ok(name) => names.push(name),
                Err(e) => tracing::warn!("skipping {}: {e}", entry.path().display()),
            }
        }
        names.sort();
        Ok(names)
    }

    /// Takes the lock of lineage `name`, failing at once (with
    /// [`io::ErrorKind::WouldBlock`]) if another process holds it.
    pub fn lock(&self, name: &CertName) -> Result<LineageLock> {
        let (file, path) = self.lock_file(name)?;
        match file.try_lock() {
            Ok(()) => Ok(LineageLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) => bail!(
                WouldBlock,
                "another cairn process is working on the certificate {name} (it holds {}); \
                 try again when it has finished",
                path.display()
            ),
            Err(fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("locking {}", path.display()))
            }
        }
    }

    /// Takes the lock of lineage `name`, waiting while another process
    /// holds it. This blocks the thread: call it from a blocking task.
    pub fn lock_wait(&self, name: &CertName) -> Result<LineageLock> {
        Self::wait_for(self.lock_file(name)?)
    }

    /// Takes the lock of the account files (`accounts/`), waiting while
    /// another process holds it, so that processes sharing this directory
    /// register one account per CA, not one each. This blocks the thread:
    /// call it from a blocking task.
    pub fn lock_accounts_wait(&self) -> Result<LineageLock> {
        // A leading dot: no certificate name can take this file.
        Self::wait_for(self.lock_path(".accounts")?)
    }

    fn wait_for((file, path): (File, PathBuf)) -> Result<LineageLock> {
        file.lock()
            .with_context(|| format!("locking {}", path.display()))?;
        Ok(LineageLock { _file: file })
    }

    fn lock_file(&self, name: &CertName) -> Result<(File, PathBuf)> {
        self.lock_path(name.as_str())
    }

    fn lock_path(&self, stem: &str) -> Result<(File, PathBuf)> {
        let dir = self.root.join("locks");
        create_dir(&dir, 0o755)?;
        let path = dir.join(format!("{stem}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o644)
            .open(&path)
            .with_context(|| format!("opening the lock file {}", path.display()))?;
        Ok((file, path))
    }

    /// The highest version N in `archive/NAME/certN.pem`, 0 if none.
    pub fn latest_archive_version(&self, name: &CertName) -> Result<u32> {
        let dir = self.archive_dir(name);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
        };
        let mut latest = 0;
        for entry in entries {
            let entry = entry?;
            let version = entry
                .file_name()
                .to_str()
                .and_then(|f| f.strip_prefix("cert"))
                .and_then(|f| f.strip_suffix(".pem"))
                .and_then(|n| n.parse::<u32>().ok());
            if let Some(v) = version {
                latest = latest.max(v);
            }
        }
        Ok(latest)
    }

    /// Saves a new version of lineage `name` in `archive/NAME/` and points
    /// `live/NAME/` at it. Hold the lineage's lock. Returns the version.
    pub fn install(&self, name: &CertName, files: &CertificateFiles) -> Result<u32> {
        let archive = self.archive_dir(name);
        let live = self.live_dir(name);
        create_dir(&self.root, 0o755)?;
        create_dir(&self.root.join("archive"), 0o700)?;
        create_dir(&self.root.join("live"), 0o700)?;
        create_dir(&archive, 0o700)?;
        create_dir(&live, 0o700)?;
        let version = self.latest_archive_version(name)? + 1;
        for (kind, contents) in files.by_kind() {
            let mode = if kind == "privkey" { 0o600 } else { 0o644 };
            write_atomic(
                &archive.join(format!("{kind}{version}.pem")),
                contents.as_bytes(),
                mode,
            )?;
        }
        for kind in KINDS {
            let target = Path::new("../../archive")
                .join(name.as_str())
                .join(format!("{kind}{version}.pem"));
            replace_symlink(&target, &live.join(format!("{kind}.pem")))?;
        }
        let readme = live.join("README");
        if !readme.exists() {
            write_atomic(&readme, LIVE_README.as_bytes(), 0o644)?;
        }
        Ok(version)
    }

    /// Removes every trace of lineage `name`: live, archive, renewal settings.
    /// Hold the lineage's lock.
    pub fn delete(&self, name: &CertName) -> Result<bool> {
        let mut found = false;
        for dir in [self.live_dir(name), self.archive_dir(name)] {
            match fs::remove_dir_all(&dir) {
                Ok(()) => found = true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("removing {}", dir.display())),
            }
        }
        let renewal = self.renewal_file(name);
        match fs::remove_file(&renewal) {
            Ok(()) => found = true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", renewal.display())),
        }
        Ok(found)
    }
}

const LIVE_README: &str = "\
This directory holds the current version of a certificate saved by cairn.

`privkey.pem`   : the certificate's private key (keep it secret).
`fullchain.pem` : the certificate followed by its issuers: what most servers want.
`chain.pem`     : the issuers only.
`cert.pem`      : the certificate only.

The files are links into ../../archive; cairn moves them on renewal. Point your
server at these paths, not at the archive.
";

/// The PEM texts of one certificate version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateFiles {
    /// The leaf certificate.
    pub cert: String,
    /// The issuers, leaf excluded.
    pub chain: String,
    /// The leaf followed by its issuers.
    pub fullchain: String,
    /// The leaf's private key (PKCS#8).
    pub privkey: String,
}

impl CertificateFiles {
    /// `(kind, text)` for the four files.
    pub fn by_kind(&self) -> [(&'static str, &str); 4] {
        [
            ("cert", &self.cert),
            ("chain", &self.chain),
            ("fullchain", &self.fullchain),
            ("privkey", &self.privkey),
        ]
    }
}

/// A lock on one lineage, released when dropped (or when the process ends).
#[derive(Debug)]
pub struct LineageLock {
    _file: File,
}

/// A certificate lineage name: safe as one path component.
///
/// Only letters, digits, `-`, `_`, `.` and `*`; not empty, not `.` or `..`
/// and no `..` inside, not starting with `.` or `-`; at most 255 bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CertName(String);

impl CertName {
    /// Checks `name` (see the type's rules).
    pub fn parse(name: &str) -> Result<Self> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '*');
        if name.is_empty() || name.len() > 255 {
            bail!(
                InvalidInput,
                "certificate name {name:?} must be 1 to 255 characters long"
            );
        }
        if let Some(bad) = name.chars().find(|c| !allowed(*c)) {
            bail!(
                InvalidInput,
                "certificate name {name:?} contains {bad:?}; use only letters, digits, '-', '_', '.' and '*'"
            );
        }
        if name.starts_with('.') || name.starts_with('-') || name.contains("..") {
            bail!(
                InvalidInput,
                "certificate name {name:?} must not start with '.' or '-' or contain '..'"
            );
        }
        Ok(Self(name.to_owned()))
    }

    /// The default name for a certificate whose first name is `first`: the
    /// name itself, a wildcard's `*.` dropped.
    pub fn default_for(first: &str) -> Result<Self> {
        Self::parse(first.strip_prefix("*.").unwrap_or(first))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CertName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Creates `dir` (and parents) if missing; a directory it creates gets `mode`.
/// An existing directory keeps its mode.
pub fn create_dir(dir: &Path, mode: u32) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .with_context(|| format!("creating the directory {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", dir.display()))
}

/// Writes `contents` to `path` with `mode`: a temporary file in the same
/// directory, synced, then renamed over `path`.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let dir = path
        .parent()
        .with_context(|| "a file path has a parent".to_owned())?;
    let file_name = path
        .file_name()
        .and_then(|f| f.to_str())
        .with_context(|| "a file path has a name".to_owned())?;
    // Unique per call, not only per process: two tasks of one process may
    // write the same file at once (the last rename wins, both complete).
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temp = dir.join(format!(".{file_name}.{}.{n}.tmp", std::process::id()));
    let result = (|| -> Result<()> {
        let _ = fs::remove_file(&temp);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)
            .with_context(|| format!("creating {}", temp.display()))?;
        // The umask may have narrowed the mode; keys must not be wider.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(contents)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", temp.display()))?;
        fs::rename(&temp, path)
            .with_context(|| format!("renaming {} to {}", temp.display(), path.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Points the symlink `link` at `target` atomically: a new link under a
/// temporary name, renamed over the old one.
fn replace_symlink(target: &Path, link: &Path) -> Result<()> {
    let dir = link
        .parent()
        .with_context(|| "a link path has a parent".to_owned())?;
    let file_name = link
        .file_name()
        .and_then(|f| f.to_str())
        .with_context(|| "a link path has a name".to_owned())?;
    let temp = dir.join(format!(".{file_name}.{}.new", std::process::id()));
    let _ = fs::remove_file(&temp);
    std::os::unix::fs::symlink(target, &temp)
        .with_context(|| format!("creating the link {}", temp.display()))?;
    fs::rename(&temp, link)
        .with_context(|| format!("moving the link {} into place", link.display()))
}

/// The ACME server's host (and port) from its directory URL, made safe as
/// one path component: anything but letters, digits, `-`, `.` becomes `_`.
fn server_host_label(directory_url: &str) -> String {
    let rest = directory_url
        .split_once("://")
        .map_or(directory_url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let label: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if label.is_empty() || label.starts_with('.') {
        format!("_{label}")
    } else {
        label
    }
}

/// True when this process runs as root: `/proc/self` belongs to the
/// effective user. Without /proc, the `USER` variable decides.
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match fs::metadata("/proc/self") {
        Ok(meta) => meta.uid() == 0,
        Err(_) => std::env::var("USER").as_deref() == Ok("root"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cert_names_are_single_safe_path_components() {
        for good in [
            "a.example",
            "*.example.org",
            "example.org-0001",
            "a_b",
            "X1",
        ] {
            assert_eq!(CertName::parse(good).expect(good).as_str(), good);
        }
        for bad in [
            "",
            ".",
            "..",
            "../etc",
            "a/b",
            "a..b",
            ".hidden",
            "-flag",
            "a b",
            "a\\b",
            "é.example",
            "a\0b",
            "a:b",
        ] {
            assert!(CertName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(CertName::parse(&"a".repeat(256)).is_err());
        assert_eq!(
            CertName::default_for("*.example.org").expect("ok").as_str(),
            "example.org"
        );
    }

    #[test]
    fn account_dirs_are_per_server_and_directory_url() {
        let dir = ConfigDir::new(PathBuf::from("/c"));
        let a = dir.account_dir("https://acme.example:14000/dir");
        assert!(a.starts_with("/c/accounts/acme.example_14000"), "{a:?}");
        let b = dir.account_dir("https://acme.example:14000/other");
        assert_ne!(a, b);
        assert_eq!(a, dir.account_dir("https://acme.example:14000/dir"));
        assert_eq!(server_host_label("https://user@[::1]:443/dir"), "___1__443");
        assert_eq!(server_host_label("https://../x"), "_..");
        assert_eq!(server_host_label("garbage"), "garbage");
    }

    fn files(tag: &str) -> CertificateFiles {
        CertificateFiles {
            cert: format!("cert {tag}"),
            chain: format!("chain {tag}"),
            fullchain: format!("fullchain {tag}"),
            privkey: format!("privkey {tag}"),
        }
    }

    #[test]
    fn install_archives_versions_and_moves_live_links() {
        let temp = tempfile::tempdir().expect("tempdir");
        let dir = ConfigDir::new(temp.path().join("conf"));
        let name = CertName::parse("a.example").expect("name");
        assert_eq!(dir.latest_archive_version(&name).expect("read"), 0);
        assert_eq!(dir.install(&name, &files("one")).expect("install"), 1);
        assert_eq!(dir.install(&name, &files("two")).expect("install"), 2);
        for kind in KINDS {
            let live = dir.live_file(&name, kind);
            assert_eq!(
                fs::read_link(&live).expect("a link"),
                Path::new("../../archive/a.example").join(format!("{kind}2.pem"))
            );
            assert_eq!(
                fs::read_to_string(&live).expect("readable"),
                format!("{kind} two")
            );
            let first = dir.archive_dir(&name).join(format!("{kind}1.pem"));
            assert_eq!(
                fs::read_to_string(first).expect("kept"),
                format!("{kind} one")
            );
        }
        let mode = |p: &Path| fs::metadata(p).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode(&dir.archive_dir(&name).join("privkey2.pem")), 0o600);
        assert_eq!(mode(&dir.archive_dir(&name).join("cert2.pem")), 0o644);
        assert_eq!(mode(&dir.archive_dir(&name)), 0o700);
        assert_eq!(mode(&dir.root().join("live")), 0o700);
        // No temporary files are left behind.
        let leftovers: Vec<_> = fs::read_dir(dir.live_dir(&name))
            .expect("live")
            .chain(fs::read_dir(dir.archive_dir(&name)).expect("archive"))
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        assert!(dir.delete(&name).expect("delete"));
        assert!(!dir.live_dir(&name).exists() && !dir.archive_dir(&name).exists());
        assert!(!dir.delete(&name).expect("delete again"));
    }

    #[test]
    fn a_lineage_lock_excludes_a_second_holder_until_dropped() {
        let temp = tempfile::tempdir().expect("tempdir");
        let dir = ConfigDir::new(temp.path().to_owned());
        let name = CertName::parse("a.example").expect("name");
        let other = CertName::parse("b.example").expect("name");
        let held = dir.lock(&name).expect("first lock");
        let err = dir.lock(&name).expect_err("second lock refused");
        assert!(err.to_string().contains("another cairn process"), "{err}");
        let _b = dir.lock(&other).expect("another lineage is independent");
        drop(held);
        dir.lock(&name).expect("free again");
    }

    #[test]
    fn lineage_names_come_from_renewal_files() {
        let temp = tempfile::tempdir().expect("tempdir");
        let dir = ConfigDir::new(temp.path().to_owned());
        assert!(dir.lineage_names().expect("empty").is_empty());
        create_dir(&dir.renewal_dir(), 0o755).expect("mkdir");
        for f in ["b.example.toml", "a.example.toml", "notes.txt", ".x.toml"] {
            fs::write(dir.renewal_dir().join(f), "").expect("write");
        }
        let names: Vec<String> = dir
            .lineage_names()
            .expect("names")
            .into_iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, ["a.example", "b.example"]);
    }

    #[test]
    fn atomic_writes_set_the_mode_and_replace() {
        let temp = tempfile::tempdir().expect("tempdir");
        let path = temp.path().join("secret");
        write_atomic(&path, b"one", 0o600).expect("write");
        write_atomic(&path, b"two", 0o600).expect("rewrite");
        assert_eq!(fs::read(&path).expect("read"), b"two");
        assert_eq!(
            fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
            0o600
        );
    }
}
