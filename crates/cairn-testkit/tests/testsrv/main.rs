//! The challenge test server, started in-process on ephemeral ports and
//! exercised over the network the way a CA and a script would.

#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use cairn_proto::challenge::{ACME_TLS_ALPN_PROTOCOL, tls_alpn01_extension_value};
use cairn_testkit::{CaaPolicy, TestServer, TestServerConfig};
use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;
use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};

const TOKEN: &str = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0";
const WAIT: Duration = Duration::from_secs(5);

async fn start() -> TestServer {
    TestServer::start(TestServerConfig::default())
        .await
        .unwrap()
}

// ---- DNS ----

fn query_message(name: &str, rtype: RecordType) -> Message {
    let mut message = Message::query();
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    message.metadata.recursion_desired = true;
    message
}

async fn query_udp(server: &TestServer, name: &str, rtype: RecordType) -> Message {
    send_udp(server, query_message(name, rtype)).await
}

async fn send_udp(server: &TestServer, message: Message) -> Message {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket
        .send_to(&message.to_vec().unwrap(), server.dns_addr().unwrap())
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let (len, _) = timeout(WAIT, socket.recv_from(&mut buf))
        .await
        .expect("DNS answer over UDP in time")
        .unwrap();
    let response = Message::from_vec(&buf[..len]).unwrap();
    assert_eq!(response.metadata.id, message.metadata.id);
    response
}

async fn query_tcp(server: &TestServer, name: &str, rtype: RecordType) -> Message {
    let message = query_message(name, rtype);
    let bytes = message.to_vec().unwrap();
    let mut stream = TcpStream::connect(server.dns_addr().unwrap())
        .await
        .unwrap();
    stream
        .write_all(&u16::try_from(bytes.len()).unwrap().to_be_bytes())
        .await
        .unwrap();
    stream.write_all(&bytes).await.unwrap();
    let len = timeout(WAIT, stream.read_u16()).await.unwrap().unwrap();
    let mut buf = vec![0u8; usize::from(len)];
    stream.read_exact(&mut buf).await.unwrap();
    Message::from_vec(&buf).unwrap()
}

fn a_answers(response: &Message) -> Vec<Ipv4Addr> {
    response
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

fn txt_answers(response: &Message) -> Vec<String> {
    let mut values: Vec<String> = response
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|s| String::from_utf8(s.to_vec()).unwrap())
                    .collect(),
            ),
            _ => None,
        })
        .collect();
    values.sort();
    values
}

#[tokio::test]
async fn a_answers_the_default_address_unless_overridden() {
    let server = start().await;
    let response = query_udp(&server, "anything.example.", RecordType::A).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert!(response.metadata.authoritative);
    assert_eq!(a_answers(&response), [Ipv4Addr::LOCALHOST]);
    assert_eq!(response.answers[0].ttl, 0);

    let (status, _) = post(
        &server,
        "/add-a",
        r#"{"host":"a.example.","addresses":["192.0.2.1","192.0.2.2"]}"#,
    )
    .await;
    assert_eq!(status, 200);
    let response = query_udp(&server, "a.example.", RecordType::A).await;
    assert_eq!(
        a_answers(&response),
        [Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)]
    );

    post(&server, "/clear-a", r#"{"host":"a.example"}"#).await;
    let response = query_udp(&server, "a.example.", RecordType::A).await;
    assert_eq!(a_answers(&response), [Ipv4Addr::LOCALHOST]);

    server.set_default_ipv4(None);
    let response = query_udp(&server, "a.example.", RecordType::A).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert!(response.answers.is_empty());
}

