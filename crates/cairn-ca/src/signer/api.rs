//! The HTTPS certificate of the CA's own API, issued by the ECDSA
//! intermediate so clients that trust `root.pem` trust the API too.
//!
//! Kept as `pki/api.key.pem` and `pki/api.cert.pem`; reused on restart
//! unless the configured host names changed, it expires within 30 days, it
//! was not issued by the current ECDSA intermediate, or it does not match
//! its key.

use std::collections::BTreeSet;
use std::fs;
use std::net::IpAddr;
use std::path::Path;

use cairn_proto::Identifier;
use rcgen::{KeyPair, PublicKeyData as _};
use rustls_pki_types::PrivatePkcs8KeyDer;
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer as _, X509Certificate};

use super::hierarchy::Authority;
use super::{LeafRequest, files, leaf, new_serial, serial_hex, setup_error};
use crate::error::CaError;

const KEY_FILE: &str = "api.key.pem";
const CERT_FILE: &str = "api.cert.pem";
/// Ninety days, counting both ends (RFC 5280 §4.1.2.5), as the CA's own
/// default profile: inside the BRs' limits (200 days from March 2026, 100
/// from March 2027), though only clients trusting `root.pem` rely on it.
const LIFETIME: Duration = Duration::days(90);
/// Renewed when less than this is left, at start or by `Pki::renew_api_tls`.
const RENEW_BEFORE: Duration = Duration::days(30);
const BACKDATE: Duration = Duration::hours(1);

/// Names used when the configuration gives none.
const DEFAULT_HOSTNAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The API's certificate chain (leaf first, DER) and PKCS#8 key (DER).
pub(crate) struct ApiTls {
    pub(crate) chain: Vec<Vec<u8>>,
    pub(crate) key_pkcs8: Vec<u8>,
}

/// Loads the API certificate from `pki_dir`, or issues a new one.
pub(crate) fn load_or_issue(
    pki_dir: &Path,
    hostnames: &[String],
    issuer: &Authority,
    base_url: &str,
    now: OffsetDateTime,
) -> Result<ApiTls, CaError> {
    let wanted = wanted_names(hostnames)?;
    let key_path = pki_dir.join(KEY_FILE);
    let cert_path = pki_dir.join(CERT_FILE);
    if let Some(tls) = reuse(&key_path, &cert_path, &wanted, issuer, now) {
        return Ok(tls);
    }

    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| setup_error("generating the API key", e))?;
    let req = LeafRequest {
        serial: new_serial(),
        issuer: issuer.id.to_owned(),
        names: wanted.iter().cloned().collect(),
        public_key_spki_der: key.subject_public_key_info(),
        not_before: now - BACKDATE,
        not_after: (now - BACKDATE + LIFETIME - Duration::SECOND).min(issuer.not_after),
    };
    let cert = leaf::issue(issuer, &req, base_url)
        .map_err(|e| setup_error("issuing the API certificate", e))?;
    let key_pkcs8 = key.serialize_der();
    // Key first: a crash in between leaves a certificate that does not
    // match the key, which the next start notices and replaces.
    files::write_private(
        &key_path,
        cairn_proto::pem::encode("PRIVATE KEY", &key_pkcs8).as_bytes(),
    )
    .map_err(|e| setup_error(format!("writing {}", key_path.display()), e))?;
    files::write_public(
        &cert_path,
        cairn_proto::pem::encode("CERTIFICATE", &cert).as_bytes(),
    )
    .map_err(|e| setup_error(format!("writing {}", cert_path.display()), e))?;
    tracing::info!(
        target: "cairn::audit",
        event = "api_certificate_issued",
        serial = %serial_hex(&req.serial),
        issuer = issuer.id,
        names = ?req.names.iter().map(ToString::to_string).collect::<Vec<_>>(),
        not_after = %req.not_after,
        "issued the API's HTTPS certificate"
    );
    Ok(ApiTls {
        chain: vec![cert, issuer.cert_der.clone()],
        key_pkcs8,
    })
}

/// The stored certificate and key, if they are still what we want.
fn reuse(
    key_path: &Path,
    cert_path: &Path,
    wanted: &BTreeSet<Identifier>,
    issuer: &Authority,
    now: OffsetDateTime,
) -> Option<ApiTls> {
    let key_der = cairn_proto::pem::decode_one(&fs::read_to_string(key_path).ok()?, "PRIVATE KEY")?;
    let cert_der =
        cairn_proto::pem::decode_one(&fs::read_to_string(cert_path).ok()?, "CERTIFICATE")?;
    let key = KeyPair::from_pkcs8_der_and_sign_algo(
        &PrivatePkcs8KeyDer::from(key_der.as_slice()),
        &rcgen::PKCS_ECDSA_P256_SHA256,
    )
    .ok()?;
    let (_, cert) = X509Certificate::from_der(&cert_der).ok()?;

    let key_matches = cert.public_key().raw == key.subject_public_key_info().as_slice();
    let from_issuer = cert.iter_extensions().any(|ext| {
        matches!(ext.parsed_extension(), ParsedExtension::AuthorityKeyIdentifier(aki)
            if aki.key_identifier.as_ref().is_some_and(|id| id.0 == issuer.key_id.as_slice()))
    });
    let fresh = cert.validity().not_after.to_datetime() - now > RENEW_BEFORE;
    let names_match = cert_names(&cert).as_ref() == Some(wanted);
    if !(key_matches && from_issuer && fresh && names_match) {
        tracing::info!(
            key_matches,
            from_issuer,
            fresh,
            names_match,
            "the stored API certificate will be replaced"
        );
        return None;
    }
    Some(ApiTls {
        chain: vec![cert_der.clone(), issuer.cert_der.clone()],
        key_pkcs8: key_der,
    })
}

/// Host names and IP literals as identifiers; IPv6 may come in brackets.
fn wanted_names(hostnames: &[String]) -> Result<BTreeSet<Identifier>, CaError> {
    let configured: Vec<&str> = if hostnames.is_empty() {
        DEFAULT_HOSTNAMES.to_vec()
    } else {
        hostnames.iter().map(String::as_str).collect()
    };
    configured
        .into_iter()
        .map(|name| {
            let bare = name
                .strip_prefix('[')
                .and_then(|n| n.strip_suffix(']'))
                .unwrap_or(name);
            match bare.parse::<IpAddr>() {
                Ok(ip) => Ok(Identifier::ip(ip)),
                Err(_) if !bare.is_empty() && bare.bytes().all(|b| b.is_ascii_graphic()) => {
                    Ok(Identifier::dns(bare.to_ascii_lowercase()))
                }
                Err(_) => Err(setup_error(
                    "configuring the API certificate",
                    format!("{name:?} is neither a host name nor an IP address"),
                )),
            }
        })
        .collect()
}

fn cert_names(cert: &X509Certificate<'_>) -> Option<BTreeSet<Identifier>> {
    let san = cert.subject_alternative_name().ok()??;
    san.value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(dns) => Some(Identifier::dns(dns.to_ascii_lowercase())),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes)
                    .ok()
                    .map(|o| Identifier::ip(IpAddr::from(o))),
                16 => <[u8; 16]>::try_from(*bytes)
                    .ok()
                    .map(|o| Identifier::ip(IpAddr::from(o))),
                _ => None,
            },
            _ => None,
        })
        .collect()
}
