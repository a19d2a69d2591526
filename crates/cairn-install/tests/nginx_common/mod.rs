//! Helpers shared by the nginx tests: a configuration in a temp dir, a
//! self-signed certificate, and the real `nginx -t` when `CAIRN_NGINX` is
//! set.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use cairn_install::nginx::{Nginx, NginxConfig};
use cairn_install::{CertPaths, Config, Settings, WebServer};

/// A configuration root in a temp dir.
#[derive(Debug)]
pub struct Site {
    pub dir: tempfile::TempDir,
}

pub fn settings(dir: &Path) -> Settings {
    Settings {
        https_port: 443,
        http_port: 80,
        options_file: dir.join("options-ssl-nginx.conf"),
    }
}

impl Site {
    /// Writes `files` (path relative to the root → contents).
    pub fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        Site { dir }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn conf(&self) -> PathBuf {
        self.root().join("nginx.conf")
    }

    pub fn load(&self) -> NginxConfig {
        NginxConfig::load(&self.conf()).unwrap()
    }

    pub fn settings(&self) -> Settings {
        settings(self.root())
    }

    /// A self-signed certificate and key for `localhost`, written once
    /// (the key 0600), under `live/` (a directory with a space, to check
    /// quoting).
    pub fn cert(&self) -> CertPaths {
        let live = self.root().join("live dir");
        let paths = CertPaths {
            fullchain: live.join("fullchain.pem"),
            key: live.join("privkey.pem"),
            cert: live.join("cert.pem"),
            chain: live.join("chain.pem"),
        };
        if !paths.fullchain.exists() {
            std::fs::create_dir_all(&live).unwrap();
            let key = rcgen::KeyPair::generate().unwrap();
            let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
            let cert = params.self_signed(&key).unwrap();
            std::fs::write(&paths.fullchain, cert.pem()).unwrap();
            std::fs::write(&paths.cert, cert.pem()).unwrap();
            std::fs::write(&paths.chain, "").unwrap();
            write_private(&paths.key, key.serialize_pem().as_bytes());
        }
        paths
    }

    /// The text of `path` after the edits in `config`.
    pub fn changed(&self, config: &NginxConfig, path: &str) -> String {
        let full = self.root().join(path);
        let changes = config.changes();
        let change = changes
            .files
            .get(&full)
            .unwrap_or_else(|| panic!("{path} unchanged; changed: {:?}", changes.files.keys()));
        String::from_utf8(change.after.clone()).unwrap()
    }

    /// Writes the edits and the options file, then, when `CAIRN_NGINX` is
    /// set, runs the real `nginx -t` on the result (a missing binary
    /// fails the test).
    pub fn write_and_test(&self, config: &NginxConfig) {
        for (path, change) in &config.changes().files {
            std::fs::write(path, &change.after).unwrap();
        }
        let nginx = self.nginx();
        std::fs::write(self.settings().options_file, nginx.options_file_contents()).unwrap();
        if std::env::var_os("CAIRN_NGINX").is_some()
            && let Err(e) = nginx.config_test()
        {
            {
                let mut listing = String::new();
                for (path, doc) in config.files() {
                    listing.push_str(&format!(
                        "==> {}\n{}\n",
                        path.display(),
                        String::from_utf8_lossy(doc.source())
                    ));
                }
                panic!("{e}\n{listing}");
            }
        }
    }

    pub fn nginx(&self) -> Nginx {
        std::fs::create_dir_all(self.root().join("logs")).unwrap();
        let ctl = std::env::var_os("CAIRN_NGINX").unwrap_or_else(|| "nginx".into());
        Nginx::new(self.root())
            .with_ctl(ctl)
            .with_prefix(self.root())
    }
}

fn write_private(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}
