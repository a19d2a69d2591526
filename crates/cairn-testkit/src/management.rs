//! The management API: JSON over HTTP, with the paths and bodies of
//! pebble-challtestsrv where the two overlap, so the same scripts drive
//! either. Every change answers `200` with an empty body; a body that is not
//! the expected JSON, or a bad host or token, answers `400` with a message.
//! The Content-Type of a request is not checked (`curl -d` sends a form type).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::records::{CaaPolicy, Error, Records};

/// Binds `addr` and serves the management API over `records`.
pub(crate) async fn spawn(
    addr: SocketAddr,
    records: Records,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the management API to {addr}"))?;
    let bound = listener
        .local_addr()
        .context("reading the management API address")?;
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router(records)).await {
            warn!(%error, "management API stopped");
        }
    });
    Ok((bound, task))
}

fn router(records: Records) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/set-default-ipv4", post(set_default_ipv4))
        .route("/set-default-ipv6", post(set_default_ipv6))
        .route("/set-txt", post(set_txt))
        .route("/clear-txt", post(clear_txt))
        .route("/add-a", post(add_a))
        .route("/clear-a", post(clear_a))
        .route("/add-aaaa", post(add_aaaa))
        .route("/clear-aaaa", post(clear_aaaa))
        .route("/add-caa", post(add_caa))
        .route("/clear-caa", post(clear_caa))
        .route("/set-cname", post(set_cname))
        .route("/clear-cname", post(clear_cname))
        .route("/set-nxdomain", post(set_nxdomain))
        .route("/clear-nxdomain", post(clear_nxdomain))
        .route("/set-servfail", post(set_servfail))
        .route("/clear-servfail", post(clear_servfail))
        .route("/add-http01", post(add_http01))
        .route("/del-http01", post(del_http01))
        .route("/add-tlsalpn01", post(add_tls_alpn01))
        .route("/del-tlsalpn01", post(del_tls_alpn01))
        .with_state(records)
}

// Request bodies. Unknown fields are ignored, as pebble-challtestsrv does.

#[derive(Deserialize)]
struct HostBody {
    host: String,
}

#[derive(Deserialize)]
struct TxtBody {
    host: String,
    value: String,
}

#[derive(Deserialize)]
struct AddressesBody<A> {
    host: String,
    addresses: Vec<A>,
}

#[derive(Deserialize)]
struct DefaultIpBody {
    /// An address, or "" for none.
    ip: String,
}

#[derive(Deserialize)]
struct CaaBody {
    host: String,
    /// Flags for every policy that does not give its own.
    #[serde(default)]
    flags: Option<u8>,
    policies: Vec<CaaPolicyBody>,
}

#[derive(Deserialize)]
struct CaaPolicyBody {
    #[serde(default)]
    flags: Option<u8>,
    tag: String,
    value: String,
}

#[derive(Deserialize)]
struct CnameBody {
    host: String,
    target: String,
}

#[derive(Deserialize)]
struct Http01Body {
    token: String,
    content: String,
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
}

#[derive(Deserialize)]
struct TlsAlpn01Body {
    host: String,
    content: String,
}

async fn set_default_ipv4(State(records): State<Records>, body: Bytes) -> Response {
    apply(&body, |b: DefaultIpBody| {
        let address = parse_optional_ip::<Ipv4Addr>(&b.ip)?;
        info!(?address, "default IPv4 address set");
        records.set_default_ipv4(address);
        Ok(())
    })
}

async fn set_default_ipv6(State(records): State<Records>, body: Bytes) -> Response {
    apply(&body, |b: DefaultIpBody| {
        let address = parse_optional_ip::<Ipv6Addr>(&b.ip)?;
        info!(?address, "default IPv6 address set");
        records.set_default_ipv6(address);
        Ok(())
    })
}

async fn set_txt(State(records): State<Records>, body: Bytes) -> Response {
    apply(&body, |b: TxtBody| {
        records.set_txt(&b.host, &b.value)?;
        info!(host = %b.host, value = %b.value, "TXT added");
        Ok(())
    })
}

async fn clear_txt(State(records): State<Records>, body: Bytes) -> Response {
    apply(&body, |b: HostBody| {
        records.clear_txt(&b.host)?;
        info!(host = %b.host, "TXT cleared");
        Ok(())
    })
}

async fn add_a(State(records): State<Records>, body: Bytes) -> Response {
    apply(&body, |b: AddressesBody<Ipv4Addr>| {
        records.add_a(&b.host, &b.addresses)?;
        info!(host = %b.host, addresses = ?b.addresses, "A added");
        Ok(())
    })
}

async fn clear_a(State(records): State<Records>, body: Bytes) -> Response {
    apply(&body, |b: HostBody| {
        records.clear_a(&b.host)?;
        info!(host = %b.host, "A cleared");
        Ok(())
    })
}

