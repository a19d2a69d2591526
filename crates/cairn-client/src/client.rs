//! The connection to one ACME server: an HTTP client, the server's
//! directory (RFC 8555 §7.1.1) and a pool of replay nonces (§6.5), shared
//! by every account and order handle made from it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use cairn_proto::jws::{FlattenedJws, SigningHeader};
use cairn_proto::objects::Directory;
use cairn_proto::{KeyPair, ProblemType};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, Url};

use crate::error::{Error, Result};
use crate::nonce::NoncePool;
use crate::response::Received;

/// The content type of every ACME POST body (RFC 8555 §6.2).
const JOSE_JSON: &str = "application/jose+json";

/// How an [`AcmeClient`] talks to the server. [`ClientOptions::default`]
/// suits a public CA; override fields with struct update syntax.
#[derive(Clone)]
pub struct ClientOptions {
    /// Extra trust roots (PEM certificates) for the ACME server's HTTPS
    /// certificate, added to the platform's. For a private or test CA.
    pub ca_bundle_pem: Option<Vec<u8>>,
    /// Limit on one HTTP request, connection to last byte.
    pub timeout: Duration,
    /// Largest response body accepted; a larger one is refused with
    /// [`Error::InvalidResponse`] before it is all read.
    pub max_response_bytes: usize,
    /// The `User-Agent` sent with every request (RFC 8555 §6.1 asks
    /// clients to send one).
    pub user_agent: String,
    /// How long polling an order or authorization may take in all.
    pub poll_deadline: Duration,
    /// The longest wait a `Retry-After` header can impose between polls;
    /// a server asking for more is polled after this instead.
    pub max_retry_after: Duration,
    /// How many times a request refused with `badNonce` is signed again
    /// with a fresh nonce and resent (RFC 8555 §6.5). The nonce of the
    /// error response is used, so a real server's stale-nonce refusal is
    /// cured by one retry; a test server that refuses good nonces at random
    /// (Pebble's `PEBBLE_WFE_NONCEREJECT`) may need more.
    pub bad_nonce_retries: u32,
    /// Fixed addresses for host names, used instead of DNS (as curl's
    /// `--resolve`): to reach one node of several behind one name, or a
    /// server under test. The port of the URL still applies.
    pub resolve: Vec<(String, std::net::SocketAddr)>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            ca_bundle_pem: None,
            timeout: Duration::from_secs(30),
            max_response_bytes: 1024 * 1024,
            user_agent: concat!("cairn-client/", env!("CARGO_PKG_VERSION")).to_owned(),
            poll_deadline: Duration::from_secs(5 * 60),
            max_retry_after: Duration::from_secs(60),
            bad_nonce_retries: 2,
            resolve: Vec::new(),
        }
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field(
                "ca_bundle_pem",
                &self
                    .ca_bundle_pem
                    .as_ref()
                    .map(|b| format!("{} bytes", b.len())),
            )
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("user_agent", &self.user_agent)
            .field("poll_deadline", &self.poll_deadline)
            .field("max_retry_after", &self.max_retry_after)
            .field("bad_nonce_retries", &self.bad_nonce_retries)
            .field("resolve", &self.resolve)
            .finish()
    }
}

/// A connection to one ACME server, made from its directory URL. Cheap to
/// clone: clones share the HTTP connection pool and the nonce pool.
///
/// Every other URL comes from the directory or from the server's
/// `Location` and `Link` headers; nothing is assumed about URL layout.
#[derive(Clone, Debug)]
pub struct AcmeClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    directory_url: String,
    directory: Directory,
    nonces: NoncePool,
    options: ClientOptions,
}

/// Which key signs a request, and how the JWS names it (RFC 8555 §6.2).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Signer<'a> {
    /// The account key, named by the account URL (`kid`).
    Account { key: &'a KeyPair, url: &'a str },
    /// A key embedded as `jwk`: newAccount, revocation by certificate key.
    Jwk(&'a KeyPair),
}

