//! `cairn` against Pebble 2.4 (Debian package `pebble`) with the chaos
//! test clients get by default: 5 % of good nonces refused, authorizations
//! reused at random. pebble-challtestsrv is its DNS. Each test starts its
//! own pair on loopback ports of its own and kills them on drop.
//!
//! Runs only with `CAIRN_PEBBLE=1`; then missing binaries fail the test.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::harness::{Agent, check_lineage, ok, serve_directory};

/// Standalone http-01 with the alternate chain preferred and checked
/// against its root, forced renewal, key rollover, revocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pebble_standalone_preferred_chain_renew_rollover_revoke() {
    let Some(peers) = Peers::start_if_enabled(Ports::new(0), None) else {
        return;
    };
    let agent = peers.agent();
    let roots = peers.roots().await;
    let alternate_cn = common_name(&roots[1]);
    let alternate_root = peers.dir.path().join("root1.pem");
    std::fs::write(&alternate_root, &roots[1]).expect("write");
    let port = peers.ports.http01.to_string();
    let names = ["p1.cairn.test", "www.p1.cairn.test"];
    ok(&agent
        .certonly(&[
            "--standalone",
            "--http-01-address",
            "127.0.0.1",
            "--http-01-port",
            &port,
            "-d",
            names[0],
            "-d",
            names[1],
            "--preferred-chain",
            &alternate_cn,
            "--issuer-roots",
            &alternate_root.to_string_lossy(),
        ])
        .await);
    let first = check_lineage(&agent, names[0], 1, &names);
    let chain = std::fs::read_to_string(agent.live(names[0], "chain.pem")).expect("chain");
    let top = cairn_proto::pem::decode_all(&chain, "CERTIFICATE")
        .pop()
        .expect("an issuer");
    let (_, top) = X509Certificate::from_der(&top).expect("parses");
    assert!(
        top.issuer().to_string().contains(&alternate_cn),
        "{}",
        top.issuer()
    );

    let said = ok(&agent.run(&["renew", "--force-renewal"]).await);
    assert!(said.contains("1 renewed"), "{said}");
    let renewed = check_lineage(&agent, names[0], 2, &names);
    assert_ne!(first, renewed);

    let said = ok(&agent.with_server(&["account", "rollover-key"], &[]).await);
    assert!(said.contains("Rolled the account"), "{said}");
    ok(&agent.with_server(&["account", "show"], &[]).await);

    let said = ok(&agent
        .with_server(
            &["revoke"],
            &["--cert-name", names[0], "--reason", "superseded"],
        )
        .await);
    assert!(said.contains(&renewed), "{said}");
    let out = agent
        .with_server(&["revoke"], &["--cert-name", names[0]])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        crate::harness::text(&out).contains("alreadyRevoked"),
        "{}",
        crate::harness::text(&out)
    );
}

/// dns-01 for a name and its wildcard through manual hooks that call
/// pebble-challtestsrv's /set-txt and /clear-txt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pebble_dns01_wildcard_with_manual_hooks() {
    let Some(peers) = Peers::start_if_enabled(Ports::new(1), None) else {
        return;
    };
    let agent = peers.agent();
    let management = format!("127.0.0.1:{}", peers.ports.challtestsrv);
    let auth = format!(
        "curl -sf -d \"{{\\\"host\\\":\\\"_acme-challenge.$CERTBOT_DOMAIN.\\\",\\\"value\\\":\\\"$CERTBOT_VALIDATION\\\"}}\" \
         http://{management}/set-txt"
    );
    let cleanup = format!(
        "curl -sf -d \"{{\\\"host\\\":\\\"_acme-challenge.$CERTBOT_DOMAIN.\\\"}}\" http://{management}/clear-txt"
    );
    let names = ["*.dns.cairn.test", "dns.cairn.test"];
    ok(&agent
        .certonly(&[
            "--manual",
            "--preferred-challenges",
            "dns",
            "--manual-auth-hook",
            &auth,
            "--manual-cleanup-hook",
            &cleanup,
            "-d",
            names[0],
            "-d",
            names[1],
        ])
        .await);
    check_lineage(&agent, "dns.cairn.test", 1, &names);
    let said = ok(&agent.run(&["renew", "--force-renewal"]).await);
    assert!(said.contains("1 renewed"), "{said}");
    check_lineage(&agent, "dns.cairn.test", 2, &names);
}

