//! Caddy (Debian, 2.6) as an ACME client of cairn-ca: it obtains a
//! certificate through http-01 alone and through tls-alpn-01 alone and
//! serves it; the served chain verifies against the CA's root. Before the
//! certificate download stopped sending `Link: rel="up"`, Caddy never got
//! a certificate from cairn-ca (RFC 8555 §7.4.2; docs/acme-divergences.md).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cairn_testkit::process::wait_for;
use cairn_testkit::webserver::caddy::Caddy;

use crate::harness::{Ca, check_issued};

#[derive(Clone, Copy, Debug)]
enum Challenge {
    Http01,
    TlsAlpn01,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(peer_caddy), ignore = "needs CAIRN_CADDY")]
async fn caddy_obtains_and_serves_a_certificate_via_http01() {
    caddy_obtains_and_serves(Challenge::Http01, "ch.example.com").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(peer_caddy), ignore = "needs CAIRN_CADDY")]
async fn caddy_obtains_and_serves_a_certificate_via_tls_alpn01() {
    caddy_obtains_and_serves(Challenge::TlsAlpn01, "ct.example.com").await;
}

async fn caddy_obtains_and_serves(challenge: Challenge, name: &'static str) {
    let ca = Ca::start().await;
    let home = ca.work("caddy");
    let directory = ca.directory().to_owned();
    let root = ca.root_pem().to_owned();
    // The CA validates on these ports: Caddy must listen there.
    let (http_port, https_port) = (ca.http01_port, ca.tls_alpn01_port);
    let disable = match challenge {
        Challenge::Http01 => "disable_tlsalpn_challenge",
        Challenge::TlsAlpn01 => "disable_http_challenge",
    };
    let site = format!(
        "{name} {{
    tls {{
        issuer acme {{
            dir {directory}
            trusted_roots {root}
            email caddy@example.com
            {disable}
        }}
    }}
    respond \"hello from caddy over cairn-ca\"
}}
",
        root = root.display()
    );
    let ca = tokio::task::spawn_blocking(move || {
        let caddy = Caddy::start_on(&home, http_port, https_port, "", &site).expect("Caddy starts");
        let body = fetch_until_served(&caddy, name, &root);
        assert_eq!(body, "hello from caddy over cairn-ca");
        let (leaf, chain) = served_chain(&home, caddy.https_port(), name);
        check_issued(&root, &leaf, &chain, &[name]);
        let log = caddy.log_tail(200);
        assert!(
            log.contains("certificate obtained successfully"),
            "Caddy's log:\n{log}"
        );
        ca
    })
    .await
    .expect("Caddy test");
    drop(ca);
}

/// Polls `https://NAME:PORT/` with curl trusting only the CA's root until
/// Caddy serves the page (it obtains the certificate in the background).
fn fetch_until_served(caddy: &Caddy, name: &str, root: &Path) -> String {
    let port = caddy.https_port();
    let mut body = String::new();
    let served = wait_for(
        &format!("Caddy to serve https://{name}:{port}/"),
        Duration::from_secs(90),
        || {
            let output = Command::new("curl")
                .args(["-sf", "--max-time", "5", "--cacert"])
                .arg(root)
                .arg("--resolve")
                .arg(format!("{name}:{port}:127.0.0.1"))
                .arg(format!("https://{name}:{port}/"))
                .output()
                .expect("curl runs");
            body = String::from_utf8_lossy(&output.stdout).into_owned();
            output.status.success()
        },
    );
    if let Err(error) = served {
        panic!("{error:#}\nCaddy's log:\n{}", caddy.log_tail(60));
    }
    body
}

/// The certificates Caddy presents for `name`, as (leaf file, chain file).
fn served_chain(dir: &Path, port: u16, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let output = Command::new("openssl")
        .args(["s_client", "-showcerts", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-servername", name])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let mut blocks = Vec::new();
    let mut rest = text.as_ref();
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let end = rest[start..]
            .find("-----END CERTIFICATE-----")
            .expect("a whole PEM block")
            + start
            + "-----END CERTIFICATE-----".len();
        blocks.push(format!("{}\n", &rest[start..end]));
        rest = &rest[end..];
    }
    assert!(blocks.len() >= 2, "leaf and intermediate served:\n{text}");
    let (leaf, chain) = (dir.join("served-leaf.pem"), dir.join("served-chain.pem"));
    std::fs::write(&leaf, &blocks[0]).expect("write leaf");
    std::fs::write(&chain, blocks[1..].concat()).expect("write chain");
    (leaf, chain)
}
