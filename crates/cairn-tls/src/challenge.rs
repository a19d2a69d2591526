//! Answering challenges in-band: tls-alpn-01 validation certificates for
//! the resolver, http-01 key authorizations for [`Http01Service`].

use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use http_body_util::Full;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::{Request, Response, StatusCode};
use rcgen::{CertificateParams, CustomExtension, DistinguishedName, SanType};
use rustls::sign::CertifiedKey;

use crate::{Error, TlsManager};

/// The tls-alpn-01 validation certificate for `identifier` (a DNS name)
/// and `key_authorization` (RFC 8737 §3): self-signed, the name as its only
/// SAN, and the critical acmeIdentifier extension holding SHA-256 of the
/// key authorization.
pub(crate) fn validation_certificate(
    name: &str,
    key_authorization: &str,
) -> Result<CertifiedKey, Error> {
    let san = match name.parse::<IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(
            name.try_into()
                .map_err(|e| Error::Challenge(format!("{name} is not a DNS name: {e}")))?,
        ),
    };
    let digest =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key_authorization.as_bytes());
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.subject_alt_names = vec![san];
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(digest.as_ref())];
    let failed = |e: rcgen::Error| Error::Challenge(format!("tls-alpn-01 certificate: {e}"));
    let key = rcgen::KeyPair::generate().map_err(failed)?;
    let certificate = params.self_signed(&key).map_err(failed)?;
    let private = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&private)
        .map_err(|e| Error::Challenge(format!("tls-alpn-01 key: {e}")))?;
    Ok(CertifiedKey::new(vec![certificate.der().clone()], signing))
}

/// The response body type of [`Http01Service`].
pub type Http01Body<B> = http_body_util::Either<Full<Bytes>, B>;

/// A hyper service for the plain-HTTP listener: answers
/// `GET /.well-known/acme-challenge/TOKEN` with the key authorization of a
/// challenge in progress and passes every other request to `inner`.
///
/// A server that only redirects to HTTPS can instead call
/// [`TlsManager::http01_key_authorization`] with the request path.
#[derive(Clone, Debug)]
pub struct Http01Service<S> {
    manager: TlsManager,
    inner: S,
}

impl<S> Http01Service<S> {
    /// Wraps `inner`.
    pub fn new(manager: TlsManager, inner: S) -> Self {
        Self { manager, inner }
    }
}

/// The plain response for a challenge path.
pub(crate) fn response_for(key_authorization: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(key_authorization)));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/octet-stream"),
    );
    response
}

impl<S, B, ReqBody> hyper::service::Service<Request<ReqBody>> for Http01Service<S>
where
    S: hyper::service::Service<Request<ReqBody>, Response = Response<B>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Http01Body<B>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn call(&self, request: Request<ReqBody>) -> Self::Future {
        if let Some(answer) = self.manager.http01_key_authorization(request.uri().path()) {
            let response = response_for(answer).map(http_body_util::Either::Left);
            return Box::pin(async move { Ok(response) });
        }
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            Ok(response.map(http_body_util::Either::Right))
        })
    }
}

/// A service answering only challenges: 404 for anything else. For tests
/// and for servers that listen on port 80 for nothing but ACME.
#[derive(Clone, Debug)]
pub struct NotFound;

impl<ReqBody> hyper::service::Service<Request<ReqBody>> for NotFound {
    type Response = Response<UnsyncBoxBody<Bytes, Infallible>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn call(&self, _request: Request<ReqBody>) -> Self::Future {
        let mut response =
            Response::new(Full::new(Bytes::from_static(b"not found\n")).boxed_unsync());
        *response.status_mut() = StatusCode::NOT_FOUND;
        std::future::ready(Ok(response))
    }
}

/// The validation certificates offered while orders are in progress, by SNI.
#[derive(Debug, Default)]
pub(crate) struct AlpnCertificates(
    pub(crate) std::sync::Mutex<std::collections::HashMap<String, Arc<CertifiedKey>>>,
);

#[cfg(test)]
mod tests {
    use x509_parser::prelude::{FromDer, X509Certificate};

    use super::*;

    #[test]
    fn the_validation_certificate_carries_the_critical_acme_identifier() {
        let key_authorization = "token.thumbprint";
        let certified = validation_certificate("a.example", key_authorization).expect("made");
        let (_, cert) = X509Certificate::from_der(&certified.cert[0]).expect("parses");
        let ext = cert
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
            .expect("acmeIdentifier");
        assert!(ext.critical);
        assert_eq!(
            ext.value,
            cairn_proto::challenge::tls_alpn01_extension_value(key_authorization)
        );
        let san = cert
            .subject_alternative_name()
            .expect("valid")
            .expect("a SAN");
        assert_eq!(
            san.value.general_names,
            [x509_parser::extensions::GeneralName::DNSName("a.example")]
        );
    }
}