/// tls-alpn-01 and webroot against Pebble.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pebble_tls_alpn01_and_webroot() {
    let Some(peers) = Peers::start_if_enabled(Ports::new(2), None) else {
        return;
    };
    let agent = peers.agent();
    let port = peers.ports.tls_alpn01.to_string();
    ok(&agent
        .certonly(&[
            "--tls-alpn",
            "--tls-alpn-01-address",
            "127.0.0.1",
            "--tls-alpn-01-port",
            &port,
            "-d",
            "alpn.cairn.test",
        ])
        .await);
    check_lineage(&agent, "alpn.cairn.test", 1, &["alpn.cairn.test"]);

    let root = peers.dir.path().join("www");
    std::fs::create_dir_all(&root).expect("webroot");
    let server = serve_directory(root.clone(), peers.ports.http01).await;
    ok(&agent
        .certonly(&[
            "--webroot",
            "-w",
            &root.to_string_lossy(),
            "-d",
            "web.cairn.test",
        ])
        .await);
    server.abort();
    check_lineage(&agent, "web.cairn.test", 1, &["web.cairn.test"]);
}

/// Due by time: with 20-second certificates, `renew` leaves a fresh one
/// alone and renews it once half its lifetime has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pebble_short_lived_certificate_is_renewed_when_due() {
    let Some(peers) = Peers::start_if_enabled(Ports::new(3), Some(20)) else {
        return;
    };
    let agent = peers.agent();
    let port = peers.ports.http01.to_string();
    ok(&agent
        .certonly(&[
            "--standalone",
            "--http-01-address",
            "127.0.0.1",
            "--http-01-port",
            &port,
            "-d",
            "short.cairn.test",
        ])
        .await);
    let pem = std::fs::read_to_string(agent.live("short.cairn.test", "cert.pem")).expect("cert");
    let der = cairn_proto::pem::decode_one(&pem, "CERTIFICATE").expect("pem");
    let (_, cert) = X509Certificate::from_der(&der).expect("parses");
    let (nb, na) = (
        cert.validity().not_before.timestamp(),
        cert.validity().not_after.timestamp(),
    );
    let due_at = na - (na - nb) / 2;
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64
    };
    assert!(
        now() < due_at,
        "the test needs a certificate that is not due yet"
    );
    let said = ok(&agent.run(&["renew"]).await);
    assert!(said.contains("not due until"), "{said}");
    assert!(!agent.archive("short.cairn.test", "cert2.pem").exists());
    tokio::time::sleep(Duration::from_secs((due_at - now() + 1).max(0) as u64)).await;
    let said = ok(&agent.run(&["renew"]).await);
    assert!(
        said.contains("due for renewal") && said.contains("1 renewed"),
        "{said}"
    );
    check_lineage(&agent, "short.cairn.test", 2, &["short.cairn.test"]);
}

