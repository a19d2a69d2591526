//! Choosing the certificate for a ClientHello: the tls-alpn-01 validation
//! certificate when the client offers only `acme-tls/1`, else by SNI.

use std::fmt;
use std::sync::Arc;

use cairn_proto::challenge::ACME_TLS_ALPN_PROTOCOL;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::{Inner, Served};

/// The `rustls` certificate resolver of a [`TlsManager`](crate::TlsManager).
///
/// By SNI: the exact name, then a wildcard one label up (`a.example.com`
/// matches `*.example.com`, `b.a.example.com` does not), then the default
/// name's certificate. Renewed certificates are swapped in for new
/// handshakes; connections already established keep theirs.
pub struct Resolver {
    inner: Arc<Inner>,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

impl Resolver {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self { inner }
    }
}

/// True if the client offers `acme-tls/1` (RFC 8737 §3: a validation
/// connection offers only that protocol).
pub(crate) fn is_acme_tls(hello: &ClientHello<'_>) -> bool {
    hello
        .alpn()
        .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN_PROTOCOL))
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let sni = hello.server_name().map(str::to_ascii_lowercase);
        if is_acme_tls(&hello) {
            let found = sni.as_ref().and_then(|sni| {
                self.inner
                    .alpn
                    .0
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(sni)
                    .cloned()
            });
            tracing::debug!(sni = ?sni, found = found.is_some(), "tls-alpn-01 handshake");
            return found;
        }
        lookup(&self.inner, sni.as_deref()).map(|s| Arc::clone(&s.loaded.certified))
    }
}

/// The served lineage for `sni`: exact, wildcard, default.
pub(crate) fn lookup(inner: &Inner, sni: Option<&str>) -> Option<Arc<Served>> {
    let map = inner.by_name.read().unwrap_or_else(|e| e.into_inner());
    if let Some(sni) = sni {
        if let Some(found) = map.get(sni) {
            return Some(Arc::clone(found));
        }
        if let Some((_, parent)) = sni.split_once('.')
            && parent.contains('.')
            && let Some(found) = map.get(&format!("*.{parent}"))
        {
            return Some(Arc::clone(found));
        }
    }
    inner
        .config
        .default_name
        .as_ref()
        .and_then(|d| map.get(d))
        .cloned()
}

/// The served lineage for exactly `name`, or a wildcard covering it: what
/// decides whether a name needs a certificate on demand.
pub(crate) fn lookup_exact(inner: &Inner, name: &str) -> Option<Arc<Served>> {
    let map = inner.by_name.read().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = map.get(name) {
        return Some(Arc::clone(found));
    }
    let (_, parent) = name.split_once('.')?;
    map.get(&format!("*.{parent}")).cloned()
}
