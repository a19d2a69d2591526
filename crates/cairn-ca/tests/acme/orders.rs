//! RFC 8555 §7.4 newOrder: the order and its authorizations (§7.1.3,
//! §7.1.4), identifier checks (§6.7.1 subproblems), wildcards and IP
//! addresses (RFC 8738).

use std::collections::BTreeSet;
use std::sync::Arc;

use cairn_ca::app::Overrides;
use cairn_ca::clock::{Clock, FakeClock};
use time::{Duration, OffsetDateTime};

use cairn_proto::objects::{AuthorizationStatus, ChallengeType, NewOrder, OrderStatus};
use cairn_proto::{Identifier, ProblemType};
use serde_json::json;

use crate::harness::{Harness, dns};

fn kinds(challenges: &[cairn_proto::objects::Challenge]) -> BTreeSet<String> {
    challenges
        .iter()
        .map(|c| c.kind.as_str().to_owned())
        .collect()
}

fn set(kinds: &[&str]) -> BTreeSet<String> {
    kinds.iter().map(|k| (*k).to_owned()).collect()
}

/// §7.4: 201, `Location`, a pending order with one pending authorization
/// per identifier, each offering every challenge type for a DNS name.
#[tokio::test(flavor = "multi_thread")]
async fn new_order_is_201_pending_with_one_authorization_per_name() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let payload =
        serde_json::to_vec(&NewOrder::new(dns(&["a.order.test", "b.order.test"]))).unwrap();
    let reply = h
        .post_as(&account, &h.directory().new_order, &payload)
        .await;
    assert_eq!(reply.status, 201);
    let location = reply.header("location").expect("Location").to_owned();
    assert!(location.starts_with(&format!("{}/acme/order/", h.base_url())));
    let order = reply.json();
    assert_eq!(order["status"], "pending");
    assert!(order["expires"].is_string());
    assert!(order["finalize"].is_string());
    assert!(order.get("certificate").is_none());
    assert_eq!(order["authorizations"].as_array().map(Vec::len), Some(2));

    let order = account
        .order(&location)
        .await
        .expect("the order reads back");
    for authz in order.authorizations().await.expect("authorizations") {
        assert_eq!(authz.state.status, AuthorizationStatus::Pending);
        assert!(authz.state.wildcard.is_none());
        assert_eq!(
            kinds(&authz.state.challenges),
            set(&["http-01", "dns-01", "tls-alpn-01"])
        );
        for challenge in &authz.state.challenges {
            assert!(challenge.token.as_deref().is_some_and(|t| t.len() >= 22));
        }
    }
}

/// §7.4: the same identifier twice is one identifier, one authorization.
#[tokio::test(flavor = "multi_thread")]
async fn identifiers_are_deduplicated() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let order = account
        .new_order(&NewOrder::new(dns(&[
            "dup.test",
            "other.dup.test",
            "dup.test",
        ])))
        .await
        .expect("newOrder");
    let mut identifiers = order.state().identifiers.clone();
    identifiers.sort();
    assert_eq!(identifiers, dns(&["dup.test", "other.dup.test"]));
    assert_eq!(order.state().authorizations.len(), 2);
}

/// §6.7.1: each refused identifier is its own subproblem, naming it.
#[tokio::test(flavor = "multi_thread")]
async fn rejected_identifiers_each_have_a_subproblem() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let bad = ["Bad.example.com", "a_b.example.com"];
    let payload = serde_json::to_vec(&json!({
        "identifiers": [
            { "type": "dns", "value": "good.example.com" },
            { "type": "dns", "value": bad[0] },
            { "type": "dns", "value": bad[1] },
        ]
    }))
    .unwrap();
    let reply = h
        .post_as(&account, &h.directory().new_order, &payload)
        .await;
    let problem = reply.problem(400, ProblemType::RejectedIdentifier);
    assert_eq!(problem.subproblems.len(), 2, "{problem}");
    for (sub, name) in problem.subproblems.iter().zip(bad) {
        assert_eq!(sub.kind, ProblemType::RejectedIdentifier);
        assert_eq!(sub.identifier.as_ref(), Some(&Identifier::dns(name)));
        assert!(sub.detail.as_deref().is_some_and(|d| !d.is_empty()));
    }
    assert_eq!(
        account.orders().await.expect("orders").len(),
        0,
        "no order was made"
    );
}

/// §7.1.3: a wildcard's authorization is for the base domain, marked
/// `wildcard`, and offers dns-01 only.
#[tokio::test(flavor = "multi_thread")]
async fn wildcard_authorization_is_for_the_base_name_and_offers_only_dns01() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let order = account
        .new_order(&NewOrder::new(dns(&["*.wild.test"])))
        .await
        .expect("newOrder");
    assert_eq!(order.state().identifiers, dns(&["*.wild.test"]));
    let authzs = order.authorizations().await.expect("authorizations");
    assert_eq!(authzs.len(), 1);
    let authz = &authzs[0].state;
    assert_eq!(authz.identifier, Identifier::dns("wild.test"));
    assert_eq!(authz.wildcard, Some(true));
    assert_eq!(kinds(&authz.challenges), set(&["dns-01"]));
}

/// RFC 8738 §7: an IP address is proved by http-01 or tls-alpn-01, never
/// dns-01.
#[tokio::test(flavor = "multi_thread")]
async fn ip_identifier_offers_http01_and_tls_alpn01_only() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let ip = Identifier::ip("127.0.0.1".parse().unwrap());
    let order = account
        .new_order(&NewOrder::new(vec![ip.clone()]))
        .await
        .expect("newOrder");
    let authzs = order.authorizations().await.expect("authorizations");
    assert_eq!(authzs[0].state.identifier, ip);
    assert_eq!(
        kinds(&authzs[0].state.challenges),
        set(&["http-01", "tls-alpn-01"])
    );
    assert!(authzs[0].challenge(&ChallengeType::Dns01).is_none());
}

