//! Serving a router on a listener, over TLS or plain HTTP, HTTP/1.1 and
//! HTTP/2, until shutdown, with the limits of `cairn-serve`: a cap on open
//! connections, deadlines for the TLS handshake and each request's
//! headers, an idle timeout.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use cairn_serve::{Gate, Limits, Watched};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Accepts connections on `listener` and serves `router` on each, until
/// `shutdown` completes. Each connection is its own task, so a slow client
/// never holds up another.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let service = TowerToHyperService::new(router);
    let builder = cairn_serve::http_builder(&limits);
    let gate = Gate::new(limits.max_connections);
    tokio::pin!(shutdown);
    loop {
        let pass = tokio::select! {
            pass = gate.enter() => pass,
            () = &mut shutdown => return,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let _ = stream.set_nodelay(true);
        let (stream, activity) = Watched::new(stream);
        let service = service.clone();
        let builder = builder.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _pass = pass;
            let connection = async {
                let result = match acceptor {
                    Some(acceptor) => {
                        let handshake =
                            tokio::time::timeout(limits.header_timeout, acceptor.accept(stream));
                        match handshake.await {
                            Ok(Ok(tls)) => {
                                builder
                                    .serve_connection_with_upgrades(TokioIo::new(tls), service)
                                    .await
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        }
                    }
                    None => {
                        builder
                            .serve_connection_with_upgrades(TokioIo::new(stream), service)
                            .await
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            };
            if !cairn_serve::until_idle(&activity, limits.idle_timeout, connection).await {
                tracing::debug!(%peer, "connection closed after the idle timeout");
            }
        });
    }
}
