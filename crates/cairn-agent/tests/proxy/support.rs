//! The pieces every proxy test uses: the `cairn proxy` process, an upstream
//! HTTP server that shows what it received, and HTTPS clients that trust
//! only the test CA's root and dial the proxy for any name.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::net::TcpListener;

use crate::harness::Ca;

/// A running `cairn proxy`, killed on drop.
pub(crate) struct Proxy {
    pub(crate) child: tokio::process::Child,
    pub(crate) http: SocketAddr,
    pub(crate) https: SocketAddr,
    pub(crate) config_dir: PathBuf,
    pub(crate) control_socket: PathBuf,
    /// Every line the proxy printed after it started.
    pub(crate) lines: Arc<Mutex<Vec<String>>>,
    pub(crate) root_pem: PathBuf,
}

/// The proxy's arguments for `ca`: its server and root, an account, the
/// listeners on the ports the CA validates on.
pub(crate) fn ca_args(ca: &Ca, config_dir: &Path) -> Vec<String> {
    vec![
        "proxy".into(),
        "--server".into(),
        ca.running.directory_url.clone(),
        "--ca-bundle".into(),
        ca.running.root_pem.to_string_lossy().into_owned(),
        "--agree-tos".into(),
        "-m".into(),
        "admin@example.com".into(),
        "--http-listen".into(),
        format!("127.0.0.1:{}", ca.http01_port),
        "--https-listen".into(),
        format!("127.0.0.1:{}", ca.tls_alpn01_port),
        "--control-socket".into(),
        config_dir.join("proxy.sock").to_string_lossy().into_owned(),
        "--config-dir".into(),
        config_dir.to_string_lossy().into_owned(),
    ]
}

impl Proxy {
    /// Starts `cairn proxy` against `ca` with `extra` flags, waits until it
    /// listens.
    pub(crate) async fn start(ca: &Ca, extra: &[&str]) -> Proxy {
        let config_dir = ca.dir.path().join("proxy");
        let mut args = ca_args(ca, &config_dir);
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        Self::spawn(&args, &config_dir, &ca.running.root_pem).await
    }

    /// Runs `cairn ARGS` (which must be a `proxy` command line) and waits
    /// for its "listening on" line.
    pub(crate) async fn spawn(args: &[String], config_dir: &Path, root_pem: &Path) -> Proxy {
        Self::spawn_logging(args, config_dir, root_pem, "info").await
    }

