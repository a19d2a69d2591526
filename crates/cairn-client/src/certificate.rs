//! Certificate signing requests (RFC 8555 §7.4, RFC 2986) and the checks a
//! downloaded certificate must pass before an agent installs it.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use cairn_proto::{Identifier, IdentifierType, KeyPair, KeyType};
use rcgen::string::Ia5String;
use rcgen::{CertificateParams, DistinguishedName, SanType};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
    OID_PKCS1_SHA256WITHRSA, OID_PKCS1_SHA384WITHRSA, OID_PKCS1_SHA512WITHRSA,
    OID_SIG_ECDSA_WITH_SHA256, OID_SIG_ECDSA_WITH_SHA384, OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::error::{Error, Result};

/// A certificate chain as downloaded from an order (RFC 8555 §7.4.2): the
/// end-entity certificate first, then the certificates that issued it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateChain {
    /// The chain exactly as the server sent it (`application/pem-certificate-chain`).
    pub pem: String,
    /// Every alternate chain the server offered with `Link: rel="alternate"`,
    /// downloaded, as PEM; [`CertificateChain::from_pem`] reads one.
    pub alternates: Vec<String>,
    /// The certificates of `pem`, DER, end-entity certificate first.
    pub certificates_der: Vec<Vec<u8>>,
}

impl CertificateChain {
    /// Reads a PEM chain. Refuses text with no `CERTIFICATE` block, or with
    /// a block that is not base64.
    pub fn from_pem(pem: &str) -> Result<Self> {
        let certificates_der = cairn_proto::pem::decode_all(pem, "CERTIFICATE");
        let blocks = pem.matches("-----BEGIN CERTIFICATE-----").count();
        if certificates_der.is_empty() || certificates_der.len() != blocks {
            return Err(Error::CertificateRefused(format!(
                "not a PEM certificate chain: {} of {blocks} CERTIFICATE blocks readable",
                certificates_der.len()
            )));
        }
        Ok(Self {
            pem: pem.to_owned(),
            alternates: Vec::new(),
            certificates_der,
        })
    }

    /// The end-entity certificate, DER.
    pub fn leaf_der(&self) -> Option<&[u8]> {
        self.certificates_der.first().map(Vec::as_slice)
    }
}

/// Builds a PKCS#10 CSR (RFC 2986) for `names`, signed by the certificate
/// key `key` (never the account key), as RFC 8555 §7.4 wants it: every
/// name in the subjectAltName extension, DNS names as dNSName and IP
/// addresses as iPAddress (RFC 8738 §3), and an empty subject. Returns DER.
pub fn csr(names: &[Identifier], key: &KeyPair) -> Result<Vec<u8>> {
    if names.is_empty() {
        return Err(Error::Csr("a CSR needs at least one identifier".into()));
    }
    let signing_key = rcgen::KeyPair::try_from(key.to_pkcs8_der()?.as_slice())
        .map_err(|e| Error::Csr(format!("the {} certificate key: {e}", key.key_type())))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.subject_alt_names = names
        .iter()
        .map(|id| match id.kind {
            IdentifierType::Dns => Ia5String::try_from(id.value.as_str())
                .map(SanType::DnsName)
                .map_err(|e| Error::Csr(format!("{id}: {e}"))),
            IdentifierType::Ip => id
                .value
                .parse()
                .map(SanType::IpAddress)
                .map_err(|e| Error::Csr(format!("{id}: {e}"))),
            _ => Err(Error::Csr(format!("{id}: unsupported identifier type"))),
        })
        .collect::<Result<_>>()?;
    let request = params
        .serialize_request(&signing_key)
        .map_err(|e| Error::Csr(e.to_string()))?;
    Ok(request.der().to_vec())
}

