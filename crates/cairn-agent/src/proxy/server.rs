//! The listeners: HTTPS (HTTP/1.1 and HTTP/2 by ALPN) and plain HTTP
//! (http-01 answers and 308 redirects), with the protections a public
//! server needs: a cap on open connections, a deadline for the TLS
//! handshake and each request's headers, an idle timeout, and a drain on
//! shutdown that lets in-flight requests finish.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use cairn_serve::Gate;
pub(crate) use cairn_serve::Watched;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::config::Limits;
use super::forward::{self, ProxyBody, Shared, page};

/// A future that may borrow from its source.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the proxy needs from the certificate manager (cairn-tls).
pub(crate) trait Certificates: Send + Sync + std::fmt::Debug + 'static {
    /// Completes the TLS handshake on a new connection, choosing the
    /// certificate by SNI (and answering tls-alpn-01 in-band). `Ok(None)`:
    /// the handshake was refused (unknown name, on-demand denied).
    fn accept(&self, tcp: Watched<TcpStream>) -> BoxFuture<'_, io::Result<Option<TlsStream>>>;
    /// The key authorization for an http-01 `token` asked about `host`.
    fn http01(&self, host: &str, token: &str) -> Option<String>;
}

/// A TLS connection as the proxy serves it.
pub(crate) type TlsStream = tokio_rustls::server::TlsStream<Watched<TcpStream>>;

/// The two listeners, bound before any privilege could be dropped.
#[derive(Debug)]
pub(crate) struct Listeners {
    pub(crate) http: TcpListener,
    pub(crate) https: TcpListener,
}

impl Listeners {
    pub(crate) async fn bind(http: SocketAddr, https: SocketAddr) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let bind = |addr: SocketAddr, what: &'static str| {
            cairn_serve::listen(addr).with_context(|| {
                format!(
                    "cannot listen for {what} on {addr}{}",
                    if addr.port() < 1024 {
                        " (ports below 1024 need root or CAP_NET_BIND_SERVICE; \
                         or choose another with --http-listen/--https-listen)"
                    } else {
                        ""
                    }
                )
            })
        };
        Ok(Self {
            http: bind(http, "HTTP")?,
            https: bind(https, "HTTPS")?,
        })
    }
}

/// Runs both listeners until `stop` turns true, then drains for at most
/// `limits.drain_timeout`.
pub(crate) async fn serve(
    listeners: Listeners,
    shared: Arc<Shared>,
    certificates: Arc<dyn Certificates>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let https_port = listeners.https.local_addr().map_or(443, |a| a.port());
    let gate = Gate::new(limits.max_connections);
    let graceful = GracefulShutdown::new();
    let builder = Arc::new(cairn_serve::http_builder(&limits.connections()));
    loop {
        let permit = tokio::select! {
            permit = gate.enter() => permit,
            _ = stop.changed() => break,
        };
        let (stream, peer, tls) = tokio::select! {
            accepted = listeners.https.accept() => match accepted {
                Ok((stream, peer)) => (stream, peer, true),
                Err(e) => { accept_error(&e).await; continue; }
            },
            accepted = listeners.http.accept() => match accepted {
                Ok((stream, peer)) => (stream, peer, false),
                Err(e) => { accept_error(&e).await; continue; }
            },
            _ = stop.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let (stream, activity) = Watched::new(stream);
        let watcher = graceful.watcher();
        let builder = Arc::clone(&builder);
        let shared = Arc::clone(&shared);
        let certificates = Arc::clone(&certificates);
        tokio::spawn(async move {
            let _permit = permit;
            let connection = async {
                if tls {
                    let handshake =
                        tokio::time::timeout(limits.header_timeout, certificates.accept(stream));
                    let tls = match handshake.await {
                        Ok(Ok(Some(tls))) => tls,
                        Ok(Ok(None)) => return,
                        Ok(Err(e)) => {
                            tracing::debug!("{peer}: TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("{peer}: no TLS handshake within the header timeout");
                            return;
                        }
                    };
                    let service = hyper::service::service_fn(move |request| {
                        forward::handle(Arc::clone(&shared), peer, request)
                    });
                    let conn = builder
                        .serve_connection_with_upgrades(TokioIo::new(tls), service)
                        .into_owned();
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!("{peer}: {e}");
                    }
                } else {
                    let service = hyper::service::service_fn(move |request| {
                        http_service(
                            Arc::clone(&shared),
                            Arc::clone(&certificates),
                            https_port,
                            request,
                        )
                    });
                    let conn = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!("{peer}: {e}");
                    }
                }
            };
            if !cairn_serve::until_idle(&activity, limits.idle_timeout, connection).await {
                tracing::debug!(
                    "{peer}: closed after {} s idle",
                    limits.idle_timeout.as_secs()
                );
            }
        });
    }
    drop(listeners);
    let open = graceful.count();
    if open > 0 {
        tracing::info!("draining {open} connection(s)");
    }
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "connections still open after the {} s drain timeout; closing them",
            limits.drain_timeout.as_secs()
        );
    }
}

/// Too many open files and the like: wait a little instead of spinning.
async fn accept_error(e: &io::Error) {
    tracing::warn!("accept failed: {e}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// The plain-HTTP listener: http-01 answers, 308 to HTTPS for the rest.
async fn http_service(
    shared: Arc<Shared>,
    certificates: Arc<dyn Certificates>,
    https_port: u16,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let Some(host) = forward::request_host(&request) else {
        return Ok(page(
            StatusCode::BAD_REQUEST,
            "The request names no host (no Host header).",
        ));
    };
    if let Some(token) = request
        .uri()
        .path()
        .strip_prefix("/.well-known/acme-challenge/")
    {
        return Ok(match certificates.http01(&host, token) {
            Some(key_authorization) => {
                let mut response = page(StatusCode::OK, "");
                *response.body_mut() = {
                    use http_body_util::BodyExt as _;
                    http_body_util::Full::new(bytes::Bytes::from(key_authorization))
                        .map_err(|never| match never {})
                        .boxed_unsync()
                };
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                response
            }
            None => page(StatusCode::NOT_FOUND, "No such challenge."),
        });
    }
    if !shared.routes().contains(&host) {
        return Ok(page(
            StatusCode::MISDIRECTED_REQUEST,
            &format!("This server has no site named {host}."),
        ));
    }
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = if https_port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{https_port}{path}")
    };
    let mut response = page(StatusCode::PERMANENT_REDIRECT, "Moved to HTTPS.");
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}
