//! Builders for the suite's records. Every timestamp is whole microseconds,
//! the finest that every backend keeps.

use std::sync::Arc;

use cairn_proto::Identifier;
use cairn_proto::objects::ChallengeType;
use cairn_store::{
    Account, AccountId, AuthzId, AuthzSource, NewAccount, NewAuthorization, NewOrder, Order,
    OrderId, PendingCertificate, Storage, ValidationOutcome,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// The suite's "now": stores take every time from their caller.
pub(crate) const NOW: OffsetDateTime = datetime!(2025-06-01 12:00:00.123_456 UTC);

pub(crate) fn hours(n: i64) -> Duration {
    Duration::hours(n)
}

pub(crate) fn days(n: i64) -> Duration {
    Duration::days(n)
}

/// An account key named `name`: its JWK and thumbprint are derived from it.
pub(crate) fn new_account(name: &str) -> NewAccount {
    NewAccount {
        jwk: format!(r#"{{"crv":"P-256","kty":"EC","x":"{name}-x","y":"{name}-y"}}"#),
        thumbprint: thumbprint(name),
        contact: vec![format!("mailto:{name}@example.com")],
        terms_agreed: true,
        created_at: NOW,
    }
}

pub(crate) fn thumbprint(name: &str) -> String {
    format!("thumbprint-{name}")
}

pub(crate) async fn account(store: &Arc<dyn Storage>, name: &str) -> Account {
    store
        .create_account(new_account(name))
        .await
        .expect("create account")
        .0
}

/// A pending authorization for `name` with http-01 and dns-01 challenges.
/// `name` is the base domain; `wildcard` says whether the order asked for `*.name`.
pub(crate) fn new_authz(name: &str, wildcard: bool) -> NewAuthorization {
    NewAuthorization {
        identifier: Identifier::dns(name),
        wildcard,
        expires: NOW + days(7),
        challenges: vec![
            (ChallengeType::Http01, format!("http-token-{name}")),
            (ChallengeType::Dns01, format!("dns-token-{name}")),
        ],
    }
}

pub(crate) fn new_order(
    account: AccountId,
    identifiers: &[&str],
    authorizations: Vec<AuthzSource>,
) -> NewOrder {
    NewOrder {
        account_id: account,
        identifiers: identifiers
            .iter()
            .map(|name| Identifier::dns(*name))
            .collect(),
        authorizations,
        expires: NOW + days(7),
        not_before: None,
        not_after: None,
        profile: None,
        replaces: None,
        created_at: NOW,
    }
}

/// An order for `names` with a new authorization for each.
pub(crate) async fn order(store: &Arc<dyn Storage>, account: AccountId, names: &[&str]) -> Order {
    let sources = names
        .iter()
        .map(|name| AuthzSource::New(new_authz(name, false)))
        .collect();
    store
        .create_order(new_order(account, names, sources))
        .await
        .expect("create order")
}

/// The id of the single authorization of a fresh order for `name`.
pub(crate) async fn authz(store: &Arc<dyn Storage>, account: AccountId, name: &str) -> AuthzId {
    order(store, account, &[name]).await.authz_ids[0]
}

/// Validates `authz` through its first challenge; it stays valid until `expires`.
pub(crate) async fn validate(store: &Arc<dyn Storage>, authz: AuthzId, expires: OffsetDateTime) {
    let challenge = first_challenge(store, authz).await;
    assert!(
        store
            .start_challenge(challenge)
            .await
            .expect("start challenge")
    );
    let outcome = ValidationOutcome::Valid {
        validated_at: NOW,
        authz_expires: expires,
    };
    store
        .finish_challenge(challenge, outcome)
        .await
        .expect("finish challenge");
}

pub(crate) async fn first_challenge(store: &Arc<dyn Storage>, authz: AuthzId) -> i64 {
    let authz = store
        .authorization(authz)
        .await
        .expect("read authz")
        .expect("authz exists");
    authz.challenges[0].id
}

pub(crate) fn pending_certificate(order: &Order, serial: &str, issuer: &str) -> PendingCertificate {
    PendingCertificate {
        serial: serial.to_owned(),
        order_id: order.id,
        account_id: order.account_id,
        issuer: issuer.to_owned(),
        names: order.identifiers.clone(),
        not_before: NOW,
        not_after: NOW + days(90),
        created_at: NOW,
        // A key of its own per serial, unless a test says otherwise.
        spki_sha256: format!("key of {serial}").into_bytes(),
    }
}

/// A certificate issued through a full finalize: its order is valid.
pub(crate) async fn issued_certificate(
    store: &Arc<dyn Storage>,
    account: AccountId,
    serial: &str,
    issuer: &str,
    not_after: OffsetDateTime,
) -> OrderId {
    let order = order(store, account, &[&format!("{serial}.example.com")]).await;
    let mut pending = pending_certificate(&order, serial, issuer);
    pending.not_after = not_after;
    assert!(store.begin_finalize(pending).await.expect("begin finalize"));
    store
        .complete_finalize(order.id, serial, format!("der of {serial}").as_bytes())
        .await
        .expect("complete finalize");
    order.id
}
