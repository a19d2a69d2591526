//! Accepting TLS connections: the ClientHello is read first, so that a
//! name without a certificate can get one on demand (if the policy and the
//! rate limits allow) before the handshake goes on.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::OnDemand;
use crate::{Error, TlsManager, normalize, resolver};

/// A token bucket: `burst` tokens, one more every `refill`.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn take(&mut self, burst: u32, refill: Duration, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        let per_second = 1.0 / refill.as_secs_f64().max(1e-9);
        self.tokens = (self.tokens + elapsed * per_second).min(f64::from(burst));
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The on-demand rate limits: global and per name.
#[derive(Debug, Default)]
pub(crate) struct RateLimits {
    limits: Option<(u32, Duration, u32, Duration)>,
    global: Mutex<Option<Bucket>>,
    per_name: Mutex<HashMap<String, Bucket>>,
}

/// Per-name buckets kept at most; full ones are dropped first.
const MAX_NAMES: usize = 10_000;

impl RateLimits {
    pub(crate) fn new(on_demand: &OnDemand) -> Self {
        Self {
            limits: Some((
                on_demand.global_burst,
                on_demand.global_refill,
                on_demand.name_burst,
                on_demand.name_refill,
            )),
            global: Mutex::default(),
            per_name: Mutex::default(),
        }
    }

    /// Takes a token for `name` and one from the global bucket; false if
    /// either is empty.
    fn allow(&self, name: &str) -> bool {
        let Some((g_burst, g_refill, n_burst, n_refill)) = self.limits else {
            return false;
        };
        let now = Instant::now();
        let mut names = self.per_name.lock().unwrap_or_else(|e| e.into_inner());
        if names.len() >= MAX_NAMES {
            names.retain(|_, b| {
                now.saturating_duration_since(b.updated) < n_refill.saturating_mul(n_burst)
            });
        }
        let bucket = names.entry(name.to_owned()).or_insert(Bucket {
            tokens: f64::from(n_burst),
            updated: now,
        });
        if !bucket.take(n_burst, n_refill, now) {
            return false;
        }
        let mut global = self.global.lock().unwrap_or_else(|e| e.into_inner());
        global
            .get_or_insert(Bucket {
                tokens: f64::from(g_burst),
                updated: now,
            })
            .take(g_burst, g_refill, now)
    }
}

/// True if `name` is a plausible DNS name to order for.
fn plausible(name: &str) -> bool {
    name.len() <= 253
        && name.contains('.')
        && name.parse::<std::net::IpAddr>().is_err()
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl TlsManager {
    /// Accepts a TLS connection on `io` with [`TlsManager::server_config`].
    ///
    /// The ClientHello is read first. A tls-alpn-01 validation connection
    /// gets its validation certificate and is closed after the handshake
    /// (the result is then an error). A name without a certificate is
    /// obtained on demand if configured: the policy is asked, the rate
    /// limits applied, concurrent handshakes for one name wait for one
    /// order, and the wait is bounded. A refused name fails the handshake
    /// with an alert; no order is placed.
    pub async fn accept<IO>(&self, io: IO) -> Result<TlsStream<IO>, Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io).await?;
        let hello = start.client_hello();
        let acme_tls = resolver::is_acme_tls(&hello);
        let sni = hello.server_name().map(normalize);
        if !acme_tls
            && let Some(sni) = sni
            && let Some(on_demand) = &self.inner.config.on_demand
            && resolver::lookup_exact(&self.inner, &sni).is_none()
        {
            let timeout = on_demand.handshake_timeout;
            let wanted = self.on_demand(on_demand, &sni);
            match tokio::time::timeout(timeout, wanted).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::info!(sni = %sni, "no certificate on demand: {e}");
                }
                Err(_) => {
                    tracing::warn!(sni = %sni, ?timeout, "the on-demand certificate took too long");
                }
            }
        }
        let stream = start.into_stream(self.server_config()).await?;
        if stream.get_ref().1.alpn_protocol()
            == Some(cairn_proto::challenge::ACME_TLS_ALPN_PROTOCOL)
        {
            let mut stream = stream;
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
            return Err(Error::Challenge(
                "a tls-alpn-01 validation connection, answered and closed".into(),
            ));
        }
        Ok(stream)
    }

    /// Gets a certificate for `name` on demand, if allowed. Concurrent
    /// calls for one name share one decision and one order.
    async fn on_demand(&self, on_demand: &OnDemand, name: &str) -> Result<(), Error> {
        if !plausible(name) {
            self.inner.count(|c| &c.on_demand_refused);
            return Err(Error::Refused(format!(
                "{name:?} is not a DNS name to order for"
            )));
        }
        let mut receiver = {
            let mut waits = self
                .inner
                .on_demand_waits
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match waits.get(name) {
                Some(receiver) => receiver.clone(),
                None => {
                    let (sender, receiver) = tokio::sync::watch::channel(None);
                    waits.insert(name.to_owned(), receiver.clone());
                    // In its own task: a handshake that gives up does not
                    // cancel the order the others wait for.
                    let manager = self.clone();
                    let on_demand = on_demand.clone();
                    let name = name.to_owned();
                    tokio::spawn(async move {
                        let result = manager
                            .on_demand_once(&on_demand, &name)
                            .await
                            .map_err(|e| e.to_string());
                        manager
                            .inner
                            .on_demand_waits
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&name);
                        let _ = sender.send(Some(result));
                    });
                    receiver
                }
            }
        };
        let outcome = receiver
            .wait_for(Option::is_some)
            .await
            .map_err(|_| Error::Refused("the on-demand task ended".into()))?
            .clone();
        match outcome {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(Error::Refused(e)),
            None => Err(Error::Refused("no decision".into())),
        }
    }

    /// The policy, the rate limits, then the order.
    async fn on_demand_once(&self, on_demand: &OnDemand, name: &str) -> Result<(), Error> {
        if resolver::lookup_exact(&self.inner, name).is_some() {
            return Ok(());
        }
        if !(on_demand.policy)(name).await {
            self.inner.count(|c| &c.on_demand_refused);
            return Err(Error::Refused(format!("the policy refuses {name}")));
        }
        if !self.inner.rate.allow(name) {
            self.inner.count(|c| &c.on_demand_refused);
            return Err(Error::Refused(format!("rate limit reached for {name}")));
        }
        let names = vec![name.to_owned()];
        crate::obtain::ensure(self, &names, None).await?;
        crate::maintain::spawn(self, names);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_allow_the_burst_then_refill() {
        let mut bucket = Bucket {
            tokens: 2.0,
            updated: Instant::now(),
        };
        let t0 = bucket.updated;
        let refill = Duration::from_secs(10);
        assert!(bucket.take(2, refill, t0));
        assert!(bucket.take(2, refill, t0));
        assert!(!bucket.take(2, refill, t0));
        assert!(!bucket.take(2, refill, t0 + Duration::from_secs(5)));
        assert!(bucket.take(2, refill, t0 + Duration::from_secs(10)));
        // Never more than the burst, however long the wait.
        let later = t0 + Duration::from_secs(1000);
        assert!(bucket.take(2, refill, later));
        assert!(bucket.take(2, refill, later));
        assert!(!bucket.take(2, refill, later));
    }

    #[test]
    fn only_plausible_dns_names_are_ordered_on_demand() {
        for good in ["a.example", "x-1.b.example.org"] {
            assert!(plausible(good), "{good}");
        }
        for bad in [
            "localhost",
            "127.0.0.1",
            "a..example",
            "-a.example",
            "a_b.example",
            "*.a.example",
        ] {
            assert!(!plausible(bad), "{bad}");
        }
    }
}
