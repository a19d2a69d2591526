//! Pebble 2.4 (Debian package `pebble`) and pebble-challtestsrv as its DNS
//! (every name is 127.0.0.1), started on loopback ports of their own and
//! killed on drop. Shared by the agent's and the proxy's tests
//! (`#[path]`-included); runs only with `CAIRN_PEBBLE=1`, and then a
//! missing binary fails the test.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::Agent;

/// Loopback ports for one Pebble + challtestsrv pair, away from Pebble's
/// defaults and from cairn-client's Pebble tests (14100, 14200).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ports {
    pub(crate) acme: u16,
    pub(crate) management: u16,
    pub(crate) http01: u16,
    pub(crate) tls_alpn01: u16,
    pub(crate) dns: u16,
    pub(crate) challtestsrv: u16,
}

impl Ports {
    pub(crate) fn new(n: u16) -> Self {
        Self {
            acme: 14300 + n * 10,
            management: 15300 + n * 10,
            http01: 5302 + n * 10,
            tls_alpn01: 5301 + n * 10,
            dns: 8353 + n * 10,
            challtestsrv: 8355 + n * 10,
        }
    }
}

pub(crate) struct Peers {
    pub(crate) ports: Ports,
    pub(crate) tls_ca: PathBuf,
    pebble: KillOnDrop,
    challtestsrv: KillOnDrop,
    pub(crate) dir: tempfile::TempDir,
}

impl Peers {
    /// Starts both, or prints why not and returns `None` when
    /// `CAIRN_PEBBLE` is not `1`. `validity` sets Pebble's certificate
    /// lifetime in seconds.
    pub(crate) fn start_if_enabled(ports: Ports, validity: Option<u64>) -> Option<Self> {
        Self::start_with_nonce_reject(ports, validity, None)
    }

    /// As [`Peers::start_if_enabled`], with `PEBBLE_WFE_NONCEREJECT` set to
    /// `nonce_reject` percent (`None`: Pebble's default, 5 %).
    pub(crate) fn start_with_nonce_reject(
        ports: Ports,
        validity: Option<u64>,
        nonce_reject: Option<u8>,
    ) -> Option<Self> {
        Self::start(ports, validity, nonce_reject, None)
    }

    /// As [`Peers::start_with_nonce_reject`], with Pebble resolving every
    /// name through `dns_server` (a BIND taking RFC 2136 updates, for
    /// dns-01) instead of challtestsrv.
    #[allow(dead_code, reason = "the proxy's tests use it, the agent's do not")]
    pub(crate) fn start_with_dns_server(
        ports: Ports,
        nonce_reject: Option<u8>,
        dns_server: SocketAddr,
    ) -> Option<Self> {
        Self::start(ports, None, nonce_reject, Some(dns_server))
    }