/// Twenty consecutive issuances while Pebble refuses half of all good
/// nonces (`PEBBLE_WFE_NONCEREJECT=50`): each JWS POST is refused with
/// `badNonce` with probability 1/2, and the agent's retries with the fresh
/// nonce the refusal carries (RFC 8555 §6.5) must get every run through.
/// Each run gets a name of its own, so twenty lineages are saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pebble_twenty_issuances_at_fifty_percent_bad_nonce() {
    let Some(peers) = Peers::start_with_nonce_reject(Ports::new(4), None, Some(50)) else {
        return;
    };
    let agent = peers.agent();
    let port = peers.ports.http01.to_string();
    let started = Instant::now();
    let names: Vec<String> = (0..20).map(|i| format!("n{i}.example.com")).collect();
    // How many badNonce refusals were retried, and the fewest retries left
    // after one (the budget's headroom), from the client's debug log.
    let mut retried = 0;
    let mut fewest_left: Option<u32> = None;
    for name in &names {
        let run = Instant::now();
        let out = agent
            .certonly(&[
                "--standalone",
                "--http-01-address",
                "127.0.0.1",
                "--http-01-port",
                &port,
                "-d",
                name,
                "-vv",
            ])
            .await;
        // The agent retries a refused nonce 10 times (11 attempts per
        // request); at 50 % one request fails with probability 2^-11, and
        // this test sends about 190 requests.
        let out_of_retries = !out.status.success()
            && crate::harness::text(&out)
                .lines()
                .any(|l| l.starts_with("error:") && l.contains("badNonce"));
        assert!(
            !out_of_retries,
            "{name}: the agent's badNonce retry budget ran out after {retried} earlier \
             retries in this test:\n{}",
            crate::harness::text(&out)
        );
        let said = ok(&out);
        for line in said.lines().map(strip_ansi) {
            if !line.contains("badNonce; retrying") {
                continue;
            }
            retried += 1;
            let left = line
                .split("retries_left=")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|digits| digits.parse::<u32>().ok());
            if let Some(left) = left {
                fewest_left = Some(fewest_left.map_or(left, |f| f.min(left)));
            }
        }
        check_lineage(&agent, name, 1, &[name.as_str()]);
        eprintln!("{name}: issued in {:.2} s", run.elapsed().as_secs_f64());
    }

    let renewal_files = std::fs::read_dir(agent.config_dir.join("renewal"))
        .expect("renewal dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".toml"))
        .count();
    assert_eq!(renewal_files, 20);
    let listed = agent.run(&["certificates", "--json"]).await;
    ok(&listed);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    let listed = listed.as_array().expect("an array");
    let mut listed_names: Vec<&str> = listed
        .iter()
        .map(|c| {
            assert_eq!(c["valid"], json!(true), "{c}");
            assert!(c["error"].is_null(), "{c}");
            c["name"].as_str().expect("a name")
        })
        .collect();
    listed_names.sort_unstable();
    let mut want: Vec<&str> = names.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(listed_names, want);
    eprintln!(
        "20 issuances at PEBBLE_WFE_NONCEREJECT=50 in {:.1} s; {retried} badNonce \
         refusals retried; fewest retries left after one: {fewest_left:?} (budget 10)",
        started.elapsed().as_secs_f64()
    );
    assert!(
        retried > 0,
        "Pebble refused no nonce: is PEBBLE_WFE_NONCEREJECT=50 in effect?"
    );
}

/// `line` without ANSI escape sequences (ESC [ ... final letter).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Loopback ports for one Pebble + challtestsrv pair, away from Pebble's
/// defaults and from cairn-client's Pebble tests (14100, 14200).
#[derive(Clone, Copy, Debug)]
struct Ports {
    acme: u16,
    management: u16,
    http01: u16,
    tls_alpn01: u16,
    dns: u16,
    challtestsrv: u16,
}

impl Ports {
    fn new(n: u16) -> Self {
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

struct Peers {
    ports: Ports,
    tls_ca: PathBuf,
    pebble: KillOnDrop,
    challtestsrv: KillOnDrop,
    dir: tempfile::TempDir,
}

impl Peers {
    /// Starts both, or prints why not and returns `None` when
    /// `CAIRN_PEBBLE` is not `1`. `validity` sets Pebble's certificate
    /// lifetime in seconds.
    fn start_if_enabled(ports: Ports, validity: Option<u64>) -> Option<Self> {
        Self::start_with_nonce_reject(ports, validity, None)
    }

    /// As [`Peers::start_if_enabled`], with `PEBBLE_WFE_NONCEREJECT` set to
    /// `nonce_reject` percent (`None`: Pebble's default, 5 %).
    fn start_with_nonce_reject(
        ports: Ports,
        validity: Option<u64>,
        nonce_reject: Option<u8>,
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
            .args(["-dnsserver", &format!("127.0.0.1:{}", ports.dns)])
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

    fn agent(&self) -> Agent {
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
    async fn roots(&self) -> Vec<String> {
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

fn common_name(pem: &str) -> String {
    let der = cairn_proto::pem::decode_one(pem, "CERTIFICATE").expect("PEM");
    let (_, cert) = X509Certificate::from_der(&der).expect("parses");
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .expect("a CN")
        .to_owned()
}
