//! Shared by the Apache tests: stage a corpus case in a temp dir as a
//! private Apache root (its own envvars, run/log dirs, certificate files),
//! apply change sets.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use cairn_install::apache::{Apache, OPTIONS_SSL_APACHE};
use cairn_install::{CertPaths, ChangeSet, Settings};

/// tests/corpus/apache.
pub(crate) fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/apache")
}

/// Every case directory, sorted.
pub(crate) fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(corpus())
        .expect("corpus dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.is_dir()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('_'))
        })
        .collect();
    cases.sort();
    cases
}

/// The names a case deploys.
pub(crate) fn names(case: &Path) -> Vec<String> {
    std::fs::read_to_string(case.join("names"))
        .expect("names file")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_owned())
        .collect()
}

/// A case copied into a temp dir (`@ROOT@` → the temp root), with
/// `mods-available`, `envvars`, run/lock/log dirs and certificate files.
pub(crate) struct Staged {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) root: PathBuf,
}

impl Staged {
    pub(crate) fn apache(&self) -> Apache {
        let apache = Apache::new(&self.root);
        match std::env::var_os("CAIRN_APACHE") {
            Some(ctl) => apache.ctl(ctl),
            None => apache,
        }
    }

    pub(crate) fn cert(&self) -> CertPaths {
        let live = self.root.join("live/example");
        CertPaths {
            fullchain: live.join("fullchain.pem"),
            key: live.join("privkey.pem"),
            cert: live.join("cert.pem"),
            chain: live.join("chain.pem"),
        }
    }

    pub(crate) fn settings(&self) -> Settings {
        Settings {
            https_port: 443,
            http_port: 80,
            options_file: self.root.join("options-ssl-apache.conf"),
        }
    }
}

pub(crate) fn stage(case: &Path) -> Staged {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("apache2");
    let root_text = root.to_string_lossy().into_owned();
    copy_tree(case, &root, &root_text);
    if !root.join("mods-available").exists() {
        copy_tree(
            &corpus().join("_mods-available"),
            &root.join("mods-available"),
            &root_text,
        );
    }
    for sub in ["run", "lock", "log", "snakeoil", "live/example"] {
        std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
    }
    let base = dir.path().to_string_lossy().into_owned();
    if !root.join("envvars").exists() {
        std::fs::write(
            root.join("envvars"),
            format!(
                "# envvars for a private test instance\nexport APACHE_RUN_USER=www-data\nexport APACHE_RUN_GROUP=www-data\nexport APACHE_PID_FILE={base}/run/apache2.pid\nexport APACHE_RUN_DIR={base}/run\nexport APACHE_LOCK_DIR={base}/lock\nexport APACHE_LOG_DIR={base}/log\nexport LANG=C\n"
            ),
        )
        .expect("envvars");
    }
    let (cert, key) = test_certificate();
    let staged = Staged { dir, root };
    for (path, text) in [
        (staged.root.join("snakeoil/cert.pem"), cert),
        (staged.root.join("snakeoil/key.pem"), key),
        (staged.cert().fullchain, cert),
        (staged.cert().key, key),
        (staged.cert().cert, cert),
        (staged.cert().chain, cert),
        (
            staged.root.join("snakeoil/options-ssl-apache.conf"),
            OPTIONS_SSL_APACHE,
        ),
    ] {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    staged
}

fn copy_tree(from: &Path, to: &Path, root_text: &str) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let source = entry.path();
        let target = to.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&source).expect("stat");
        if meta.is_symlink() {
            let link = std::fs::read_link(&source).expect("readlink");
            std::os::unix::fs::symlink(link, &target).expect("symlink");
        } else if meta.is_dir() {
            copy_tree(&source, &target, root_text);
        } else {
            let bytes = std::fs::read(&source).expect("read");
            let text = String::from_utf8(bytes).expect("utf-8 corpus");
            std::fs::write(&target, text.replace("@ROOT@", root_text)).expect("write");
        }
    }
}

/// Writes every file of a change set.
pub(crate) fn apply(changes: &ChangeSet) {
    for (path, change) in &changes.files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, &change.after).expect("write");
    }
}

/// A throw-away self-signed certificate and key (made once by openssl for
/// these tests; nothing trusts it).
pub(crate) fn test_certificate() -> (&'static str, &'static str) {
    (
        include_str!("../corpus/apache/_certs/cert.pem"),
        include_str!("../corpus/apache/_certs/key.pem"),
    )
}