    /// As [`Proxy::spawn`], with `RUST_LOG=log_filter`.
    pub(crate) async fn spawn_logging(
        args: &[String],
        config_dir: &Path,
        root_pem: &Path,
        log_filter: &str,
    ) -> Proxy {
        eprintln!("$ cairn {}", args.join(" "));
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(args)
            .env("RUST_LOG", log_filter)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("cairn proxy starts");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let mut out = BufReader::new(stdout).lines();
        let (http, https) = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = out.next_line().await.expect("stdout") {
                eprintln!("proxy| {line}");
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let (http, rest) = rest.split_once(" and https://").expect("https");
                    let https = rest.split(';').next().expect("addr");
                    return (
                        http.parse::<SocketAddr>().expect("http addr"),
                        https.parse::<SocketAddr>().expect("https addr"),
                    );
                }
            }
            panic!("cairn proxy exited before listening");
        })
        .await
        .expect("cairn proxy listens within 30 s");
        let collected = Arc::clone(&lines);
        tokio::spawn(async move {
            while let Ok(Some(line)) = out.next_line().await {
                eprintln!("proxy| {line}");
                collected.lock().expect("lines").push(line);
            }
        });
        let collected = Arc::clone(&lines);
        tokio::spawn(async move {
            let mut err = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = err.next_line().await {
                eprintln!("proxy! {line}");
                collected.lock().expect("lines").push(line);
            }
        });
        Proxy {
            child,
            http,
            https,
            config_dir: config_dir.to_owned(),
            control_socket: config_dir.join("proxy.sock"),
            lines,
            root_pem: root_pem.to_owned(),
        }
    }

    /// An HTTPS client trusting only the CA root, dialling the proxy for
    /// `names`; `http2` picks HTTP/2 or HTTP/1.1 only.
    pub(crate) fn client(&self, names: &[&str], http2: bool) -> reqwest::Client {
        self.client_with(names, http2, true)
    }

    /// As [`Proxy::client`]; without `pool` every request opens a new
    /// connection (and makes a new TLS handshake).
    pub(crate) fn client_with(&self, names: &[&str], http2: bool, pool: bool) -> reqwest::Client {
        let pem = std::fs::read(&self.root_pem).expect("root");
        let mut builder = reqwest::Client::builder()
            .tls_certs_only(reqwest::Certificate::from_pem_bundle(&pem).expect("root parses"))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30));
        if !pool {
            builder = builder.pool_max_idle_per_host(0);
        }
        for name in names {
            builder = builder.resolve(name, self.https);
        }
        builder = if http2 {
            builder.http2_adaptive_window(true)
        } else {
            builder.http1_only()
        };
        builder.build().expect("client")
    }

    /// `https://NAME:PORT/path`.
    pub(crate) fn url(&self, name: &str, path: &str) -> String {
        format!("https://{name}:{}{path}", self.https.port())
    }

    /// Waits until `name` is served over HTTPS with a certificate that
    /// chains to the root (the first requests may come before it is issued).
    pub(crate) async fn wait_until_served(&self, name: &str) -> reqwest::Response {
        let client = self.client(&[name], false);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            match client.get(self.url(name, "/")).send().await {
                Ok(response) => return response,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    eprintln!("not yet served: {e:?}");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => panic!("{name} is not served over HTTPS after 60 s: {e:?}"),
            }
        }
    }

    /// Sends `signal` (HUP, TERM) to the proxy.
    pub(crate) fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("running");
        let status = std::process::Command::new("kill")
            .args(["-s", signal, &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits until the proxy printed a line containing `text`.
    pub(crate) async fn wait_for_line(&self, text: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(line) = self
                .lines
                .lock()
                .expect("lines")
                .iter()
                .find(|l| l.contains(text))
            {
                return line.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the proxy never said {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// An upstream that shows what it got: `/headers` lists the request's
/// headers, `/slow?ms=N` answers after N ms, `/echo` streams the request
/// body back, `/ws` accepts a websocket upgrade and echoes bytes; anything
/// else answers `upstream TAG saw PATH`.
pub(crate) async fn upstream(tag: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |r| upstream_service(tag, r));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

type Body = http_body_util::combinators::BoxBody<Bytes, hyper::Error>;

fn full(text: impl Into<Bytes>) -> Body {
    Full::new(text.into())
        .map_err(|never| match never {})
        .boxed()
}

async fn upstream_service(
    tag: &'static str,
    mut request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path().to_owned();
    let query: HashMap<String, String> = request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Ok(match path.as_str() {
        "/headers" => {
            let mut text = format!(
                "{} {} {:?}\n",
                request.method(),
                request.uri(),
                request.version()
            );
            for (name, value) in request.headers() {
                text.push_str(&format!("{name}: {}\n", value.to_str().unwrap_or("?")));
            }
            Response::new(full(text))
        }
        "/slow" => {
            let ms = query.get("ms").and_then(|v| v.parse().ok()).unwrap_or(1000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Response::new(full(format!("slow answer after {ms} ms")))
        }
        "/echo" => Response::new(request.into_body().boxed()),
        "/ws" => {
            let key = request
                .headers()
                .get("sec-websocket-key")
                .map(|v| v.as_bytes().to_vec())
                .unwrap_or_default();
            let on_upgrade = hyper::upgrade::on(&mut request);
            tokio::spawn(async move {
                if let Ok(upgraded) = on_upgrade.await {
                    let (mut read, mut write) = tokio::io::split(TokioIo::new(upgraded));
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                }
            });
            Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header("connection", "upgrade")
                .header("upgrade", "websocket")
                .header("sec-websocket-accept", websocket_accept(&key))
                .body(full(""))
                .expect("response")
        }
        _ => Response::new(full(format!("upstream {tag} saw {path}"))),
    })
}

/// RFC 6455 §4.2.2: base64(SHA-1(key + GUID)).
pub(crate) fn websocket_accept(key: &[u8]) -> String {
    use base64::Engine as _;
    let mut input = key.to_vec();
    input.extend_from_slice(b"258EAFA5-E914-47DA-95CA-C5AB0DC11B85");
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &input);
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// A rustls client config trusting only the PEM root at `root`.
pub(crate) fn tls_client(root: &Path, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let pem = std::fs::read_to_string(root).expect("root");
    let mut roots = rustls::RootCertStore::empty();
    let mut rest = pem.as_str();
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let block = &rest[start..];
        let end = block.find("-----END CERTIFICATE-----").expect("PEM end") + 25;
        let der = cairn_proto::pem::decode_one(&block[..end], "CERTIFICATE").expect("PEM");
        roots.add(der.into()).expect("root added");
        rest = &block[end..];
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Connects over TLS to the proxy for `name` (SNI), checking the chain.
pub(crate) async fn tls_connect(
    proxy: &Proxy,
    name: &str,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let connector = tokio_rustls::TlsConnector::from(tls_client(&proxy.root_pem, alpn));
    let tcp = tokio::net::TcpStream::connect(proxy.https)
        .await
        .expect("connect");
    connector
        .connect(
            rustls::pki_types::ServerName::try_from(name.to_owned()).expect("name"),
            tcp,
        )
        .await
        .expect("TLS handshake with a chain to the root")
}

/// Starts a hyper server on 127.0.0.1:0 with `service` (for the `ask` URL).
pub(crate) async fn serve<F, Fut>(service: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    serve_at(([127, 0, 0, 1], 0).into(), service).await
}

/// As [`serve`], on `addr` (a port the CA validates on, say).
pub(crate) async fn serve_at<F, Fut>(addr: SocketAddr, service: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    let listener = TcpListener::bind(addr).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let service = service.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |r| {
                    let f = service(r);
                    async move { Ok::<_, Infallible>(f.await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

pub(crate) fn text_response(status: StatusCode, text: &str) -> Response<Body> {
    let mut response = Response::new(full(text.to_owned()));
    *response.status_mut() = status;
    response
}
