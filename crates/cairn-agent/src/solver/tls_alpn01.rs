//! The standalone tls-alpn-01 solver (RFC 8737): a TLS server that offers
//! only the `acme-tls/1` protocol and, for each name of this run, a
//! self-signed certificate for that name carrying the critical
//! acmeIdentifier extension with SHA-256 of the key authorization.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use cairn_client::PreparedChallenge;
use cairn_proto::IdentifierType;
use cairn_proto::challenge::ACME_TLS_ALPN_PROTOCOL;
use rcgen::{CertificateParams, CustomExtension, DistinguishedName, SanType};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::AsyncWriteExt as _;
use tokio::task::JoinHandle;

#[derive(Debug)]
pub(crate) struct TlsAlpn {
    address: SocketAddr,
    certificates: Arc<Certificates>,
    server: Option<JoinHandle<()>>,
}

/// SNI name (lowercase) → certificate.
#[derive(Debug, Default)]
struct Certificates(Mutex<HashMap<String, Arc<CertifiedKey>>>);

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name()?.to_ascii_lowercase();
        let found = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&name)
            .cloned();
        tracing::debug!(sni = %name, found = found.is_some(), "tls-alpn-01 handshake");
        found
    }
}

impl TlsAlpn {
    pub(crate) fn new(address: SocketAddr) -> Self {
        Self {
            address,
            certificates: Arc::default(),
            server: None,
        }
    }

    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    pub(crate) async fn present(&mut self, challenges: &[PreparedChallenge]) -> Result<()> {
        for challenge in challenges {
            let (sni, certificate) = validation_certificate(challenge)?;
            self.certificates
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(sni, Arc::new(certificate));
        }
        if self.server.is_none() {
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let mut config = rustls::ServerConfig::builder_with_provider(provider)
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                .context("TLS configuration")?
                .with_no_client_auth()
                .with_cert_resolver(Arc::clone(&self.certificates) as Arc<dyn ResolvesServerCert>);
            config.alpn_protocols = vec![ACME_TLS_ALPN_PROTOCOL.to_vec()];
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
            let listener = super::bind(self.address, "the standalone tls-alpn-01 server").await?;
            self.server = Some(tokio::spawn(serve(
                listener,
                acceptor,
                super::RESPONDER_LIMITS,
            )));
        }
        Ok(())
    }

    pub(crate) fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
        self.certificates
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

impl Drop for TlsAlpn {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    limits: cairn_serve::Limits,
) {
    let gate = cairn_serve::Gate::new(limits.max_connections);
    loop {
        let pass = gate.enter().await;
        let Ok((stream, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _pass = pass;
            // The handshake is the whole validation; close right after it.
            match tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await {
                Ok(Ok(mut tls)) => {
                    let _ = tls.shutdown().await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, "tls-alpn-01 handshake failed: {e}"),
                Err(_) => tracing::debug!(%peer, "tls-alpn-01 handshake timed out"),
            }
        });
    }
}

/// The SNI name the CA will send for the challenge's identifier, and the
/// validation certificate for it (RFC 8737 §3; RFC 8738 §6 for IP
/// addresses, whose SNI is the reverse-DNS name).
fn validation_certificate(challenge: &PreparedChallenge) -> Result<(String, CertifiedKey)> {
    let identifier = &challenge.identifier;
    let (sni, san) = match identifier.kind {
        IdentifierType::Dns => {
            let name = identifier.value.to_ascii_lowercase();
            let san = SanType::DnsName(
                name.as_str()
                    .try_into()
                    .with_context(|| format!("{identifier} is not a valid DNS name"))?,
            );
            (name, san)
        }
        IdentifierType::Ip => {
            let ip: IpAddr = identifier
                .value
                .parse()
                .with_context(|| format!("{identifier} is not an IP address"))?;
            (reverse_dns_name(ip), SanType::IpAddress(ip))
        }
        _ => anyhow::bail!("tls-alpn-01 cannot prove {identifier}"),
    };
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        challenge.key_authorization.as_bytes(),
    );
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.subject_alt_names = vec![san];
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(digest.as_ref())];
    let key = rcgen::KeyPair::generate().context("generating a tls-alpn-01 key")?;
    let certificate = params
        .self_signed(&key)
        .context("making the tls-alpn-01 certificate")?;
    let private = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&private)
        .context("loading the tls-alpn-01 key")?;
    Ok((
        sni,
        CertifiedKey::new(vec![certificate.der().clone()], signing),
    ))
}

/// `4.3.2.1.in-addr.arpa` / nibble-reversed `ip6.arpa` (RFC 8738 §6).
fn reverse_dns_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut name = String::new();
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            name.push_str("ip6.arpa");
            name
        }
    }
}

#[cfg(test)]
mod tests {
    use cairn_proto::Identifier;
    use cairn_proto::challenge::Token;
    use cairn_proto::objects::ChallengeType;
    use x509_parser::prelude::{FromDer, X509Certificate};

    use super::*;

    #[test]
    fn the_certificate_carries_the_critical_acme_identifier() {
        let token = Token::parse("DGyRejmCefe7v4NfDGDKfA").expect("token");
        let challenge = PreparedChallenge {
            identifier: Identifier::dns("A.Example"),
            kind: ChallengeType::TlsAlpn01,
            url: "https://ca.test/chall/1".into(),
            key_authorization: format!("{token}.thumb"),
            token,
        };
        let (sni, key) = validation_certificate(&challenge).expect("certificate");
        assert_eq!(sni, "a.example");
        let (_, cert) = X509Certificate::from_der(&key.cert[0]).expect("parses");
        let ext = cert
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
            .expect("acmeIdentifier");
        assert!(ext.critical);
        assert_eq!(
            ext.value,
            cairn_proto::challenge::tls_alpn01_extension_value(&challenge.key_authorization)
        );
    }

    #[test]
    fn reverse_names_follow_rfc8738() {
        assert_eq!(
            reverse_dns_name("192.0.2.1".parse().expect("ip")),
            "1.2.0.192.in-addr.arpa"
        );
        let v6 = reverse_dns_name("2001:db8::1".parse().expect("ip"));
        assert!(
            v6.starts_with("1.0.0.0.") && v6.ends_with(".8.b.d.0.1.0.0.2.ip6.arpa"),
            "{v6}"
        );
    }
}
