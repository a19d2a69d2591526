//! Forwarding one request: find the site by Host (`:authority` for HTTP/2),
//! rewrite the headers a proxy must (hop-by-hop removed, `X-Forwarded-*` and
//! `Forwarded` set), send it over a pooled HTTP/1.1 connection with the body
//! streamed both ways, and turn upstream failures into 502/504 pages.
//! Websocket upgrades are joined end to end after both sides switch.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::access_log::{Entry, Logged};
use super::routes::{Route, Routes};

/// Response bodies: the upstream's, streamed, or a page of our own.
pub(crate) type ProxyBody = UnsyncBoxBody<Bytes, hyper::Error>;

/// What every request handler shares; the route table is swapped on reload.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) routes: RwLock<Arc<Routes>>,
    client: Client<HttpConnector, Incoming>,
    upstream_response_timeout: Duration,
}

impl Shared {
    pub(crate) fn new(
        routes: Routes,
        connect_timeout: Duration,
        upstream_response_timeout: Duration,
    ) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .build(connector);
        Self {
            routes: RwLock::new(Arc::new(routes)),
            client,
            upstream_response_timeout,
        }
    }

    /// The current table (cheap: one `Arc` clone).
    pub(crate) fn routes(&self) -> Arc<Routes> {
        match self.routes.read() {
            Ok(routes) => Arc::clone(&routes),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Replaces the table; requests already routed keep the old one.
    pub(crate) fn swap_routes(&self, routes: Routes) {
        let routes = Arc::new(routes);
        match self.routes.write() {
            Ok(mut current) => *current = routes,
            Err(poisoned) => *poisoned.into_inner() = routes,
        }
    }
}

/// Serves one HTTPS request from `peer`.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    peer: SocketAddr,
    mut request: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let started = time::OffsetDateTime::now_utc();
    let Some(host) = request_host(&request) else {
        return Ok(page(
            StatusCode::BAD_REQUEST,
            "The request names no host (no Host header).",
        ));
    };
    let routes = shared.routes();
    let Some(route) = routes.find(&host).cloned() else {
        return Ok(page(
            StatusCode::MISDIRECTED_REQUEST,
            &format!("This server has no site named {host}."),
        ));
    };
    let entry = Entry {
        remote: peer.ip(),
        time: started,
        request_line: format!(
            "{} {} {:?}",
            request.method(),
            request.uri().path_and_query().map_or("/", |p| p.as_str()),
            request.version()
        ),
        status: 0,
        referer: header_text(request.headers(), &header::REFERER),
        user_agent: header_text(request.headers(), &header::USER_AGENT),
    };
    let websocket = request.version() == Version::HTTP_11 && is_upgrade(request.headers());
    let client_upgrade = websocket.then(|| hyper::upgrade::on(&mut request));
    let response = match forward(&shared, &route, &host, peer, request, websocket).await {
        Ok(mut response) => {
            if websocket && response.status() == StatusCode::SWITCHING_PROTOCOLS {
                if let Some(client_upgrade) = client_upgrade {
                    let upstream_upgrade = hyper::upgrade::on(&mut response);
                    tokio::spawn(join_upgraded(
                        client_upgrade,
                        upstream_upgrade,
                        host.clone(),
                    ));
                }
            } else {
                strip_hop_by_hop(response.headers_mut(), false);
            }
            if let Some(hsts) = &route.hsts {
                response
                    .headers_mut()
                    .insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
            }
            response.map(|body| body.boxed_unsync())
        }
        Err(failure) => {
            tracing::warn!("{host}: upstream {}: {}", route.upstream, failure.detail);
            let mut page = page(failure.status, failure.message);
            if let Some(hsts) = &route.hsts {
                page.headers_mut()
                    .insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
            }
            page
        }
    };
    Ok(match &route.access_log {
        Some(log) => {
            let entry = Entry {
                status: response.status().as_u16(),
                ..entry
            };
            response.map(|body| Logged::new(body, Arc::clone(log), entry).boxed_unsync())
        }
        None => response,
    })
}

/// Why the upstream gave no response.
#[derive(Debug)]
struct Failure {
    status: StatusCode,
    message: &'static str,
    detail: String,
}

async fn forward(
    shared: &Shared,
    route: &Route,
    host: &str,
    peer: SocketAddr,
    request: Request<Incoming>,
    websocket: bool,
) -> Result<Response<Incoming>, Failure> {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri: Uri = format!(
        "http://{}{}{}",
        route.upstream.authority, route.upstream.prefix, path
    )
    .parse()
    .map_err(|e| Failure {
        status: StatusCode::BAD_REQUEST,
        message: "The request target is not valid.",
        detail: format!("building the upstream URL: {e}"),
    })?;
    let original_host = parts
        .headers
        .get(header::HOST)
        .cloned()
        .or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        })
        .unwrap_or_else(|| HeaderValue::from_str(host).unwrap_or(HeaderValue::from_static("")));
    let headers = &mut parts.headers;
    strip_hop_by_hop(headers, websocket);
    headers.insert(header::HOST, original_host.clone());
    set_forwarded(headers, peer, &original_host);
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    let request = Request::from_parts(parts, body);
    match tokio::time::timeout(
        shared.upstream_response_timeout,
        shared.client.request(request),
    )
    .await
    {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(e)) => Err(Failure {
            status: StatusCode::BAD_GATEWAY,
            message: if e.is_connect() {
                "The upstream server could not be reached."
            } else {
                "The upstream server closed the connection or sent a bad response."
            },
            detail: error_chain(&e),
        }),
        Err(_) => Err(Failure {
            status: StatusCode::GATEWAY_TIMEOUT,
            message: "The upstream server did not answer in time.",
            detail: format!(
                "no response headers within {} s",
                shared.upstream_response_timeout.as_secs()
            ),
        }),
    }
}

