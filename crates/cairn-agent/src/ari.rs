//! ACME Renewal Information (RFC 9773): asks the CA when to renew a
//! certificate, if its directory offers `renewalInfo`.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use cairn_client::AcmeClient;
use cairn_proto::ari::CertId;
use cairn_proto::objects::RenewalInfo;
use time::OffsetDateTime;

use crate::issue::CertInfo;

/// Largest renewal information document read.
const MAX_BYTES: usize = 64 * 1024;

/// The CA's suggestion for one certificate.
#[derive(Clone, Debug)]
pub(crate) struct Window {
    /// The moment in the suggested window this client picked (RFC 9773
    /// §4.2: uniformly at random, so that clients spread out).
    pub(crate) start: OffsetDateTime,
    /// The certificate's ARI identifier, for `replaces` in the new order.
    pub(crate) cert_id: String,
}

/// The HTTP client for renewal information requests, trusting `ca_bundle`
/// besides the system roots. Build it once and reuse it.
pub(crate) fn http_client(ca_bundle: Option<&Path>) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::limited(3))
        .user_agent(concat!("cairn/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_bundle {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        builder = builder.tls_certs_merge(reqwest::Certificate::from_pem_bundle(&pem)?);
    }
    Ok(builder.build()?)
}

/// Fetches the renewal information for `info`. `None` when the CA offers
/// none or the certificate has no Authority Key Identifier.
pub(crate) async fn check(
    client: &AcmeClient,
    http: &reqwest::Client,
    info: &CertInfo,
) -> Result<Option<Window>> {
    let Some(base) = client.directory().renewal_info.as_deref() else {
        return Ok(None);
    };
    let Some(aki) = &info.authority_key_id else {
        return Ok(None);
    };
    let cert_id = CertId::from_unsigned_serial(aki.clone(), &info.serial_bytes)?.to_string();
    let url = format!("{}/{cert_id}", base.trim_end_matches('/'));
    let mut response = http
        .get(&url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    if !response.status().is_success() {
        bail!("GET {url}: HTTP {}", response.status());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BYTES {
            bail!("GET {url}: the answer is larger than {MAX_BYTES} bytes");
        }
    }
    let renewal: RenewalInfo = serde_json::from_slice(&body)
        .with_context(|| format!("GET {url}: not renewal information"))?;
    let window = renewal.suggested_window;
    if window.end <= window.start {
        bail!("GET {url}: the suggested window ends before it starts");
    }
    if let Some(explanation) = &renewal.explanation_url {
        tracing::info!(%explanation, "the CA explains its renewal window");
    }
    Ok(Some(Window {
        start: pick(window.start, window.end),
        cert_id,
    }))
}

/// A uniformly random moment in `[start, end)`.
fn pick(start: OffsetDateTime, end: OffsetDateTime) -> OffsetDateTime {
    let span = (end - start).whole_seconds().max(1) as u64;
    let bytes: [u8; 8] = aws_lc_rs::rand::generate(&aws_lc_rs::rand::SystemRandom::new())
        .map(|r: aws_lc_rs::rand::Random<[u8; 8]>| r.expose())
        .unwrap_or_default();
    let offset = u64::from_le_bytes(bytes) % span;
    start + time::Duration::seconds(offset as i64)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn the_picked_moment_lies_in_the_window() {
        let start = datetime!(2025-01-01 0:00 UTC);
        let end = datetime!(2025-01-03 0:00 UTC);
        for _ in 0..100 {
            let t = pick(start, end);
            assert!(start <= t && t < end, "{t}");
        }
    }
}