#[tokio::test]
async fn aaaa_is_empty_noerror_without_a_default() {
    let server = start().await;
    let response = query_udp(&server, "a.example.", RecordType::AAAA).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert!(response.answers.is_empty());

    let (status, _) = post(&server, "/set-default-ipv6", r#"{"ip":"::1"}"#).await;
    assert_eq!(status, 200);
    let response = query_udp(&server, "a.example.", RecordType::AAAA).await;
    assert_eq!(
        response.answers[0].data,
        RData::AAAA(Ipv6Addr::LOCALHOST.into())
    );

    post(
        &server,
        "/add-aaaa",
        r#"{"host":"b.example","addresses":["2001:db8::1"]}"#,
    )
    .await;
    let response = query_udp(&server, "b.example.", RecordType::AAAA).await;
    assert_eq!(
        response.answers[0].data,
        RData::AAAA("2001:db8::1".parse::<Ipv6Addr>().unwrap().into())
    );
}

#[tokio::test]
async fn txt_holds_two_values_until_cleared() {
    let server = start().await;
    let name = "_acme-challenge.a.example.";
    let response = query_udp(&server, name, RecordType::TXT).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert!(response.answers.is_empty());

    for value in ["first-value", "second-value"] {
        let body = format!(r#"{{"host":"{name}","value":"{value}"}}"#);
        let (status, _) = post(&server, "/set-txt", &body).await;
        assert_eq!(status, 200);
    }
    let response = query_udp(&server, name, RecordType::TXT).await;
    assert_eq!(txt_answers(&response), ["first-value", "second-value"]);

    let (status, _) = post(&server, "/clear-txt", &format!(r#"{{"host":"{name}"}}"#)).await;
    assert_eq!(status, 200);
    let response = query_udp(&server, name, RecordType::TXT).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert!(response.answers.is_empty());
}

#[tokio::test]
async fn dns01_helper_sets_the_rfc_value() {
    let server = start().await;
    server.add_dns01("*.a.example", "token.thumbprint").unwrap();
    let response = query_udp(&server, "_acme-challenge.a.example.", RecordType::TXT).await;
    assert_eq!(
        txt_answers(&response),
        [cairn_proto::challenge::dns01_txt_value("token.thumbprint")]
    );
    server.clear_dns01("a.example").unwrap();
    let response = query_udp(&server, "_acme-challenge.a.example.", RecordType::TXT).await;
    assert!(response.answers.is_empty());
}

#[tokio::test]
async fn caa_records_carry_flags_tag_and_value() {
    let server = start().await;
    let (status, _) = post(
        &server,
        "/add-caa",
        r#"{"host":"a.example","policies":[{"tag":"issue","value":"cairn.test"},{"tag":"tbs","value":"x","flags":128}]}"#,
    )
    .await;
    assert_eq!(status, 200);
    server
        .add_caa("a.example", &[CaaPolicy::issuewild(";")])
        .unwrap();
    let response = query_udp(&server, "a.example.", RecordType::CAA).await;
    let mut caa: Vec<(u8, String, Vec<u8>)> = response
        .answers
        .iter()
        .map(|r| match &r.data {
            RData::CAA(caa) => (caa.flags(), caa.tag.clone(), caa.value.clone()),
            other => panic!("not CAA: {other:?}"),
        })
        .collect();
    caa.sort();
    assert_eq!(
        caa,
        [
            (0, "issue".to_owned(), b"cairn.test".to_vec()),
            (0, "issuewild".to_owned(), b";".to_vec()),
            (128, "tbs".to_owned(), b"x".to_vec()),
        ]
    );

    post(&server, "/clear-caa", r#"{"host":"a.example"}"#).await;
    let response = query_udp(&server, "a.example.", RecordType::CAA).await;
    assert!(response.answers.is_empty());
}

#[tokio::test]
async fn cname_is_answered_with_the_target_records() {
    let server = start().await;
    let (status, _) = post(
        &server,
        "/set-cname",
        r#"{"host":"_acme-challenge.a.example","target":"_acme-challenge.delegated.example."}"#,
    )
    .await;
    assert_eq!(status, 200);
    server
        .set_txt("_acme-challenge.delegated.example", "delegated")
        .unwrap();

    let response = query_udp(&server, "_acme-challenge.a.example.", RecordType::TXT).await;
    assert_eq!(response.answers.len(), 2);
    assert_eq!(
        response.answers[0].data,
        RData::CNAME(hickory_proto::rr::rdata::CNAME(
            Name::from_ascii("_acme-challenge.delegated.example.").unwrap()
        ))
    );
    assert_eq!(
        response.answers[1].name,
        Name::from_ascii("_acme-challenge.delegated.example.").unwrap()
    );
    assert_eq!(txt_answers(&response), ["delegated"]);

    let response = query_udp(&server, "_acme-challenge.a.example.", RecordType::CNAME).await;
    assert_eq!(response.answers.len(), 1);

    post(
        &server,
        "/clear-cname",
        r#"{"host":"_acme-challenge.a.example"}"#,
    )
    .await;
    let response = query_udp(&server, "_acme-challenge.a.example.", RecordType::TXT).await;
    assert!(response.answers.is_empty());
}

#[tokio::test]
async fn nxdomain_and_servfail_only_when_set() {
    let server = start().await;
    let (status, _) = post(&server, "/set-nxdomain", r#"{"host":"gone.example"}"#).await;
    assert_eq!(status, 200);
    let response = query_udp(&server, "gone.example.", RecordType::A).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NXDomain);
    assert!(response.answers.is_empty());
    let response = query_udp(&server, "other.example.", RecordType::TXT).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);

    post(&server, "/clear-nxdomain", r#"{"host":"gone.example"}"#).await;
    let response = query_udp(&server, "gone.example.", RecordType::A).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);

    post(&server, "/set-servfail", r#"{"host":"broken.example"}"#).await;
    let response = query_udp(&server, "broken.example.", RecordType::CAA).await;
    assert_eq!(response.metadata.response_code, ResponseCode::ServFail);
    post(&server, "/clear-servfail", r#"{"host":"broken.example"}"#).await;
    let response = query_udp(&server, "broken.example.", RecordType::CAA).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
}

#[tokio::test]
async fn names_are_case_insensitive() {
    let server = start().await;
    server.set_txt("_ACME-Challenge.A.Example.", "v").unwrap();
    server
        .add_a("MiXeD.example", &[Ipv4Addr::new(192, 0, 2, 9)])
        .unwrap();
    let response = query_udp(&server, "_acme-challenge.a.EXAMPLE.", RecordType::TXT).await;
    assert_eq!(txt_answers(&response), ["v"]);
    // The answer keeps the case of the question (DNS 0x20).
    assert_eq!(
        response.answers[0].name.to_ascii(),
        "_acme-challenge.a.EXAMPLE."
    );
    let response = query_udp(&server, "mixed.EXAMPLE.", RecordType::A).await;
    assert_eq!(a_answers(&response), [Ipv4Addr::new(192, 0, 2, 9)]);
}

#[tokio::test]
async fn tcp_queries_are_answered() {
    let server = start().await;
    server
        .set_txt("_acme-challenge.a.example", "over-tcp")
        .unwrap();
    let response = query_tcp(&server, "_acme-challenge.a.example.", RecordType::TXT).await;
    assert_eq!(txt_answers(&response), ["over-tcp"]);
    let response = query_tcp(&server, "a.example.", RecordType::A).await;
    assert_eq!(a_answers(&response), [Ipv4Addr::LOCALHOST]);
}

#[tokio::test]
async fn edns_queries_get_opt_back_and_long_txt_survives() {
    let server = start().await;
    let long = "y".repeat(400);
    server.set_txt("long.example", &long).unwrap();
    let mut message = query_message("long.example.", RecordType::TXT);
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    message.edns = Some(edns);
    let response = send_udp(&server, message).await;
    assert!(response.edns.is_some());
    let RData::TXT(txt) = &response.answers[0].data else {
        panic!("not TXT");
    };
    let joined: Vec<u8> = txt
        .txt_data
        .iter()
        .flat_map(|s| s.iter().copied())
        .collect();
    assert_eq!(joined, long.as_bytes());
}

// ---- management API ----

/// One HTTP/1.1 request without a Content-Type (as `curl -d` scripts send
/// a form type, the server must not care); returns status and body.
async fn http_request(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .expect("HTTP answer in time")
        .unwrap();
    let response = String::from_utf8(response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

async fn post(server: &TestServer, path: &str, body: &str) -> (u16, String) {
    http_request(server.management_addr().unwrap(), "POST", path, body).await
}

#[tokio::test]
async fn management_rejects_bad_requests_with_a_message() {
    let server = start().await;
    let (status, body) =
        http_request(server.management_addr().unwrap(), "GET", "/health", "").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    let (status, body) = post(&server, "/set-txt", "{not json").await;
    assert_eq!(status, 400);
    assert!(body.contains("not the expected JSON"), "{body}");

    let (status, body) = post(&server, "/set-txt", r#"{"host":"a.example"}"#).await;
    assert_eq!(status, 400);
    assert!(body.contains("value"), "{body}");

    let (status, body) = post(&server, "/set-txt", r#"{"host":"a..example","value":"v"}"#).await;
    assert_eq!(status, 400);
    assert!(body.contains("a..example"), "{body}");

    let (status, body) = post(
        &server,
        "/add-http01",
        r#"{"token":"../../etc/passwd","content":"x"}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("token"), "{body}");

    let (status, _) = post(&server, "/del-http01", r#"{"token":"short"}"#).await;
    assert_eq!(status, 400);

    let (status, _) = post(
        &server,
        "/add-a",
        r#"{"host":"a.example","addresses":["not-an-ip"]}"#,
    )
    .await;
    assert_eq!(status, 400);

    let (status, _) = post(
        &server,
        "/add-caa",
        r#"{"host":"a.example","policies":[{"tag":"bad tag","value":"x"}]}"#,
    )
    .await;
    assert_eq!(status, 400);

    let (status, _) = post(&server, "/no-such-endpoint", "{}").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn management_set_txt_is_seen_by_dns() {
    let server = start().await;
    let (status, body) = post(
        &server,
        "/set-txt",
        r#"{"host":"_acme-challenge.b.example.","value":"from-the-api"}"#,
    )
    .await;
    assert_eq!((status, body.as_str()), (200, ""));
    let response = query_udp(&server, "_acme-challenge.b.example.", RecordType::TXT).await;
    assert_eq!(txt_answers(&response), ["from-the-api"]);
}

// ---- http-01 ----

#[tokio::test]
async fn http01_serves_content_and_404_for_unknown_tokens() {
    let server = start().await;
    let http01 = server.http01_addr().unwrap();
    let path = format!("/.well-known/acme-challenge/{TOKEN}");

    let (status, _) = http_request(http01, "GET", &path, "").await;
    assert_eq!(status, 404);

    let body = format!(r#"{{"token":"{TOKEN}","content":"{TOKEN}.thumbprint"}}"#);
    let (status, _) = post(&server, "/add-http01", &body).await;
    assert_eq!(status, 200);

    let mut stream = TcpStream::connect(http01).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(
        raw.to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{raw}"
    );
    assert!(
        raw.ends_with(&format!("\r\n\r\n{TOKEN}.thumbprint")),
        "{raw}"
    );

    let (status, _) = http_request(
        http01,
        "GET",
        "/.well-known/acme-challenge/other-token-aaaaaaaaaaaa",
        "",
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = http_request(http01, "GET", "/", "").await;
    assert_eq!(status, 404);

    let (status, _) = post(&server, "/del-http01", &format!(r#"{{"token":"{TOKEN}"}}"#)).await;
    assert_eq!(status, 200);
    let (status, _) = http_request(http01, "GET", &path, "").await;
    assert_eq!(status, 404);
}

// ---- tls-alpn-01 ----

/// Accepts any certificate: the test looks at it instead.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    // rustls' own signature check parses the certificate with webpki, which
    // rejects the critical acmeIdentifier extension; a tls-alpn-01 client
    // only looks at the certificate, so the signature is not checked here.
    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A handshake with `sni` offering `alpn`; the server's certificate and the
/// negotiated protocol, or the handshake error.
async fn tls_handshake(
    server: &TestServer,
    sni: &str,
    alpn: &[&[u8]],
) -> Result<(CertificateDer<'static>, Option<Vec<u8>>), std::io::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(server.tls_alpn01_addr().unwrap())
        .await
        .unwrap();
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    let tls = timeout(WAIT, connector.connect(name, tcp))
        .await
        .expect("TLS handshake in time")?;
    let (_, connection) = tls.get_ref();
    let certificate = connection.peer_certificates().unwrap()[0].clone();
    Ok((certificate, connection.alpn_protocol().map(<[u8]>::to_vec)))
}

/// The acmeIdentifier extension of `der`: (critical, extnValue contents).
fn acme_identifier(cert: &X509Certificate<'_>) -> (bool, Vec<u8>) {
    let extension = cert
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
        .expect("acmeIdentifier extension present");
    (extension.critical, extension.value.to_vec())
}

#[tokio::test]
async fn tls_alpn01_presents_the_challenge_certificate() {
    let server = start().await;
    let key_authorization = format!("{TOKEN}.thumbprint");
    let body = format!(r#"{{"host":"a.example","content":"{key_authorization}"}}"#);
    let (status, _) = post(&server, "/add-tlsalpn01", &body).await;
    assert_eq!(status, 200);

    let (der, protocol) = tls_handshake(&server, "A.example", &[ACME_TLS_ALPN_PROTOCOL])
        .await
        .unwrap();
    assert_eq!(protocol.as_deref(), Some(ACME_TLS_ALPN_PROTOCOL));
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    assert_eq!(san.value.general_names, [GeneralName::DNSName("a.example")]);
    let (critical, value) = acme_identifier(&cert);
    assert!(critical);
    assert_eq!(value, tls_alpn01_extension_value(&key_authorization));

    let (status, _) = post(&server, "/del-tlsalpn01", r#"{"host":"a.example"}"#).await;
    assert_eq!(status, 200);
    assert!(
        tls_handshake(&server, "a.example", &[ACME_TLS_ALPN_PROTOCOL])
            .await
            .is_err()
    );
}

#[tokio::test]
async fn tls_alpn01_for_an_ip_address_uses_the_reverse_name() {
    let server = start().await;
    server.add_tls_alpn01("192.0.2.1", "ka").unwrap();
    let (der, _) = tls_handshake(&server, "1.2.0.192.in-addr.arpa", &[ACME_TLS_ALPN_PROTOCOL])
        .await
        .unwrap();
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        san.value.general_names,
        [GeneralName::IPAddress(&[192, 0, 2, 1])]
    );
    assert_eq!(acme_identifier(&cert).1, tls_alpn01_extension_value("ka"));
}

#[tokio::test]
async fn tls_alpn01_refuses_other_alpn_and_unknown_names() {
    let server = start().await;
    server.add_tls_alpn01("a.example", "ka").unwrap();
    assert!(tls_handshake(&server, "a.example", &[b"h2"]).await.is_err());
    assert!(
        tls_handshake(&server, "a.example", &[b"http/1.1"])
            .await
            .is_err()
    );
    assert!(tls_handshake(&server, "a.example", &[]).await.is_err());
    assert!(
        tls_handshake(&server, "b.example", &[ACME_TLS_ALPN_PROTOCOL])
            .await
            .is_err()
    );
    // The good handshake still works after the refusals.
    assert!(
        tls_handshake(&server, "a.example", &[b"h2", ACME_TLS_ALPN_PROTOCOL])
            .await
            .is_ok()
    );
}

// ---- lifecycle ----

#[tokio::test]
async fn disabled_listeners_are_not_started() {
    let server = TestServer::start(TestServerConfig {
        http01: None,
        tls_alpn01: None,
        ..TestServerConfig::default()
    })
    .await
    .unwrap();
    assert!(server.dns_addr().is_some());
    assert!(server.management_addr().is_some());
    assert!(server.http01_addr().is_none());
    assert!(server.tls_alpn01_addr().is_none());
}

#[tokio::test]
async fn a_taken_port_is_reported_with_the_listener_name() {
    let first = start().await;
    let error = TestServer::start(TestServerConfig {
        management: first.management_addr(),
        ..TestServerConfig::default()
    })
    .await
    .unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains("management API"), "{message}");
    assert!(
        message.contains(&first.management_addr().unwrap().to_string()),
        "{message}"
    );
}

#[tokio::test]
async fn dropping_the_server_closes_its_listeners() {
    let server = start().await;
    let management = server.management_addr().unwrap();
    let tls_alpn01 = server.tls_alpn01_addr().unwrap();
    drop(server);
    for addr in [management, tls_alpn01] {
        let mut closed = false;
        for _ in 0..100 {
            if TcpStream::connect(addr).await.is_err() {
                closed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(closed, "{addr} still accepts connections");
    }
}

// ---- the binary ----

#[test]
fn cli_help_documents_every_flag() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cairn-testsrv"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--dns01",
        "--management",
        "--http01",
        "--tlsalpn01",
        "--default-ipv4",
        "--default-ipv6",
        "127.0.0.1:8053",
        "127.0.0.1:8055",
        "127.0.0.1:5002",
        "127.0.0.1:5001",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn cli_rejects_a_bad_address() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cairn-testsrv"))
        .args(["--dns01", "localhost"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("--dns01"), "{stderr}");
    assert!(stderr.contains("127.0.0.1:8053"), "{stderr}");
}
