//! `cairn` against Pebble 2.4 (Debian package `pebble`) with the chaos
//! test clients get by default: 5 % of good nonces refused, authorizations
//! reused at random. pebble-challtestsrv is its DNS. Each test starts its
//! own pair on loopback ports of its own and kills them on drop.
//!
//! Runs only with `CAIRN_PEBBLE=1`; then missing binaries fail the test.

use std::time::{Duration, Instant};

use serde_json::json;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::harness::{check_lineage, ok, serve_directory};
use crate::pebble_peers::{Peers, Ports};

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
