//! A cairn-ca in this process (dev settings, ephemeral ports, DNS from
//! cairn-testkit), servers built on a `TlsManager`, and a rustls client
//! that checks the chain against the CA's roots.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cairn_ca::app::{self, Overrides, RunningCa};
use cairn_ca::config::Config;
use cairn_client::{Account, AccountCredentials, AcmeClient, ClientOptions};
use cairn_testkit::{TestServer, TestServerConfig};
use cairn_tls::{BoxFuture, CaConfig, DnsSolver, TlsManager};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::task::JoinHandle;

/// A free TCP port on 127.0.0.1.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The CA, its DNS, and the ports it validates on.
pub(crate) struct Ca {
    pub(crate) running: RunningCa,
    pub(crate) dns: TestServer,
    pub(crate) http01_port: u16,
    pub(crate) tls_alpn01_port: u16,
    pub(crate) dir: tempfile::TempDir,
}

impl Ca {
    pub(crate) async fn start() -> Ca {
        let dns = TestServer::start(TestServerConfig {
            http01: None,
            tls_alpn01: None,
            ..TestServerConfig::default()
        })
        .await
        .expect("test DNS server starts");
        let dir = tempfile::tempdir().expect("tempdir");
        let http01_port = free_port();
        let tls_alpn01_port = free_port();
        let mut config = Config::defaults(true);
        config.data_dir = dir.path().join("ca");
        config.server.listen = "127.0.0.1:0".parse().expect("addr");
        config.server.http_listen = "127.0.0.1:0".parse().expect("addr");
        config.validation.dns_resolver = dns.dns_addr();
        config.validation.http01_port = http01_port;
        config.validation.tls_alpn01_port = tls_alpn01_port;
        config.issuance.allow_validity_request = true;
        let running = app::start(config, Overrides::default())
            .await
            .expect("the CA starts");
        Ca {
            running,
            dns,
            http01_port,
            tls_alpn01_port,
            dir,
        }
    }

    pub(crate) fn root_pem(&self) -> Vec<u8> {
        std::fs::read(&self.running.root_pem).expect("root.pem")
    }

    pub(crate) fn ca_config(&self) -> CaConfig {
        CaConfig::new(&self.running.directory_url)
            .ca_bundle_pem(self.root_pem())
            .email("admin@example.com")
    }

    /// A config dir for a manager.
    pub(crate) fn config_dir(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// The orders placed by the account saved in `config_dir`.
    pub(crate) async fn orders(&self, config_dir: &Path) -> usize {
        let client = AcmeClient::new(
            &self.running.directory_url,
            ClientOptions {
                ca_bundle_pem: Some(self.root_pem()),
                ..ClientOptions::default()
            },
        )
        .await
        .expect("client");
        let accounts = config_dir.join("accounts");
        let Some(path) = find_file(&accounts, "account.json") else {
            return 0;
        };
        let credentials: AccountCredentials =
            serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
        let account = Account::from_credentials(&client, credentials).expect("account");
        account.orders().await.expect("orders").len()
    }
}

fn find_file(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()? {
        let path = entry.ok()?.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|f| f == name) {
            return Some(path);
        }
    }
    None
}

/// dns-01 through the test DNS server's records.
#[derive(Debug)]
pub(crate) struct TestDns(pub(crate) cairn_testkit::Records);

impl DnsSolver for TestDns {
    fn present<'a>(&'a self, record: &'a str, value: &'a str) -> BoxFuture<'a, Result<(), String>> {
        let result = self.0.set_txt(record, value).map_err(|e| format!("{e:?}"));
        Box::pin(async move { result })
    }
    fn cleanup<'a>(
        &'a self,
        record: &'a str,
        _value: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        let result = self.0.clear_txt(record).map_err(|e| format!("{e:?}"));
        Box::pin(async move { result })
    }
}

/// An HTTPS server on `port` that accepts through the manager and answers
/// every request with `hello <sni>`.
pub(crate) async fn serve_https(manager: TlsManager, port: u16) -> JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the HTTPS port");
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let manager = manager.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = manager.accept(tcp).await else {
                    return;
                };
                let sni = tls.get_ref().1.server_name().unwrap_or("-").to_owned();
                let mut buf = vec![0u8; 4096];
                let mut seen = Vec::new();
                loop {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                    if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                let body = format!("hello {sni}");
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    })
}

/// A plain-HTTP server on `port` answering http-01 through the manager.
pub(crate) async fn serve_http01(manager: TlsManager, port: u16) -> JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the HTTP port");
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let service = manager.http01_service(cairn_tls::NotFound);
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                    .await;
            });
        }
    })
}

/// The roots the CA issues under.
pub(crate) fn roots(pem: &[u8]) -> Arc<rustls::RootCertStore> {
    let mut store = rustls::RootCertStore::empty();
    for der in cairn_proto::pem::decode_all(std::str::from_utf8(pem).expect("utf-8"), "CERTIFICATE")
    {
        store.add(der.into()).expect("a root");
    }
    Arc::new(store)
}

/// GET / over HTTPS to 127.0.0.1:`port` with SNI `name`, checking the chain
/// against `roots`. Returns the body and the leaf's serial (hex).
pub(crate) async fn fetch(
    port: u16,
    name: &str,
    roots: &Arc<rustls::RootCertStore>,
) -> Result<(String, String), String> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(Arc::clone(roots))
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let server_name =
        rustls::pki_types::ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())?;
    let mut tls =
        tokio::time::timeout(Duration::from_secs(60), connector.connect(server_name, tcp))
            .await
            .map_err(|_| "handshake timed out".to_owned())?
            .map_err(|e| format!("handshake: {e}"))?;
    let leaf = tls.get_ref().1.peer_certificates().expect("certificates")[0].clone();
    let serial = serial_of(&leaf);
    tls.write_all(format!("GET / HTTP/1.1\r\nhost: {name}\r\n\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .ok_or_else(|| format!("no HTTP response: {text:?}"))?;
    Ok((body, serial))
}

pub(crate) fn serial_of(der: &[u8]) -> String {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).expect("leaf parses");
    let raw = cert.raw_serial();
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    raw[start..].iter().map(|b| format!("{b:02x}")).collect()
}
