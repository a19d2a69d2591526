//! The proxy against real peers: dns-01 by RFC 2136 against BIND 9
//! (`CAIRN_BIND=1`), and Pebble with its badNonce chaos as the CA
//! (`CAIRN_PEBBLE=1`) by each challenge alone.

use std::net::SocketAddr;

use crate::bind::Bind;
use crate::harness::{Ca, free_port};
use crate::pebble_peers::{Peers, Ports};
use crate::support::{Proxy, upstream};

/// dns-01 alone through the agent's RFC 2136 solver: BIND is authoritative
/// for `test.` and is the CA's resolver, and has no address records for the
/// names, so only the TXT records the proxy adds can validate them. A
/// wildcard and its base name, set in proxy.toml with a `[dns]` table, are
/// served with a chain to the CA's root.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(not(peer_bind), ignore = "needs CAIRN_BIND=1 (and bind9)")]
async fn dns01_rfc2136_against_bind9() {
    let bind = Bind::start().await;
    let ca = Ca::start_with_resolver(Some(bind.addr())).await;
    let up = upstream("dns").await;
    // The [dns] table of proxy.toml (--dns-rfc2136-credentials is the
    // same setting as a flag).
    let file = ca.dir.path().join("proxy.toml");
    std::fs::write(
        &file,
        format!(
            "[acme]\nchallenges = [\"dns-01\"]\n\n\
             [dns]\nrfc2136_credentials = {credentials:?}\npropagation_seconds = 0\n\n\
             [[site]]\nnames = [\"*.px.test\", \"px.test\"]\nupstream = \"http://{up}\"\n",
            credentials = bind.credentials().to_string_lossy(),
        ),
    )
    .expect("write");
    let proxy = Proxy::start(&ca, &["--config", &file.to_string_lossy()]).await;
    let response = proxy.wait_until_served("px.test").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), "upstream dns saw /");
    let response = proxy
        .client(&["any.px.test"], true)
        .get(proxy.url("any.px.test", "/wild"))
        .send()
        .await
        .expect("the wildcard is in the certificate");
    assert_eq!(
        response.text().await.expect("body"),
        "upstream dns saw /wild"
    );
    proxy.wait_for_line("dns-01 TXT record added").await;
    let live = proxy.config_dir.join("live");
    let lineages: Vec<_> = std::fs::read_dir(&live)
        .expect("a lineage in live/")
        .filter_map(Result::ok)
        .collect();
    assert_eq!(lineages.len(), 1, "one certificate for both names");
}

/// Pebble (5 % of good nonces refused by default, authorizations reused at
/// random) issues the route's certificate through the proxy's own
/// listeners on Pebble's challenge ports, with the default challenges; the
/// upstream is served over HTTPS and HTTP/2 with a chain to Pebble's root.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(not(peer_pebble), ignore = "needs CAIRN_PEBBLE=1")]
async fn pebble_issues_and_the_upstream_is_served() {
    let peers = Peers::start_if_enabled(Ports::new(5), None).expect("CAIRN_PEBBLE=1");
    let up = upstream("pebble").await;
    let listen = Listen {
        http: loopback(peers.ports.http01),
        https: loopback(peers.ports.tls_alpn01),
    };
    let proxy = pebble_proxy(
        &peers,
        listen,
        &[
            "--route",
            &format!("px.cairn.test,www.px.cairn.test=http://{up}"),
        ],
    )
    .await;
    let response = proxy.wait_until_served("px.cairn.test").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.expect("body"),
        "upstream pebble saw /"
    );
    let response = proxy
        .client(&["www.px.cairn.test"], true)
        .get(proxy.url("www.px.cairn.test", "/h2"))
        .send()
        .await
        .expect("the second name is in the certificate");
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(
        response.text().await.expect("body"),
        "upstream pebble saw /h2"
    );
}

/// The share of good nonces Pebble refuses in the one-challenge tests:
/// high enough that every order meets badNonce errors (Pebble's default,
/// 5 %, may let a short order through untouched).
const NONCE_REJECT: u8 = 50;

/// tls-alpn-01 alone against Pebble: the HTTPS listener is on Pebble's
/// tlsPort, the HTTP listener on a port Pebble never dials.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(not(peer_pebble), ignore = "needs CAIRN_PEBBLE=1")]
async fn pebble_tls_alpn01_alone() {
    let peers = Peers::start_with_nonce_reject(Ports::new(7), None, Some(NONCE_REJECT))
        .expect("CAIRN_PEBBLE=1");
    let listen = Listen {
        http: loopback(free_port()),
        https: loopback(peers.ports.tls_alpn01),
    };
    served_by_pebble_with(&peers, listen, "tls-alpn-01", "alpn.px.cairn.test").await;
}

/// http-01 alone against Pebble: the HTTP listener is on Pebble's
/// httpPort, the HTTPS listener on a port Pebble never dials.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(not(peer_pebble), ignore = "needs CAIRN_PEBBLE=1")]
async fn pebble_http01_alone() {
    let peers = Peers::start_with_nonce_reject(Ports::new(8), None, Some(NONCE_REJECT))
        .expect("CAIRN_PEBBLE=1");
    let listen = Listen {
        http: loopback(peers.ports.http01),
        https: loopback(free_port()),
    };
    served_by_pebble_with(&peers, listen, "http-01", "http.px.cairn.test").await;
}

