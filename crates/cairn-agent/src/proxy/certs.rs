//! Certificates for the proxy come from cairn-tls, which is being written
//! on its own branch; until it is merged, `cairn proxy` says so and stops
//! before binding anything. (Replaced by the cairn-tls wiring.)

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Result, bail};
use tokio::net::TcpStream;

use super::config::ProxyConfig;
use super::server::{BoxFuture, Certificates, TlsStream, Watched};
use crate::commands::Context;

/// The certificate manager the listeners use.
#[derive(Debug)]
pub(crate) struct Managed;

pub(crate) async fn start(
    _context: &Context,
    _config: &ProxyConfig,
    _http: SocketAddr,
    _https: SocketAddr,
) -> Result<Arc<Managed>> {
    bail!(
        "this build of cairn has no certificate manager (cairn-tls) yet; cairn proxy cannot serve HTTPS"
    )
}

impl Managed {
    pub(crate) async fn update(&self, _config: &ProxyConfig) -> Result<()> {
        Ok(())
    }

    pub(crate) async fn stop(&self) {}
}

impl Certificates for Managed {
    fn accept(&self, _tcp: Watched<TcpStream>) -> BoxFuture<'_, io::Result<Option<TlsStream>>> {
        Box::pin(async { Ok(None) })
    }

    fn http01(&self, _host: &str, _token: &str) -> Option<String> {
        None
    }
}