/// Checks a downloaded chain before it is installed, and refuses it with
/// [`Error::CertificateRefused`] saying why. Exactly these checks are made:
///
/// 1. The chain holds at least one certificate, each a complete DER X.509
///    certificate with nothing after it.
/// 2. The end-entity certificate's public key is `key`'s: same key type
///    (EC, RSA or Ed25519) and the same public key bits.
/// 3. Its subjectAltName extension holds exactly `names`: the same set of
///    DNS names (compared without regard to case, wildcards as written)
///    and IP addresses (compared as addresses), and no other kind of name.
/// 4. Each certificate's issuer name is byte-for-byte the next one's
///    subject name, the next one has basicConstraints `cA` true, and the
///    signature verifies under the next one's public key (RSA PKCS#1 v1.5
///    with SHA-256/384/512, ECDSA P-256/P-384 with SHA-256/384, Ed25519;
///    SHA-1 and RSA-PSS are refused).
/// 5. Every certificate of the chain is within its validity period now.
/// 6. With `extra_roots_pem`, the last certificate of the chain is one of
///    those roots, or was issued by one of them (name match and signature,
///    as in 4). Without it, the chain is only checked against itself: its
///    authenticity then rests on the TLS connection it was downloaded over.
///
/// Not checked: revocation, name constraints, policies, key usage and
/// extended key usage, path length, or any chain the roots could build
/// other than the one sent.
pub fn check_certificate(
    chain: &CertificateChain,
    names: &[Identifier],
    key: &KeyPair,
    extra_roots_pem: Option<&[u8]>,
) -> Result<()> {
    let certs = chain
        .certificates_der
        .iter()
        .enumerate()
        .map(|(i, der)| parse_certificate(der, &format!("certificate {i} of the chain")))
        .collect::<Result<Vec<_>>>()?;
    let Some(leaf) = certs.first() else {
        return Err(refused("the chain holds no certificate"));
    };
    check_public_key(leaf, key)?;
    check_names(leaf, names)?;
    for (i, pair) in certs.windows(2).enumerate() {
        let (child, parent) = (&pair[0], &pair[1]);
        check_issued_by(child, parent)
            .map_err(|why| refused(format!("certificate {i} of the chain {why}")))?;
    }
    for (i, cert) in certs.iter().enumerate() {
        if !cert.validity().is_valid() {
            return Err(refused(format!(
                "certificate {i} of the chain ({}) is not valid now: valid from {} to {}",
                cert.subject(),
                cert.validity().not_before,
                cert.validity().not_after
            )));
        }
    }
    if let Some(pem) = extra_roots_pem {
        let top = certs.last().expect("the chain is not empty");
        check_anchored(top, pem)?;
    }
    Ok(())
}

fn check_public_key(leaf: &X509Certificate<'_>, key: &KeyPair) -> Result<()> {
    let spki = leaf.public_key();
    let expected_oid = match key.key_type() {
        KeyType::EcdsaP256 | KeyType::EcdsaP384 => OID_KEY_TYPE_EC_PUBLIC_KEY,
        KeyType::Ed25519 => OID_SIG_ED25519,
        _ => OID_PKCS1_RSAENCRYPTION,
    };
    let ours = rcgen::KeyPair::try_from(key.to_pkcs8_der()?.as_slice())
        .map_err(|e| Error::Csr(format!("the {} certificate key: {e}", key.key_type())))?;
    if spki.algorithm.algorithm != expected_oid
        || spki.subject_public_key.data.as_ref() != ours.public_key_raw()
    {
        return Err(refused(
            "its public key is not the certificate key the CSR was signed with",
        ));
    }
    Ok(())
}

/// A name in a subjectAltName, in comparable form.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SanName {
    Dns(String),
    Ip(IpAddr),
}

impl fmt::Display for SanName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(name) => write!(f, "dns:{name}"),
            Self::Ip(addr) => write!(f, "ip:{addr}"),
        }
    }
}

fn check_names(leaf: &X509Certificate<'_>, names: &[Identifier]) -> Result<()> {
    let mut wanted = BTreeSet::new();
    for id in names {
        wanted.insert(match id.kind {
            IdentifierType::Dns => SanName::Dns(id.value.to_ascii_lowercase()),
            IdentifierType::Ip => SanName::Ip(
                id.value
                    .parse()
                    .map_err(|_| refused(format!("{id} is not an IP address")))?,
            ),
            _ => return Err(refused(format!("{id}: unsupported identifier type"))),
        });
    }
    let san = leaf
        .subject_alternative_name()
        .map_err(|e| refused(format!("its subjectAltName extension is malformed: {e}")))?
        .ok_or_else(|| refused("it has no subjectAltName extension"))?;
    let mut got = BTreeSet::new();
    for name in &san.value.general_names {
        got.insert(match name {
            GeneralName::DNSName(dns) => SanName::Dns(dns.to_ascii_lowercase()),
            GeneralName::IPAddress(bytes) => match *bytes {
                [a, b, c, d] => SanName::Ip(IpAddr::from([*a, *b, *c, *d])),
                _ => match <[u8; 16]>::try_from(*bytes) {
                    Ok(v6) => SanName::Ip(IpAddr::from(v6)),
                    Err(_) => return Err(refused("it has a malformed iPAddress name")),
                },
            },
            other => {
                return Err(refused(format!(
                    "its subjectAltName holds a name that was not ordered: {other}"
                )));
            }
        });
    }
    if got != wanted {
        let list = |set: BTreeSet<&SanName>| {
            let names: Vec<String> = set.into_iter().map(ToString::to_string).collect();
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        };
        return Err(refused(format!(
            "its names differ from the order's: missing {}; not ordered {}",
            list(wanted.difference(&got).collect()),
            list(got.difference(&wanted).collect()),
        )));
    }
    Ok(())
}

