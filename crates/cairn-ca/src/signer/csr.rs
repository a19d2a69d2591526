//! Checking the CSR sent to `finalize` (RFC 8555 §7.4): a PKCS#10 request
//! (RFC 2986) self-signed by an acceptable subscriber key that is not the
//! account key, naming only DNS names and IP addresses.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use cairn_proto::jwk::Curve;
use cairn_proto::{Identifier, Jwk, ProblemType};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer as _, X509Certificate};
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::{CheckedCsr, CsrKey};
use crate::error::CaError;

// Key and signature algorithm OIDs (RFC 3279, RFC 4055, RFC 5480, RFC 5758).
const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_P521: &str = "1.3.132.0.35";
const OID_ED25519: &str = "1.3.101.112";
const OID_SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";
const OID_SHA384_WITH_RSA: &str = "1.2.840.113549.1.1.12";
const OID_SHA512_WITH_RSA: &str = "1.2.840.113549.1.1.13";
const OID_ECDSA_WITH_SHA256: &str = "1.2.840.10045.4.3.2";
const OID_ECDSA_WITH_SHA384: &str = "1.2.840.10045.4.3.3";
const OID_ECDSA_WITH_SHA512: &str = "1.2.840.10045.4.3.4";

const RSA_SIZES: [usize; 3] = [2048, 3072, 4096];

/// Parses and checks a DER CSR for a finalize request (RFC 8555 §7.4).
///
/// - The CSR must be well-formed DER with nothing after it, version 1, and
///   its signature over the CertificationRequestInfo must verify with the
///   CSR's own key: ECDSA with SHA-256/384/512, or RSA PKCS#1 v1.5 with
///   SHA-256/384/512. Otherwise `badCsr`.
/// - The key must be RSA of 2048, 3072 or 4096 bits with exponent 65537, or
///   ECDSA on P-256 or P-384 (BR §6.1.5); otherwise `badPublicKey`.
/// - The key must not be the account key (RFC 8555 §11.1); otherwise
///   `badCsr`.
/// - Names: the subjectAltName dNSNames (lowercased) and iPAddresses, plus
///   the subject common name if there is one. Any other SAN type is
///   `badCsr`. The result is sorted, without duplicates.
pub fn check_csr(der: &[u8], account_key: &Jwk) -> Result<CheckedCsr, CaError> {
    let (rest, csr) = X509CertificationRequest::from_der(der)
        .map_err(|e| bad_csr(format!("the CSR is not valid PKCS#10 DER: {e}")))?;
    if !rest.is_empty() {
        return Err(bad_csr("the CSR has trailing data after its DER encoding"));
    }
    let info = &csr.certification_request_info;
    if info.version.0 != 0 {
        return Err(bad_csr(format!(
            "CSR version {} is not defined; PKCS#10 has only version 1 (0)",
            info.version.0
        )));
    }

    let spki = &info.subject_pki;
    let (key, subject_jwk) = check_key(spki)?;
    let verification =
        verification_algorithm(key, &csr.signature_algorithm.algorithm.to_id_string())?;
    UnparsedPublicKey::new(verification, spki.subject_public_key.data.as_ref())
        .verify(info.raw, csr.signature_value.data.as_ref())
        .map_err(|_| bad_csr("the CSR's signature does not verify with its public key"))?;

    if &subject_jwk == account_key {
        return Err(bad_csr(
            "the CSR's public key is the account key; use a separate key for the certificate",
        ));
    }

    Ok(CheckedCsr {
        names: names(&csr)?,
        public_key_spki_der: spki.raw.to_vec(),
        key,
        public_key: subject_jwk,
    })
}

/// The subscriber key policy (BR §6.1.5, §6.1.6). Returns the key's kind
/// and the same key as a JWK, to compare with the account key.
/// True when `cert_der`'s subject public key is `key` (revocation signed with
/// the certificate's own key, RFC 8555 §7.6). Keys the CA would not certify
/// never match.
pub fn certificate_key_matches(cert_der: &[u8], key: &Jwk) -> Result<bool, CaError> {
    let (_, cert) = X509Certificate::from_der(cert_der)
        .map_err(|_| CaError::malformed("the certificate is not a DER X.509 certificate"))?;
    Ok(check_key(cert.public_key()).is_ok_and(|(_, jwk)| &jwk == key))
}

