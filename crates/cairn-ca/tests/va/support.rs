//! Test peers on 127.0.0.1: a DNS server answering from a table, an
//! HTTP responder and a tls-alpn-01 responder, plus request builders.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use cairn_ca::va::{NetworkValidator, VaConfig, ValidationRequest};
use cairn_proto::Identifier;
use cairn_proto::challenge::{Token, tls_alpn01_extension_value};
use cairn_proto::objects::ChallengeType;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CAA, CNAME, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rcgen::{CertificateParams, CustomExtension, KeyPair};
use rustls::ServerConfig;
use rustls::server::{Acceptor, ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_rustls::LazyConfigAcceptor;

/// A fake thumbprint: the VA only compares strings and digests.
const THUMBPRINT: &str = "9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI";

pub(crate) fn request(identifier: Identifier, challenge: ChallengeType) -> ValidationRequest {
    let token = Token::generate().unwrap();
    let key_authorization = format!("{token}.{THUMBPRINT}");
    ValidationRequest {
        identifier,
        wildcard: false,
        challenge,
        token,
        key_authorization,
        account_uri: ACCOUNT_URI.into(),
    }
}

/// The account every [`request`] is made for.
pub(crate) const ACCOUNT_URI: &str = "https://ca.test/acme/acct/7";

/// Development settings pointing at `dns`, with a short timeout.
pub(crate) fn config(dns: &FakeDns) -> VaConfig {
    VaConfig {
        dns_resolver: Some(dns.addr),
        timeout_seconds: 3,
        ..VaConfig::dev()
    }
}

pub(crate) fn validator(config: VaConfig) -> NetworkValidator {
    NetworkValidator::new(config).unwrap()
}

/// A port nothing listens on (bound, then released).
pub(crate) async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

// ---------------------------------------------------------------- DNS

#[derive(Default)]
struct Zone {
    records: HashMap<(String, RecordType), Vec<RData>>,
    cnames: HashMap<String, String>,
    servfail: HashSet<(String, RecordType)>,
}

/// A recursive resolver's view of the world, from a table: answers A,
/// AAAA, TXT and CAA, follows CNAMEs within the table and puts the chain
/// in the answer, says NXDOMAIN for names it has nothing at, SERVFAIL
/// where told to.
pub(crate) struct FakeDns {
    pub(crate) addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
}

impl FakeDns {
    pub(crate) async fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let zone = Arc::new(Mutex::new(Zone::default()));
        let shared = Arc::clone(&zone);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(query) = Message::from_vec(&buf[..len]) else {
                    continue;
                };
                let answer = answer(&shared.lock().unwrap(), &query);
                let _ = socket.send_to(&answer.to_vec().unwrap(), peer).await;
            }
        });
        Self { addr, zone }
    }

    pub(crate) fn add(&self, name: &str, rdata: RData) {
        let key = (key(name), rdata.record_type());
        self.zone
            .lock()
            .unwrap()
            .records
            .entry(key)
            .or_default()
            .push(rdata);
    }

    pub(crate) fn ip(&self, name: &str, ip: &str) {
        let rdata = match ip.parse::<IpAddr>().unwrap() {
            IpAddr::V4(v4) => RData::A(A(v4)),
            IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
        };
        self.add(name, rdata);
    }

    pub(crate) fn txt(&self, name: &str, strings: &[&str]) {
        let strings = strings.iter().map(|s| (*s).to_owned()).collect();
        self.add(name, RData::TXT(TXT::new(strings)));
    }

    pub(crate) fn caa(&self, name: &str, critical: bool, tag: &str, value: &str) {
        let mut caa = CAA::new_issue(critical, None, Vec::new());
        tag.clone_into(&mut caa.tag);
        caa.value = value.as_bytes().to_vec();
        self.add(name, RData::CAA(caa));
    }

    pub(crate) fn cname(&self, name: &str, target: &str) {
        self.zone
            .lock()
            .unwrap()
            .cnames
            .insert(key(name), key(target));
    }

    pub(crate) fn servfail(&self, name: &str, record_type: RecordType) {
        self.zone
            .lock()
            .unwrap()
            .servfail
            .insert((key(name), record_type));
    }
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn answer(zone: &Zone, query: &Message) -> Message {
    let mut response = Message::response(query.metadata.id, query.metadata.op_code);
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.add_queries(query.queries.clone());
    let Some(question) = query.queries.first() else {
        response.metadata.response_code = ResponseCode::FormErr;
        return response;
    };
    let qtype = question.query_type();
    let mut name = key(&question.name().to_ascii());
    let mut answers = Vec::new();
    for _ in 0..8 {
        if zone.servfail.contains(&(name.clone(), qtype)) {
            response.metadata.response_code = ResponseCode::ServFail;
            return response;
        }
        let Some(target) = zone.cnames.get(&name) else {
            break;
        };
        answers.push(Record::from_rdata(
            fqdn(&name),
            60,
            RData::CNAME(CNAME(fqdn(target))),
        ));
        name.clone_from(target);
    }
    if let Some(records) = zone.records.get(&(name.clone(), qtype)) {
        answers.extend(
            records
                .iter()
                .map(|rdata| Record::from_rdata(fqdn(&name), 60, rdata.clone())),
        );
    }
    let exists = zone.cnames.contains_key(&name) || zone.records.keys().any(|(n, _)| *n == name);
    if answers.is_empty() && !exists {
        response.metadata.response_code = ResponseCode::NXDomain;
    }
    response.add_answers(answers);
    response
}