/// §7.4: `notBefore`/`notAfter` are refused unless the CA allows them.
#[tokio::test(flavor = "multi_thread")]
async fn validity_request_is_malformed_unless_allowed() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    for field in ["notBefore", "notAfter"] {
        let payload = serde_json::to_vec(&json!({
            "identifiers": [{ "type": "dns", "value": "validity.test" }],
            field: "2030-01-01T00:00:00Z",
        }))
        .unwrap();
        let reply = h
            .post_as(&account, &h.directory().new_order, &payload)
            .await;
        reply.problem(400, ProblemType::Malformed);
    }
}

/// §7.4: where the CA takes `notBefore`/`notAfter`, they stay within its
/// certificate lifetime and its backdating; out of range is `malformed`
/// naming the limit.
#[tokio::test(flavor = "multi_thread")]
async fn requested_validity_is_bounded_by_the_lifetime_and_the_backdating() {
    let h = Harness::start(|c| c.issuance.allow_validity_request = true).await;
    let account = h.account().await;
    let now = OffsetDateTime::now_utc();
    let at = |t: OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .expect("formats")
    };
    let order = |fields: serde_json::Value| {
        let mut payload = json!({
            "identifiers": [{ "type": "dns", "value": "bounded.test" }],
        });
        for (key, value) in fields.as_object().expect("an object") {
            payload[key] = value.clone();
        }
        serde_json::to_vec(&payload).expect("json")
    };
    let refused = [
        (
            json!({ "notAfter": at(now + Duration::days(400)) }),
            "lifetime",
        ),
        (
            json!({ "notBefore": at(now - Duration::days(1)) }),
            "in the past",
        ),
        (
            json!({ "notBefore": at(now), "notAfter": at(now - Duration::hours(1)) }),
            "later than notBefore",
        ),
        (
            json!({ "notBefore": at(now + Duration::days(365)) }),
            "finalized",
        ),
    ];
    for (fields, limit) in refused {
        let reply = h
            .post_as(&account, &h.directory().new_order, &order(fields.clone()))
            .await;
        let problem = reply.problem(400, ProblemType::Malformed);
        let detail = problem.detail.unwrap_or_default();
        assert!(detail.contains(limit), "{fields}: {detail}");
    }
    let reply = h
        .post_as(
            &account,
            &h.directory().new_order,
            &order(json!({ "notBefore": at(now), "notAfter": at(now + Duration::days(1)) })),
        )
        .await;
    assert_eq!(
        reply.status,
        201,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
}

/// §7.4: an order is readable by its account only.
#[tokio::test(flavor = "multi_thread")]
async fn another_accounts_order_is_unauthorized() {
    let h = Harness::start(|_| {}).await;
    let mine = h.account().await;
    let theirs = h.account().await;
    let order = theirs
        .new_order(&NewOrder::new(dns(&["theirs.test"])))
        .await
        .expect("newOrder");
    let reply = h.post_as(&mine, order.url(), b"").await;
    reply.problem(403, ProblemType::Unauthorized);
    let authz = &order.state().authorizations[0];
    let reply = h.post_as(&mine, authz, b"").await;
    reply.problem(403, ProblemType::Unauthorized);
    let missing = format!("{}/acme/order/999999", h.base_url());
    h.post_as(&mine, &missing, b"")
        .await
        .problem(404, ProblemType::Malformed);
}

/// §7.5.2: a deactivated authorization makes its order invalid.
#[tokio::test(flavor = "multi_thread")]
async fn deactivating_an_authorization_invalidates_the_order() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let mut order = account
        .new_order(&NewOrder::new(dns(&["deact.test"])))
        .await
        .expect("newOrder");
    let mut authz = order
        .authorizations()
        .await
        .expect("authorizations")
        .remove(0);
    let state = authz.deactivate(&account).await.expect("deactivate");
    assert_eq!(state.status, AuthorizationStatus::Deactivated);
    assert_eq!(
        order.refresh().await.expect("order").status,
        OrderStatus::Invalid
    );
}

/// §7.1.6: an order past its `expires` is invalid, and its pending
/// authorizations expired; the status is worked out when read.
#[tokio::test(flavor = "multi_thread")]
async fn pending_order_becomes_invalid_when_it_expires() {
    let clock = Arc::new(FakeClock::new(OffsetDateTime::now_utc()));
    let overrides = Overrides {
        clock: Some(Arc::clone(&clock) as Arc<dyn Clock>),
        ..Overrides::default()
    };
    let h = Harness::start_with(overrides, |_| {}).await;
    let account = h.account().await;
    let mut order = account
        .new_order(&NewOrder::new(dns(&["expire.test"])))
        .await
        .expect("newOrder");
    let expires = order.state().expires.expect("an expiry");
    assert!(expires > clock.now());

    clock.advance(expires - clock.now() + Duration::SECOND);
    assert_eq!(
        order.refresh().await.expect("order").status,
        OrderStatus::Invalid
    );
    let authz = account
        .authorization(&order.state().authorizations[0])
        .await
        .expect("authorization");
    assert_eq!(authz.state.status, AuthorizationStatus::Expired);
    let again = account
        .new_order(&NewOrder::new(dns(&["expire.test"])))
        .await
        .expect("a new order");
    assert_eq!(again.state().status, OrderStatus::Pending);
    assert_ne!(again.state().authorizations, order.state().authorizations);
}
