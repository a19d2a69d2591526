//! Subscriber (leaf) certificates: the CA/Browser Forum Baseline
//! Requirements profile for domain-validated TLS server certificates
//! (BR §7.1.2.7), on a public key taken from the CSR.

use std::net::IpAddr;

use cairn_proto::ari::CertId;
use cairn_proto::{IdentifierType, ProblemType};
use rcgen::string::Ia5String;
use rcgen::{
    CertificateParams, CrlDistributionPoint, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    IsCa, KeyUsagePurpose, SanType, SerialNumber, SubjectPublicKeyInfo,
};
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{FromDer as _, X509Certificate};

use super::hierarchy::Authority;
use super::{LeafRequest, extensions, serial_hex};
use crate::error::CaError;

/// The longest common name X.520 allows (ub-common-name).
const MAX_COMMON_NAME: usize = 64;
/// RFC 5280 §4.1.2.2: at most 20 octets.
const MAX_SERIAL_LEN: usize = 20;
const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// Signs a leaf certificate for `req` with `issuer`.
///
/// Profile: v3; the requested serial and validity; subject CN = the first
/// DNS name of at most 64 characters, or an empty subject with a critical
/// SAN; SAN with every name; keyUsage (critical) digitalSignature, plus
/// keyEncipherment for RSA keys; EKU serverAuth; basicConstraints
/// (critical) cA FALSE; AKI; no SKI; AIA caIssuers and a CRL distribution
/// point over HTTP; certificatePolicies DV.
pub(crate) fn issue(
    issuer: &Authority,
    req: &LeafRequest,
    base_url: &str,
) -> Result<Vec<u8>, CaError> {
    check_request(issuer, req)?;
    let (spki, is_rsa) = parse_spki(&req.public_key_spki_der)?;

    let mut subject_alt_names = Vec::with_capacity(req.names.len());
    let mut common_name = None;
    for name in &req.names {
        match name.kind {
            IdentifierType::Dns => {
                let ia5 = Ia5String::try_from(name.value.as_str()).map_err(|e| {
                    CaError::new(
                        ProblemType::RejectedIdentifier,
                        format!("{name} cannot go in a certificate: {e}"),
                    )
                })?;
                if common_name.is_none() && name.value.len() <= MAX_COMMON_NAME {
                    common_name = Some(name.value.clone());
                }
                subject_alt_names.push(SanType::DnsName(ia5));
            }
            IdentifierType::Ip => {
                let ip: IpAddr = name.value.parse().map_err(|_| {
                    CaError::new(
                        ProblemType::RejectedIdentifier,
                        format!("{name} is not an IP address"),
                    )
                })?;
                subject_alt_names.push(SanType::IpAddress(ip));
            }
            _ => {
                return Err(CaError::new(
                    ProblemType::UnsupportedIdentifier,
                    format!("{name}: only dns and ip identifiers can be certified"),
                ));
            }
        }
    }

    let mut params = CertificateParams::default();
    params.serial_number = Some(SerialNumber::from_slice(&req.serial));
    params.not_before = req.not_before;
    params.not_after = req.not_after;
    params.distinguished_name = DistinguishedName::new();
    if let Some(cn) = common_name {
        params.distinguished_name.push(DnType::CommonName, cn);
    }
    // With an empty subject rcgen marks the SAN critical (RFC 5280 §4.2.1.6).
    params.subject_alt_names = subject_alt_names;
    params.key_usages = if is_rsa {
        vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ]
    } else {
        vec![KeyUsagePurpose::DigitalSignature]
    };
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    // NoCa: rcgen writes neither basicConstraints nor a subjectKeyIdentifier;
    // basicConstraints comes as a custom extension below.
    params.is_ca = IsCa::NoCa;
    params.use_authority_key_identifier_extension = true;
    params.crl_distribution_points = vec![CrlDistributionPoint {
        uris: vec![extensions::crl_url(base_url, issuer.id)],
    }];
    params.custom_extensions = vec![
        extensions::not_a_ca(),
        extensions::ca_issuers(&extensions::issuer_url(base_url, issuer.id)),
        extensions::dv_policy(),
    ];

    let cert = params
        .signed_by(&spki, issuer.signer()?)
        .map_err(|e| CaError::internal("signing a certificate", e))?;
    Ok(cert.der().to_vec())
}

/// RFC 9773 §4.1: the certificate's AKI keyIdentifier and its DER serial.
pub fn leaf_ari_cert_id(leaf_der: &[u8]) -> Result<CertId, CaError> {
    let (_, cert) = X509Certificate::from_der(leaf_der)
        .map_err(|e| CaError::malformed(format!("not a DER certificate: {e}")))?;
    let key_id = cert
        .iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => aki.key_identifier.as_ref(),
            _ => None,
        })
        .ok_or_else(|| {
            CaError::malformed("the certificate has no authorityKeyIdentifier keyIdentifier")
        })?;
    Ok(CertId::new(key_id.0.to_vec(), cert.raw_serial().to_vec())?)
}

/// What the RA hands over must already be right; anything else is a bug
/// on our side, reported as an internal error.
fn check_request(issuer: &Authority, req: &LeafRequest) -> Result<(), CaError> {
    let serial_ok = matches!(req.serial.first(), Some(b) if *b != 0 && b & 0x80 == 0)
        && req.serial.len() <= MAX_SERIAL_LEN;
    if !serial_ok {
        return Err(CaError::internal(
            "checking a certificate request",
            format!(
                "serial {} is not a positive, minimal integer of at most 20 octets",
                serial_hex(&req.serial)
            ),
        ));
    }
    if req.names.is_empty() {
        return Err(CaError::internal(
            "checking a certificate request",
            "no names to certify",
        ));
    }
    if req.not_after <= req.not_before {
        return Err(CaError::internal(
            "checking a certificate request",
            "notAfter is not after notBefore",
        ));
    }
    if req.not_before < issuer.not_before || req.not_after > issuer.not_after {
        return Err(CaError::internal(
            "checking a certificate request",
            format!(
                "validity {}..{} is outside issuer {}'s {}..{}; the intermediate needs renewing",
                req.not_before, req.not_after, issuer.id, issuer.not_before, issuer.not_after
            ),
        ));
    }
    Ok(())
}

/// The subscriber key as rcgen wants it, and whether it is RSA.
fn parse_spki(der: &[u8]) -> Result<(SubjectPublicKeyInfo, bool), CaError> {
    let (rest, parsed) = x509_parser::x509::SubjectPublicKeyInfo::from_der(der)
        .map_err(|e| CaError::internal("reading the subscriber key", e))?;
    if !rest.is_empty() {
        return Err(CaError::internal(
            "reading the subscriber key",
            "trailing data after the SubjectPublicKeyInfo",
        ));
    }
    let is_rsa = parsed.algorithm.algorithm.to_id_string() == OID_RSA_ENCRYPTION;
    let spki = SubjectPublicKeyInfo::from_der(der)
        .map_err(|e| CaError::internal("reading the subscriber key", e))?;
    Ok((spki, is_rsa))
}
