//! http-01 (RFC 8555 §8.3).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cairn_ca::va::{VaConfig, Validator};
use cairn_proto::objects::ChallengeType;
use cairn_proto::{Identifier, ProblemType};
use tokio::net::TcpListener;

use crate::support::{
    FakeDns, Seen, closed_port, config, ok, redirect, request, serve_http, status, validator,
};

fn http01(name: &str) -> cairn_ca::va::ValidationRequest {
    request(Identifier::dns(name), ChallengeType::Http01)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A validator for `a.example` → 127.0.0.1 and an HTTP server answering
/// with `respond`.
async fn setup<F>(respond: F) -> (FakeDns, VaConfig)
where
    F: Fn(&Seen) -> Vec<u8> + Send + Sync + 'static,
{
    let dns = FakeDns::start().await;
    dns.ip("a.example", "127.0.0.1");
    let server = serve_http(respond).await;
    let config = VaConfig {
        http01_port: server.port(),
        ..config(&dns)
    };
    (dns, config)
}

#[tokio::test]
async fn serves_the_key_authorization() {
    let req = http01("a.example");
    let (ka, path) = (req.key_authorization.clone(), req.token.http01_path());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let (_dns, config) = setup(move |s| {
        log.lock().unwrap().push(s.clone());
        // Trailing whitespace is ignored (RFC 8555 §8.3).
        ok(&format!("{ka}\r\n"))
    })
    .await;
    let port = config.http01_port;
    let record = validator(config).validate(&req).await.unwrap();

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, path);
    assert_eq!(seen[0].host, format!("a.example:{port}"));
    assert_eq!(record.connections.len(), 1);
    let hop = &record.connections[0];
    assert_eq!(
        hop.url.as_deref(),
        Some(format!("http://a.example:{port}{path}").as_str())
    );
    assert_eq!(hop.addresses_resolved, vec![ip("127.0.0.1")]);
    assert_eq!(hop.address_used, Some(ip("127.0.0.1")));
    assert_eq!(record.caa, None);
}

#[tokio::test]
async fn ip_identifiers_are_fetched_from_the_address() {
    let mut req = http01("unused");
    req.identifier = Identifier::ip(ip("127.0.0.1"));
    let ka = req.key_authorization.clone();
    let hosts = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&hosts);
    let (_dns, config) = setup(move |s| {
        log.lock().unwrap().push(s.host.clone());
        ok(&ka)
    })
    .await;
    let port = config.http01_port;
    let record = validator(config).validate(&req).await.unwrap();
    assert_eq!(*hosts.lock().unwrap(), vec![format!("127.0.0.1:{port}")]);
    assert_eq!(record.connections[0].address_used, Some(ip("127.0.0.1")));
}

#[tokio::test]
async fn a_wrong_body_is_unauthorized() {
    let req = http01("a.example");
    let (_dns, config) = setup(|_| ok("not-it\u{1b}[31m")).await;
    let port = config.http01_port;
    let err = validator(config).validate(&req).await.unwrap_err();
    assert_eq!(err.kind, ProblemType::Unauthorized);
    assert_eq!(
        err.detail,
        format!(
            "fetched http://a.example:{port}{} from 127.0.0.1: the response is not the key \
             authorization (got \"not-it\\u{{1b}}[31m\")",
            req.token.http01_path()
        )
    );
}

#[tokio::test]
async fn not_found_is_unauthorized() {
    let req = http01("a.example");
    let (_dns, config) = setup(|_| status(404)).await;
    let err = validator(config).validate(&req).await.unwrap_err();
    assert_eq!(err.kind, ProblemType::Unauthorized);
    assert!(
        err.detail.contains("from 127.0.0.1: got status 404"),
        "{}",
        err.detail
    );
}

#[tokio::test]
async fn redirects_are_followed() {
    let req = http01("a.example");
    let ka = req.key_authorization.clone();
    // The handler learns the server's port once it is listening.
    let own_port = Arc::new(AtomicU16::new(0));
    let port_seen = Arc::clone(&own_port);
    let (dns, config) = setup(move |s| match s.path.as_str() {
        "/final" => ok(&ka),
        "/hop" => redirect("final"),
        _ => redirect(&format!(
            "http://B.example:{}/hop",
            port_seen.load(Ordering::SeqCst)
        )),
    })
    .await;
    let port = config.http01_port;
    own_port.store(port, Ordering::SeqCst);
    dns.ip("b.example", "127.0.0.1");

    let record = validator(config).validate(&req).await.unwrap();
    let urls: Vec<_> = record
        .connections
        .iter()
        .map(|c| c.url.clone().unwrap())
        .collect();
    assert_eq!(
        urls,
        vec![
            format!("http://a.example:{port}{}", req.token.http01_path()),
            format!("http://b.example:{port}/hop"),
            format!("http://b.example:{port}/final"),
        ]
    );
    assert!(
        record
            .connections
            .iter()
            .all(|c| c.address_used == Some(ip("127.0.0.1")))
    );
}

