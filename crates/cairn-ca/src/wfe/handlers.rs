//! One handler per ACME endpoint (RFC 8555 §7).

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cairn_proto::jws::{JwsKind, KeyRef, UnverifiedJws};
use cairn_proto::objects::{
    AccountUpdate, Directory, Finalize, KeyChange, NewAccount, NewOrder, OrderStatus, OrdersList,
    Revocation,
};
use cairn_proto::{Jwk, pem};

use super::Wfe;
use super::request::{KeyForm, Signed};
use super::response::{self, json, link, location, retry_after};
use crate::error::{CaError, CaResult};
use crate::ra::Revoker;

type WfeState = State<Arc<Wfe>>;

/// Turns a handler's result into a response.
fn respond(result: CaResult<Response>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

fn parse_id(raw: &str, what: &str) -> CaResult<i64> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| CaError::not_found(format!("{what} {raw:?}")))
}

pub(super) async fn directory(State(wfe): WfeState) -> Response {
    let urls = &wfe.urls;
    let body = Directory {
        new_nonce: urls.endpoint("new-nonce"),
        new_account: urls.endpoint("new-account"),
        new_order: urls.endpoint("new-order"),
        new_authz: None,
        revoke_cert: urls.endpoint("revoke-cert"),
        key_change: urls.endpoint("key-change"),
        renewal_info: Some(urls.endpoint("renewal-info")),
        meta: Some(wfe.meta.clone()),
    };
    json(StatusCode::OK, &body, HeaderMap::new())
}

fn nonce_response(wfe: &Wfe, status: StatusCode) -> Response {
    let mut response = status.into_response();
    let headers = response.headers_mut();
    if let Ok(nonce) = HeaderValue::from_str(&wfe.nonces.issue()) {
        headers.insert("replay-nonce", nonce);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// RFC 8555 §7.2: HEAD answers 200, GET 204.
pub(super) async fn new_nonce_head(State(wfe): WfeState) -> Response {
    nonce_response(&wfe, StatusCode::OK)
}

pub(super) async fn new_nonce_get(State(wfe): WfeState) -> Response {
    nonce_response(&wfe, StatusCode::NO_CONTENT)
}

pub(super) async fn new_account(State(wfe): WfeState, request: Request) -> Response {
    respond(
        async {
            let signed = wfe.read_signed(request, KeyForm::Jwk).await?;
            let payload: NewAccount = signed.payload()?;
            let (account, created) = wfe.ra.new_account(signed.jws.key(), &payload).await?;
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let url = wfe.urls.account(account.id);
            Ok(json(
                status,
                &response::account(&wfe.urls, &account),
                location(&url),
            ))
        }
        .await,
    )
}

pub(super) async fn account(
    State(wfe): WfeState,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    respond(
        async {
            let signed = wfe.read_signed(request, KeyForm::Kid).await?;
            let account = signed.account()?;
            if account.id != parse_id(&id, "account")? {
                return Err(CaError::unauthorized(
                    "the request is signed by another account",
                ));
            }
            let account = if signed.jws.is_post_as_get() {
                account.clone()
            } else {
                let update: AccountUpdate = signed.payload()?;
                wfe.ra.update_account(account, &update).await?
            };
            let url = wfe.urls.account(account.id);
            Ok(json(
                StatusCode::OK,
                &response::account(&wfe.urls, &account),
                location(&url),
            ))
        }
        .await,
    )
}

/// RFC 8555 §7.1.2.1, paginated with `Link: rel="next"` and `?cursor=`.
pub(super) async fn account_orders(
    State(wfe): WfeState,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    respond(
        async {
            let cursor = request
                .uri()
                .query()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("cursor=")))
                .map(|c| {
                    c.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
                        CaError::malformed(format!("cursor {c:?} is not an order id"))
                    })
                })
                .transpose()?;
            let signed = wfe.read_signed(request, KeyForm::Kid).await?;
            signed.require_post_as_get()?;
            let account = signed.account()?;
            if account.id != parse_id(&id, "account")? {
                return Err(CaError::unauthorized(
                    "an account can only list its own orders",
                ));
            }
            let (ids, next) = wfe.ra.account_orders(account.id, cursor).await?;
            let body = OrdersList {
                orders: ids.iter().map(|id| wfe.urls.order(*id)).collect(),
            };
            let mut headers = HeaderMap::new();
            if let Some(next) = next {
                headers = link(
                    headers,
                    &format!("{}?cursor={next}", wfe.urls.account_orders(account.id)),
                    "next",
                );
            }
            Ok(json(StatusCode::OK, &body, headers))
        }
        .await,
    )
}