    fn start(
        ports: Ports,
        validity: Option<u64>,
        nonce_reject: Option<u8>,
        dns_server: Option<SocketAddr>,
    ) -> Option<Self> {
        if std::env::var("CAIRN_PEBBLE").as_deref() != Ok("1") {
            eprintln!("pebble test not run: set CAIRN_PEBBLE=1 to run it");
            return None;
        }
        let pebble = find_binary("pebble");
        let challtestsrv = find_binary("pebble-challtestsrv");
        let dir = tempfile::tempdir().expect("tempdir");
        let (tls_ca_pem, cert_pem, key_pem) = loopback_tls_certificate();
        let tls_ca = dir.path().join("tls-ca.pem");
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        std::fs::write(&tls_ca, tls_ca_pem).expect("write");
        std::fs::write(&cert_path, cert_pem).expect("write");
        std::fs::write(&key_path, key_pem).expect("write");
        let mut config = json!({
            "listenAddress": format!("127.0.0.1:{}", ports.acme),
            "managementListenAddress": format!("127.0.0.1:{}", ports.management),
            "certificate": cert_path,
            "privateKey": key_path,
            "httpPort": ports.http01,
            "tlsPort": ports.tls_alpn01,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        });
        if let Some(seconds) = validity {
            config["certificateValidityPeriod"] = json!(seconds);
        }
        let config_path = dir.path().join("pebble-config.json");
        std::fs::write(&config_path, json!({ "pebble": config }).to_string()).expect("write");

        let challtestsrv = KillOnDrop::spawn(
            Command::new(challtestsrv).args([
                "-dns01",
                &format!("127.0.0.1:{}", ports.dns),
                "-management",
                &format!("127.0.0.1:{}", ports.challtestsrv),
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-defaultIPv4",
                "127.0.0.1",
                "-defaultIPv6",
                "",
            ]),
            &dir.path().join("challtestsrv.log"),
        );
        let mut command = Command::new(pebble);
        command
            .arg("-config")
            .arg(&config_path)
            .arg("-dnsserver")
            .arg(dns_server.map_or_else(|| format!("127.0.0.1:{}", ports.dns), |a| a.to_string()))
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_ALTERNATE_ROOTS", "1")
            .env_remove("PEBBLE_VA_ALWAYS_VALID")
            .env_remove("PEBBLE_AUTHZREUSE")
            .env_remove("PEBBLE_WFE_NONCEREJECT");
        if let Some(percent) = nonce_reject {
            command.env("PEBBLE_WFE_NONCEREJECT", percent.to_string());
        }
        let pebble = KillOnDrop::spawn(&mut command, &dir.path().join("pebble.log"));
        let mut peers = Self {
            ports,
            tls_ca,
            pebble,
            challtestsrv,
            dir,
        };
        for port in [ports.challtestsrv, ports.acme, ports.management] {
            peers.wait_for(port);
        }
        Some(peers)
    }

    pub(crate) fn agent(&self) -> Agent {
        Agent::new(
            self.dir.path().join("cairn"),
            &format!("https://127.0.0.1:{}/dir", self.ports.acme),
            &self.tls_ca,
        )
    }

    fn wait_for(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            for child in [&mut self.pebble, &mut self.challtestsrv] {
                if let Ok(Some(status)) = child.child.try_wait() {
                    panic!(
                        "{} exited with {status} before listening:\n{}",
                        child.log.display(),
                        std::fs::read_to_string(&child.log).unwrap_or_default()
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "nothing listens on 127.0.0.1:{port} after 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Pebble's issuing roots (new each start): the default, the alternate.
    pub(crate) async fn roots(&self) -> Vec<String> {
        let mut roots = Vec::new();
        for i in 0..2 {
            let url = format!("https://127.0.0.1:{}/roots/{i}", self.ports.management);
            let output = tokio::process::Command::new("curl")
                .arg("-sf")
                .arg("--cacert")
                .arg(&self.tls_ca)
                .arg(&url)
                .output()
                .await
                .expect("curl runs");
            assert!(output.status.success(), "GET {url} failed");
            roots.push(String::from_utf8(output.stdout).expect("PEM"));
        }
        roots
    }
}

impl Drop for Peers {
    /// On a failing test, shows what the peers said.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for child in [&self.pebble, &self.challtestsrv] {
            let log = std::fs::read_to_string(&child.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!(
                "--- last lines of {} ---\n{}",
                child.log.display(),
                tail.join("\n")
            );
        }
    }
}

struct KillOnDrop {
    child: Child,
    log: PathBuf,
}

impl KillOnDrop {
    fn spawn(command: &mut Command, log: &Path) -> Self {
        let out = std::fs::File::create(log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {command:?}: {e}"));
        Self {
            child,
            log: log.to_owned(),
        }
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The path of `name` on `PATH`; with `CAIRN_PEBBLE=1`, a missing binary
/// fails the test.
fn find_binary(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!("CAIRN_PEBBLE=1 but {name} is not on PATH: install it with `apt-get install -y pebble`")
        })
}

/// A throw-away CA and a certificate from it for Pebble's HTTPS listener:
/// (CA PEM, cert PEM, key PEM).
fn loopback_tls_certificate() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa};
    let mut ca_params = CertificateParams::default();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "cairn agent pebble test TLS CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().expect("key"))
        .expect("CA");
    let key = rcgen::KeyPair::generate().expect("key");
    let params = CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])
    .expect("params");
    let cert = params.signed_by(&key, &ca).expect("certificate");
    (ca.pem(), cert.pem(), key.serialize_pem())
}
