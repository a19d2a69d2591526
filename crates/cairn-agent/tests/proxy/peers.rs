//! The proxy against real peers: dns-01 by RFC 2136 against BIND 9
//! (`CAIRN_BIND=1`), and Pebble with its badNonce chaos as the CA
//! (`CAIRN_PEBBLE=1`).

use crate::bind::Bind;
use crate::harness::Ca;
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
/// listeners on Pebble's challenge ports; the upstream is served over
/// HTTPS and HTTP/2 with a chain to Pebble's root.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(not(peer_pebble), ignore = "needs CAIRN_PEBBLE=1")]
async fn pebble_issues_and_the_upstream_is_served() {
    let peers = Peers::start_if_enabled(Ports::new(5), None).expect("CAIRN_PEBBLE=1");
    let roots = peers.roots().await;
    let root_pem = peers.dir.path().join("pebble-root.pem");
    std::fs::write(&root_pem, &roots[0]).expect("write");
    let up = upstream("pebble").await;
    let config_dir = peers.dir.path().join("proxy");
    let args: Vec<String> = [
        "proxy",
        "--server",
        &format!("https://127.0.0.1:{}/dir", peers.ports.acme),
        "--ca-bundle",
        &peers.tls_ca.to_string_lossy(),
        "--agree-tos",
        "-m",
        "admin@example.com",
        "--http-listen",
        &format!("127.0.0.1:{}", peers.ports.http01),
        "--https-listen",
        &format!("127.0.0.1:{}", peers.ports.tls_alpn01),
        "--control-socket",
        &config_dir.join("proxy.sock").to_string_lossy(),
        "--config-dir",
        &config_dir.to_string_lossy(),
        "--route",
        &format!("px.cairn.test,www.px.cairn.test=http://{up}"),
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    let proxy = Proxy::spawn(&args, &config_dir, &root_pem).await;
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
