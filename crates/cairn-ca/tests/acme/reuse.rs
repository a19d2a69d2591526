//! RFC 8555 §7.1.3/§7.4: a valid authorization of the same account is
//! reused by later orders (DESIGN: for 30 days), never another account's.

use std::sync::Arc;

use cairn_ca::app::Overrides;
use cairn_ca::clock::FakeClock;
use cairn_proto::objects::{AuthorizationStatus, ChallengeType, NewOrder, OrderStatus};
use time::{Duration, OffsetDateTime};

use crate::harness::{Harness, dns};

#[tokio::test(flavor = "multi_thread")]
async fn valid_authorization_is_reused_by_the_same_account() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let names = dns(&["reuse.test"]);
    let first = h.issue(&account, &names, &ChallengeType::Http01).await;

    let second = account
        .new_order(&NewOrder::new(names.clone()))
        .await
        .expect("newOrder");
    assert_eq!(second.state().status, OrderStatus::Ready, "ready at once");
    assert_eq!(
        second.state().authorizations,
        first.order.state().authorizations,
        "the same authorization URL"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn authorizations_are_not_reused_across_accounts() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let names = dns(&["mine.test"]);
    let first = h.issue(&account, &names, &ChallengeType::Http01).await;

    let other = h.account().await;
    let order = other
        .new_order(&NewOrder::new(names))
        .await
        .expect("newOrder");
    assert_eq!(order.state().status, OrderStatus::Pending);
    assert_ne!(
        order.state().authorizations,
        first.order.state().authorizations
    );
    let authz = order
        .authorizations()
        .await
        .expect("authorizations")
        .remove(0);
    assert_eq!(authz.state.status, AuthorizationStatus::Pending);
}

#[tokio::test(flavor = "multi_thread")]
async fn reuse_ends_after_the_reuse_period() {
    let clock = Arc::new(FakeClock::new(OffsetDateTime::now_utc()));
    let overrides = Overrides {
        clock: Some(Arc::clone(&clock) as Arc<dyn cairn_ca::clock::Clock>),
        ..Overrides::default()
    };
    let h = Harness::start_with(overrides, |_| {}).await;
    let account = h.account().await;
    let names = dns(&["expiring.test"]);
    let first = h.issue(&account, &names, &ChallengeType::Http01).await;

    clock.advance(Duration::days(29));
    let within = account
        .new_order(&NewOrder::new(names.clone()))
        .await
        .expect("newOrder");
    assert_eq!(within.state().status, OrderStatus::Ready, "29 days on");

    clock.advance(Duration::days(2));
    let after = account
        .new_order(&NewOrder::new(names))
        .await
        .expect("newOrder");
    assert_eq!(after.state().status, OrderStatus::Pending, "31 days on");
    assert_ne!(
        after.state().authorizations,
        first.order.state().authorizations,
        "a new authorization"
    );
    let old = account
        .authorization(&first.order.state().authorizations[0])
        .await
        .expect("the old authorization reads back");
    assert_eq!(old.state.status, AuthorizationStatus::Expired);
}

/// A failed validation is not reused: the next order gets a new pending
/// authorization, so the client can try again.
#[tokio::test(flavor = "multi_thread")]
async fn invalid_authorization_is_not_reused() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let names = dns(&["retry.test"]);
    let failed = account
        .new_order(&NewOrder::new(names.clone()))
        .await
        .expect("newOrder");
    let authz = failed
        .authorizations()
        .await
        .expect("authorizations")
        .remove(0);
    let challenge = authz
        .prepare(&account, &ChallengeType::Http01)
        .expect("http-01");
    account.respond(&challenge.url).await.expect("respond");
    account
        .poll_authorization(&authz.url)
        .await
        .expect_err("nothing is served: invalid");

    let retry = account
        .new_order(&NewOrder::new(names.clone()))
        .await
        .expect("newOrder");
    assert_eq!(retry.state().status, OrderStatus::Pending);
    assert_ne!(retry.state().authorizations, [authz.url.as_str()]);
    h.authorize(&account, &retry, &ChallengeType::Http01).await;
}

/// §7.5.2: a deactivated authorization is not reused either.
#[tokio::test(flavor = "multi_thread")]
async fn deactivated_authorization_is_not_reused() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let names = dns(&["deactivated.reuse.test"]);
    let first = h
        .ready_order(&account, &names, &ChallengeType::Http01)
        .await;
    let mut authz = first
        .authorizations()
        .await
        .expect("authorizations")
        .remove(0);
    authz.deactivate(&account).await.expect("deactivate");

    let second = account
        .new_order(&NewOrder::new(names))
        .await
        .expect("newOrder");
    assert_eq!(second.state().status, OrderStatus::Pending);
    assert_ne!(second.state().authorizations, [authz.url.as_str()]);
}
