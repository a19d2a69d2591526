//! cairn-tls against Pebble (Debian package `pebble`, with its default
//! chaos: 5 % of good nonces refused) and pebble-challtestsrv as its DNS.
//! Runs with `CAIRN_PEBBLE=1`; then a missing binary fails the test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn_tls::{CaConfig, Challenge, TlsManager};

use crate::harness::{fetch, free_port, roots, serve_https};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(peer_pebble), ignore = "needs CAIRN_PEBBLE=1")]
async fn pebble_tls_alpn01_obtains_and_serves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (acme, management, tls_alpn01, dns, challtestsrv) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let (tls_ca, cert, key) = loopback_tls_certificate();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let cert_path = write("cert.pem", &cert);
    let key_path = write("key.pem", &key);
    let config = serde_json::json!({ "pebble": {
        "listenAddress": format!("127.0.0.1:{acme}"),
        "managementListenAddress": format!("127.0.0.1:{management}"),
        "certificate": cert_path, "privateKey": key_path,
        "httpPort": free_port(), "tlsPort": tls_alpn01,
        "ocspResponderURL": "", "externalAccountBindingRequired": false,
    }});
    let config_path = write("pebble.json", &config.to_string());
    let _dns = Spawned::new(
        Command::new(binary("pebble-challtestsrv")).args([
            "-dns01",
            &format!("127.0.0.1:{dns}"),
            "-management",
            &format!("127.0.0.1:{challtestsrv}"),
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
    let _pebble = Spawned::new(
        Command::new(binary("pebble"))
            .arg("-config")
            .arg(&config_path)
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env_remove("PEBBLE_VA_ALWAYS_VALID")
            .env_remove("PEBBLE_WFE_NONCEREJECT"),
        &dir.path().join("pebble.log"),
    );
    for port in [acme, management, challtestsrv] {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nothing listens on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    let manager = TlsManager::builder(dir.path().join("cairn"))
        .certificate(["tls.cairn.test"])
        .ca(CaConfig::new(format!("https://127.0.0.1:{acme}/dir"))
            .ca_bundle_pem(tls_ca.clone().into_bytes()))
        .challenges(&[Challenge::TlsAlpn01])
        .build()
        .expect("manager");
    let _https = serve_https(manager.clone(), tls_alpn01).await;
    let summary = manager
        .obtain(&["tls.cairn.test"])
        .await
        .expect("obtained from Pebble");
    let root = reqwest::Client::builder()
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(tls_ca.as_bytes()).expect("pem"))
        .build()
        .expect("client")
        .get(format!("https://127.0.0.1:{management}/roots/0"))
        .send()
        .await
        .expect("GET the root")
        .bytes()
        .await
        .expect("root");
    let (body, serial) = fetch(tls_alpn01, "tls.cairn.test", &roots(&root))
        .await
        .expect("served with a chain to Pebble's root");
    assert_eq!(body, "hello tls.cairn.test");
    assert_eq!(serial, summary.serial);
}

struct Spawned(Child);

impl Spawned {
    fn new(command: &mut Command, log: &Path) -> Self {
        let out = std::fs::File::create(log).expect("log");
        let err = out.try_clone().expect("log");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {command:?}: {e}"));
        Self(child)
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn binary(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!("CAIRN_PEBBLE=1 but {name} is not on PATH (apt-get install pebble)")
        })
}

/// A throw-away CA and a certificate from it for Pebble's HTTPS listener.
fn loopback_tls_certificate() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa};
    let mut ca_params = CertificateParams::default();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "cairn-tls pebble test TLS CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().expect("key"))
        .expect("CA");
    let key = rcgen::KeyPair::generate().expect("key");
    let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("params");
    let cert = params.signed_by(&key, &ca).expect("certificate");
    (ca.pem(), cert.pem(), key.serialize_pem())
}
