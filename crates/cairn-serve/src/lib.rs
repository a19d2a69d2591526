//! The protections a listener open to the internet needs, shared by the
//! CA's listeners (ACME API, CRLs), the agent's challenge responders and
//! `cairn proxy`:
//!
//! - [`listen`]: an accept queue deep enough for a burst of new
//!   connections;
//! - [`Gate`]: a cap on connections open at once; past it new ones wait
//!   in the kernel's queue instead of taking memory and tasks;
//! - [`http_builder`]: HTTP/1.1 and HTTP/2 where each request's headers
//!   must arrive within the header timeout (a client sending one byte a
//!   second is cut off, not waited for);
//! - [`Watched`] and [`until_idle`]: a connection where no byte moved
//!   either way for the idle timeout is closed.
//!
//! The TLS handshake deadline is the caller's (it owns the acceptor): wrap
//! it in `tokio::time::timeout(limits.header_timeout, ..)`.

#![forbid(unsafe_code)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long clients get, and how many may be connected at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// To finish the TLS handshake, and to send each request's headers.
    pub header_timeout: Duration,
    /// A connection with no byte moving either way for this long is closed.
    pub idle_timeout: Duration,
    /// Connections open at once; more wait in the accept queue.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
        }
    }
}

/// The accept queue asked of the kernel (which caps it at
/// `net.core.somaxconn`, 4096 on current Linux). tokio's
/// `TcpListener::bind` asks for 1024: a burst of more new connections than
/// that (a load test's `-c 2000`, a crowd after a restart) overflows it,
/// and each dropped SYN costs its client a one-second retransmit.
pub const ACCEPT_BACKLOG: u32 = 4096;

/// A listening socket on `addr` with [`ACCEPT_BACKLOG`] and `SO_REUSEADDR`
/// (a restart need not wait out TIME_WAIT), as `TcpListener::bind` sets.
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// HTTP/1.1 and HTTP/2 (by ALPN or preface) with the header timeout: it
/// runs from the moment the server waits for a request until its headers
/// are complete, for the first request and every later one on the
/// connection. HTTP/2 pings a quiet peer and drops one that stopped
/// answering.
pub fn http_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
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
    builder
}

/// The cap on open connections: one [`Pass`] per connection, held until
/// it closes.
#[derive(Clone, Debug)]
pub struct Gate {
    places: Arc<Semaphore>,
    max: usize,
}

/// A place among the open connections; dropping it frees the place.
pub type Pass = OwnedSemaphorePermit;

impl Gate {
    pub fn new(max_connections: usize) -> Self {
        let max = max_connections.max(1);
        Self {
            places: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// Waits for a free place. Take it before `accept`, so that at the cap
    /// new connections wait in the kernel's queue.
    pub async fn enter(&self) -> Pass {
        loop {
            // The semaphore is never closed; a closed one would only make
            // this loop until it is reopened, which cannot happen.
            if let Ok(pass) = Arc::clone(&self.places).acquire_owned().await {
                return pass;
            }
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max - self.places.available_permits()
    }
}

/// Runs `connection` until it ends or `activity` saw nothing for
/// `idle_timeout`; `false` when the idle timeout ended it.
pub async fn until_idle(
    activity: &Activity,
    idle_timeout: Duration,
    connection: impl Future<Output = ()>,
) -> bool {
    tokio::select! {
        () = connection => true,
        () = activity.idle(idle_timeout) => false,
    }
}

/// An I/O object that records when bytes last moved, for the idle timeout.
#[derive(Debug)]
pub struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
}

/// When a [`Watched`] stream last moved bytes.
#[derive(Debug)]
pub struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once nothing moved for `timeout`.
    pub async fn idle(&self, timeout: Duration) {
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
    /// Wraps `inner`; the [`Activity`] tells when it last moved bytes.
    pub fn new(inner: T) -> (Self, Arc<Activity>) {
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

    pub fn get_ref(&self) -> &T {
        &self.inner
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test]
    async fn quiet_connections_end_and_busy_ones_do_not() {
        let (mut client, server) = tokio::io::duplex(64);
        let (mut server, activity) = Watched::new(server);
        let idle = Duration::from_millis(1500);
        // Longer than the idle timeout in all, never quiet for long.
        let talk = async {
            for _ in 0..40 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                client.write_all(b"x").await.unwrap();
                let mut byte = [0];
                server.read_exact(&mut byte).await.unwrap();
            }
        };
        assert!(until_idle(&activity, idle, talk).await, "bytes moving");
        let started = Instant::now();
        let silent = std::future::pending::<()>();
        assert!(!until_idle(&activity, idle, silent).await);
        assert!(started.elapsed() >= idle - Duration::from_millis(100));
    }

    #[tokio::test]
    async fn the_gate_counts_open_connections() {
        let gate = Gate::new(2);
        let a = gate.enter().await;
        let _b = gate.enter().await;
        assert_eq!(gate.open(), 2);
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(a);
        let _pass = waiting.await.unwrap();
    }

    #[tokio::test]
    async fn listeners_take_port_zero() {
        let listener = listen(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        assert_ne!(listener.local_addr().unwrap().port(), 0);
    }
}
