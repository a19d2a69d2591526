//! http-01 (RFC 8555 §8.3, BR 3.2.2.4.19): GET
//! `http://<identifier>:<port>/.well-known/acme-challenge/<token>` and
//! compare the body, trailing whitespace removed, with the key
//! authorization.
//!
//! Redirects are followed, at most [`MAX_REDIRECTS`] of them, only to
//! `http` or `https` URLs, only to port 80 or the configured http-01 port
//! for `http` and port 443 for `https` (the BR allows 80 and 443; in
//! production the http-01 port is 80, in development it is whatever the
//! test servers listen on). Every hop is resolved and checked against the
//! address policy again. `https` hops are TLS without certificate
//! verification, as the BR expect: the key authorization is the proof.
//!
//! Limits: response headers at most [`MAX_HEADER_BYTES`] bytes and
//! [`MAX_HEADERS`] fields, body at most [`MAX_BODY_BYTES`] bytes (a key
//! authorization is about 90); the validator's overall timeout bounds the
//! rest.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use cairn_proto::ProblemType;
use http::header::{ACCEPT, CONNECTION, CONTENT_LENGTH, HOST, LOCATION, USER_AGENT};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

use super::net::{self, Host, Network};
use super::{ConnectionRecord, Subject, ValidationRecord, ValidationRequest, quote, tls_alpn01};
use crate::error::CaError;

/// The only port `https` redirects may go to (BR 3.2.2.4.19).
pub(super) const HTTPS_PORT: u16 = 443;
/// The only port `http` redirects may go to besides the http-01 port.
const HTTP_PORT: u16 = 80;
/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 10;
/// Largest body read; a key authorization is about 90 bytes.
const MAX_BODY_BYTES: usize = 8 * 1024;
/// Largest response head (status line and headers).
const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most header fields in a response.
const MAX_HEADERS: usize = 64;
/// hyper's read buffer cap; its minimum is 8 KiB.
const MAX_READ_BUFFER: usize = 32 * 1024;

/// The statuses followed as redirects (RFC 9110 §15.4); 300, 304 and 305
/// are answers like any other non-200 status.
const REDIRECTS: [StatusCode; 5] = [
    StatusCode::MOVED_PERMANENTLY,
    StatusCode::FOUND,
    StatusCode::SEE_OTHER,
    StatusCode::TEMPORARY_REDIRECT,
    StatusCode::PERMANENT_REDIRECT,
];

const USER_AGENT_VALUE: &str = concat!("cairn-va/", env!("CARGO_PKG_VERSION"));

/// The http-01 checker: where requests go and the TLS client for `https`
/// redirects.
pub(super) struct Http01 {
    port: u16,
    https_port: u16,
    tls: Arc<rustls::ClientConfig>,
}

impl Http01 {
    pub(super) fn new(port: u16, https_port: u16) -> Result<Self, CaError> {
        Ok(Self {
            port,
            https_port,
            tls: tls_alpn01::client_config(vec![b"http/1.1".to_vec()])?,
        })
    }

    pub(super) async fn validate(
        &self,
        network: &Network,
        subject: &Subject,
        req: &ValidationRequest,
        record: &mut ValidationRecord,
    ) -> Result<(), CaError> {
        let first = Url {
            https: false,
            host: subject.host(),
            port: self.port,
            path: req.token.http01_path(),
        };
        let subject = subject.to_string();
        let mut url = first.clone();
        let mut redirects = 0;
        loop {
            record.connections.push(ConnectionRecord {
                url: Some(url.to_string()),
                host: url.host.to_string(),
                port: url.port,
                addresses_resolved: Vec::new(),
                addresses_tried: Vec::new(),
                address_used: None,
            });
            let hop = record
                .connections
                .last_mut()
                .expect("a connection record was pushed just above");
            let (outcome, ip) = self.fetch(network, &url, &subject, hop).await?;
            let fetched = if redirects == 0 {
                format!("fetched {url} from {ip}")
            } else {
                format!("fetched {url} (redirected from {first}) from {ip}")
            };
            match outcome {
                Outcome::Redirect { status, location } => {
                    redirects += 1;
                    let refused = |why: String| {
                        CaError::new(
                            ProblemType::Connection,
                            format!(
                                "{fetched}: got a redirect (status {}) to {} that the CA does \
                                 not follow: {why}",
                                status.as_u16(),
                                quote(location.as_bytes())
                            ),
                        )
                    };
                    if redirects > MAX_REDIRECTS {
                        return Err(refused(format!("more than {MAX_REDIRECTS} redirects")));
                    }
                    let next = resolve_redirect(&url, &location).map_err(refused)?;
                    self.check_redirect(&next, network.allow_private())
                        .map_err(refused)?;
                    url = next;
                }
                Outcome::Status(status) => {
                    return Err(CaError::unauthorized(format!(
                        "{fetched}: got status {} (the key authorization must be served \
                         with status 200)",
                        status.as_u16()
                    )));
                }
                Outcome::TooLarge => {
                    return Err(CaError::unauthorized(format!(
                        "{fetched}: the response body is larger than {MAX_BODY_BYTES} bytes; \
                         it must hold only the key authorization"
                    )));
                }
                Outcome::Body(body) => {
                    // RFC 8555 §8.3: whitespace at the end of the body is ignored.
                    return if body.trim_ascii_end() == req.key_authorization.as_bytes() {
                        Ok(())
                    } else {
                        Err(CaError::unauthorized(format!(
                            "{fetched}: the response is not the key authorization (got {})",
                            quote(&body)
                        )))
                    };
                }
            }
        }
    }