/// dns-01 alone against Pebble: Pebble resolves through a BIND that the
/// proxy updates by RFC 2136, and neither listener is on a port Pebble
/// dials. A wildcard and its base name share the certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(all(peer_pebble, peer_bind)),
    ignore = "needs CAIRN_PEBBLE=1 and CAIRN_BIND=1"
)]
async fn pebble_dns01_rfc2136_against_bind9() {
    let bind = Bind::start().await;
    let peers = Peers::start_with_dns_server(Ports::new(9), Some(NONCE_REJECT), bind.addr())
        .expect("CAIRN_PEBBLE=1");
    let up = upstream("pebble-dns").await;
    let listen = Listen {
        http: loopback(free_port()),
        https: loopback(free_port()),
    };
    let proxy = pebble_proxy(
        &peers,
        listen,
        &[
            "--challenges",
            "dns-01",
            "--dns-rfc2136-credentials",
            &bind.credentials().to_string_lossy(),
            "--dns-rfc2136-propagation-seconds",
            "0",
            "--route",
            &format!("pb.test,*.pb.test=http://{up}"),
        ],
    )
    .await;
    let response = proxy.wait_until_served("pb.test").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.expect("body"),
        "upstream pebble-dns saw /"
    );
    let response = proxy
        .client(&["any.pb.test"], true)
        .get(proxy.url("any.pb.test", "/wild"))
        .send()
        .await
        .expect("the wildcard is in the certificate");
    assert_eq!(
        response.text().await.expect("body"),
        "upstream pebble-dns saw /wild"
    );
    answered_only(&proxy, "dns-01").await;
    met_bad_nonces(&proxy);
}

/// Where the proxy listens.
#[derive(Clone, Copy, Debug)]
struct Listen {
    http: SocketAddr,
    https: SocketAddr,
}

fn loopback(port: u16) -> SocketAddr {
    ([127, 0, 0, 1], port).into()
}

/// With only `challenge` turned on, the proxy gets `name`'s certificate
/// from Pebble, past its badNonce errors, and serves the upstream's bytes
/// with a chain to Pebble's root.
async fn served_by_pebble_with(peers: &Peers, listen: Listen, challenge: &str, name: &str) {
    let up = upstream("pebble").await;
    let proxy = pebble_proxy(
        peers,
        listen,
        &[
            "--challenges",
            challenge,
            "--route",
            &format!("{name}=http://{up}"),
        ],
    )
    .await;
    let response = proxy.wait_until_served(name).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.expect("body"),
        "upstream pebble saw /"
    );
    answered_only(&proxy, challenge).await;
    met_bad_nonces(&proxy);
}

/// The proxy answered `challenge` (its log says so), and no other type.
async fn answered_only(proxy: &Proxy, challenge: &str) {
    proxy.wait_for_line("answering").await;
    let answered: Vec<String> = proxy
        .lines
        .lock()
        .expect("lines")
        .iter()
        .map(|line| without_colours(line))
        .filter(|line| line.contains(" answering "))
        .collect();
    let want = format!("challenge={challenge}");
    assert!(
        answered.iter().all(|line| line.ends_with(&want)),
        "not {challenge} alone: {answered:#?}"
    );
}

/// `line` without the ANSI colour sequences tracing adds.
fn without_colours(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ parameters m
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// `cairn proxy` against Pebble on `listen`, trusting Pebble's first root
/// (the one its chains lead to), with `extra` flags.
async fn pebble_proxy(peers: &Peers, listen: Listen, extra: &[&str]) -> Proxy {
    let roots = peers.roots().await;
    let root_pem = peers.dir.path().join("pebble-root.pem");
    std::fs::write(&root_pem, &roots[0]).expect("write");
    let config_dir = peers.dir.path().join("proxy");
    let mut args: Vec<String> = [
        "proxy",
        "--server",
        &format!("https://127.0.0.1:{}/dir", peers.ports.acme),
        "--ca-bundle",
        &peers.tls_ca.to_string_lossy(),
        "--agree-tos",
        "-m",
        "admin@example.com",
        "--http-listen",
        &listen.http.to_string(),
        "--https-listen",
        &listen.https.to_string(),
        "--control-socket",
        &config_dir.join("proxy.sock").to_string_lossy(),
        "--config-dir",
        &config_dir.to_string_lossy(),
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    // cairn-client says at debug level when it retries after a badNonce.
    Proxy::spawn_logging(&args, &config_dir, &root_pem, "info,cairn_client=debug").await
}

/// The proxy met Pebble's badNonce errors and retried past them.
fn met_bad_nonces(proxy: &Proxy) {
    let retries = proxy
        .lines
        .lock()
        .expect("lines")
        .iter()
        .filter(|line| line.contains("badNonce; retrying"))
        .count();
    eprintln!("{retries} badNonce retries");
    assert!(retries > 0, "Pebble refused no nonce: its chaos is off");
}
