//! Interop with the real peer: Pebble 2.4 and pebble-challtestsrv (Debian
//! package `pebble`), each spawned here on loopback ports of its own and
//! killed on drop.
//!
//! Runs only with `CAIRN_PEBBLE=1`; then missing binaries fail the test.
//! Without it each test prints that it did not run and passes.
//!
//! ```text
//! CAIRN_PEBBLE=1 cargo test -p cairn-client --test pebble -- --nocapture
//! ```

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn_client::{
    Account, AcmeClient, CertificateChain, ClientOptions, Error, check_certificate, csr,
    revoke_with_certificate_key,
};
use cairn_proto::objects::{
    AccountStatus, AuthorizationStatus, ChallengeType, NewAccount, NewOrder,
};
use cairn_proto::{Identifier, KeyPair, KeyType, ProblemType};
use serde_json::json;

/// Loopback ports for one Pebble + challtestsrv pair, away from the
/// defaults (14000, 15000, 5001, 5002, 8053, 8055) so that a developer's
/// own Pebble does not clash.
#[derive(Clone, Copy, Debug)]
struct Ports {
    acme: u16,
    management: u16,
    http01: u16,
    tls_alpn01: u16,
    dns: u16,
    challtestsrv: u16,
}

const CHAOS_DEFAULT: Ports = Ports {
    acme: 14100,
    management: 15100,
    http01: 5102,
    tls_alpn01: 5101,
    dns: 8153,
    challtestsrv: 8155,
};

const CHAOS_FIFTY: Ports = Ports {
    acme: 14200,
    management: 15200,
    http01: 5202,
    tls_alpn01: 5201,
    dns: 8253,
    challtestsrv: 8255,
};