    /// The port and host rules for a redirect target (BR 3.2.2.4.19);
    /// the address policy is applied when connecting.
    fn check_redirect(&self, url: &Url, allow_private: bool) -> Result<(), String> {
        let port_ok = if url.https {
            url.port == self.https_port
        } else {
            url.port == HTTP_PORT || url.port == self.port
        };
        if !port_ok {
            let allowed = if url.https {
                self.https_port.to_string()
            } else if self.port == HTTP_PORT {
                HTTP_PORT.to_string()
            } else {
                format!("{HTTP_PORT} or {}", self.port)
            };
            return Err(format!(
                "port {} is not allowed for {} (only {allowed})",
                url.port,
                url.scheme()
            ));
        }
        if let Host::Name(name) = &url.host {
            let public = psl::domain(name.as_bytes()).is_some_and(|d| d.suffix().is_known());
            if !allow_private && !public {
                return Err(format!("{name} is not under a public suffix"));
            }
        }
        Ok(())
    }

    /// One request: connect (TLS for `https`), GET, read at most
    /// [`MAX_BODY_BYTES`] of a 200 response.
    async fn fetch(
        &self,
        network: &Network,
        url: &Url,
        subject: &str,
        hop: &mut ConnectionRecord,
    ) -> Result<(Outcome, IpAddr), CaError> {
        let (tcp, ip) = network.connect(&url.host, url.port, subject, hop).await?;
        let request = Request::get(url.path.as_str())
            .header(HOST, url.authority())
            .header(USER_AGENT, USER_AGENT_VALUE)
            .header(ACCEPT, "*/*")
            .header(CONNECTION, "close")
            .body(Empty::<Bytes>::new())
            .map_err(|e| {
                CaError::new(
                    ProblemType::Connection,
                    format!("cannot request {url}: {e}"),
                )
            })?;
        let failed = |why: String| {
            CaError::new(
                ProblemType::Connection,
                format!("fetching {url} from {ip} failed: {why}"),
            )
        };
        let outcome = if url.https {
            let server_name = match &url.host {
                Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
                Host::Name(name) => ServerName::try_from(name.clone()).map_err(|e| {
                    failed(format!("{name} cannot be sent as a TLS server name: {e}"))
                })?,
            };
            let tls = TlsConnector::from(Arc::clone(&self.tls))
                .connect(server_name, tcp)
                .await
                .map_err(|e| {
                    CaError::new(
                        ProblemType::Tls,
                        format!("TLS handshake with {ip} for {url} failed: {e}"),
                    )
                })?;
            exchange(tls, request).await
        } else {
            exchange(tcp, request).await
        };
        Ok((outcome.map_err(failed)?, ip))
    }
}

/// What one GET came back with.
enum Outcome {
    Redirect {
        status: StatusCode,
        location: String,
    },
    Status(StatusCode),
    TooLarge,
    Body(Bytes),
}

/// Aborts the task driving a connection when the exchange is over or
/// abandoned (timeout).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn exchange<S>(io: S, request: Request<Empty<Bytes>>) -> Result<Outcome, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = http1::Builder::new()
        .max_headers(MAX_HEADERS)
        .max_header_size(MAX_HEADER_BYTES)
        .max_buf_size(MAX_READ_BUFFER)
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    let _driver = AbortOnDrop(tokio::spawn(async move {
        // Its errors surface through `send_request` and the body.
        let _ = connection.await;
    }));
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| describe_hyper(&e))?;
    let status = response.status();
    if REDIRECTS.contains(&status) {
        return match response.headers().get(LOCATION) {
            Some(location) => Ok(Outcome::Redirect {
                status,
                location: String::from_utf8_lossy(location.as_bytes()).into_owned(),
            }),
            None => Ok(Outcome::Status(status)),
        };
    }
    if status != StatusCode::OK {
        return Ok(Outcome::Status(status));
    }
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Ok(Outcome::TooLarge);
    }
    match Limited::new(response.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(body) => Ok(Outcome::Body(body.to_bytes())),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Ok(Outcome::TooLarge),
        Err(e) => Err(format!("reading the body: {e}")),
    }
}

