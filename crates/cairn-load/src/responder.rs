//! Answering challenges: nothing at all (a server in always-valid mode),
//! an http-01 responder of our own (RFC 8555 §8.3), or TXT records set
//! through a challenge test server's management API (dns-01, §8.4).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cairn_client::PreparedChallenge;
use cairn_proto::objects::ChallengeType;
use serde::Serialize;
use tokio::task::JoinHandle;

use crate::stats::Failure;

/// How challenges get answered.
#[derive(Debug)]
pub(crate) enum Responder {
    /// Nothing is provisioned; http-01 is answered and the server, in
    /// always-valid mode, passes it without looking.
    Nothing,
    /// Tokens served at `/.well-known/acme-challenge/{token}`.
    Http01(Http01Server),
    /// TXT records set at a pebble-challtestsrv-compatible management API.
    Dns01(DnsManagement),
}

impl Responder {
    /// The challenge type this responder answers.
    pub(crate) fn challenge_type(&self) -> ChallengeType {
        match self {
            Self::Nothing | Self::Http01(_) => ChallengeType::Http01,
            Self::Dns01(_) => ChallengeType::Dns01,
        }
    }

    /// Puts the response to `challenge` in place.
    pub(crate) async fn provision(&self, challenge: &PreparedChallenge) -> Result<(), Failure> {
        match self {
            Self::Nothing => Ok(()),
            Self::Http01(server) => {
                server.tokens().insert(
                    challenge.token.as_str().to_owned(),
                    challenge.key_authorization.clone(),
                );
                Ok(())
            }
            Self::Dns01(dns) => {
                let body = TxtRecord {
                    host: fqdn(&challenge.dns01_record_name()),
                    value: Some(challenge.dns01_txt_value()),
                };
                dns.post("set-txt", &body).await
            }
        }
    }

    /// Takes the response to `challenge` down again. A failure to clear a
    /// TXT record is ignored: the name is random and never asked again.
    pub(crate) async fn remove(&self, challenge: &PreparedChallenge) {
        match self {
            Self::Nothing => {}
            Self::Http01(server) => {
                server.tokens().remove(challenge.token.as_str());
            }
            Self::Dns01(dns) => {
                let body = TxtRecord {
                    host: fqdn(&challenge.dns01_record_name()),
                    value: None,
                };
                let _ = dns.post("clear-txt", &body).await;
            }
        }
    }
}

type Tokens = Arc<RwLock<HashMap<String, String>>>;

/// An HTTP server answering http-01 from a shared token → key
/// authorization map. Dropping it stops the server.
#[derive(Debug)]
pub(crate) struct Http01Server {
    tokens: Tokens,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Http01Server {
    /// Binds `listen` and serves on the current Tokio runtime.
    pub(crate) async fn start(listen: SocketAddr) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {listen} for http-01 (is another responder there? \
                     pick another address with --http01-listen)"
                )
            })?;
        let addr = listener.local_addr()?;
        let tokens = Tokens::default();
        let router = Router::new()
            .route("/.well-known/acme-challenge/{token}", get(serve_token))
            .with_state(Arc::clone(&tokens));
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                eprintln!("cairn-load: the http-01 responder on {addr} stopped: {error}");
            }
        });
        Ok(Self { tokens, addr, task })
    }

    /// The address it listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn tokens(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, String>> {
        self.tokens.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Http01Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_token(State(tokens): State<Tokens>, Path(token): Path<String>) -> Response {
    let found = tokens
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&token)
        .cloned();
    match found {
        Some(key_authorization) => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            key_authorization,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The management API of pebble-challtestsrv or cairn-testsrv:
/// `POST /set-txt {"host","value"}` and `POST /clear-txt {"host"}`.
#[derive(Debug)]
pub(crate) struct DnsManagement {
    http: reqwest::Client,
    base_url: String,
}

#[derive(Serialize)]
struct TxtRecord {
    host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
}

impl DnsManagement {
    /// A client for the management API at `base_url` (`http://127.0.0.1:8055`).
    pub(crate) fn new(base_url: &str) -> anyhow::Result<Self> {
        let base_url = base_url.trim_end_matches('/').to_owned();
        reqwest::Url::parse(&base_url)
            .with_context(|| format!("--dns-management {base_url:?} is not a URL"))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .build()
            .context("building the HTTP client for the DNS management API")?;
        Ok(Self { http, base_url })
    }

    async fn post(&self, path: &str, body: &TxtRecord) -> Result<(), Failure> {
        let url = format!("{}/{path}", self.base_url);
        let body = serde_json::to_vec(body).expect("a TXT record body always serializes");
        let fail = |detail: String| {
            Failure::new(
                "responder",
                format!("DNS management API {url}: {detail} (is --dns-management right?)"),
            )
        };
        let response = self
            .http
            .post(&url)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(fail(format!("HTTP {status}: {}", text.trim())));
        }
        Ok(())
    }
}

/// `name.` with its trailing dot, as pebble-challtestsrv wants hosts.
fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    }
}
