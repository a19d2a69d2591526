//! tls-alpn-01 (RFC 8737 §3, BR 3.2.2.4.20): a TLS 1.2+ handshake with
//! `<identifier>:<port>` offering only the `acme-tls/1` protocol, SNI the
//! name being validated (for an IP address its reverse-DNS name, RFC 8738
//! §6). Any certificate is accepted during the handshake; afterwards this
//! module checks the one the server sent: exactly one subjectAltName, the
//! identifier, and a critical acmeIdentifier extension holding SHA-256 of
//! the key authorization.

use std::net::IpAddr;
use std::sync::Arc;

use cairn_proto::ProblemType;
use cairn_proto::challenge::{
    ACME_IDENTIFIER_OID, ACME_TLS_ALPN_PROTOCOL, tls_alpn01_extension_value,
};
use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::TlsConnector;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::net::Network;
use super::{ConnectionRecord, Subject, ValidationRecord};
use crate::error::CaError;

/// The tls-alpn-01 checker.
pub(super) struct TlsAlpn01 {
    port: u16,
    tls: Arc<ClientConfig>,
}

impl TlsAlpn01 {
    pub(super) fn new(port: u16) -> Result<Self, CaError> {
        Ok(Self {
            port,
            tls: client_config(vec![ACME_TLS_ALPN_PROTOCOL.to_vec()])?,
        })
    }

    pub(super) async fn validate(
        &self,
        network: &Network,
        subject: &Subject,
        key_authorization: &str,
        record: &mut ValidationRecord,
    ) -> Result<(), CaError> {
        record.connections.push(ConnectionRecord {
            url: None,
            host: subject.to_string(),
            port: self.port,
            addresses_resolved: Vec::new(),
            addresses_tried: Vec::new(),
            address_used: None,
        });
        let hop = record
            .connections
            .last_mut()
            .expect("a connection record was pushed just above");
        let name = subject.to_string();
        let (tcp, ip) = network
            .connect(&subject.host(), self.port, &name, hop)
            .await?;
        let peer = std::net::SocketAddr::new(ip, self.port);
        let server_name = match subject {
            Subject::Name { name, .. } => name.clone(),
            Subject::Ip(ip) => reverse_name(*ip),
        };
        let server_name = ServerName::try_from(server_name).map_err(|e| {
            CaError::malformed(format!("{name} cannot be sent as a TLS server name: {e}"))
        })?;
        let tls = TlsConnector::from(Arc::clone(&self.tls))
            .connect(server_name, tcp)
            .await
            .map_err(|e| {
                CaError::new(
                    ProblemType::Tls,
                    format!("TLS handshake with {peer} for {name} failed: {e}"),
                )
            })?;
        let (_, connection) = tls.get_ref();
        if connection.alpn_protocol() != Some(ACME_TLS_ALPN_PROTOCOL) {
            return Err(CaError::new(
                ProblemType::Tls,
                format!(
                    "{peer} did not negotiate the acme-tls/1 protocol for {name} \
                     (RFC 8737 §3); is the tls-alpn-01 responder running?"
                ),
            ));
        }
        let leaf = connection
            .peer_certificates()
            .and_then(|chain| chain.first())
            .ok_or_else(|| {
                CaError::new(
                    ProblemType::Tls,
                    format!("{peer} sent no certificate for {name}"),
                )
            })?;
        check_certificate(leaf, subject, key_authorization).map_err(|why| {
            CaError::unauthorized(format!(
                "the certificate {peer} sent for {name} {why} (RFC 8737 §3)"
            ))
        })
    }
}

/// A TLS client that offers `alpn`, speaks TLS 1.2 and 1.3, resumes no
/// session and accepts any certificate: validation checks the
/// certificate itself (tls-alpn-01) or does not rely on it (an `https`
/// redirect of http-01, as the BR allow).
pub(super) fn client_config(alpn: Vec<Vec<u8>>) -> Result<Arc<ClientConfig>, CaError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(AcceptAnyCertificate(Arc::clone(&provider)));
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| CaError::internal("building the validation TLS client", e))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = alpn;
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// Checks the certificate of a tls-alpn-01 handshake; the error says what
/// is wrong with it.
fn check_certificate(
    der: &CertificateDer<'_>,
    subject: &Subject,
    key_authorization: &str,
) -> Result<(), String> {
    let (_, cert) =
        X509Certificate::from_der(der.as_ref()).map_err(|e| format!("cannot be parsed: {e}"))?;
    let names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san.value.general_names.clone(),
        Ok(None) => return Err("has no subjectAltName extension".into()),
        Err(e) => return Err(format!("has an unreadable subjectAltName extension: {e}")),
    };
    let matches = |name: &GeneralName<'_>| match (name, subject) {
        (GeneralName::DNSName(dns), Subject::Name { name, .. }) => dns.eq_ignore_ascii_case(name),
        (GeneralName::IPAddress(bytes), Subject::Ip(IpAddr::V4(v4))) => *bytes == v4.octets(),
        (GeneralName::IPAddress(bytes), Subject::Ip(IpAddr::V6(v6))) => *bytes == v6.octets(),
        _ => false,
    };
    match names.as_slice() {
        [only] if matches(only) => {}
        [only] => return Err(format!("names {} instead of {subject}", describe(only))),
        _ => {
            return Err(format!(
                "has {} subjectAltName entries; it must have exactly one, {subject}",
                names.len()
            ));
        }
    }
    let acme: Vec<_> = cert
        .extensions()
        .iter()
        .filter(|ext| {
            ext.oid
                .iter()
                .is_some_and(|arcs| arcs.eq(ACME_IDENTIFIER_OID.iter().copied()))
        })
        .collect();
    let extension = match acme.as_slice() {
        [] => return Err("has no acmeIdentifier extension".into()),
        [one] => one,
        _ => return Err("has more than one acmeIdentifier extension".into()),
    };
    if !extension.critical {
        return Err("has an acmeIdentifier extension that is not marked critical".into());
    }
    if extension.value != tls_alpn01_extension_value(key_authorization).as_slice() {
        return Err(
            "has an acmeIdentifier extension that does not hold the SHA-256 \
                    digest of the expected key authorization"
                .into(),
        );
    }
    Ok(())
}