/// The full life of an account against Pebble with its default chaos (5 %
/// of good nonces rejected, 50 % authorization reuse, alternate roots on).
#[tokio::test(flavor = "multi_thread")]
async fn full_lifecycle_against_pebble() {
    let Some(peers) = Peers::start_if_enabled(CHAOS_DEFAULT, None) else {
        return;
    };
    let started = Instant::now();
    let client = peers.client(ClientOptions::default()).await;
    let roots = peers.roots().await;

    // Accounts: lookup, creation, update (RFC 8555 §7.3).
    let key = KeyPair::generate(KeyType::EcdsaP256).expect("key");
    let again = KeyPair::from_pkcs8_der(&key.to_pkcs8_der().expect("der")).expect("key");
    assert!(
        Account::find_existing(&client, again)
            .await
            .expect("lookup")
            .is_none()
    );
    let new = NewAccount {
        contact: vec!["mailto:admin@cairn.test".into()],
        terms_of_service_agreed: Some(true),
        ..NewAccount::default()
    };
    let (mut account, object) = Account::create(&client, key, &new, None)
        .await
        .expect("account");
    assert_eq!(object.status, AccountStatus::Valid);
    let again = KeyPair::from_pkcs8_der(&account.key().to_pkcs8_der().expect("der")).expect("key");
    let found = Account::find_existing(&client, again)
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(found.url(), account.url());
    let updated = account
        .update_contact(vec!["mailto:ops@cairn.test".into()])
        .await
        .expect("update");
    assert_eq!(updated.contact, ["mailto:ops@cairn.test"]);
    let restored = Account::from_credentials(&client, account.credentials()).expect("restored");
    restored.info().await.expect("restored account works");

    // http-01 for a DNS name and an IP address (RFC 8555 §8.3, RFC 8738).
    let http_names = vec![
        Identifier::dns("http.cairn.test"),
        Identifier::ip("127.0.0.1".parse().expect("ip")),
    ];
    let (http_chain, http_key) = issue(&peers, &account, &http_names, &ChallengeType::Http01)
        .await
        .expect("http-01 issuance");
    check_certificate(
        &http_chain,
        &http_names,
        &http_key,
        Some(roots[0].as_bytes()),
    )
    .expect("the chain checks out against Pebble's root");
    assert_eq!(http_chain.alternates.len(), 1, "PEBBLE_ALTERNATE_ROOTS=1");
    let alternate = CertificateChain::from_pem(&http_chain.alternates[0]).expect("pem");
    check_certificate(
        &alternate,
        &http_names,
        &http_key,
        Some(roots[1].as_bytes()),
    )
    .expect("the alternate chains to the alternate root");
    let wrong = check_certificate(
        &http_chain,
        &http_names,
        &http_key,
        Some(roots[1].as_bytes()),
    );
    assert!(
        matches!(wrong, Err(Error::CertificateRefused(_))),
        "{wrong:?}"
    );

    // dns-01 for a name and its wildcard: two authorizations for one base
    // name, told apart by the `wildcard` flag (RFC 8555 §7.1.3, §8.4).
    let dns_names = vec![
        Identifier::dns("dns.cairn.test"),
        Identifier::dns("*.dns.cairn.test"),
    ];
    let (dns_chain, dns_key) = issue(&peers, &account, &dns_names, &ChallengeType::Dns01)
        .await
        .expect("dns-01 issuance");
    check_certificate(&dns_chain, &dns_names, &dns_key, Some(roots[0].as_bytes()))
        .expect("dns-01 chain");

    // The orders list (RFC 8555 §7.1.2.1), paged by PEBBLE_WFE_ORDERS_PER_PAGE.
    match account.orders().await {
        Ok(orders) => assert!(orders.len() >= 2, "{orders:?}"),
        Err(e) => panic!("orders list: {e}"),
    }

    // Key rollover (RFC 8555 §7.3.5).
    let before = account.clone();
    account
        .change_key(KeyPair::generate(KeyType::EcdsaP384).expect("key"))
        .await
        .expect("key change");
    account.info().await.expect("the new key works");
    let err = before.info().await.expect_err("the old key no longer does");
    assert!(err.problem().is_some(), "{err:?}");

    // Revocation by the account and by the certificate key (RFC 8555 §7.6).
    let http_der = http_chain.leaf_der().expect("leaf");
    account
        .revoke(http_der, Some(4))
        .await
        .expect("revoked by the account");
    let err = account
        .revoke(http_der, None)
        .await
        .expect_err("already revoked");
    assert!(err.is_problem(&ProblemType::AlreadyRevoked), "{err:?}");
    revoke_with_certificate_key(&client, dns_chain.leaf_der().expect("leaf"), &dns_key, None)
        .await
        .expect("revoked by the certificate key");

    // Deactivation (RFC 8555 §7.3.6) is final.
    let gone = account.deactivate().await.expect("deactivate");
    assert_eq!(gone.status, AccountStatus::Deactivated);
    let err = account.info().await.expect_err("deactivated");
    assert!(err.is_problem(&ProblemType::Unauthorized), "{err:?}");

    eprintln!(
        "pebble lifecycle (PEBBLE_WFE_NONCEREJECT default 5): {:.2?}",
        started.elapsed()
    );
}

/// Twenty issuances, five at a time, while Pebble rejects half of all good
/// nonces. Each request then needs on average two tries, and one in 2^k
/// requests needs more than k; with ~200 requests, a retry budget of 20
/// makes a spurious failure a one-in-ten-thousand event.
#[tokio::test(flavor = "multi_thread")]
async fn twenty_issuances_with_half_the_nonces_rejected() {
    let Some(peers) = Peers::start_if_enabled(CHAOS_FIFTY, Some(50)) else {
        return;
    };
    let started = Instant::now();
    let options = ClientOptions {
        bad_nonce_retries: 20,
        ..ClientOptions::default()
    };
    let client = peers.client(options).await;
    let roots = peers.roots().await;
    let new = NewAccount {
        terms_of_service_agreed: Some(true),
        ..NewAccount::default()
    };
    let key = KeyPair::generate(KeyType::EcdsaP256).expect("key");
    let (account, _) = Account::create(&client, key, &new, None)
        .await
        .expect("account");
    let peers = std::sync::Arc::new(peers);
    let mut done = 0;
    for batch in 0..4 {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..5 {
            let (peers, account) = (std::sync::Arc::clone(&peers), account.clone());
            let root = roots[0].clone();
            tasks.spawn(async move {
                let names = vec![Identifier::dns(format!("n{batch}-{i}.cairn.test"))];
                let (chain, key) = issue(&peers, &account, &names, &ChallengeType::Http01)
                    .await
                    .unwrap_or_else(|e| panic!("issuance {batch}-{i}: {e}"));
                check_certificate(&chain, &names, &key, Some(root.as_bytes()))
                    .unwrap_or_else(|e| panic!("issuance {batch}-{i}: {e}"));
            });
        }
        while let Some(result) = tasks.join_next().await {
            result.expect("issuance task");
            done += 1;
        }
    }
    assert_eq!(done, 20);
    eprintln!(
        "pebble 20 issuances (PEBBLE_WFE_NONCEREJECT=50): {:.2?}",
        started.elapsed()
    );
}