impl AcmeClient {
    /// Fetches the directory at `directory_url` (RFC 8555 §7.1.1) and
    /// returns a client for that server. Plain `http://` URLs are allowed,
    /// for tests on loopback.
    pub async fn new(directory_url: &str, options: ClientOptions) -> Result<Self> {
        Url::parse(directory_url)
            .map_err(|e| Error::Config(format!("directory URL {directory_url:?}: {e}")))?;
        let http = build_http_client(&options)?;
        let request = http.get(directory_url).header(ACCEPT, "application/json");
        let received = send(&http, &options, directory_url, request).await?;
        let directory: Directory = received.into_success()?.json()?;
        for (name, url) in [
            ("newNonce", &directory.new_nonce),
            ("newAccount", &directory.new_account),
            ("newOrder", &directory.new_order),
            ("revokeCert", &directory.revoke_cert),
            ("keyChange", &directory.key_change),
        ] {
            if Url::parse(url).is_err() {
                return Err(Error::invalid(
                    directory_url,
                    format!("the directory's {name} is not an absolute URL: {url:?}"),
                ));
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                directory_url: directory_url.to_owned(),
                directory,
                nonces: NoncePool::default(),
                options,
            }),
        })
    }

    /// The server's directory (RFC 8555 §7.1.1), as fetched by [`AcmeClient::new`].
    pub fn directory(&self) -> &Directory {
        &self.inner.directory
    }

    /// The URL the directory was fetched from.
    pub fn directory_url(&self) -> &str {
        &self.inner.directory_url
    }

    /// The options this client was made with.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// Sends a signed POST (RFC 8555 §6.2) with `payload` (empty for
    /// POST-as-GET, §6.3) and returns the 2xx response.
    ///
    /// Each attempt takes the newest pooled nonce, or asks `newNonce` when
    /// the pool is empty; every response's `Replay-Nonce` goes back into
    /// the pool. A `badNonce` refusal is retried up to
    /// [`ClientOptions::bad_nonce_retries`] times, which, since the error
    /// response carries a fresh nonce, uses that nonce (§6.5).
    pub(crate) async fn post(
        &self,
        url: &str,
        signer: Signer<'_>,
        payload: &[u8],
        accept: Option<&'static str>,
    ) -> Result<Received> {
        let mut retries_left = self.inner.options.bad_nonce_retries;
        loop {
            let nonce = match self.inner.nonces.take() {
                Some(nonce) => nonce,
                None => self.new_nonce().await?,
            };
            let (key, kid) = match signer {
                Signer::Account { key, url } => (key, Some(url)),
                Signer::Jwk(key) => (key, None),
            };
            let header = SigningHeader {
                kid,
                nonce: Some(&nonce),
                url,
            };
            let body = FlattenedJws::sign(key, header, payload)?.to_json_string();
            let mut request = self
                .inner
                .http
                .post(url)
                .header(CONTENT_TYPE, JOSE_JSON)
                .body(body);
            if let Some(accept) = accept {
                request = request.header(ACCEPT, accept);
            }
            let received = self.send(url, request).await?;
            match received.into_success() {
                Err(Error::Problem { problem, url })
                    if problem.kind == ProblemType::BadNonce && retries_left > 0 =>
                {
                    retries_left -= 1;
                    tracing::debug!(%url, %problem, retries_left, "badNonce; retrying with a fresh nonce");
                }
                other => return other,
            }
        }
    }

    /// Gets a fresh nonce with `HEAD newNonce` (RFC 8555 §7.2).
    async fn new_nonce(&self) -> Result<String> {
        let url = &self.inner.directory.new_nonce;
        let request = self.inner.http.request(Method::HEAD, url);
        let received = self.send(url, request).await?;
        let received = received.into_success()?;
        // `send` pooled it; take it straight back.
        self.inner.nonces.take().ok_or_else(|| {
            Error::invalid(
                url,
                format!(
                    "HTTP {} without a base64url Replay-Nonce header",
                    received.status
                ),
            )
        })
    }

    /// Sends `request`, reads the capped body and pools any `Replay-Nonce`.
    async fn send(&self, url: &str, request: reqwest::RequestBuilder) -> Result<Received> {
        let received = send(&self.inner.http, &self.inner.options, url, request).await?;
        if let Some(nonce) = received
            .headers
            .get("replay-nonce")
            .and_then(|v| v.to_str().ok())
        {
            self.inner.nonces.put(nonce);
        }
        Ok(received)
    }

    #[cfg(test)]
    pub(crate) fn pooled_nonces(&self) -> usize {
        self.inner.nonces.len()
    }
}

/// Sends `request` and reads the response under the options' limits.
async fn send(
    http: &reqwest::Client,
    options: &ClientOptions,
    url: &str,
    request: reqwest::RequestBuilder,
) -> Result<Received> {
    let on_error = |source: reqwest::Error| {
        if source.is_timeout() {
            Error::Timeout {
                url: url.to_owned(),
                waited: options.timeout,
                detail: "no complete response in time".into(),
            }
        } else {
            Error::Http {
                url: url.to_owned(),
                source,
            }
        }
    };
    let response = http.execute(request.build().map_err(on_error)?).await;
    let response = response.map_err(on_error)?;
    let received = Received::read(url, response, options.max_response_bytes, on_error).await?;
    tracing::debug!(%url, status = %received.status, bytes = received.body.len(), "ACME response");
    Ok(received)
}

fn build_http_client(options: &ClientOptions) -> Result<reqwest::Client> {
    let user_agent = HeaderValue::from_str(&options.user_agent)
        .map_err(|_| Error::Config(format!("user agent {:?}", options.user_agent)))?;
    let mut builder = reqwest::Client::builder()
        .user_agent(user_agent)
        .timeout(options.timeout)
        .connect_timeout(options.timeout)
        // RFC 8555 gives redirects no role; following one would resend a
        // signed request to a URL it was not signed for.
        .redirect(reqwest::redirect::Policy::none());
    for (host, addr) in &options.resolve {
        builder = builder.resolve(host, *addr);
    }
    if let Some(pem) = &options.ca_bundle_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| Error::Config(format!("CA bundle: {e}")))?;
        if certs.is_empty() {
            return Err(Error::Config(
                "the CA bundle holds no PEM certificate".into(),
            ));
        }
        builder = builder.tls_certs_merge(certs);
    }
    builder
        .build()
        .map_err(|e| Error::Config(format!("HTTP client: {e}")))
}