fn fqdn(name: &str) -> Name {
    Name::from_ascii(format!("{name}.")).unwrap()
}

// ---------------------------------------------------------------- HTTP

/// What the responder saw of a request.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub(crate) path: String,
    pub(crate) host: String,
}

/// Serves every connection on 127.0.0.1 with `respond`, which gets the
/// request path and Host header and returns the raw response bytes.
pub(crate) async fn serve_http<F>(respond: F) -> SocketAddr
where
    F: Fn(&Seen) -> Vec<u8> + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let respond = Arc::new(respond);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let respond = Arc::clone(&respond);
            tokio::spawn(async move {
                let _ = serve_one(stream, &*respond).await;
            });
        }
    });
    addr
}

async fn serve_one(
    mut stream: TcpStream,
    respond: &(dyn Fn(&Seen) -> Vec<u8> + Send + Sync),
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let host = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("host")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    let response = respond(&Seen { path, host });
    stream.write_all(&response).await?;
    stream.shutdown().await
}

pub(crate) fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub(crate) fn status(code: u16) -> Vec<u8> {
    format!("HTTP/1.1 {code} Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .into_bytes()
}

pub(crate) fn redirect(location: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

// ---------------------------------------------------------------- TLS

/// The acmeIdentifier extension a test certificate carries.
pub(crate) enum Acme<'a> {
    Critical(&'a str),
    NonCritical(&'a str),
    Missing,
}

/// A server config with a self-signed certificate for `sans` and `acme`,
/// offering `alpn`.
pub(crate) fn alpn_server(sans: &[&str], acme: Acme<'_>, alpn: &[&[u8]]) -> Arc<ServerConfig> {
    alpn_server_with(sans, acme, alpn, rustls::DEFAULT_VERSIONS)
}

/// [`alpn_server`] speaking only the TLS `versions` given.
pub(crate) fn alpn_server_with(
    sans: &[&str],
    acme: Acme<'_>,
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ServerConfig> {
    let key = KeyPair::generate().unwrap();
    let sans: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
    let mut params = CertificateParams::new(sans).unwrap();
    let (key_authorization, critical) = match acme {
        Acme::Critical(ka) => (Some(ka), true),
        Acme::NonCritical(ka) => (Some(ka), false),
        Acme::Missing => (None, false),
    };
    if let Some(ka) = key_authorization {
        let value = tls_alpn01_extension_value(ka);
        let mut extension = CustomExtension::new_acme_identifier(&value[2..]);
        extension.set_criticality(critical);
        params.custom_extensions.push(extension);
    }
    let cert = params.self_signed(&key).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    // `with_single_cert` would refuse the critical acmeIdentifier
    // extension, which webpki does not know; this resolver takes it as is.
    let signing_key = provider
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            key.serialize_der(),
        )))
        .unwrap();
    let certified = CertifiedKey::new(vec![cert.der().clone()], signing_key);
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(OneCertificate(Arc::new(certified))));
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Serves one certificate to every client, unchecked.
#[derive(Debug)]
struct OneCertificate(Arc<CertifiedKey>);

impl ResolvesServerCert for OneCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// What a TLS client offered in its ClientHello.
#[derive(Clone, Debug, Default)]
pub(crate) struct Hello {
    pub(crate) sni: Option<String>,
    pub(crate) alpn: Vec<Vec<u8>>,
}

/// Accepts TLS connections with `config`; returns the address and the
/// ClientHellos seen.
pub(crate) async fn serve_tls(config: Arc<ServerConfig>) -> (SocketAddr, Arc<Mutex<Vec<Hello>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hellos = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&hellos);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let config = Arc::clone(&config);
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let Ok(start) = LazyConfigAcceptor::new(Acceptor::default(), stream).await else {
                    return;
                };
                let hello = start.client_hello();
                seen.lock().unwrap().push(Hello {
                    sni: hello.server_name().map(str::to_owned),
                    alpn: hello
                        .alpn()
                        .map(|protocols| protocols.map(<[u8]>::to_vec).collect())
                        .unwrap_or_default(),
                });
                if let Ok(mut tls) = start.into_stream(config).await {
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    (addr, hellos)
}