/// Orders a certificate for `names` and proves each with `kind` through
/// challtestsrv. Authorizations are matched to names by identifier; ones
/// Pebble reused (already valid) are skipped.
async fn issue(
    peers: &Peers,
    account: &Account,
    names: &[Identifier],
    kind: &ChallengeType,
) -> Result<(CertificateChain, KeyPair), Error> {
    let mut order = account.new_order(&NewOrder::new(names.to_vec())).await?;
    let authorizations = order.authorizations().await?;
    for name in names {
        let authz = authorizations
            .iter()
            .find(|a| a.is_for(name))
            .unwrap_or_else(|| panic!("no authorization for {name}"));
        if authz.state.status == AuthorizationStatus::Valid {
            continue;
        }
        let challenge = authz.prepare(account, kind)?;
        match kind {
            ChallengeType::Http01 => {
                let body = json!({ "token": challenge.token.as_str(), "content": challenge.key_authorization });
                peers.challtestsrv("add-http01", body).await;
            }
            _ => {
                let host = format!("{}.", challenge.dns01_record_name());
                let body = json!({ "host": host, "value": challenge.dns01_txt_value() });
                peers.challtestsrv("set-txt", body).await;
            }
        }
        account.respond(&challenge.url).await?;
        let result = account.poll_authorization(&authz.url).await;
        match kind {
            ChallengeType::Http01 => {
                let body = json!({ "token": challenge.token.as_str() });
                peers.challtestsrv("del-http01", body).await;
            }
            _ => {
                let host = format!("{}.", challenge.dns01_record_name());
                peers
                    .challtestsrv("clear-txt", json!({ "host": host }))
                    .await;
            }
        }
        result?;
    }
    order.poll_ready().await?;
    let key = KeyPair::generate(KeyType::EcdsaP256)?;
    order.finalize(&csr(names, &key)?).await?;
    order.poll_valid().await?;
    Ok((order.certificate().await?, key))
}

/// A running Pebble and challtestsrv, with the throw-away CA that Pebble's
/// HTTPS certificate comes from.
struct Peers {
    ports: Ports,
    tls_ca_pem: String,
    _pebble: KillOnDrop,
    _challtestsrv: KillOnDrop,
    _dir: tempfile::TempDir,
}

