//! Keeping one lineage served: obtain it, then renew it when the CA's
//! renewal information says so, at a third of its lifetime left otherwise,
//! and at once if it shows up revoked; failures are retried with
//! exponential backoff and jitter.

use std::sync::Arc;
use std::time::Duration;

use cairn_client::lineage::CertName;
use cairn_client::{AcmeClient, ClientOptions};
use cairn_proto::ari::CertId;
use cairn_proto::objects::RenewalInfo;
use time::OffsetDateTime;
use tracing::Instrument as _;

use crate::obtain::{self, Replacing};
use crate::{Error, Event, Served, TlsManager};

/// Starts the maintenance task of the lineage for `names`, unless one runs.
pub(crate) fn spawn(manager: &TlsManager, names: Vec<String>) {
    let Some(lineage) = names.first().and_then(|n| CertName::default_for(n).ok()) else {
        return;
    };
    let mut tasks = manager
        .inner
        .maintained
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if tasks.get(&lineage).is_some_and(|t| !t.is_finished()) {
        return;
    }
    let span = tracing::info_span!("certificate", %lineage);
    let task = tokio::spawn(run(manager.clone(), names).instrument(span));
    tasks.insert(lineage, task);
}

/// The retry delay after `failures` failures in a row: `base`·2^(n-1),
/// capped at `max`, then scaled by a random factor in [0.5, 1] so that
/// many servers failing together do not retry together.
pub(crate) fn backoff(base: Duration, max: Duration, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    let delay = base.saturating_mul(1u32 << exp).min(max);
    delay.mul_f64(0.5 + 0.5 * random_unit())
}