fn describe_hyper(e: &hyper::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            text = format!("{text}: {}", net::describe_io(io));
            break;
        }
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

/// An `http` or `https` URL the validator may fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Url {
    https: bool,
    host: Host,
    port: u16,
    /// Path and query, starting with `/`.
    path: String,
}

impl Url {
    fn scheme(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }

    fn default_port(&self) -> u16 {
        if self.https { HTTPS_PORT } else { HTTP_PORT }
    }

    /// `host[:port]`, IPv6 in brackets, the port left out when it is the
    /// scheme's default: the Host header and the URL's authority.
    fn authority(&self) -> String {
        let host = match &self.host {
            Host::Ip(IpAddr::V6(v6)) => format!("[{v6}]"),
            other => other.to_string(),
        };
        if self.port == self.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme(), self.authority(), self.path)
    }
}

/// The URL a `Location` header points to, relative to `base`
/// (RFC 9110 §10.2.2, RFC 3986 §5.2, without dot-segment removal).
fn resolve_redirect(base: &Url, location: &str) -> Result<Url, String> {
    let location = location.trim();
    let location = location.split('#').next().unwrap_or_default();
    if location.is_empty() {
        return Err("the Location header is empty".into());
    }
    let has_scheme = location.split_once(':').is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    let absolute = if has_scheme {
        location.to_owned()
    } else if location.starts_with("//") {
        format!("{}:{location}", base.scheme())
    } else if location.starts_with('/') {
        format!("{}://{}{location}", base.scheme(), base.authority())
    } else {
        let path = base.path.split('?').next().unwrap_or_default();
        let directory = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        format!(
            "{}://{}{directory}{location}",
            base.scheme(),
            base.authority()
        )
    };
    let uri: Uri = absolute
        .parse()
        .map_err(|e| format!("it is not a valid URL ({e})"))?;
    let https = match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") => false,
        Some(s) if s.eq_ignore_ascii_case("https") => true,
        Some(other) => return Err(format!("scheme {other:?} is not http or https")),
        None => return Err("it has no scheme".into()),
    };
    let authority = uri.authority().ok_or("it has no host")?;
    if authority.as_str().contains('@') {
        return Err("it carries credentials".into());
    }
    let raw_host = authority.host();
    let host = match raw_host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => Host::Ip(IpAddr::V6(
            v6.parse()
                .map_err(|_| format!("{v6:?} is not an IPv6 address"))?,
        )),
        None => match raw_host.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => {
                let name = raw_host.trim_end_matches('.').to_ascii_lowercase();
                if !net::is_dns_name(&name) {
                    return Err(format!("{raw_host:?} is not a valid host name"));
                }
                Host::Name(name)
            }
        },
    };
    // Without userinfo the authority is `host[:port]`; `Uri` maps a port
    // it cannot read to `None`, so the text after the host is read here.
    let port = match authority.as_str().get(raw_host.len()..).unwrap_or_default() {
        "" if https => HTTPS_PORT,
        "" => HTTP_PORT,
        rest => rest
            .strip_prefix(':')
            .and_then(|digits| digits.parse::<u16>().ok())
            .filter(|port| *port != 0)
            .ok_or_else(|| {
                format!(
                    "its port {:?} is not a port number",
                    rest.trim_start_matches(':')
                )
            })?,
    };
    let path = uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned());
    let path = if path.is_empty() {
        "/".to_owned()
    } else {
        path
    };
    Ok(Url {
        https,
        host,
        port,
        path,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url {
            https: false,
            host: Host::Name("a.example".into()),
            port: 5002,
            path: "/.well-known/acme-challenge/tok?x=1".into(),
        }
    }

    fn resolved(location: &str) -> String {
        resolve_redirect(&base(), location).unwrap().to_string()
    }

    #[test]
    fn locations_resolve_against_the_current_url() {
        assert_eq!(
            resolved("https://B.Example./x?y#frag"),
            "https://b.example/x?y"
        );
        assert_eq!(resolved("//b.example:80/x"), "http://b.example/x");
        assert_eq!(resolved("/other"), "http://a.example:5002/other");
        assert_eq!(
            resolved("other"),
            "http://a.example:5002/.well-known/acme-challenge/other"
        );
        assert_eq!(resolved("http://[::1]:8080/p"), "http://[::1]:8080/p");
        assert_eq!(resolved("http://127.0.0.1"), "http://127.0.0.1/");
        let url = resolve_redirect(&base(), "http://[2001:db8::1]/").unwrap();
        assert_eq!(url.host, Host::Ip("2001:db8::1".parse().unwrap()));
        assert_eq!(url.authority(), "[2001:db8::1]");
    }

    #[test]
    fn unusable_locations_are_refused() {
        for bad in [
            "",
            "ftp://a.example/x",
            "file:///etc/passwd",
            "http://user:pw@a.example/",
            "http://a_b.example/",
            "http://a.example:/",
            "http://a.example:99999/",
            "http://[zz::1]/",
            "javascript:alert(1)",
        ] {
            assert!(resolve_redirect(&base(), bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn redirect_ports_and_hosts_follow_the_rules() {
        let production = Http01::new(80, HTTPS_PORT).unwrap();
        let dev = Http01::new(5002, HTTPS_PORT).unwrap();
        let url = |s: &str| resolve_redirect(&base(), s).unwrap();
        assert!(
            production
                .check_redirect(&url("http://a.com/"), false)
                .is_ok()
        );
        assert!(
            production
                .check_redirect(&url("https://a.com/"), false)
                .is_ok()
        );
        let err = production
            .check_redirect(&url("http://a.com:8080/"), false)
            .unwrap_err();
        assert_eq!(err, "port 8080 is not allowed for http (only 80)");
        assert!(
            production
                .check_redirect(&url("https://a.com:80/"), false)
                .is_err()
        );
        assert!(
            production
                .check_redirect(&url("http://a.com:5002/"), false)
                .is_err()
        );
        assert!(dev.check_redirect(&url("http://a.com:5002/"), true).is_ok());
        assert!(
            dev.check_redirect(&url("https://a.com:5002/"), true)
                .is_err()
        );
        // Names outside the public suffix list only in development.
        let err = production
            .check_redirect(&url("http://metadata.internal/"), false)
            .unwrap_err();
        assert!(err.contains("public suffix"), "{err}");
        assert!(
            dev.check_redirect(&url("http://metadata.internal/"), true)
                .is_ok()
        );
        assert!(
            production
                .check_redirect(&url("http://192.0.2.1/"), false)
                .is_ok()
        );
    }

    /// Serves one canned response per connection, over TLS when given
    /// a config.
    async fn serve(response: String, tls: Option<Arc<rustls::ServerConfig>>) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let response = response.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let mut stream: Box<dyn Io> = match tls {
                        Some(config) => Box::new(
                            tokio_rustls::TlsAcceptor::from(config)
                                .accept(tcp)
                                .await
                                .unwrap(),
                        ),
                        None => Box::new(tcp),
                    };
                    let mut head = Vec::new();
                    let mut buf = [0u8; 512];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        let n = stream.read(&mut buf).await.unwrap();
                        if n == 0 {
                            return;
                        }
                        head.extend_from_slice(&buf[..n]);
                    }
                    stream.write_all(response.as_bytes()).await.unwrap();
                    stream.shutdown().await.unwrap();
                });
            }
        });
        port
    }

    trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
    impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

    /// An https redirect target is fetched over TLS without checking its
    /// certificate. The https port is 443 in production; here it is the
    /// test server's.
    #[tokio::test]
    async fn https_redirects_are_followed_without_certificate_checks() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["untrusted.example".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let token = cairn_proto::challenge::Token::generate().unwrap();
        let key_authorization = format!("{token}.thumbprint");
        let body = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{key_authorization}",
            key_authorization.len()
        );
        let https_port = serve(body, Some(Arc::new(tls))).await;
        let http_port = serve(
            format!(
                "HTTP/1.1 301 Moved\r\nLocation: https://127.0.0.1:{https_port}/final\r\n\
                 Content-Length: 0\r\n\r\n"
            ),
            None,
        )
        .await;

        let config = super::super::VaConfig {
            dns_resolver: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 9))),
            ..super::super::VaConfig::dev()
        };
        let network = Network::new(&config, std::time::Duration::from_secs(5)).unwrap();
        let http01 = Http01::new(http_port, https_port).unwrap();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let req = ValidationRequest {
            identifier: cairn_proto::Identifier::ip(ip),
            wildcard: false,
            challenge: cairn_proto::objects::ChallengeType::Http01,
            token,
            key_authorization,
            account_uri: "https://ca.test/acme/acct/1".into(),
        };
        let mut record = ValidationRecord {
            identifier: req.identifier.clone(),
            challenge: req.challenge.clone(),
            connections: Vec::new(),
            dns_queries: Vec::new(),
            caa: None,
        };
        http01
            .validate(&network, &Subject::Ip(ip), &req, &mut record)
            .await
            .unwrap();
        assert_eq!(
            record.connections[1].url.as_deref(),
            Some(format!("https://127.0.0.1:{https_port}/final").as_str())
        );
    }
}
