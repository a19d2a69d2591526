//! cairn-tls against an in-process cairn-ca: certificates obtained through
//! each challenge type and served by SNI, renewals swapped in under load,
//! storage shared by two managers, CA fallback, on-demand issuance,
//! revocation, and ARI.

mod harness;
mod pebble;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cairn_tls::{CaConfig, Challenge, Event, OnDemand, Timings, TlsManager};
use harness::{Ca, TestDns, fetch, roots, serve_http01, serve_https};

/// Quick maintenance for tests.
fn fast() -> Timings {
    Timings {
        check_interval: Duration::from_millis(500),
        retry_base: Duration::from_millis(200),
        retry_max: Duration::from_secs(2),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_alpn01_obtains_stores_and_serves() {
    let ca = Ca::start().await;
    let dir = ca.config_dir("server");
    let manager = TlsManager::builder(&dir)
        .certificate(["a.example", "www.a.example"])
        .ca(ca.ca_config())
        .challenges(&[Challenge::TlsAlpn01])
        .build()
        .expect("manager");
    let _https = serve_https(manager.clone(), ca.tls_alpn01_port).await;
    let summary = manager
        .obtain(&["a.example", "www.a.example"])
        .await
        .expect("obtained via tls-alpn-01");
    assert_eq!(summary.lineage, "a.example");

    let roots = roots(&ca.root_pem());
    for name in ["a.example", "www.a.example"] {
        let (body, serial) = fetch(ca.tls_alpn01_port, name, &roots)
            .await
            .expect("served with a chain to the root");
        assert_eq!(body, format!("hello {name}"));
        assert_eq!(serial, summary.serial);
    }
    // A name the certificate does not cover fails the handshake.
    assert!(
        fetch(ca.tls_alpn01_port, "b.example", &roots)
            .await
            .is_err()
    );

    // The agent's layout: live links, 0600 key, a managed renewal file.
    let live = dir.join("live/a.example");
    for kind in ["cert", "chain", "fullchain", "privkey"] {
        let link = std::fs::read_link(live.join(format!("{kind}.pem"))).expect("a link");
        assert_eq!(
            link,
            std::path::Path::new("../../archive/a.example").join(format!("{kind}1.pem"))
        );
    }
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir.join("archive/a.example/privkey1.pem"))
        .expect("key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let renewal = std::fs::read_to_string(dir.join("renewal/a.example.toml")).expect("renewal");
    assert!(renewal.contains("kind = \"managed\""), "{renewal}");
    assert!(renewal.contains("by = \"cairn-tls\""), "{renewal}");
    assert_eq!(manager.metrics().orders, 1);

    // A second manager on the same directory serves the stored certificate
    // at once, without an order.
    let again = TlsManager::builder(&dir)
        .certificate(["a.example", "www.a.example"])
        .ca(ca.ca_config())
        .build()
        .expect("manager");
    assert_eq!(
        again.certificate("www.a.example").expect("loaded").serial,
        summary.serial
    );
    assert_eq!(ca.orders(&dir).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_obtains_and_serves() {
    let ca = Ca::start().await;
    let manager = TlsManager::builder(ca.config_dir("server"))
        .certificate(["h.example"])
        .ca(ca.ca_config())
        .challenges(&[Challenge::Http01])
        .build()
        .expect("manager");
    let _http = serve_http01(manager.clone(), ca.http01_port).await;
    let port = harness::free_port();
    let _https = serve_https(manager.clone(), port).await;
    let mut events = manager.events();
    manager.start();
    let event = tokio::time::timeout(Duration::from_secs(60), events.recv())
        .await
        .expect("an event in time")
        .expect("event");
    let Event::Obtained { name, serial, .. } = event else {
        panic!("expected Obtained, got {event:?}");
    };
    assert_eq!(name, "h.example");
    let (body, served) = fetch(port, "h.example", &roots(&ca.root_pem()))
        .await
        .expect("served");
    assert_eq!(body, "hello h.example");
    assert_eq!(served, serial);
    manager.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_and_default_selection_with_dns01() {
    let ca = Ca::start().await;
    let manager = TlsManager::builder(ca.config_dir("server"))
        .certificate(["*.w.example"])
        .certificate(["w.example"])
        .default_name("w.example")
        .ca(ca.ca_config())
        .challenges(&[Challenge::TlsAlpn01])
        .dns_solver(Arc::new(TestDns(ca.dns.records().clone())))
        .build()
        .expect("manager");
    let _https = serve_https(manager.clone(), ca.tls_alpn01_port).await;
    let wildcard = manager
        .obtain(&["*.w.example"])
        .await
        .expect("wildcard via dns-01");
    let apex = manager
        .obtain(&["w.example"])
        .await
        .expect("apex via tls-alpn-01");
    assert_ne!(wildcard.serial, apex.serial);
    // Exact, then one label of wildcard, then the default.
    let pick = |sni: &str| manager.certificate(sni).map(|c| c.serial);
    assert_eq!(pick("w.example"), Some(apex.serial.clone()));
    assert_eq!(pick("a.w.example"), Some(wildcard.serial.clone()));
    assert_eq!(
        pick("b.a.w.example"),
        Some(apex.serial.clone()),
        "two labels: default"
    );
    assert_eq!(pick("other.example"), Some(apex.serial.clone()), "default");

    let roots = roots(&ca.root_pem());
    let (body, serial) = fetch(ca.tls_alpn01_port, "a.w.example", &roots)
        .await
        .expect("the wildcard is served");
    assert_eq!(body, "hello a.w.example");
    assert_eq!(serial, wildcard.serial);
    // The default certificate does not cover other names: the client refuses it.
    assert!(
        fetch(ca.tls_alpn01_port, "other.example", &roots)
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewals_swap_in_under_load_without_failures() {
    let ca = Ca::start().await;
    let manager = TlsManager::builder(ca.config_dir("server"))
        .certificate(["r.example"])
        .ca(ca.ca_config())
        .challenges(&[Challenge::TlsAlpn01])
        .requested_validity(Duration::from_secs(9))
        .timings(fast())
        .build()
        .expect("manager");
    let _https = serve_https(manager.clone(), ca.tls_alpn01_port).await;
    let mut events = manager.events();
    manager.start();
    let first = manager.obtain(&["r.example"]).await.expect("first").serial;

    let roots = roots(&ca.root_pem());
    let failures = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let serials = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (roots, failures, requests, serials, stop) = (
            roots.clone(),
            failures.clone(),
            requests.clone(),
            serials.clone(),
            stop.clone(),
        );
        let port = ca.tls_alpn01_port;
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match fetch(port, "r.example", &roots).await {
                    Ok((body, serial)) if body == "hello r.example" => {
                        serials.lock().expect("lock").insert(serial);
                    }
                    other => {
                        eprintln!("request failed: {other:?}");
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                requests.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut renewed = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while renewed.len() < 2 {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("two renewals in time")
            .expect("event");
        if let Event::Renewed { serial, .. } = event {
            renewed.push(serial);
        }
    }
    // Let the clients see the second renewal.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("client");
    }
    manager.stop();
    let serials = serials.lock().expect("lock").clone();
    eprintln!(
        "{} requests, {} failed, serials {serials:?}",
        requests.load(Ordering::Relaxed),
        failures.load(Ordering::Relaxed)
    );
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    assert!(requests.load(Ordering::Relaxed) > 20);
    assert!(serials.contains(&first));
    assert!(
        serials.contains(&renewed[1]),
        "the second renewal was served"
    );
    assert_eq!(manager.metrics().renewed, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_managers_sharing_a_directory_make_one_order() {
    let ca = Ca::start().await;
    let dir = ca.config_dir("shared");
    // dns-01, so that whichever manager orders can answer: both publish to
    // the same DNS.
    let build = || {
        TlsManager::builder(&dir)
            .certificate(["s.example"])
            .ca(ca.ca_config())
            .challenges(&[])
            .dns_solver(Arc::new(TestDns(ca.dns.records().clone())))
            .build()
            .expect("manager")
    };
    let (one, two) = (build(), build());
    let (a, b) = tokio::join!(one.obtain(&["s.example"]), two.obtain(&["s.example"]));
    let (a, b) = (a.expect("one"), b.expect("two"));
    assert_eq!(
        a.serial, b.serial,
        "the second loaded what the first stored"
    );
    assert_eq!(ca.orders(&dir).await, 1);
    assert_eq!(one.metrics().orders + two.metrics().orders, 1);
    assert_eq!(one.metrics().loaded + two.metrics().loaded, 1);
}

/// Managers (processes) starting together on an empty directory register
/// one account between them: both orders belong to the saved account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managers_sharing_a_new_directory_register_one_account() {
    let ca = Ca::start().await;
    let dir = ca.config_dir("fresh");
    let build = |name: &'static str| {
        TlsManager::builder(&dir)
            .certificate([name])
            .ca(ca.ca_config())
            .challenges(&[])
            .dns_solver(Arc::new(TestDns(ca.dns.records().clone())))
            .build()
            .expect("manager")
    };
    let (one, two) = (build("a.example"), build("b.example"));
    let (a, b) = tokio::join!(one.obtain(&["a.example"]), two.obtain(&["b.example"]));
    a.expect("a.example");
    b.expect("b.example");
    assert_eq!(
        ca.orders(&dir).await,
        2,
        "both orders were placed by the one saved account"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falls_back_to_the_second_ca() {
    let ca = Ca::start().await;
    let down = format!("https://127.0.0.1:{}/dir", harness::free_port());
    let dir = ca.config_dir("server");
    let manager = TlsManager::builder(&dir)
        .certificate(["f.example"])
        .ca(CaConfig::new(down).ca_bundle_pem(ca.root_pem()))
        .ca(ca.ca_config())
        .challenges(&[Challenge::TlsAlpn01])
        .build()
        .expect("manager");
    let _https = serve_https(manager.clone(), ca.tls_alpn01_port).await;
    let summary = manager
        .obtain(&["f.example"])
        .await
        .expect("from the second CA");
    let (_, serial) = fetch(ca.tls_alpn01_port, "f.example", &roots(&ca.root_pem()))
        .await
        .expect("served");
    assert_eq!(serial, summary.serial);
    assert_eq!(manager.metrics().failures, 1, "the first CA failed once");
    let renewal = std::fs::read_to_string(dir.join("renewal/f.example.toml")).expect("renewal");
    assert!(renewal.contains(&ca.running.directory_url), "{renewal}");
}

fn allow_suffix(suffix: &'static str) -> OnDemand {
    OnDemand::new(move |name: &str| {
        let ok = name.ends_with(suffix);
        Box::pin(async move { ok })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_demand_allows_refuses_and_coalesces() {
    let ca = Ca::start().await;
    let dir = ca.config_dir("server");
    let manager = TlsManager::builder(&dir)
        .ca(ca.ca_config())
        .challenges(&[Challenge::TlsAlpn01])
        .on_demand(allow_suffix(".ok.example").handshake_timeout(Duration::from_secs(60)))
        .build()
        .expect("manager");
    let _https = serve_https(manager.clone(), ca.tls_alpn01_port).await;
    let roots = roots(&ca.root_pem());

    // Allowed: the first handshake gets it.
    let (body, _) = fetch(ca.tls_alpn01_port, "one.ok.example", &roots)
        .await
        .expect("allowed name served on first handshake");
    assert_eq!(body, "hello one.ok.example");
    assert_eq!(ca.orders(&dir).await, 1);

    // Refused: a TLS alert, no order.
    let refused = fetch(ca.tls_alpn01_port, "evil.example", &roots).await;
    let error = refused.expect_err("refused");
    assert!(error.contains("handshake"), "{error}");
    assert_eq!(ca.orders(&dir).await, 1, "no order for a refused name");
    assert!(manager.metrics().on_demand_refused >= 1);

    // 50 concurrent handshakes for a new name: one order, all served.
    let mut handshakes = Vec::new();
    for _ in 0..50 {
        let roots = roots.clone();
        let port = ca.tls_alpn01_port;
        handshakes.push(tokio::spawn(async move {
            fetch(port, "many.ok.example", &roots).await
        }));
    }
    let mut serials = std::collections::BTreeSet::new();
    for handshake in handshakes {
        let (body, serial) = handshake.await.expect("task").expect("served");
        assert_eq!(body, "hello many.ok.example");
        serials.insert(serial);
    }
    assert_eq!(serials.len(), 1);
    assert_eq!(ca.orders(&dir).await, 2, "one order for 50 handshakes");
    manager.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_demand_rate_limits_stop_a_scanner() {
    let ca = Ca::start().await;
    let dir = ca.config_dir("server");
    let manager = TlsManager::builder(&dir)
        .ca(ca.ca_config())
        .challenges(&[Challenge::TlsAlpn01])
        .on_demand(
            OnDemand::new(|_: &str| Box::pin(async { true }))
                .global_rate(2, Duration::from_secs(3600)),
        )
        .build()
        .expect("manager");
    let _https = serve_https(manager.clone(), ca.tls_alpn01_port).await;
    let roots = roots(&ca.root_pem());
    let mut served = 0;
    for i in 0..5 {
        if fetch(ca.tls_alpn01_port, &format!("scan{i}.example"), &roots)
            .await
            .is_ok()
        {
            served += 1;
        }
    }
    assert_eq!(served, 2, "the global bucket holds two orders");
    assert_eq!(ca.orders(&dir).await, 2);
    assert_eq!(manager.metrics().on_demand_refused, 3);
    manager.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_certificate_is_renewed_from_its_crl() {
    let ca = Ca::start().await;
    let dir = ca.config_dir("server");
    let manager = TlsManager::builder(&dir)
        .certificate(["v.example"])
        .ca(ca.ca_config())
        .challenges(&[Challenge::TlsAlpn01])
        .renewal_info(false)
        .timings(fast())
        .build()
        .expect("manager");
    let _https = serve_https(manager.clone(), ca.tls_alpn01_port).await;
    let mut events = manager.events();
    manager.start();
    let first = manager.obtain(&["v.example"]).await.expect("obtained");
    revoke(&ca, &dir, "v.example").await;
    let renewed = next_renewal(&mut events).await;
    assert_ne!(renewed, first.serial);
    assert_eq!(manager.metrics().revoked, 1);
    let (_, serial) = fetch(ca.tls_alpn01_port, "v.example", &roots(&ca.root_pem()))
        .await
        .expect("served");
    assert_eq!(serial, renewed);
    manager.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ari_decides_when_to_renew() {
    let ca = Ca::start().await;
    let dir = ca.config_dir("server");
    // A 30 s certificate: without ARI it would be renewed at half its
    // lifetime; the CA's window starts at two thirds.
    let manager = TlsManager::builder(&dir)
        .certificate(["ari.example"])
        .ca(ca.ca_config())
        .challenges(&[Challenge::TlsAlpn01])
        .requested_validity(Duration::from_secs(30))
        .timings(fast())
        .build()
        .expect("manager");
    let _https = serve_https(manager.clone(), ca.tls_alpn01_port).await;
    let mut events = manager.events();
    manager.start();
    let first = manager.obtain(&["ari.example"]).await.expect("obtained");
    let lifetime = first.not_after - first.not_before;
    let at = loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .expect("an event")
            .expect("event");
        if let Event::NextRenewal { at, .. } = event {
            break at;
        }
    };
    assert!(
        at >= first.not_before + lifetime * 2 / 3 - time::Duration::seconds(1)
            && at <= first.not_before + lifetime * 3 / 4 + time::Duration::seconds(1),
        "{at} is in the ARI window of {} .. {}",
        first.not_before,
        first.not_after
    );

    manager.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ari_renews_a_revoked_certificate_with_replaces() {
    let ca = Ca::start().await;
    let dir = ca.config_dir("server");
    // CRL checks off: only ARI (whose window moves into the past on
    // revocation) can notice.
    let manager = TlsManager::builder(&dir)
        .certificate(["ari2.example"])
        .ca(ca.ca_config())
        .challenges(&[Challenge::TlsAlpn01])
        .crl_checks(false)
        .timings(fast())
        .build()
        .expect("manager");
    let _https = serve_https(manager.clone(), ca.tls_alpn01_port).await;
    let mut events = manager.events();
    manager.start();
    let first = manager.obtain(&["ari2.example"]).await.expect("obtained");
    revoke(&ca, &dir, "ari2.example").await;
    let renewed = next_renewal(&mut events).await;
    assert_ne!(renewed, first.serial);
    assert_eq!(manager.metrics().revoked, 0, "not through the CRL");
    // Two orders: the second carried `replaces` and the CA accepted it (a
    // refusal would have made a third order without it).
    assert_eq!(manager.metrics().orders, 2);
    assert_eq!(ca.orders(&dir).await, 2);
    manager.stop();
}

async fn next_renewal(events: &mut tokio::sync::broadcast::Receiver<Event>) -> String {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(60), events.recv())
            .await
            .expect("a renewal in time")
            .expect("event");
        if let Event::Renewed { serial, .. } = event {
            return serial;
        }
    }
}

/// Revokes the live certificate of `lineage` with its own key.
async fn revoke(ca: &Ca, dir: &std::path::Path, lineage: &str) {
    let client = cairn_client::AcmeClient::new(
        &ca.running.directory_url,
        cairn_client::ClientOptions {
            ca_bundle_pem: Some(ca.root_pem()),
            ..cairn_client::ClientOptions::default()
        },
    )
    .await
    .expect("client");
    let cert = std::fs::read_to_string(dir.join(format!("live/{lineage}/cert.pem"))).expect("cert");
    let key =
        std::fs::read_to_string(dir.join(format!("live/{lineage}/privkey.pem"))).expect("key");
    let der = cairn_proto::pem::decode_one(&cert, "CERTIFICATE").expect("der");
    let key = cairn_proto::KeyPair::from_pkcs8_pem(&key).expect("key");
    cairn_client::revoke_with_certificate_key(&client, &der, &key, Some(1))
        .await
        .expect("revoked");
}
