//! The web front end: the ACME HTTP API (RFC 8555 §7) over axum. It checks
//! every request (content type, size, JWS, `url`, nonce, key) before the RA
//! sees it, and is the only place an error becomes a problem document.

mod handlers;
mod request;
mod response;
pub mod serve;
mod urls;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};

pub use self::urls::Urls;
use crate::nonce::NonceService;
use crate::ra::Ra;

/// What the API needs to answer requests.
pub struct Wfe {
    pub ra: Arc<Ra>,
    pub nonces: Arc<dyn NonceService>,
    pub urls: Urls,
    pub max_body_bytes: usize,
    /// Time to receive a request's body once its headers arrived.
    pub body_timeout: std::time::Duration,
    pub meta: cairn_proto::objects::DirectoryMeta,
}

impl std::fmt::Debug for Wfe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wfe")
            .field("urls", &self.urls)
            .finish_non_exhaustive()
    }
}

/// The ACME API's routes.
pub fn acme_router(wfe: Arc<Wfe>) -> Router {
    use handlers::*;
    Router::new()
        .route("/directory", get(directory))
        .route("/acme/new-nonce", get(new_nonce_get).head(new_nonce_head))
        .route("/acme/new-account", post(new_account).get(post_only))
        .route("/acme/acct/{id}", post(account).get(post_as_get_only))
        .route(
            "/acme/acct/{id}/orders",
            post(account_orders).get(post_as_get_only),
        )
        .route("/acme/key-change", post(key_change).get(post_only))
        .route("/acme/new-order", post(new_order).get(post_only))
        .route("/acme/order/{id}", post(order).get(post_as_get_only))
        .route("/acme/order/{id}/finalize", post(finalize).get(post_only))
        .route(
            "/acme/authz/{id}",
            post(authorization).get(post_as_get_only),
        )
        .route("/acme/chall/{id}", post(challenge).get(post_as_get_only))
        .route(
            "/acme/cert/{serial}",
            post(certificate).get(post_as_get_only),
        )
        .route(
            "/acme/cert/{serial}/{alternate}",
            post(certificate_alternate).get(post_as_get_only),
        )
        .route("/acme/renewal-info/{id}", get(renewal_info))
        .route("/acme/revoke-cert", post(revoke_certificate).get(post_only))
        .merge(publication_routes())
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&wfe),
            acme_headers,
        ))
        .with_state(wfe)
}

/// The plain-HTTP routes: CRLs and issuer certificates (RFC 5280 URLs in
/// every leaf must be http:).
pub fn publication_router(wfe: Arc<Wfe>) -> Router {
    publication_routes()
        .fallback(handlers::not_found)
        .with_state(wfe)
}

fn publication_routes() -> Router<Arc<Wfe>> {
    Router::new()
        .route("/crl/{file}", get(handlers::crl))
        .route("/issuer/{file}", get(handlers::issuer_certificate))
}

/// Adds what every ACME response carries: a fresh `Replay-Nonce` on every
/// non-GET response, errors included (RFC 8555 §6.5), and `Link: rel="index"`
/// (§7.1) everywhere but the directory. Logs one event per request.
async fn acme_headers(State(wfe): State<Arc<Wfe>>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = std::time::Instant::now();
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if method != Method::GET
        && !headers.contains_key("replay-nonce")
        && let Ok(value) = HeaderValue::from_str(&wfe.nonces.issue())
    {
        headers.insert("replay-nonce", value);
    }
    if path != "/directory"
        && let Ok(value) =
            HeaderValue::from_str(&format!("<{}>;rel=\"index\"", wfe.urls.directory()))
    {
        headers.append(header::LINK, value);
    }
    tracing::info!(
        target: "cairn::request", method = %method, path = %path,
        status = response.status().as_u16(), micros = started.elapsed().as_micros() as u64
    );
    response
}