/// The DER SubjectPublicKeyInfo of a DER certificate.
pub fn certificate_spki(cert_der: &[u8]) -> Result<Vec<u8>, CaError> {
    let (_, cert) = X509Certificate::from_der(cert_der)
        .map_err(|_| CaError::malformed("the certificate is not a DER X.509 certificate"))?;
    Ok(cert.public_key().raw.to_vec())
}

/// The serial of a DER certificate as unsigned big-endian bytes.
pub fn certificate_serial(cert_der: &[u8]) -> Result<Vec<u8>, CaError> {
    let (_, cert) = X509Certificate::from_der(cert_der)
        .map_err(|_| CaError::malformed("the certificate is not a DER X.509 certificate"))?;
    Ok(strip_leading_zeros(cert.raw_serial()).to_vec())
}

fn check_key(spki: &SubjectPublicKeyInfo<'_>) -> Result<(CsrKey, Jwk), CaError> {
    let algorithm = spki.algorithm.algorithm.to_id_string();
    match algorithm.as_str() {
        OID_RSA_ENCRYPTION => {
            let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
                return Err(bad_csr("the CSR's RSA public key is malformed"));
            };
            let modulus = strip_leading_zeros(rsa.modulus);
            let bits = bit_length(modulus);
            if !RSA_SIZES.contains(&bits) {
                return Err(bad_key(format!(
                    "RSA key of {bits} bits; use 2048, 3072 or 4096"
                )));
            }
            if rsa.try_exponent().ok() != Some(65_537) {
                return Err(bad_key("RSA public exponent must be 65537"));
            }
            let jwk = Jwk::rsa(modulus.to_vec(), strip_leading_zeros(rsa.exponent).to_vec())
                .map_err(|e| bad_key(format!("the CSR's RSA key is not valid: {e}")))?;
            Ok((CsrKey::Rsa { bits }, jwk))
        }
        OID_EC_PUBLIC_KEY => {
            let curve_oid = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.to_id_string());
            let curve = match curve_oid.as_deref() {
                Some(OID_P256) => Curve::P256,
                Some(OID_P384) => Curve::P384,
                Some(OID_P521) => {
                    return Err(bad_key(
                        "ECDSA curve P-521 is not accepted; use P-256 or P-384",
                    ));
                }
                Some(other) => {
                    return Err(bad_key(format!(
                        "ECDSA curve {other} is not accepted; use P-256 or P-384"
                    )));
                }
                None => {
                    return Err(bad_key(
                        "ECDSA key without a named curve; use P-256 or P-384",
                    ));
                }
            };
            let len = match curve {
                Curve::P256 => 32,
                Curve::P384 => 48,
            };
            let point = spki.subject_public_key.data.as_ref();
            let coordinates = match point.split_first() {
                Some((0x04, xy)) if xy.len() == 2 * len => xy,
                Some((0x02 | 0x03, _)) => {
                    return Err(bad_key(
                        "compressed EC points are not accepted; send the uncompressed point",
                    ));
                }
                _ => return Err(bad_key("the CSR's EC public key is malformed")),
            };
            let (x, y) = coordinates.split_at(len);
            let jwk = Jwk::ec(curve, x.to_vec(), y.to_vec())
                .map_err(|e| bad_key(format!("the CSR's EC key is not valid: {e}")))?;
            Ok((CsrKey::Ecdsa(curve), jwk))
        }
        OID_ED25519 => Err(bad_key(
            "Ed25519 keys are not accepted in certificates; use ECDSA P-256/P-384 or RSA",
        )),
        other => Err(bad_key(format!(
            "public key algorithm {other} is not accepted; use ECDSA P-256/P-384 or RSA"
        ))),
    }
}