#[tokio::test]
async fn more_than_ten_redirects_are_refused() {
    let req = http01("a.example");
    let count = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&count);
    let (_dns, config) = setup(move |_| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        redirect(&format!("/loop/{n}"))
    })
    .await;
    let validation = validator(config);
    let err = validation.validate(&req).await.unwrap_err();
    assert_eq!(err.kind, ProblemType::Connection);
    assert!(
        err.detail.contains("more than 10 redirects"),
        "{}",
        err.detail
    );
    // The first request and ten redirects were fetched, no more.
    assert_eq!(count.load(Ordering::SeqCst), 11);
}

#[tokio::test]
async fn redirects_to_other_ports_and_schemes_are_refused() {
    for (location, why) in [
        (
            "http://a.example:8080/x",
            "port 8080 is not allowed for http",
        ),
        (
            "https://a.example:8443/x",
            "port 8443 is not allowed for https (only 443)",
        ),
        ("ftp://a.example/x", "scheme \"ftp\" is not http or https"),
    ] {
        let req = http01("a.example");
        let (_dns, config) = setup(move |_| redirect(location)).await;
        let err = validator(config).validate(&req).await.unwrap_err();
        assert_eq!(err.kind, ProblemType::Connection, "{location}");
        assert!(err.detail.contains(why), "{location}: {}", err.detail);
    }
}

#[tokio::test]
async fn bodies_over_the_cap_are_refused() {
    let big = "x".repeat(100 * 1024);
    // Announced with Content-Length, and sent until the connection closes.
    let announced = ok(&big);
    let unannounced = format!("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{big}").into_bytes();
    for response in [announced, unannounced] {
        let req = http01("a.example");
        let (_dns, config) = setup(move |_| response.clone()).await;
        let err = validator(config).validate(&req).await.unwrap_err();
        assert_eq!(err.kind, ProblemType::Unauthorized);
        assert!(
            err.detail.contains("larger than 8192 bytes"),
            "{}",
            err.detail
        );
    }
}

#[tokio::test]
async fn oversized_headers_are_refused() {
    let req = http01("a.example");
    let junk = "a".repeat(20 * 1024);
    let response = format!("HTTP/1.1 200 OK\r\nX-Junk: {junk}\r\nContent-Length: 0\r\n\r\n");
    let (_dns, config) = setup(move |_| response.clone().into_bytes()).await;
    let err = validator(config).validate(&req).await.unwrap_err();
    assert_eq!(err.kind, ProblemType::Connection);
    assert!(
        err.detail.contains("fetching http://a.example"),
        "{}",
        err.detail
    );
}

#[tokio::test]
async fn connection_refused_is_a_connection_problem() {
    let dns = FakeDns::start().await;
    dns.ip("a.example", "127.0.0.1");
    let port = closed_port().await;
    let config = VaConfig {
        http01_port: port,
        ..config(&dns)
    };
    let err = validator(config)
        .validate(&http01("a.example"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ProblemType::Connection);
    assert_eq!(
        err.detail,
        format!("could not connect to 127.0.0.1:{port} for a.example: connection refused")
    );
}

#[tokio::test]
async fn ipv6_is_tried_first_then_ipv4() {
    let req = http01("a.example");
    let ka = req.key_authorization.clone();
    let (dns, config) = setup(move |_| ok(&ka)).await;
    // Nothing listens on [::1] at the server's port.
    dns.ip("a.example", "::1");
    let record = validator(config).validate(&req).await.unwrap();
    let hop = &record.connections[0];
    assert_eq!(hop.addresses_tried, vec![ip("::1"), ip("127.0.0.1")]);
    assert_eq!(hop.address_used, Some(ip("127.0.0.1")));
}

#[tokio::test]
async fn private_addresses_are_refused_in_production() {
    let req = http01("a.example");
    let ka = req.key_authorization.clone();
    let (_dns, config) = setup(move |_| ok(&ka)).await;
    let production = VaConfig {
        allow_private_addresses: false,
        ..config
    };
    let validation = validator(production);
    let err = validation.validate(&req).await.unwrap_err();
    assert_eq!(err.kind, ProblemType::Dns);
    assert_eq!(
        err.detail,
        "a.example resolves only to addresses the CA does not connect to: \
         127.0.0.1 (loopback address)"
    );

    let mut req = http01("unused");
    req.identifier = Identifier::ip(ip("10.0.0.1"));
    let err = validation.validate(&req).await.unwrap_err();
    assert_eq!(err.kind, ProblemType::Connection);
    assert_eq!(
        err.detail,
        "the CA does not connect to 10.0.0.1 (private address), which is not a public address"
    );
}

#[tokio::test]
async fn unknown_names_are_a_dns_problem() {
    let dns = FakeDns::start().await;
    let err = validator(config(&dns))
        .validate(&http01("nowhere.example"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ProblemType::Dns);
    assert_eq!(err.detail, "nowhere.example does not exist (NXDOMAIN)");
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let dns = FakeDns::start().await;
    dns.ip("a.example", "127.0.0.1");
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let config = VaConfig {
        http01_port: port,
        timeout_seconds: 1,
        ..config(&dns)
    };
    let err = validator(config)
        .validate(&http01("a.example"))
        .await
        .unwrap_err();
    held.abort();
    assert_eq!(err.kind, ProblemType::Connection);
    assert_eq!(
        err.detail,
        "http-01 validation of a.example did not finish within 1 second"
    );
}