/// RFC 8555 §7.3.5: the outer JWS is signed by the account's current key,
/// the inner one by the new key.
pub(super) async fn key_change(State(wfe): WfeState, request: Request) -> Response {
    respond(
        async {
            let signed = wfe.read_signed(request, KeyForm::Kid).await?;
            let account = signed.account()?;
            let inner_value: serde_json::Value = signed.payload()?;
            let inner = UnverifiedJws::from_value(&inner_value, JwsKind::KeyChangeInner)?;
            if inner.header().url != signed.jws.header().url {
                return Err(CaError::malformed(
                    "the inner JWS url differs from the outer JWS url",
                ));
            }
            let inner = inner.verify_with_embedded_jwk()?;
            let KeyRef::Jwk(new_key) = &inner.header().key else {
                return Err(CaError::malformed(
                    "the inner JWS must carry the new key as jwk",
                ));
            };
            let change: KeyChange = inner.payload_json()?;
            if change.account != wfe.urls.account(account.id) {
                return Err(CaError::malformed(
                    "the inner payload's account is not the signing account",
                ));
            }
            let old_key = Jwk::from_json(&change.old_key)?;
            if &old_key != signed.jws.key() {
                return Err(CaError::malformed(
                    "the inner payload's oldKey is not the account's current key",
                ));
            }
            let new_key = new_key.clone();
            let updated = match wfe.ra.change_key(account, &new_key).await {
                Ok(updated) => updated,
                Err(mut e) if e.status == Some(409) => {
                    // RFC 8555 §7.3.5: 409 with Location naming the account
                    // that holds the key (the requester signed with it).
                    e.detail = format!("{} (the new key cannot be reused)", e.detail);
                    let holder = wfe
                        .ra
                        .store()
                        .account_by_thumbprint(&new_key.thumbprint())
                        .await?;
                    let mut response = e.into_response();
                    if let Some(holder) = holder {
                        response
                            .headers_mut()
                            .extend(location(&wfe.urls.account(holder.id)));
                    }
                    return Ok(response);
                }
                Err(e) => return Err(e),
            };
            let url = wfe.urls.account(updated.id);
            Ok(json(
                StatusCode::OK,
                &response::account(&wfe.urls, &updated),
                location(&url),
            ))
        }
        .await,
    )
}

pub(super) async fn new_order(State(wfe): WfeState, request: Request) -> Response {
    respond(
        async {
            let signed = wfe.read_signed(request, KeyForm::Kid).await?;
            let payload: NewOrder = signed.payload()?;
            let view = wfe.ra.new_order(signed.account()?, &payload).await?;
            let url = wfe.urls.order(view.order.id);
            Ok(json(
                StatusCode::CREATED,
                &response::order(&wfe.urls, &view),
                location(&url),
            ))
        }
        .await,
    )
}

pub(super) async fn order(
    State(wfe): WfeState,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    respond(
        async {
            let signed = wfe.read_signed(request, KeyForm::Kid).await?;
            signed.require_post_as_get()?;
            let view = wfe
                .ra
                .order(signed.account()?, parse_id(&id, "order")?)
                .await?;
            Ok(order_response(&wfe, &view))
        }
        .await,
    )
}

fn order_response(wfe: &Wfe, view: &crate::ra::OrderView) -> Response {
    let mut headers = location(&wfe.urls.order(view.order.id));
    if view.status == OrderStatus::Processing {
        headers = retry_after(headers);
    }
    json(StatusCode::OK, &response::order(&wfe.urls, view), headers)
}