/// The aws-lc-rs verifier for the CSR's signature algorithm with this key.
fn verification_algorithm(
    key: CsrKey,
    signature_oid: &str,
) -> Result<&'static dyn VerificationAlgorithm, CaError> {
    let algorithm: Option<&'static dyn VerificationAlgorithm> = match (key, signature_oid) {
        (CsrKey::Rsa { .. }, OID_SHA256_WITH_RSA) => Some(&signature::RSA_PKCS1_2048_8192_SHA256),
        (CsrKey::Rsa { .. }, OID_SHA384_WITH_RSA) => Some(&signature::RSA_PKCS1_2048_8192_SHA384),
        (CsrKey::Rsa { .. }, OID_SHA512_WITH_RSA) => Some(&signature::RSA_PKCS1_2048_8192_SHA512),
        (CsrKey::Ecdsa(Curve::P256), OID_ECDSA_WITH_SHA256) => {
            Some(&signature::ECDSA_P256_SHA256_ASN1)
        }
        (CsrKey::Ecdsa(Curve::P256), OID_ECDSA_WITH_SHA384) => {
            Some(&signature::ECDSA_P256_SHA384_ASN1)
        }
        (CsrKey::Ecdsa(Curve::P256), OID_ECDSA_WITH_SHA512) => {
            Some(&signature::ECDSA_P256_SHA512_ASN1)
        }
        (CsrKey::Ecdsa(Curve::P384), OID_ECDSA_WITH_SHA256) => {
            Some(&signature::ECDSA_P384_SHA256_ASN1)
        }
        (CsrKey::Ecdsa(Curve::P384), OID_ECDSA_WITH_SHA384) => {
            Some(&signature::ECDSA_P384_SHA384_ASN1)
        }
        (CsrKey::Ecdsa(Curve::P384), OID_ECDSA_WITH_SHA512) => {
            Some(&signature::ECDSA_P384_SHA512_ASN1)
        }
        _ => None,
    };
    algorithm.ok_or_else(|| {
        let accepted = match key {
            CsrKey::Rsa { .. } => {
                "sha256WithRSAEncryption, sha384WithRSAEncryption or sha512WithRSAEncryption"
            }
            CsrKey::Ecdsa(_) => "ecdsa-with-SHA256, ecdsa-with-SHA384 or ecdsa-with-SHA512",
        };
        bad_csr(format!(
            "CSR signature algorithm {signature_oid} is not accepted for this key; use {accepted}"
        ))
    })
}

/// The identifiers the CSR asks for, sorted and without duplicates.
fn names(csr: &X509CertificationRequest<'_>) -> Result<Vec<Identifier>, CaError> {
    let mut names = BTreeSet::new();
    let mut san_seen = false;
    for ext in csr.requested_extensions().into_iter().flatten() {
        match ext {
            ParsedExtension::SubjectAlternativeName(san) => {
                if san_seen {
                    return Err(bad_csr(
                        "the CSR has more than one subjectAltName extension",
                    ));
                }
                san_seen = true;
                for name in &san.general_names {
                    names.insert(san_identifier(name)?);
                }
            }
            ParsedExtension::ParseError { error } => {
                return Err(bad_csr(format!(
                    "the CSR has a malformed extension: {error}"
                )));
            }
            _ => {}
        }
    }

    let mut common_names = csr.certification_request_info.subject.iter_common_name();
    if let Some(cn) = common_names.next() {
        if common_names.next().is_some() {
            return Err(bad_csr("the CSR subject has more than one common name"));
        }
        let value = cn
            .as_str()
            .map_err(|_| bad_csr("the CSR's common name is not a string"))?;
        // The common name must also be a SAN (RFC 8555 §7.4 leaves it to the
        // CA); add it, as Boulder does, rather than refuse the CSR.
        names.insert(match value.parse::<IpAddr>() {
            Ok(ip) => Identifier::ip(ip),
            Err(_) => dns_identifier(value, "common name")?,
        });
    }

    if names.is_empty() {
        return Err(bad_csr(
            "the CSR names no identifiers; put the DNS names or IP addresses in subjectAltName",
        ));
    }
    Ok(names.into_iter().collect())
}