/// Copies bytes both ways once the client and the upstream have switched.
async fn join_upgraded(
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    host: String,
) {
    match tokio::try_join!(client, upstream) {
        Ok((client, upstream)) => {
            let mut client = TokioIo::new(client);
            let mut upstream = TokioIo::new(upstream);
            if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                tracing::debug!("{host}: upgraded connection ended: {e}");
            }
        }
        Err(e) => tracing::warn!("{host}: the connection upgrade failed: {e}"),
    }
}

/// The host a request is for: the `:authority` of HTTP/2 (or an absolute
/// URI), else the Host header; lowercase, without port or trailing dot.
pub(crate) fn request_host<B>(request: &Request<B>) -> Option<String> {
    let authority = match request.uri().authority() {
        Some(a) => a.clone(),
        None => request
            .headers()
            .get(header::HOST)?
            .to_str()
            .ok()?
            .parse()
            .ok()?,
    };
    let host = authority.host().trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// Whether the request asks to switch protocols (websocket and the like).
fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && connection_tokens(headers).any(|t| t.eq_ignore_ascii_case("upgrade"))
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Removes the headers that describe one connection (RFC 9110 §7.6.1):
/// those `Connection` lists and the standard hop-by-hop ones. With
/// `keep_upgrade`, `Connection: upgrade` and `Upgrade` are kept.
fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let listed: Vec<HeaderName> = connection_tokens(headers)
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    let upgrade = headers.get(header::UPGRADE).cloned();
    for name in listed {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
    ] {
        headers.remove(name);
    }
    if keep_upgrade && let Some(upgrade) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, upgrade);
    }
}

/// Sets `X-Forwarded-For/-Proto/-Host` and `Forwarded` (RFC 7239) to what
/// this proxy saw. The proxy is the edge: values a client sent are replaced,
/// not appended to, so a client cannot claim another address.
fn set_forwarded(headers: &mut HeaderMap, peer: SocketAddr, host: &HeaderValue) {
    let ip = peer.ip().to_canonical();
    let set = |headers: &mut HeaderMap, name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    set(headers, "x-forwarded-for", ip.to_string());
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static("https"),
    );
    headers.insert(HeaderName::from_static("x-forwarded-host"), host.clone());
    let node = match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("\"[{v6}]\""),
    };
    let host = host.to_str().unwrap_or("");
    let forwarded = if host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b))
    {
        format!("for={node};host={host};proto=https")
    } else {
        format!("for={node};proto=https")
    };
    set(headers, "forwarded", forwarded);
}

fn header_text(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A small HTML page for errors the proxy itself answers.
pub(crate) fn page(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let reason = status.canonical_reason().unwrap_or("");
    let body = format!(
        "<!DOCTYPE html>\n<html><head><title>{code} {reason}</title></head>\
         <body><h1>{code} {reason}</h1><p>{message}</p><hr><p>cairn proxy</p></body></html>\n",
        code = status.as_u16(),
        message = html_escape(message),
    );
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go_and_upgrade_can_stay() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret, Upgrade"),
        );
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        let mut plain = headers.clone();
        strip_hop_by_hop(&mut plain, false);
        assert_eq!(plain.len(), 1, "{plain:?}");
        assert!(plain.contains_key(header::ACCEPT));
        strip_hop_by_hop(&mut headers, true);
        assert_eq!(headers.len(), 3, "{headers:?}");
        assert_eq!(headers[header::UPGRADE], "websocket");
        assert_eq!(headers[header::CONNECTION], "upgrade");
    }

    #[test]
    fn forwarded_headers_replace_what_the_client_sent() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        let peer: SocketAddr = "[::1]:5000".parse().expect("addr");
        set_forwarded(
            &mut headers,
            peer,
            &HeaderValue::from_static("a.example:8443"),
        );
        assert_eq!(headers["x-forwarded-for"], "::1");
        assert_eq!(headers["x-forwarded-proto"], "https");
        assert_eq!(headers["x-forwarded-host"], "a.example:8443");
        assert_eq!(
            headers["forwarded"],
            "for=\"[::1]\";host=a.example:8443;proto=https"
        );
        let v4: SocketAddr = "[::ffff:192.0.2.1]:1".parse().expect("addr");
        set_forwarded(&mut headers, v4, &HeaderValue::from_static("a.example"));
        assert_eq!(headers["x-forwarded-for"], "192.0.2.1");
        assert_eq!(
            headers["forwarded"],
            "for=192.0.2.1;host=a.example;proto=https"
        );
    }

    #[test]
    fn the_host_comes_from_the_authority_or_the_host_header() {
        let h2 = Request::get("https://A.Example:8443/x")
            .body(())
            .expect("request");
        assert_eq!(request_host(&h2).as_deref(), Some("a.example"));
        let h1 = Request::get("/x")
            .header(header::HOST, "b.example.")
            .body(())
            .expect("request");
        assert_eq!(request_host(&h1).as_deref(), Some("b.example"));
        let none = Request::get("/x").body(()).expect("request");
        assert_eq!(request_host(&none), None);
    }
}
