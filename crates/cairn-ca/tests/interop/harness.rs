//! A CA in this process (dev settings, ephemeral ports, DNS from the
//! in-process test server) and checks of what a peer wrote to disk.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;

use cairn_ca::app::{self, Overrides, RunningCa};
use cairn_ca::config::Config;
use cairn_testkit::{TestServer, TestServerConfig};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// The program a variable names, or `None` (with a note) when it is unset.
/// Panics when it is set but the program is missing: CI asked for a peer.
pub(crate) fn peer(variable: &str) -> Option<PathBuf> {
    match std::env::var_os(variable) {
        None => {
            eprintln!(
                "interop test not run: set {variable}=/path/to/the/program (scripts/install-peers prints it)"
            );
            None
        }
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "{variable}={} does not exist; run scripts/install-peers",
                path.display()
            );
            Some(path)
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released for the peer).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The CA and its DNS, plus the ports the CA validates on.
pub(crate) struct Ca {
    pub(crate) running: RunningCa,
    pub(crate) dns: TestServer,
    pub(crate) http01_port: u16,
    pub(crate) tls_alpn01_port: u16,
    pub(crate) dir: tempfile::TempDir,
}

impl Ca {
    /// Starts the test DNS server (every name is 127.0.0.1) and a dev CA
    /// that validates http-01 and tls-alpn-01 on fresh ports.
    pub(crate) async fn start() -> Ca {
        let dns = TestServer::start(TestServerConfig {
            http01: None,
            tls_alpn01: None,
            ..TestServerConfig::default()
        })
        .await
        .expect("test DNS server starts");
        let dir = tempfile::tempdir().expect("tempdir");
        let http01_port = free_port();
        let tls_alpn01_port = free_port();
        let mut config = Config::defaults(true);
        config.data_dir = dir.path().join("ca");
        config.server.listen = "127.0.0.1:0".parse().expect("addr");
        config.server.http_listen = "127.0.0.1:0".parse().expect("addr");
        config.validation.dns_resolver = dns.dns_addr();
        config.validation.http01_port = http01_port;
        config.validation.tls_alpn01_port = tls_alpn01_port;
        let running = app::start(config, Overrides::default())
            .await
            .expect("the CA starts");
        Ca {
            running,
            dns,
            http01_port,
            tls_alpn01_port,
            dir,
        }
    }

    pub(crate) fn directory(&self) -> &str {
        &self.running.directory_url
    }

    pub(crate) fn root_pem(&self) -> &Path {
        &self.running.root_pem
    }

    pub(crate) fn management(&self) -> SocketAddr {
        self.dns.management_addr().expect("management API")
    }

    pub(crate) fn work(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(&path).expect("work dir");
        path
    }

    /// The serials listed in the CRL of `issuer`, fetched over plain HTTP
    /// as relying software does (curl).
    pub(crate) fn crl_serials(&self, issuer: &str) -> Vec<String> {
        let url = format!("http://{}/crl/{issuer}.crl", self.running.http_addr);
        let output = Command::new("curl")
            .args(["-sf", &url])
            .output()
            .expect("curl runs");
        assert!(output.status.success(), "GET {url} failed");
        let der = output.stdout;
        let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(&der)
            .expect("CRL parses");
        crl.iter_revoked_certificates()
            .map(|r| hex(r.raw_serial()))
            .collect()
    }
}

/// Runs a peer command and returns its combined output; panics with that
/// output when it fails.
pub(crate) fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{text}",
        output.status
    );
    text
}

/// Everything the interop tests check of an issued certificate: the chain
/// verifies with `openssl verify` against the CA's root.pem, the SANs are
/// exactly `names`, and the lifetime is 90 days (less the one second that
/// makes notAfter inclusive). Returns the serial (lowercase hex).
pub(crate) fn check_issued(
    root_pem: &Path,
    leaf_pem: &Path,
    chain_pem: &Path,
    names: &[&str],
) -> String {
    let verify = run(Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(root_pem)
        .arg("-untrusted")
        .arg(chain_pem)
        .arg(leaf_pem));
    assert!(verify.contains(": OK"), "openssl verify: {verify}");
    let pem = std::fs::read_to_string(leaf_pem).expect("leaf readable");
    let der = cairn_proto::pem::decode_one(&pem, "CERTIFICATE").expect("leaf PEM");
    let (_, cert) = X509Certificate::from_der(&der).expect("leaf parses");
    let mut sans: Vec<String> = cert
        .subject_alternative_name()
        .expect("SAN parses")
        .expect("SAN present")
        .value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(d) => (*d).to_owned(),
            other => format!("{other:?}"),
        })
        .collect();
    sans.sort();
    let mut want: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    assert_eq!(sans, want, "SANs of {}", leaf_pem.display());
    let validity = cert.validity();
    let lifetime = validity.not_after.timestamp() - validity.not_before.timestamp();
    assert_eq!(
        lifetime,
        90 * 86_400 - 1,
        "lifetime of {} in seconds",
        leaf_pem.display()
    );
    hex(cert.raw_serial())
}

/// Lowercase hex without leading zero octets, as the CA names serials.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes[start..].iter().map(|b| format!("{b:02x}")).collect()
}
