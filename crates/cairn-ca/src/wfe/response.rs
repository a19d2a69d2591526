//! Responses: RFC 8555 objects from stored rows, and problem documents
//! from [`CaError`] — the one place that mapping happens.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cairn_proto::objects::{self, AccountStatus, ChallengeStatus};
use cairn_store::{Account, AccountState, Authorization, Challenge};
use serde::Serialize;
use time::OffsetDateTime;

use super::Urls;
use crate::error::CaError;
use crate::ra::{OrderView, status};

/// How long a client should wait before polling something in progress.
pub(super) const POLL_AFTER_SECONDS: u64 = 1;

impl IntoResponse for CaError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.to_problem()).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(after) = self.retry_after {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(after.as_secs().max(1)),
            );
        }
        response
    }
}

/// A JSON body with status and extra headers.
pub(super) fn json(status: StatusCode, body: &impl Serialize, headers: HeaderMap) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut response = (status, bytes).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response.headers_mut().extend(headers);
            response
        }
        Err(e) => CaError::internal("serializing a response", e).into_response(),
    }
}

/// One header, for [`json`].
pub(super) fn with_header(mut headers: HeaderMap, name: HeaderName, value: &str) -> HeaderMap {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.append(name, v);
    }
    headers
}

pub(super) fn location(url: &str) -> HeaderMap {
    with_header(HeaderMap::new(), header::LOCATION, url)
}

pub(super) fn link(headers: HeaderMap, url: &str, rel: &str) -> HeaderMap {
    with_header(headers, header::LINK, &format!("<{url}>;rel=\"{rel}\""))
}

pub(super) fn retry_after(headers: HeaderMap) -> HeaderMap {
    with_header(
        headers,
        header::RETRY_AFTER,
        &POLL_AFTER_SECONDS.to_string(),
    )
}

pub(super) fn account(urls: &Urls, account: &Account) -> objects::Account {
    objects::Account {
        status: match account.status {
            AccountState::Valid => AccountStatus::Valid,
            AccountState::Deactivated => AccountStatus::Deactivated,
            AccountState::Revoked => AccountStatus::Revoked,
        },
        contact: account.contact.clone(),
        terms_of_service_agreed: account.terms_agreed.then_some(true),
        external_account_binding: None,
        orders: Some(urls.account_orders(account.id)),
    }
}

pub(super) fn order(urls: &Urls, view: &OrderView) -> objects::Order {
    let order = &view.order;
    objects::Order {
        status: view.status,
        expires: Some(order.expires),
        identifiers: order.identifiers.clone(),
        not_before: order.not_before,
        not_after: order.not_after,
        error: order.error.clone(),
        authorizations: order
            .authz_ids
            .iter()
            .map(|id| urls.authorization(*id))
            .collect(),
        finalize: urls.finalize(order.id),
        certificate: match (view.status, &order.certificate_serial) {
            (objects::OrderStatus::Valid, Some(serial)) => Some(urls.certificate(serial)),
            _ => None,
        },
        profile: order.profile.clone(),
        replaces: order.replaces.clone(),
    }
}

pub(super) fn authorization(
    urls: &Urls,
    authz: &Authorization,
    now: OffsetDateTime,
) -> objects::Authorization {
    let status = status::authorization_status(authz, now);
    // RFC 8555 §7.1.4: a valid authorization lists only the challenge that
    // passed, an invalid one only the challenge that was attempted and
    // failed; others list every challenge offered.
    let challenges = authz
        .challenges
        .iter()
        .filter(|c| match status {
            objects::AuthorizationStatus::Valid => c.state == cairn_store::ChallengeState::Valid,
            objects::AuthorizationStatus::Invalid => {
                c.state == cairn_store::ChallengeState::Invalid
            }
            _ => true,
        })
        .map(|c| challenge(urls, c))
        .collect();
    objects::Authorization {
        identifier: authz.identifier.clone(),
        status,
        expires: Some(authz.expires),
        challenges,
        wildcard: authz.wildcard.then_some(true),
    }
}

pub(super) fn challenge(urls: &Urls, challenge: &Challenge) -> objects::Challenge {
    objects::Challenge {
        kind: challenge.kind.clone(),
        url: urls.challenge(challenge.id),
        status: status::challenge_status(challenge.state),
        validated: challenge.validated_at,
        error: challenge.error.clone(),
        token: Some(challenge.token.clone()),
        extra: serde_json::Map::new(),
    }
}

/// True while a poll should be told to wait.
pub(super) fn in_progress(status: ChallengeStatus) -> bool {
    status == ChallengeStatus::Processing
}
