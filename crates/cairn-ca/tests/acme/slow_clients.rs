//! Slow and many clients (security issue, item 7): a thousand sockets
//! trickling one byte a second, on the ACME API (a TLS handshake) and on
//! the CRL listener (request headers), are closed after the header timeout
//! while a normal client goes through a whole issuance and reads a CRL; a
//! request body that trickles is answered 408.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cairn_proto::objects::ChallengeType;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::harness::{Harness, dns};

/// The header timeout the CA runs with here.
const HEADER_TIMEOUT: u64 = 2;

/// Sends `bytes` one a second and waits for the server to close. `true`
/// when it did before the bytes ran out (30 s: far past the timeout).
async fn trickle(addr: std::net::SocketAddr, bytes: &'static [u8]) -> bool {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut buf = [0u8; 512];
    for byte in bytes {
        if stream.write_all(&[*byte]).await.is_err() {
            return true;
        }
        match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            // An answer (408, a TLS alert), then the close.
            Ok(Ok(_)) => {
                let closing = tokio::time::timeout(Duration::from_secs(5), async {
                    loop {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                    }
                });
                return closing.await.is_ok();
            }
            Err(_) => {}
        }
    }
    false
}

/// 30 bytes of an HTTP request that never ends its headers.
const SLOW_HEADERS: &[u8] = b"GET /crl/x.crl HTTP/1.1\r\nHost: c";
/// A TLS record header announcing a 512-byte ClientHello, then its start.
const SLOW_HANDSHAKE: &[u8] = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03aaaaaaaaaaaaaaaaaaaaa";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_trickling_sockets_are_closed_and_do_not_stop_a_client() {
    let h = Harness::start(|c| c.server.header_timeout_seconds = HEADER_TIMEOUT).await;
    let closed = Arc::new(AtomicUsize::new(0));
    let mut slow = Vec::new();
    for i in 0..1000 {
        let (addr, bytes) = if i % 2 == 0 {
            (h.ca.api_addr, SLOW_HANDSHAKE)
        } else {
            (h.ca.http_addr, SLOW_HEADERS)
        };
        let closed = Arc::clone(&closed);
        slow.push(tokio::spawn(async move {
            if trickle(addr, bytes).await {
                closed.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Meanwhile: an account, an order validated over http-01, a
    // certificate, and the CRL from the listener the trickle also holds.
    let account = h.account().await;
    let names = dns(&["busy.test"]);
    let issued = h.issue(&account, &names, &ChallengeType::Http01).await;
    assert!(issued.chain.leaf_der().is_some());
    let crl_url = format!("{}/crl/ecdsa-1.crl", h.http_base_url());
    let crl = h.get(&crl_url).await;
    assert_eq!(crl.status, 200, "{crl_url}");

    for task in slow {
        task.await.expect("a trickling client");
    }
    assert_eq!(
        closed.load(Ordering::Relaxed),
        1000,
        "every trickle was cut off"
    );
}

/// A body that trickles after complete headers: 408 once the header
/// timeout has passed, not a handler waiting forever.
#[tokio::test(flavor = "multi_thread")]
async fn a_trickling_body_gets_408() {
    let h = Harness::start(|c| c.server.header_timeout_seconds = HEADER_TIMEOUT).await;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&h.root_pem) {
        roots.add(cert.expect("root.pem")).expect("a root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(h.ca.api_addr).await.expect("connect");
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("a name");
    let mut tls = connector.connect(name, tcp).await.expect("TLS");
    let head = format!(
        "POST /acme/new-account HTTP/1.1\r\nHost: {}\r\n\
         Content-Type: application/jose+json\r\nContent-Length: 100\r\n\r\n{{",
        h.ca.api_addr
    );
    tls.write_all(head.as_bytes()).await.expect("headers");
    let mut answer = Vec::new();
    let read = async {
        let mut buf = [0u8; 1024];
        loop {
            tokio::select! {
                n = tls.read(&mut buf) => match n {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        answer.extend_from_slice(&buf[..n]);
                        if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                            return;
                        }
                    }
                },
                () = tokio::time::sleep(Duration::from_secs(1)) => {
                    let _ = tls.write_all(b" ").await;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("an answer before the body is complete");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}
