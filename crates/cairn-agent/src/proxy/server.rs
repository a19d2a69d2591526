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
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

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
            listen(addr).with_context(|| {
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

/// The accept queue asked of the kernel (which caps it at
/// `net.core.somaxconn`, 4096 on current Linux). tokio's
/// `TcpListener::bind` asks for 1024: a burst of more new connections than
/// that (a load test's `-c 2000`, a crowd after a restart) overflowed the
/// queue, and each dropped SYN cost its client a one-second retransmit.
const ACCEPT_BACKLOG: u32 = 4096;

/// A listening socket on `addr` with [`ACCEPT_BACKLOG`], `SO_REUSEADDR` set
/// as `TcpListener::bind` does (a restart need not wait out TIME_WAIT).
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
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
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(60)))
        .keep_alive_timeout(Duration::from_secs(20));
    let builder = Arc::new(builder);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
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
            tokio::select! {
                () = connection => {}
                () = activity.idle(limits.idle_timeout) => {
                    tracing::debug!("{peer}: closed after {} s idle", limits.idle_timeout.as_secs());
                }
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

/// An I/O object that records when bytes last moved, for the idle timeout.
#[derive(Debug)]
pub(crate) struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
}

/// When a [`Watched`] stream last moved bytes.
#[derive(Debug)]
pub(crate) struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once nothing moved for `timeout`.
    async fn idle(&self, timeout: Duration) {
        loop {
            let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let quiet = self.start.elapsed().saturating_sub(last);
            if quiet >= timeout {
                return;
            }
            tokio::time::sleep(timeout - quiet).await;
        }
    }
}

impl<T> Watched<T> {
    fn new(inner: T) -> (Self, Arc<Activity>) {
        let activity = Arc::new(Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        });
        (
            Self {
                inner,
                activity: Arc::clone(&activity),
            },
            activity,
        )
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