pub(super) async fn finalize(
    State(wfe): WfeState,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    respond(
        async {
            let signed = wfe.read_signed(request, KeyForm::Kid).await?;
            let payload: Finalize = signed.payload()?;
            let view = wfe
                .ra
                .finalize(signed.account()?, parse_id(&id, "order")?, &payload)
                .await?;
            Ok(order_response(&wfe, &view))
        }
        .await,
    )
}

pub(super) async fn authorization(
    State(wfe): WfeState,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    respond(
        async {
            let signed = wfe.read_signed(request, KeyForm::Kid).await?;
            let account = signed.account()?;
            let id = parse_id(&id, "authorization")?;
            let authz = if signed.jws.is_post_as_get() {
                wfe.ra.authorization(account, id).await?
            } else {
                let update: serde_json::Value = signed.payload()?;
                if update.get("status").and_then(|s| s.as_str()) != Some("deactivated") {
                    return Err(CaError::malformed(
                        "an authorization can only be updated with {\"status\": \"deactivated\"}",
                    ));
                }
                wfe.ra.deactivate_authorization(account, id).await?
            };
            let body = response::authorization(&wfe.urls, &authz, wfe.ra.now());
            let mut headers = HeaderMap::new();
            if authz
                .challenges
                .iter()
                .any(|c| c.state == cairn_store::ChallengeState::Processing)
            {
                headers = retry_after(headers);
            }
            Ok(json(StatusCode::OK, &body, headers))
        }
        .await,
    )
}

pub(super) async fn challenge(
    State(wfe): WfeState,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    respond(
        async {
            let signed = wfe.read_signed(request, KeyForm::Kid).await?;
            let account = signed.account()?;
            let id = parse_id(&id, "challenge")?;
            let (challenge, authz) = if signed.empty_object_or_post_as_get()? {
                wfe.ra.respond_to_challenge(account, id).await?
            } else {
                wfe.ra.challenge(account, id).await?
            };
            let body = response::challenge(&wfe.urls, &challenge);
            let mut headers = link(HeaderMap::new(), &wfe.urls.authorization(authz.id), "up");
            if response::in_progress(body.status) {
                headers = retry_after(headers);
            }
            Ok(json(StatusCode::OK, &body, headers))
        }
        .await,
    )
}

pub(super) async fn certificate(
    state: WfeState,
    Path(serial): Path<String>,
    request: Request,
) -> Response {
    certificate_chain(state, serial, 0, request).await
}

pub(super) async fn certificate_alternate(
    state: WfeState,
    Path((serial, alternate)): Path<(String, String)>,
    request: Request,
) -> Response {
    match alternate.parse::<usize>() {
        Ok(n) if n > 0 => certificate_chain(state, serial, n, request).await,
        _ => CaError::not_found(format!("alternate chain {alternate:?}")).into_response(),
    }
}

/// RFC 8555 §7.4.2: the leaf and its chain as PEM; other chains are linked
/// as `rel="alternate"`.
async fn certificate_chain(
    State(wfe): WfeState,
    serial: String,
    chain: usize,
    request: Request,
) -> Response {
    respond(
        async {
            let signed = wfe.read_signed(request, KeyForm::Kid).await?;
            signed.require_post_as_get()?;
            signed.account()?;
            if serial.is_empty()
                || !serial
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            {
                return Err(CaError::not_found(format!("certificate {serial:?}")));
            }
            let (cert, chains) = wfe.ra.certificate(&serial).await?;
            let chosen = chains
                .get(chain)
                .ok_or_else(|| CaError::not_found(format!("chain {chain} of {serial}")))?;
            let mut body = pem::encode("CERTIFICATE", cert.der.as_deref().unwrap_or_default());
            for der in chosen {
                body.push_str(&pem::encode("CERTIFICATE", der));
            }
            let mut headers = HeaderMap::new();
            for n in (0..chains.len()).filter(|n| *n != chain) {
                let url = if n == 0 {
                    wfe.urls.certificate(&serial)
                } else {
                    wfe.urls.certificate_alternate(&serial, n)
                };
                headers = link(headers, &url, "alternate");
            }
            // No `rel="up"`: RFC 8555 §7.4.2 gives it for formats holding a
            // single certificate, and this PEM already carries the issuer.
            // Clients (Caddy's acmez, among others) follow every `up` with a
            // POST-as-GET (§6.3) expecting another PEM chain; our issuer URL
            // is a plain-HTTP GET of DER, so the download failed. The issuer
            // stays reachable through the leaf's AIA caIssuers URL.
            let mut response = (StatusCode::OK, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/pem-certificate-chain"),
            );
            response.headers_mut().extend(headers);
            Ok(response)
        }
        .await,
    )
}