async fn add_aaaa(State(records): State<Records>, body: Bytes) -> Response {
    apply(&body, |b: AddressesBody<Ipv6Addr>| {
        records.add_aaaa(&b.host, &b.addresses)?;
        info!(host = %b.host, addresses = ?b.addresses, "AAAA added");
        Ok(())
    })
}

async fn clear_aaaa(State(records): State<Records>, body: Bytes) -> Response {
    apply(&body, |b: HostBody| {
        records.clear_aaaa(&b.host)?;
        info!(host = %b.host, "AAAA cleared");
        Ok(())
    })
}

async fn add_caa(State(records): State<Records>, body: Bytes) -> Response {
    apply(&body, |b: CaaBody| {
        let policies: Vec<CaaPolicy> = b
            .policies
            .into_iter()
            .map(|p| CaaPolicy::new(p.tag, p.value).with_flags(p.flags.or(b.flags).unwrap_or(0)))
            .collect();
        records.add_caa(&b.host, &policies)?;
        info!(host = %b.host, ?policies, "CAA added");
        Ok(())
    })
}

async fn clear_caa(State(records): State<Records>, body: Bytes) -> Response {
    apply(&body, |b: HostBody| {
        records.clear_caa(&b.host)?;
        info!(host = %b.host, "CAA cleared");
        Ok(())
    })
}

async fn set_cname(State(records): State<Records>, body: Bytes) -> Response {
    apply(&body, |b: CnameBody| {
        records.set_cname(&b.host, &b.target)?;
        info!(host = %b.host, target = %b.target, "CNAME set");
        Ok(())
    })
}

async fn clear_cname(State(records): State<Records>, body: Bytes) -> Response {
    apply(&body, |b: HostBody| {
        records.clear_cname(&b.host)?;
        info!(host = %b.host, "CNAME cleared");
        Ok(())
    })
}

async fn set_nxdomain(State(records): State<Records>, body: Bytes) -> Response {
    apply(&body, |b: HostBody| {
        records.set_nxdomain(&b.host)?;
        info!(host = %b.host, "NXDOMAIN set");
        Ok(())
    })
}

async fn clear_nxdomain(State(records): State<Records>, body: Bytes) -> Response {
    apply(&body, |b: HostBody| {
        records.clear_nxdomain(&b.host)?;
        info!(host = %b.host, "NXDOMAIN cleared");
        Ok(())
    })
}

async fn set_servfail(State(records): State<Records>, body: Bytes) -> Response {
    apply(&body, |b: HostBody| {
        records.set_servfail(&b.host)?;
        info!(host = %b.host, "SERVFAIL set");
        Ok(())
    })
}

async fn clear_servfail(State(records): State<Records>, body: Bytes) -> Response {
    apply(&body, |b: HostBody| {
        records.clear_servfail(&b.host)?;
        info!(host = %b.host, "SERVFAIL cleared");
        Ok(())
    })
}

async fn add_http01(State(records): State<Records>, body: Bytes) -> Response {
    apply(&body, |b: Http01Body| {
        records.add_http01(&b.token, &b.content)?;
        info!(token = %b.token, "http-01 response added");
        Ok(())
    })
}

async fn del_http01(State(records): State<Records>, body: Bytes) -> Response {
    apply(&body, |b: TokenBody| {
        records.del_http01(&b.token)?;
        info!(token = %b.token, "http-01 response removed");
        Ok(())
    })
}

async fn add_tls_alpn01(State(records): State<Records>, body: Bytes) -> Response {
    apply(&body, |b: TlsAlpn01Body| {
        records.add_tls_alpn01(&b.host, &b.content)?;
        info!(host = %b.host, "tls-alpn-01 certificate added");
        Ok(())
    })
}

async fn del_tls_alpn01(State(records): State<Records>, body: Bytes) -> Response {
    apply(&body, |b: HostBody| {
        records.del_tls_alpn01(&b.host)?;
        info!(host = %b.host, "tls-alpn-01 certificate removed");
        Ok(())
    })
}

/// Parses `body` as `T` and runs `change`: 200 with an empty body, or an
/// error status with a one-line message.
fn apply<T: DeserializeOwned>(
    body: &[u8],
    change: impl FnOnce(T) -> Result<(), Error>,
) -> Response {
    let parsed = match serde_json::from_slice::<T>(body) {
        Ok(parsed) => parsed,
        Err(error) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!("request body is not the expected JSON: {error}"),
            );
        }
    };
    match change(parsed) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(error @ Error::Certificate { .. }) => {
            warn!(%error, "management request failed");
            error_response(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string())
        }
        Err(error) => error_response(StatusCode::BAD_REQUEST, &error.to_string()),
    }
}

fn error_response(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

fn parse_optional_ip<A: std::str::FromStr>(text: &str) -> Result<Option<A>, Error> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| Error::InvalidRecord(format!("{text:?} is not an IP address of that family")))
}
