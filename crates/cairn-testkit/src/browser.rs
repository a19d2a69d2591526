//! A real browser for tests: headless Chromium (`$CAIRN_CHROMIUM`) in a
//! throw-away HOME whose NSS database (`$CAIRN_CERTUTIL`) trusts the given
//! roots, with names mapped to 127.0.0.1.
//!
//! Chromium on Linux trusts a private root only through
//! `$HOME/.pki/nssdb`; `certutil -A` imports one certificate per call, so
//! each certificate of a PEM bundle is imported on its own. A refused
//! certificate shows on stderr as `Page load failed: net::ERR_CERT_…`
//! (with `--dump-dom` printing an empty document), which [`Chromium::dump_dom`]
//! turns into [`BrowserError::CertificateRefused`].

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use crate::process::{KillOnDrop, peer_program, wait_for_result};

/// How long one page load may take.
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a page did not load.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrowserError {
    /// Chromium refused the server's certificate (`code` is e.g.
    /// `ERR_CERT_AUTHORITY_INVALID`).
    #[error("Chromium refused the certificate of {url}: {code}")]
    CertificateRefused {
        /// The page.
        url: String,
        /// Chromium's `net::ERR_CERT_*` code.
        code: String,
    },
    /// The page failed to load for another reason (`code` is e.g.
    /// `ERR_CONNECTION_REFUSED`).
    #[error("Chromium could not load {url}: {code}")]
    LoadFailed {
        /// The page.
        url: String,
        /// Chromium's `net::ERR_*` code.
        code: String,
    },
    /// Chromium could not be run, timed out or exited with an error.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Headless Chromium with its own HOME and trusted roots.
#[derive(Debug)]
pub struct Chromium {
    program: PathBuf,
    home: PathBuf,
}

impl Chromium {
    /// Makes `dir/home` with an NSS database trusting every certificate in
    /// each of `root_pems` (files of one or more PEM certificates). Panics
    /// when `CAIRN_CHROMIUM` or `CAIRN_CERTUTIL` is unset.
    pub fn new(dir: &Path, root_pems: &[&Path]) -> anyhow::Result<Chromium> {
        Chromium::with_programs(
            &peer_program("CAIRN_CHROMIUM"),
            &peer_program("CAIRN_CERTUTIL"),
            dir,
            root_pems,
        )
    }

    /// [`Chromium::new`] with explicit programs.
    pub fn with_programs(
        chromium: &Path,
        certutil: &Path,
        dir: &Path,
        root_pems: &[&Path],
    ) -> anyhow::Result<Chromium> {
        let home = dir.join("home");
        let nssdb = home.join(".pki/nssdb");
        std::fs::create_dir_all(&nssdb)?;
        let db = format!("sql:{}", nssdb.display());
        run(Command::new(certutil).args(["-d", &db, "-N", "--empty-password"]))?;
        let mut count = 0;
        for bundle in root_pems {
            let text = std::fs::read_to_string(bundle)
                .with_context(|| format!("cannot read {}", bundle.display()))?;
            for block in pem_certificates(&text) {
                count += 1;
                let file = home.join(format!("root-{count}.pem"));
                std::fs::write(&file, block)?;
                run(Command::new(certutil)
                    .args(["-d", &db, "-A", "-t", "C,,", "-n"])
                    .arg(format!("cairn-test-root-{count}"))
                    .arg("-i")
                    .arg(&file))?;
            }
        }
        Ok(Chromium {
            program: chromium.to_owned(),
            home,
        })
    }

    /// The throw-away HOME.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Loads `url` with each of `names` resolved to 127.0.0.1 and returns
    /// the DOM after load (`--dump-dom`).
    pub fn dump_dom(&self, url: &str, names: &[&str]) -> Result<String, BrowserError> {
        let rules = names
            .iter()
            .map(|name| format!("MAP {name} 127.0.0.1"))
            .collect::<Vec<_>>()
            .join(",");
        let stdout_path = self.home.join("dump.html");
        let stderr_path = self.home.join("chromium.log");
        let child = Command::new(&self.program)
            .env("HOME", &self.home)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-dev-shm-usage",
            ])
            .arg(format!(
                "--user-data-dir={}",
                self.home.join("profile").display()
            ))
            .arg(format!("--host-resolver-rules={rules}"))
            .arg("--dump-dom")
            .arg(url)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout_path).context("dump file")?)
            .stderr(std::fs::File::create(&stderr_path).context("log file")?)
            .spawn()
            .with_context(|| format!("cannot run {}", self.program.display()))?;
        let mut process = KillOnDrop::new("chromium", child);
        let mut status = None;
        wait_for_result(&format!("Chromium to load {url}"), PAGE_TIMEOUT, || {
            status = process.child_mut().try_wait()?;
            Ok(status.is_some())
        })?;
        let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        if let Some(code) = load_error(&log) {
            return Err(if code.starts_with("ERR_CERT_") {
                BrowserError::CertificateRefused {
                    url: url.to_owned(),
                    code,
                }
            } else {
                BrowserError::LoadFailed {
                    url: url.to_owned(),
                    code,
                }
            });
        }
        if !status.is_some_and(|status| status.success()) {
            return Err(anyhow::anyhow!("Chromium failed ({status:?}) on {url}:\n{log}").into());
        }
        Ok(std::fs::read_to_string(&stdout_path).context("read the DOM")?)
    }
}