/// A random number in [0, 1).
fn random_unit() -> f64 {
    let bytes: [u8; 8] = aws_lc_rs::rand::generate(&aws_lc_rs::rand::SystemRandom::new())
        .map(|r: aws_lc_rs::rand::Random<[u8; 8]>| r.expose())
        .unwrap_or_default();
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

async fn run(manager: TlsManager, names: Vec<String>) {
    let inner = Arc::clone(&manager.inner);
    let timings = inner.config.timings.clone();
    let lineage = names
        .first()
        .and_then(|n| CertName::default_for(n).ok())
        .map(|n| n.to_string())
        .unwrap_or_default();
    let mut failures = 0u32;
    let mut replacing: Option<Replacing> = None;
    loop {
        // Get a certificate (the first one, or a renewal that is due).
        let served = match obtain::ensure(&manager, &names, replacing.clone()).await {
            Ok(served) => {
                failures = 0;
                served
            }
            Err(e) => {
                failures += 1;
                let retry_in = backoff(timings.retry_base, timings.retry_max, failures);
                tracing::warn!(failures, ?retry_in, "{e}");
                inner.send(Event::Failed {
                    name: lineage.clone(),
                    error: e.to_string(),
                    retry_in,
                });
                tokio::time::sleep(retry_in).await;
                continue;
            }
        };
        replacing = None;
        // Watch it until it is due.
        loop {
            let now = OffsetDateTime::now_utc();
            let plan = plan(&manager, &served).await;
            if plan.revoked {
                inner.count(|c| &c.revoked);
                tracing::warn!(serial = %served.loaded.info.serial_hex(), "the certificate is revoked; renewing now");
            }
            if plan.revoked || plan.at <= now {
                replacing = Some(Replacing {
                    serial: served.loaded.info.serial_hex(),
                    cert_id: plan.cert_id,
                    ca: served.ca,
                });
                break;
            }
            inner.send(Event::NextRenewal {
                name: lineage.clone(),
                at: plan.at,
            });
            let until = Duration::try_from(plan.at - now).unwrap_or_default();
            tokio::time::sleep(until.min(timings.check_interval)).await;
            // Another task (on-demand, a second process) may have renewed.
            if let Some(current) = inner.served_lineage(&served.lineage)
                && current.loaded.info.serial != served.loaded.info.serial
            {
                break;
            }
        }
    }
}

/// When to renew, and why.
struct Plan {
    at: OffsetDateTime,
    cert_id: Option<String>,
    revoked: bool,
}

async fn plan(manager: &TlsManager, served: &Served) -> Plan {
    let info = &served.loaded.info;
    let cert_id = info
        .authority_key_id
        .as_ref()
        .and_then(|aki| CertId::from_unsigned_serial(aki.clone(), &info.serial).ok())
        .map(|id| id.to_string());
    let mut at = info.renewal_time();
    if let Some(id) = cert_id.as_ref().filter(|_| manager.inner.config.ari) {
        match ari_window(manager, served, id).await {
            Ok(Some(start)) => at = start,
            Ok(None) => {}
            Err(e) => tracing::info!("no renewal information: {e}"),
        }
    }
    let revoked = if manager.inner.config.crl {
        match crate::crl::is_revoked(&served.loaded, manager.http_client(served.ca)).await {
            Ok(revoked) => revoked,
            Err(e) => {
                tracing::info!("the CRL could not be checked: {e}");
                false
            }
        }
    } else {
        false
    };
    Plan {
        at,
        cert_id,
        revoked,
    }
}

/// The moment picked in the CA's suggested window (RFC 9773 §4.2), from
/// the CA that issued the certificate, else the first CA offering ARI.
async fn ari_window(
    manager: &TlsManager,
    served: &Served,
    cert_id: &str,
) -> Result<Option<OffsetDateTime>, Error> {
    let cas = &manager.inner.config.cas;
    let order: Vec<usize> = match served.ca {
        Some(i) => vec![i],
        None => (0..cas.len()).collect(),
    };
    for index in order {
        let ca = &cas[index];
        let client = AcmeClient::new(
            &ca.directory_url,
            ClientOptions {
                ca_bundle_pem: ca.ca_bundle_pem.clone(),
                timeout: Duration::from_secs(30),
                ..ClientOptions::default()
            },
        )
        .await?;
        let Some(base) = client.directory().renewal_info.clone() else {
            continue;
        };
        let url = format!("{}/{cert_id}", base.trim_end_matches('/'));
        let response = manager
            .http_client(Some(index))
            .get(&url)
            .send()
            .await
            .map_err(|e| Error::Storage(format!("GET {url}: {e}")))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            continue;
        }
        if !response.status().is_success() {
            return Err(Error::Storage(format!(
                "GET {url}: HTTP {}",
                response.status()
            )));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| Error::Storage(format!("GET {url}: {e}")))?;
        let info: RenewalInfo = serde_json::from_slice(&body)
            .map_err(|e| Error::Storage(format!("GET {url}: not renewal information: {e}")))?;
        let window = info.suggested_window;
        if window.end <= window.start {
            return Err(Error::Storage(format!(
                "GET {url}: the window ends before it starts"
            )));
        }
        let span = (window.end - window.start).as_seconds_f64();
        return Ok(Some(
            window.start + time::Duration::seconds_f64(span * random_unit()),
        ));
    }
    Ok(None)
}

impl TlsManager {
    /// An HTTP client for ARI and CRL requests, trusting CA `index`'s bundle.
    pub(crate) fn http_client(&self, index: Option<usize>) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("cairn-tls/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = index
            .and_then(|i| self.inner.config.cas.get(i))
            .and_then(|ca| ca.ca_bundle_pem.as_deref())
            .or_else(|| {
                self.inner
                    .config
                    .cas
                    .iter()
                    .find_map(|ca| ca.ca_bundle_pem.as_deref())
            })
            && let Ok(certs) = reqwest::Certificate::from_pem_bundle(pem)
        {
            builder = builder.tls_certs_merge(certs);
        }
        builder.build().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_to_the_cap_with_jitter() {
        let base = Duration::from_secs(60);
        let max = Duration::from_secs(6 * 3600);
        for (failures, full) in [
            (1, 60),
            (2, 120),
            (3, 240),
            (9, 15360),
            (10, 21600),
            (40, 21600),
        ] {
            for _ in 0..20 {
                let d = backoff(base, max, failures);
                assert!(
                    d >= Duration::from_secs(full) / 2 && d <= Duration::from_secs(full),
                    "{failures}: {d:?}"
                );
            }
        }
    }
}
