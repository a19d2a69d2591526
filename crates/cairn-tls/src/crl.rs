//! Is the served certificate revoked? Its CRL distribution point is
//! fetched, the CRL's signature checked against the issuer (the second
//! certificate of the served chain), and the serial looked up.

use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use crate::Error;
use crate::disk::Loaded;

/// Largest CRL read.
const MAX_BYTES: usize = 16 * 1024 * 1024;

/// True if a CRL named by the certificate lists it. `Ok(false)` when the
/// certificate names no CRL over http(s).
pub(crate) async fn is_revoked(loaded: &Loaded, http: reqwest::Client) -> Result<bool, Error> {
    let urls: Vec<&String> = loaded
        .info
        .crl_urls
        .iter()
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .collect();
    let Some(issuer_der) = loaded.chain_der.get(1) else {
        return Ok(false);
    };
    for url in urls {
        let mut response = http
            .get(url.as_str())
            .send()
            .await
            .map_err(|e| Error::Certificate(format!("GET {url}: {e}")))?;
        if !response.status().is_success() {
            return Err(Error::Certificate(format!(
                "GET {url}: HTTP {}",
                response.status()
            )));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Error::Certificate(format!("GET {url}: {e}")))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BYTES {
                return Err(Error::Certificate(format!(
                    "GET {url}: the CRL is too large"
                )));
            }
        }
        if listed(&body, issuer_der, &loaded.info.serial)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// True if the DER CRL `crl`, signed by `issuer_der`, lists `serial`.
pub(crate) fn listed(crl: &[u8], issuer_der: &[u8], serial: &[u8]) -> Result<bool, Error> {
    let (_, crl) = CertificateRevocationList::from_der(crl)
        .map_err(|e| Error::Certificate(format!("not a CRL: {e}")))?;
    let (_, issuer) = X509Certificate::from_der(issuer_der)
        .map_err(|e| Error::Certificate(format!("the issuer does not parse: {e}")))?;
    if crl.issuer() != issuer.subject() {
        return Err(Error::Certificate(
            "the CRL was issued by another CA than the certificate".into(),
        ));
    }
    crl.verify_signature(issuer.public_key())
        .map_err(|e| Error::Certificate(format!("the CRL's signature does not verify: {e}")))?;
    Ok(crl.iter_revoked_certificates().any(|r| {
        let raw = r.raw_serial();
        let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
        &raw[start..] == serial
    }))
}