pub(super) async fn revoke_certificate(State(wfe): WfeState, request: Request) -> Response {
    respond(
        async {
            let signed: Signed = wfe.read_signed(request, KeyForm::Either).await?;
            let payload: Revocation = signed.payload()?;
            let revoker = match &signed.account {
                Some(account) => Revoker::Account(account),
                None => Revoker::CertificateKey(signed.jws.key()),
            };
            wfe.ra.revoke(revoker, &payload).await?;
            Ok(StatusCode::OK.into_response())
        }
        .await,
    )
}

/// `GET /crl/<issuer>.crl`: the issuer's current CRL (RFC 5280 §5).
pub(super) async fn crl(State(wfe): WfeState, Path(file): Path<String>) -> Response {
    respond(
        async {
            let issuer = file
                .strip_suffix(".crl")
                .ok_or_else(|| CaError::not_found(format!("CRL {file:?}")))?;
            let der = wfe.ra.crl(issuer).await?;
            let mut response = (StatusCode::OK, der).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/pkix-crl"),
            );
            Ok(response)
        }
        .await,
    )
}

/// `GET /issuer/<issuer>.der`: the issuing CA certificate (AIA caIssuers).
pub(super) async fn issuer_certificate(State(wfe): WfeState, Path(file): Path<String>) -> Response {
    respond((|| {
        let issuer = file
            .strip_suffix(".der")
            .ok_or_else(|| CaError::not_found(format!("issuer {file:?}")))?;
        let der = wfe
            .ra
            .pki()
            .issuer_der(issuer)
            .ok_or_else(|| CaError::not_found(format!("issuer {issuer:?}")))?;
        let mut response = (StatusCode::OK, der.to_vec()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/pkix-cert"),
        );
        Ok(response)
    })())
}

pub(super) async fn post_as_get_only() -> Response {
    allow_post(
        CaError::malformed("this resource is read with POST-as-GET (RFC 8555 §6.3), not GET")
            .with_status(405),
    )
}

pub(super) async fn post_only() -> Response {
    allow_post(
        CaError::malformed("this endpoint takes POST requests with a JWS body").with_status(405),
    )
}

/// A 405 names the methods that are allowed (RFC 9110 §15.5.6).
fn allow_post(error: CaError) -> Response {
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

/// Any other method on a known URL: a problem document, as for every
/// error (RFC 8555 §6.7), rather than a bare 405.
pub(super) async fn method_not_allowed() -> Response {
    CaError::malformed(
        "this URL does not take that HTTP method; ACME requests are POSTs (RFC 8555 §6.2)",
    )
    .with_status(405)
    .into_response()
}

pub(super) async fn not_found() -> Response {
    CaError::not_found("this URL").into_response()
}

/// `GET renewalInfo/<certID>` (RFC 9773 §4.2): when to renew; unauthenticated.
pub(super) async fn renewal_info(State(wfe): WfeState, Path(id): Path<String>) -> Response {
    respond(
        async {
            let id: cairn_proto::ari::CertId = id.parse().map_err(|_| {
                CaError::malformed(format!("{id:?} is not an ARI certificate identifier"))
            })?;
            let (start, end) = wfe.ra.renewal_info(&id).await?;
            let body = cairn_proto::objects::RenewalInfo {
                suggested_window: cairn_proto::objects::SuggestedWindow { start, end },
                explanation_url: None,
            };
            let headers = response::with_header(HeaderMap::new(), header::RETRY_AFTER, "21600");
            Ok(json(StatusCode::OK, &body, headers))
        }
        .await,
    )
}