fn san_identifier(name: &GeneralName<'_>) -> Result<Identifier, CaError> {
    match name {
        GeneralName::DNSName(dns) => dns_identifier(dns, "subjectAltName dNSName"),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => {
                let octets: [u8; 4] = (*bytes).try_into().map_err(|_| bad_ip())?;
                Ok(Identifier::ip(IpAddr::V4(Ipv4Addr::from(octets))))
            }
            16 => {
                let octets: [u8; 16] = (*bytes).try_into().map_err(|_| bad_ip())?;
                Ok(Identifier::ip(IpAddr::V6(Ipv6Addr::from(octets))))
            }
            _ => Err(bad_ip()),
        },
        GeneralName::RFC822Name(email) => Err(bad_csr(format!(
            "the CSR asks for an email address ({email}); only DNS names and IP addresses are accepted"
        ))),
        GeneralName::URI(uri) => Err(bad_csr(format!(
            "the CSR asks for a URI ({uri}); only DNS names and IP addresses are accepted"
        ))),
        other => Err(bad_csr(format!(
            "the CSR has a subjectAltName of type {}; only DNS names and IP addresses are accepted",
            general_name_kind(other)
        ))),
    }
}

/// A DNS name, lowercased. Whether it is a name the CA will issue for is
/// the policy's call; here it only has to be printable ASCII.
fn dns_identifier(value: &str, field: &str) -> Result<Identifier, CaError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad_csr(format!(
            "the CSR's {field} {value:?} is not a DNS name"
        )));
    }
    Ok(Identifier::dns(value.to_ascii_lowercase()))
}

