//! The tls-alpn-01 responder (RFC 8737): a TLS server that completes a
//! handshake only when the client offers ALPN `acme-tls/1` and sends an SNI
//! set through [`Records::add_tls_alpn01`]; it then presents that name's
//! self-signed certificate with the acmeIdentifier extension and closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use cairn_proto::challenge::ACME_TLS_ALPN_PROTOCOL;
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::records::Records;

/// A connection that has not finished its handshake after this is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds `addr` and answers tls-alpn-01 handshakes from `records`. Aborting
/// the returned task closes the listener and every open connection.
pub(crate) async fn spawn(
    addr: SocketAddr,
    records: Records,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let acceptor = TlsAcceptor::from(Arc::new(server_config(records)?));
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the tls-alpn-01 responder to {addr}"))?;
    let bound = listener
        .local_addr()
        .context("reading the tls-alpn-01 address")?;
    let task = tokio::spawn(accept_loop(listener, acceptor));
    Ok((bound, task))
}

fn server_config(records: Records) -> anyhow::Result<ServerConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("building the tls-alpn-01 TLS configuration")?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(ChallengeCertResolver { records }));
    // A client offering other protocols only gets a no_application_protocol
    // alert from rustls; one offering none is refused by the resolver.
    config.alpn_protocols = vec![ACME_TLS_ALPN_PROTOCOL.to_vec()];
    Ok(config)
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor) {
    // Connections live in this set so that aborting the loop ends them too.
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, "tls-alpn-01 accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        connections.spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(mut tls)) => {
                    let server_name = tls.get_ref().1.server_name().unwrap_or("").to_owned();
                    info!(%peer, %server_name, "tls-alpn-01 challenge served");
                    // RFC 8737 §3: the client closes after the handshake;
                    // nothing more to say than close_notify.
                    let _ = tls.shutdown().await;
                }
                Ok(Err(error)) => debug!(%peer, %error, "tls-alpn-01 handshake refused"),
                Err(_) => debug!(%peer, "tls-alpn-01 handshake timed out"),
            }
        });
    }
}

/// Picks the certificate by SNI, and only for ALPN `acme-tls/1`.
#[derive(Debug)]
struct ChallengeCertResolver {
    records: Records,
}

impl ResolvesServerCert for ChallengeCertResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let offers_acme = client_hello
            .alpn()
            .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN_PROTOCOL));
        if !offers_acme {
            debug!("tls-alpn-01: client did not offer ALPN acme-tls/1");
            return None;
        }
        let Some(server_name) = client_hello.server_name() else {
            debug!("tls-alpn-01: client sent no SNI");
            return None;
        };
        let certificate = self.records.tls_alpn01_certificate(server_name);
        if certificate.is_none() {
            info!(%server_name, "tls-alpn-01 handshake for a name with no challenge set");
        }
        certificate
    }
}
