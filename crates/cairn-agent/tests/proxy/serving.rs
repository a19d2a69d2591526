//! What clients see: the upstream's bytes over HTTPS (HTTP/1.1 and HTTP/2)
//! with a chain to the CA root, the forwarding headers, error pages,
//! redirects, HSTS, websockets and the access log.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::harness::{Ca, free_port};
use crate::support::{Proxy, tls_connect, upstream, websocket_accept};

/// Reads an HTTP/1.1 response head (through the blank line).
async fn read_head<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.expect("read");
        assert!(n > 0, "closed mid-head: {}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    String::from_utf8(head).expect("ASCII head")
}

/// One proxy, three routes (a live upstream, a dead one, a slow one); the
/// certificate obtained by tls-alpn-01 alone on the HTTPS listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upstream_bytes_over_h1_and_h2_with_headers_errors_redirects_and_websockets() {
    let ca = Ca::start().await;
    let up = upstream("one").await;
    let dead = free_port();
    let log = ca.dir.path().join("access.log");
    let app = "app.example.com";
    let proxy = Proxy::start(
        &ca,
        &[
            "--route",
            &format!("{app}=http://{up}"),
            "--route",
            &format!("dead.example.com=http://127.0.0.1:{dead}"),
            "--route",
            &format!("slow.example.com=http://{up}"),
            "--challenges",
            "tls-alpn-01",
            "--upstream-timeout",
            "1",
            "--hsts",
            "600",
            "--access-log",
            &log.to_string_lossy(),
        ],
    )
    .await;
    let first = proxy.wait_until_served(app).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.text().await.expect("body"), "upstream one saw /");
    let port = proxy.https.port();

    // HTTP/1.1: forwarding headers set, hop-by-hop ones gone, a forged
    // X-Forwarded-For replaced.
    let h1 = proxy.client(&[app, "dead.example.com", "slow.example.com"], false);
    let response = h1
        .get(proxy.url(app, "/headers?x=1"))
        .header("connection", "x-hop")
        .header("x-hop", "secret")
        .header("x-forwarded-for", "6.6.6.6")
        .send()
        .await
        .expect("request");
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=600"
    );
    let seen = response.text().await.expect("body");
    assert!(seen.starts_with("GET /headers?x=1 HTTP/1.1\n"), "{seen}");
    for want in [
        "x-forwarded-for: 127.0.0.1\n".to_owned(),
        "x-forwarded-proto: https\n".to_owned(),
        format!("x-forwarded-host: {app}:{port}\n"),
        format!("forwarded: for=127.0.0.1;host={app}:{port};proto=https\n"),
        format!("host: {app}:{port}\n"),
    ] {
        assert!(seen.contains(&want), "missing {want:?} in\n{seen}");
    }
    assert!(!seen.contains("x-hop"), "{seen}");
    assert!(!seen.contains("6.6.6.6"), "{seen}");

    // HTTP/2 to the client (ALPN h2), HTTP/1.1 to the upstream.
    let h2 = proxy.client(&[app], true);
    let response = h2
        .get(proxy.url(app, "/headers"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let seen = response.text().await.expect("body");
    assert!(seen.starts_with("GET /headers HTTP/1.1\n"), "{seen}");
    assert!(seen.contains(&format!("host: {app}:{port}\n")), "{seen}");

    // A 1 MiB request body streamed up and back down, on both versions.
    let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    for client in [&h1, &h2] {
        let echoed = client
            .post(proxy.url(app, "/echo"))
            .body(big.clone())
            .send()
            .await
            .expect("request")
            .bytes()
            .await
            .expect("body");
        assert_eq!(echoed.len(), big.len());
        assert!(echoed[..] == big[..], "the echoed body differs");
    }

    // Upstream down → 502; upstream too slow → 504.
    let response = h1
        .get(proxy.url("dead.example.com", "/"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 502);
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains("502 Bad Gateway")
    );
    let started = std::time::Instant::now();
    let response = h1
        .get(proxy.url("slow.example.com", "/slow?ms=3000"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 504);
    assert!(started.elapsed() < Duration::from_millis(2900));

    // A Host no site has, on a connection made for a known name → 421.
    let mut tls = tls_connect(&proxy, app, &[b"http/1.1"]).await;
    tls.write_all(b"GET / HTTP/1.1\r\nHost: nobody.example.com\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let head = read_head(&mut tls).await;
    assert!(head.starts_with("HTTP/1.1 421 "), "{head}");

    // Plain HTTP → 308 to the same path over HTTPS.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let response = plain
        .get(format!("http://{}/a/b?c=d", proxy.http))
        .header("host", app)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 308);
    assert_eq!(
        response.headers()["location"],
        format!("https://{app}:{port}/a/b?c=d").as_str()
    );

    // Websocket: the upgrade goes through, then bytes flow both ways.
    let mut tls = tls_connect(&proxy, app, &[b"http/1.1"]).await;
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    tls.write_all(
        format!(
            "GET /ws HTTP/1.1\r\nHost: {app}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let head = read_head(&mut tls).await.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101 "), "{head}");
    assert!(
        head.contains(&format!(
            "sec-websocket-accept: {}",
            websocket_accept(key.as_bytes()).to_ascii_lowercase()
        )),
        "{head}"
    );
    for message in [&b"\x81\x05hello"[..], b"\x81\x06world!"] {
        tls.write_all(message).await.expect("write");
        let mut back = vec![0u8; message.len()];
        tokio::time::timeout(Duration::from_secs(5), tls.read_exact(&mut back))
            .await
            .expect("echo in time")
            .expect("read");
        assert_eq!(back, message);
    }
    drop(tls);

    // The access log has a Combined Log Format line per request.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let text = std::fs::read_to_string(&log).expect("access log");
    assert!(
        text.lines().any(|l| l.starts_with("127.0.0.1 - - [")
            && l.contains("\"GET /headers?x=1 HTTP/1.1\" 200 ")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("\"POST /echo HTTP/2.0\" 200 1048576 ")),
        "{text}"
    );
    assert!(text.lines().any(|l| l.contains("\" 502 ")), "{text}");
}