/// A subjectAltName entry as a person would write it.
fn describe(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(dns) => dns.to_string(),
        GeneralName::IPAddress(bytes) => match <[u8; 4]>::try_from(*bytes) {
            Ok(v4) => IpAddr::from(v4).to_string(),
            Err(_) => <[u8; 16]>::try_from(*bytes).map_or_else(
                |_| "a malformed IP address".into(),
                |v6| IpAddr::from(v6).to_string(),
            ),
        },
        other => format!("{other:?}"),
    }
}

/// The reverse-DNS name of an address, sent as SNI for an IP identifier
/// (RFC 8738 §6): `4.3.2.1.in-addr.arpa`, or 32 nibbles under `ip6.arpa`.
pub(super) fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0x0f, byte >> 4));
            }
            name.push_str("ip6.arpa");
            name
        }
    }
}

/// Accepts any server certificate, still checking the handshake
/// signature against the key in it. rustls' own signature helpers parse
/// the certificate with webpki, which refuses the critical
/// acmeIdentifier extension, so the key is taken from the certificate
/// here and the provider's algorithms are applied to it directly.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl AcceptAnyCertificate {
    fn verify_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
        tls13: bool,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let (_, parsed) = X509Certificate::from_der(cert.as_ref())
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let (algorithm, key) = spki_parts(parsed.public_key().raw).ok_or(
            rustls::Error::InvalidCertificate(CertificateError::BadEncoding),
        )?;
        let candidates = self
            .0
            .signature_verification_algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map(|(_, algorithms)| *algorithms)
            .ok_or(rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme)?;
        // TLS 1.3 names one algorithm per scheme, the first; TLS 1.2 may
        // need any of them (RSA-PSS with either key encoding).
        let candidates = if tls13 {
            candidates.get(..1).unwrap_or_default()
        } else {
            candidates
        };
        let algorithm = candidates
            .iter()
            .find(|candidate| candidate.public_key_alg_id().as_ref() == algorithm)
            .ok_or(rustls::Error::InvalidCertificate(
                CertificateError::BadSignature,
            ))?;
        algorithm
            .verify_signature(key, message, dss.signature())
            .map(|()| HandshakeSignatureValid::assertion())
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadSignature))
    }
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_signature(message, cert, dss, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_signature(message, cert, dss, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The AlgorithmIdentifier contents and the key bits of a DER
/// SubjectPublicKeyInfo (RFC 5280 §4.1):
/// `SEQUENCE { SEQUENCE { algorithm }, BIT STRING { 0 unused bits, key } }`.
fn spki_parts(spki: &[u8]) -> Option<(&[u8], &[u8])> {
    let (0x30, body, _) = der_element(spki)? else {
        return None;
    };
    let (0x30, algorithm, rest) = der_element(body)? else {
        return None;
    };
    let (0x03, bits, _) = der_element(rest)? else {
        return None;
    };
    let (0, key) = bits.split_first()? else {
        return None;
    };
    Some((algorithm, key))
}

/// One DER element: its tag, its contents and what follows it. Lengths
/// up to three octets, ample for a public key.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81..=0x83 => {
            let count = usize::from(first & 0x7f);
            let (octets, rest) = rest.split_at_checked(count)?;
            let len = octets
                .iter()
                .fold(0usize, |len, octet| (len << 8) | usize::from(*octet));
            (len, rest)
        }
        _ => return None,
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    Some((tag, contents, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names_follow_rfc_8738() {
        assert_eq!(
            reverse_name("127.0.0.1".parse().expect("v4")),
            "1.0.0.127.in-addr.arpa"
        );
        // RFC 3596 §2.5's example address.
        assert_eq!(
            reverse_name("4321:0:1:2:3:4:567:89ab".parse().expect("v6")),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa"
        );
    }
}