/// `ERR_…` from Chromium's `Page load failed: net::ERR_…` line.
fn load_error(log: &str) -> Option<String> {
    let line = log.lines().find(|line| line.contains("Page load failed"))?;
    let code = &line[line.find("net::")? + "net::".len()..];
    Some(
        code.chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect(),
    )
}

/// Each `-----BEGIN CERTIFICATE-----` block of `text`, with its armour.
fn pem_certificates(text: &str) -> Vec<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let Some(end) = rest[start..].find(END) else {
            break;
        };
        let stop = start + end + END.len();
        blocks.push(format!("{}\n", &rest[start..stop]));
        rest = &rest[stop..];
    }
    blocks
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    anyhow::ensure!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[test]
    fn load_errors_and_pem_blocks_are_parsed() {
        let log = "[1:2:ERROR:headless_command_handler.cc:403] Page load failed: \
                   net::ERR_CERT_AUTHORITY_INVALID\n";
        assert_eq!(
            load_error(log).as_deref(),
            Some("ERR_CERT_AUTHORITY_INVALID")
        );
        assert_eq!(load_error("dbus noise\n"), None);
        let pem = "-----BEGIN CERTIFICATE-----\nQQ==\n-----END CERTIFICATE-----\n\
                   junk\n-----BEGIN CERTIFICATE-----\nQg==\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_certificates(pem).len(), 2);
    }

    /// A root, and a rustls server on 127.0.0.1:0 presenting a leaf for
    /// `browser.test` signed by it, answering every connection with a page.
    async fn https_server(root_pem: &Path) -> u16 {
        let root_key = KeyPair::generate().expect("key");
        let mut root_params = CertificateParams::new(Vec::new()).expect("params");
        root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let root = root_params.self_signed(&root_key).expect("root");
        std::fs::write(root_pem, root.pem()).expect("write root");
        let issuer = Issuer::new(root_params, root_key);
        let leaf_key = KeyPair::generate().expect("key");
        let leaf = CertificateParams::new(vec!["browser.test".to_owned()])
            .expect("params")
            .signed_by(&leaf_key, &issuer)
            .expect("leaf");
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut request = [0; 4096];
                    let _ = tls.read(&mut request).await;
                    let body = "<html><body><p id=\"x\">served by rustls</p></body></html>";
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(response.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        port
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(peer_chromium), ignore = "needs CAIRN_CHROMIUM and CAIRN_CERTUTIL")]
    async fn chromium_loads_a_page_under_a_trusted_root_and_refuses_an_unknown_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root_pem = dir.path().join("root.pem");
        let port = https_server(&root_pem).await;
        let url = format!("https://browser.test:{port}/");

        let trusting = dir.path().join("trusting");
        let dom = {
            let url = url.clone();
            let root_pem = root_pem.clone();
            tokio::task::spawn_blocking(move || {
                Chromium::new(&trusting, &[&root_pem])
                    .expect("NSS db")
                    .dump_dom(&url, &["browser.test"])
            })
            .await
            .expect("join")
        }
        .expect("the page loads");
        assert!(dom.contains("served by rustls"), "{dom}");

        let untrusting = dir.path().join("untrusting");
        let error = tokio::task::spawn_blocking(move || {
            Chromium::new(&untrusting, &[])
                .expect("NSS db")
                .dump_dom(&url, &["browser.test"])
        })
        .await
        .expect("join")
        .expect_err("an unknown root is refused");
        assert!(
            matches!(&error, BrowserError::CertificateRefused { code, .. } if code == "ERR_CERT_AUTHORITY_INVALID"),
            "{error:?}"
        );
    }
}