fn general_name_kind(name: &GeneralName<'_>) -> &'static str {
    match name {
        GeneralName::OtherName(..) => "otherName",
        GeneralName::RFC822Name(_) => "rfc822Name",
        GeneralName::DNSName(_) => "dNSName",
        GeneralName::X400Address(_) => "x400Address",
        GeneralName::DirectoryName(_) => "directoryName",
        GeneralName::EDIPartyName(_) => "ediPartyName",
        GeneralName::URI(_) => "uniformResourceIdentifier",
        GeneralName::IPAddress(_) => "iPAddress",
        GeneralName::RegisteredID(_) => "registeredID",
        GeneralName::Invalid(..) => "unknown (malformed)",
    }
}

fn bad_csr(detail: impl Into<String>) -> CaError {
    CaError::new(ProblemType::BadCsr, detail)
}

fn bad_key(detail: impl Into<String>) -> CaError {
    CaError::new(ProblemType::BadPublicKey, detail)
}

fn bad_ip() -> CaError {
    bad_csr("the CSR has an iPAddress SAN that is neither 4 nor 16 bytes")
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

fn bit_length(unsigned: &[u8]) -> usize {
    match unsigned.first() {
        Some(first) => unsigned.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use cairn_proto::{KeyPair as AccountKey, KeyType};
    use rcgen::string::Ia5String;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, RsaKeySize, SanType};

    use super::*;
    use crate::signer::der;

    fn account() -> Jwk {
        AccountKey::generate(KeyType::EcdsaP256)
            .expect("generates")
            .public_jwk()
            .clone()
    }

    /// A CSR for `sans` (parsed as IPs where they are), without a subject.
    fn csr(key: &KeyPair, sans: &[&str]) -> Vec<u8> {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("valid names");
        params.distinguished_name = DistinguishedName::new();
        csr_from(&params, key)
    }

    fn csr_from(params: &CertificateParams, key: &KeyPair) -> Vec<u8> {
        params.serialize_request(key).expect("signs").der().to_vec()
    }

    fn p256() -> KeyPair {
        KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("generates")
    }

    fn expect_problem(result: Result<CheckedCsr, CaError>, kind: ProblemType) -> String {
        let err = result.expect_err("refused");
        assert_eq!(err.kind, kind, "{}", err.detail);
        err.detail
    }

    #[test]
    fn good_ecdsa_csr() {
        let key = p256();
        let checked = check_csr(
            &csr(
                &key,
                &["www.example.com", "example.com", "192.0.2.1", "2001:db8::1"],
            ),
            &account(),
        )
        .expect("accepted");
        assert_eq!(
            checked.names,
            vec![
                Identifier::dns("example.com"),
                Identifier::dns("www.example.com"),
                Identifier::ip("192.0.2.1".parse::<IpAddr>().expect("ip")),
                Identifier::ip("2001:db8::1".parse::<IpAddr>().expect("ip")),
            ]
        );
        assert_eq!(checked.key, CsrKey::Ecdsa(Curve::P256));
        assert_eq!(
            checked.public_key_spki_der,
            rcgen::PublicKeyData::subject_public_key_info(&key)
        );
    }

    #[test]
    fn good_p384_csr_with_sha384() {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("generates");
        let checked = check_csr(&csr(&key, &["example.org"]), &account()).expect("accepted");
        assert_eq!(checked.key, CsrKey::Ecdsa(Curve::P384));
    }

    #[test]
    fn good_rsa_csr() {
        let key = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048)
            .expect("generates");
        let checked = check_csr(&csr(&key, &["example.net"]), &account()).expect("accepted");
        assert_eq!(checked.key, CsrKey::Rsa { bits: 2048 });
        assert_eq!(checked.names, vec![Identifier::dns("example.net")]);
    }

    #[test]
    fn a_bad_signature_is_refused() {
        let mut der = csr(&p256(), &["example.com"]);
        let last = der.len() - 1;
        der[last] ^= 0x01;
        let detail = expect_problem(check_csr(&der, &account()), ProblemType::BadCsr);
        assert!(detail.contains("signature"), "{detail}");
    }

    #[test]
    fn malformed_der_is_refused() {
        expect_problem(check_csr(b"not a csr", &account()), ProblemType::BadCsr);
        let mut der = csr(&p256(), &["example.com"]);
        der.push(0);
        let detail = expect_problem(check_csr(&der, &account()), ProblemType::BadCsr);
        assert!(detail.contains("trailing"), "{detail}");
    }

    /// A CSR with an RSA key no library here will make; its signature is
    /// junk, which does not matter since the key is refused first.
    fn handmade_rsa_csr(modulus_bytes: usize, exponent: &[u8]) -> Vec<u8> {
        let mut modulus = vec![0x5a; modulus_bytes];
        modulus[0] = 0xc3;
        modulus[modulus_bytes - 1] = 0x01;
        let null = der::tlv(0x05, &[]);
        let rsa_key = der::sequence(&[
            der::unsigned_integer(&modulus),
            der::unsigned_integer(exponent),
        ]);
        let spki = der::sequence(&[
            der::sequence(&[der::oid(&[1, 2, 840, 113_549, 1, 1, 1]), null.clone()]),
            der::tlv(0x03, &[&[0u8][..], &rsa_key].concat()),
        ]);
        let cn = der::sequence(&[der::oid(&[2, 5, 4, 3]), der::tlv(0x0c, b"example.com")]);
        let name = der::sequence(&[der::tlv(0x31, &cn)]);
        let info = der::sequence(&[der::unsigned_integer(&[0]), name, spki, der::tlv(0xa0, &[])]);
        let signature = vec![0x11; modulus_bytes + 1];
        der::sequence(&[
            info,
            der::sequence(&[der::oid(&[1, 2, 840, 113_549, 1, 1, 11]), null]),
            der::tlv(0x03, &[&[0u8][..], &signature].concat()),
        ])
    }

    #[test]
    fn rsa_1024_is_a_bad_public_key() {
        let detail = expect_problem(
            check_csr(&handmade_rsa_csr(128, &[1, 0, 1]), &account()),
            ProblemType::BadPublicKey,
        );
        assert_eq!(detail, "RSA key of 1024 bits; use 2048, 3072 or 4096");
    }

    #[test]
    fn rsa_with_a_small_exponent_is_a_bad_public_key() {
        let detail = expect_problem(
            check_csr(&handmade_rsa_csr(256, &[3]), &account()),
            ProblemType::BadPublicKey,
        );
        assert!(detail.contains("65537"), "{detail}");
    }

    #[test]
    fn p521_is_a_bad_public_key() {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).expect("generates");
        let detail = expect_problem(
            check_csr(&csr(&key, &["example.com"]), &account()),
            ProblemType::BadPublicKey,
        );
        assert!(detail.contains("P-521"), "{detail}");
    }

    #[test]
    fn ed25519_is_a_bad_public_key() {
        let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("generates");
        expect_problem(
            check_csr(&csr(&key, &["example.com"]), &account()),
            ProblemType::BadPublicKey,
        );
    }

    #[test]
    fn the_account_key_cannot_be_the_certificate_key() {
        for kind in [KeyType::EcdsaP256, KeyType::Rsa2048] {
            let account = AccountKey::generate(kind).expect("generates");
            let pkcs8 = account.to_pkcs8_der().expect("exports");
            let key = KeyPair::try_from(pkcs8.as_slice()).expect("imports");
            let detail = expect_problem(
                check_csr(&csr(&key, &["example.com"]), account.public_jwk()),
                ProblemType::BadCsr,
            );
            assert!(detail.contains("account key"), "{detail}");
        }
    }

    #[test]
    fn email_and_uri_sans_are_refused() {
        let key = p256();
        let mut params = CertificateParams::new(vec!["example.com".to_string()]).expect("names");
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names.push(SanType::Rfc822Name(
            Ia5String::try_from("admin@example.com").expect("ia5"),
        ));
        let detail = expect_problem(
            check_csr(&csr_from(&params, &key), &account()),
            ProblemType::BadCsr,
        );
        assert!(detail.contains("admin@example.com"), "{detail}");

        params.subject_alt_names.pop();
        params.subject_alt_names.push(SanType::URI(
            Ia5String::try_from("https://example.com/").expect("ia5"),
        ));
        expect_problem(
            check_csr(&csr_from(&params, &key), &account()),
            ProblemType::BadCsr,
        );
    }

    #[test]
    fn a_common_name_missing_from_the_sans_is_added() {
        let key = p256();
        let mut params = CertificateParams::new(vec!["a.example.com".to_string()]).expect("names");
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "B.Example.com");
        let checked = check_csr(&csr_from(&params, &key), &account()).expect("accepted");
        assert_eq!(
            checked.names,
            vec![
                Identifier::dns("a.example.com"),
                Identifier::dns("b.example.com")
            ]
        );
    }

    #[test]
    fn a_common_name_alone_is_enough() {
        let key = p256();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "example.com");
        let checked = check_csr(&csr_from(&params, &key), &account()).expect("accepted");
        assert_eq!(checked.names, vec![Identifier::dns("example.com")]);
    }

    #[test]
    fn names_are_lowercased_and_deduplicated() {
        let checked = check_csr(
            &csr(
                &p256(),
                &["WWW.Example.COM", "www.example.com", "*.EXAMPLE.com"],
            ),
            &account(),
        )
        .expect("accepted");
        assert_eq!(
            checked.names,
            vec![
                Identifier::dns("*.example.com"),
                Identifier::dns("www.example.com")
            ]
        );
    }

    #[test]
    fn a_csr_without_names_is_refused() {
        let detail = expect_problem(
            check_csr(&csr(&p256(), &[]), &account()),
            ProblemType::BadCsr,
        );
        assert!(detail.contains("no identifiers"), "{detail}");
    }

    #[test]
    fn a_common_name_that_is_not_a_name_is_refused() {
        let key = p256();
        // rcgen's default subject, "rcgen self signed cert", has spaces.
        let params = CertificateParams::new(vec!["example.com".to_string()]).expect("names");
        expect_problem(
            check_csr(&csr_from(&params, &key), &account()),
            ProblemType::BadCsr,
        );
    }
}