/// Checks that `parent` issued `child`; the error completes "certificate i ...".
fn check_issued_by(
    child: &X509Certificate<'_>,
    parent: &X509Certificate<'_>,
) -> std::result::Result<(), String> {
    if child.issuer().as_raw() != parent.subject().as_raw() {
        return Err(format!(
            "names {} as its issuer, but the next certificate is {}",
            child.issuer(),
            parent.subject()
        ));
    }
    if !parent.is_ca() {
        return Err(format!(
            "is issued by {}, which is not a CA certificate",
            parent.subject()
        ));
    }
    verify_signature(child, parent.public_key()).map_err(|why| {
        format!(
            "does not verify under the key of {}: {why}",
            parent.subject()
        )
    })
}

fn check_anchored(top: &X509Certificate<'_>, roots_pem: &[u8]) -> Result<()> {
    let text = std::str::from_utf8(roots_pem)
        .map_err(|_| Error::Config("the trust roots are not PEM text".into()))?;
    let roots = cairn_proto::pem::decode_all(text, "CERTIFICATE");
    if roots.is_empty() {
        return Err(Error::Config(
            "the trust roots hold no PEM certificate".into(),
        ));
    }
    for (i, der) in roots.iter().enumerate() {
        let root = parse_certificate(der, &format!("trust root {i}"))?;
        if root.as_raw() == top.as_raw() || check_issued_by(top, &root).is_ok() {
            return Ok(());
        }
    }
    Err(refused(format!(
        "the chain ends at {}, issued by {}, which is none of the {} given trust roots",
        top.subject(),
        top.issuer(),
        roots.len()
    )))
}

/// Verifies `cert`'s signature under `issuer_key`, for the algorithms in
/// [`check_certificate`]'s list.
fn verify_signature(
    cert: &X509Certificate<'_>,
    issuer_key: &SubjectPublicKeyInfo<'_>,
) -> std::result::Result<(), String> {
    let algorithm = &cert.signature_algorithm.algorithm;
    if *algorithm != cert.tbs_certificate.signature.algorithm {
        return Err("its two signature algorithm fields differ".into());
    }
    let curve = || {
        let curve = issuer_key
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        match curve {
            Some(oid) if oid == OID_EC_P256 => Some(256),
            Some(oid) if oid == OID_NIST_EC_P384 => Some(384),
            _ => None,
        }
    };
    let verifier: &'static dyn VerificationAlgorithm = if *algorithm == OID_PKCS1_SHA256WITHRSA {
        &signature::RSA_PKCS1_2048_8192_SHA256
    } else if *algorithm == OID_PKCS1_SHA384WITHRSA {
        &signature::RSA_PKCS1_2048_8192_SHA384
    } else if *algorithm == OID_PKCS1_SHA512WITHRSA {
        &signature::RSA_PKCS1_2048_8192_SHA512
    } else if *algorithm == OID_SIG_ECDSA_WITH_SHA256 {
        match curve() {
            Some(256) => &signature::ECDSA_P256_SHA256_ASN1,
            Some(384) => &signature::ECDSA_P384_SHA256_ASN1,
            _ => return Err("the issuer's EC key is on an unsupported curve".into()),
        }
    } else if *algorithm == OID_SIG_ECDSA_WITH_SHA384 {
        match curve() {
            Some(256) => &signature::ECDSA_P256_SHA384_ASN1,
            Some(384) => &signature::ECDSA_P384_SHA384_ASN1,
            _ => return Err("the issuer's EC key is on an unsupported curve".into()),
        }
    } else if *algorithm == OID_SIG_ED25519 {
        &signature::ED25519
    } else {
        return Err(format!("signature algorithm {algorithm} is not accepted"));
    };
    UnparsedPublicKey::new(verifier, &issuer_key.subject_public_key.data)
        .verify(cert.tbs_certificate.as_ref(), &cert.signature_value.data)
        .map_err(|_| "the signature is wrong".to_owned())
}

fn parse_certificate<'a>(der: &'a [u8], what: &str) -> Result<X509Certificate<'a>> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(refused(format!("{what} has data after the certificate"))),
        Err(e) => Err(refused(format!("{what} is not an X.509 certificate: {e}"))),
    }
}

fn refused(why: impl Into<String>) -> Error {
    Error::CertificateRefused(why.into())
}

#[cfg(test)]
mod tests;
