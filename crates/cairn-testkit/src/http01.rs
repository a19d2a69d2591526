//! The http-01 responder (RFC 8555 §8.3): `GET
//! /.well-known/acme-challenge/<token>` answers the content set for the
//! token as `text/plain`; anything else is 404. The Host header is not
//! checked, so one responder serves every name that resolves to it.

use std::net::SocketAddr;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::records::Records;

/// Binds `addr` and serves http-01 responses from `records`. Aborting the
/// returned task closes the listener and lets open connections finish.
pub(crate) async fn spawn(
    addr: SocketAddr,
    records: Records,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the http-01 responder to {addr}"))?;
    let bound = listener
        .local_addr()
        .context("reading the http-01 address")?;
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router(records)).await {
            warn!(%error, "http-01 responder stopped");
        }
    });
    Ok((bound, task))
}

fn router(records: Records) -> Router {
    Router::new()
        .route("/.well-known/acme-challenge/{token}", get(challenge))
        .with_state(records)
}

async fn challenge(
    State(records): State<Records>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    match records.http01(&token) {
        Some(content) => {
            info!(%token, %host, "http-01 challenge served");
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain")],
                content,
            )
                .into_response()
        }
        None => {
            info!(%token, %host, "http-01 request for an unknown token");
            StatusCode::NOT_FOUND.into_response()
        }
    }
}