impl Peers {
    /// Starts both, or prints why not and returns `None` when
    /// `CAIRN_PEBBLE` is not `1`. `nonce_reject` overrides
    /// `PEBBLE_WFE_NONCEREJECT`; `None` leaves Pebble's default.
    fn start_if_enabled(ports: Ports, nonce_reject: Option<u8>) -> Option<Self> {
        if std::env::var("CAIRN_PEBBLE").as_deref() != Ok("1") {
            eprintln!("pebble interop test did not run: set CAIRN_PEBBLE=1 to run it");
            return None;
        }
        let pebble = find_binary("pebble");
        let challtestsrv = find_binary("pebble-challtestsrv");
        let dir = tempfile::tempdir().expect("tempdir");
        let (tls_ca_pem, cert_pem, key_pem) = loopback_tls_certificate();
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        std::fs::write(&cert_path, cert_pem).expect("write");
        std::fs::write(&key_path, key_pem).expect("write");
        let config = json!({
            "pebble": {
                "listenAddress": format!("127.0.0.1:{}", ports.acme),
                "managementListenAddress": format!("127.0.0.1:{}", ports.management),
                "certificate": cert_path,
                "privateKey": key_path,
                "httpPort": ports.http01,
                "tlsPort": ports.tls_alpn01,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false,
            }
        });
        let config_path = dir.path().join("pebble-config.json");
        std::fs::write(&config_path, config.to_string()).expect("write");

        let challtestsrv = KillOnDrop::spawn(
            Command::new(challtestsrv).args([
                "-dns01",
                &format!("127.0.0.1:{}", ports.dns),
                "-management",
                &format!("127.0.0.1:{}", ports.challtestsrv),
                "-http01",
                &format!("127.0.0.1:{}", ports.http01),
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
            .env("PEBBLE_WFE_ORDERS_PER_PAGE", "1")
            .env_remove("PEBBLE_VA_ALWAYS_VALID")
            .env_remove("PEBBLE_AUTHZREUSE");
        match nonce_reject {
            Some(percent) => command.env("PEBBLE_WFE_NONCEREJECT", percent.to_string()),
            None => command.env_remove("PEBBLE_WFE_NONCEREJECT"),
        };
        let pebble = KillOnDrop::spawn(&mut command, &dir.path().join("pebble.log"));
        let mut peers = Self {
            ports,
            tls_ca_pem,
            _pebble: pebble,
            _challtestsrv: challtestsrv,
            _dir: dir,
        };
        for port in [
            ports.challtestsrv,
            ports.http01,
            ports.acme,
            ports.management,
        ] {
            peers.wait_for(port);
        }
        Some(peers)
    }

    fn wait_for(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            for child in [&mut self._pebble, &mut self._challtestsrv] {
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

    async fn client(&self, options: ClientOptions) -> AcmeClient {
        let options = ClientOptions {
            ca_bundle_pem: Some(self.tls_ca_pem.clone().into_bytes()),
            ..options
        };
        let url = format!("https://127.0.0.1:{}/dir", self.ports.acme);
        AcmeClient::new(&url, options).await.expect("directory")
    }

    /// Pebble's issuing roots (fresh each start): the default, then the
    /// alternate.
    async fn roots(&self) -> Vec<String> {
        let ca = reqwest::Certificate::from_pem(self.tls_ca_pem.as_bytes()).expect("pem");
        let http = reqwest::Client::builder()
            .tls_certs_only([ca])
            .build()
            .expect("client");
        let mut roots = Vec::new();
        for i in 0..2 {
            let url = format!("https://127.0.0.1:{}/roots/{i}", self.ports.management);
            let response = http.get(&url).send().await.expect("roots");
            assert!(
                response.status().is_success(),
                "{url}: {}",
                response.status()
            );
            roots.push(response.text().await.expect("root PEM"));
        }
        roots
    }

    /// POSTs to challtestsrv's management API.
    async fn challtestsrv(&self, path: &str, body: serde_json::Value) {
        let url = format!("http://127.0.0.1:{}/{path}", self.ports.challtestsrv);
        let response = reqwest::Client::new()
            .post(&url)
            .body(body.to_string())
            .send()
            .await
            .expect("challtestsrv");
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
    }
}

impl Drop for Peers {
    /// On a failing test, shows what the peers said: their logs go with
    /// the temporary directory.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for child in [&self._pebble, &self._challtestsrv] {
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
            panic!(
                "CAIRN_PEBBLE=1 but {name} is not on PATH: install it with \
                 `apt-get install -y pebble`"
            )
        })
}

/// A throw-away CA and, signed by it, a certificate for Pebble's HTTPS
/// listener on localhost, 127.0.0.1 and ::1: (CA PEM, cert PEM, key PEM).
fn loopback_tls_certificate() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa};
    let mut ca_params = CertificateParams::default();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "cairn pebble test TLS CA");
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
