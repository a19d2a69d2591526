//! CAA at issuance (BR 3.2.2.8, RFC 8659, RFC 8657): finalize checks CAA
//! again when the validation it relies on is older than
//! `validation.caa_recheck_minutes`, and `accounturi` binds a name to one
//! account, at validation and at that recheck.

use std::sync::Arc;

use cairn_ca::app::Overrides;
use cairn_ca::clock::{Clock, FakeClock};
use cairn_client::csr;
use cairn_proto::objects::{ChallengeType, NewOrder, OrderStatus};
use cairn_proto::{Identifier, ProblemType};
use cairn_testkit::CaaPolicy;
use time::{Duration, OffsetDateTime};

use crate::harness::{Harness, dns, new_key};

/// A CA answering to `ca.test` in CAA, on a clock the test moves.
async fn start() -> (Harness, Arc<FakeClock>) {
    let clock = Arc::new(FakeClock::new(OffsetDateTime::now_utc()));
    let overrides = Overrides {
        clock: Some(Arc::clone(&clock) as Arc<dyn Clock>),
        ..Overrides::default()
    };
    let h = Harness::start_with(overrides, |c| {
        c.validation.caa_identities = vec!["ca.test".into()];
    })
    .await;
    (h, clock)
}

/// A new order for `names` that reuses earlier authorizations, finalized.
async fn finalize_reusing(
    account: &cairn_client::Account,
    names: &[Identifier],
) -> (cairn_client::Order, Result<(), cairn_client::Error>) {
    let mut order = account
        .new_order(&NewOrder::new(names.to_vec()))
        .await
        .expect("newOrder");
    assert_eq!(
        order.state().status,
        OrderStatus::Ready,
        "authorizations reused"
    );
    let result = order
        .finalize(&csr(names, &new_key()).expect("a CSR"))
        .await
        .map(|_| ());
    (order, result)
}

/// A validation 6 hours old is trusted; at 8 hours CAA is asked again,
/// and a record that now names another CA makes the order invalid.
#[tokio::test(flavor = "multi_thread")]
async fn finalize_checks_caa_again_once_the_validation_is_old() {
    let (h, clock) = start().await;
    let account = h.account().await;
    let names = dns(&["later.test"]);
    h.issue(&account, &names, &ChallengeType::Http01).await;
    h.testkit
        .add_caa("later.test", &[CaaPolicy::issue("other-ca.example")])
        .expect("a CAA record");

    clock.advance(Duration::hours(6));
    let (_, within) = finalize_reusing(&account, &names).await;
    within.expect("a 6-hour-old validation is not checked again");

    clock.advance(Duration::hours(2));
    let (mut order, late) = finalize_reusing(&account, &names).await;
    let err = late.expect_err("CAA now forbids issuance");
    assert!(err.is_problem(&ProblemType::Caa), "{err}");
    order.refresh().await.expect("the order reads back");
    assert_eq!(order.state().status, OrderStatus::Invalid);
    let problem = order.state().error.as_ref().expect("the order says why");
    assert_eq!(problem.kind, ProblemType::Caa);

    // CAA naming this CA again: the next order goes through.
    h.testkit.clear_caa("later.test").expect("CAA cleared");
    h.testkit
        .add_caa("later.test", &[CaaPolicy::issue("ca.test")])
        .expect("a CAA record");
    let (_, again) = finalize_reusing(&account, &names).await;
    again.expect("CAA allows this CA");
}

/// `caa_recheck_minutes = 0`: every finalize checks CAA.
#[tokio::test(flavor = "multi_thread")]
async fn a_zero_recheck_period_checks_at_every_finalize() {
    let h = Harness::start(|c| {
        c.validation.caa_identities = vec!["ca.test".into()];
        c.validation.caa_recheck_minutes = 0;
    })
    .await;
    let account = h.account().await;
    let names = dns(&["always.test"]);
    let order = h
        .ready_order(&account, &names, &ChallengeType::Http01)
        .await;
    h.testkit
        .add_caa("always.test", &[CaaPolicy::issue("other-ca.example")])
        .expect("a CAA record");
    let mut order = order;
    let err = order
        .finalize(&csr(&names, &new_key()).expect("a CSR"))
        .await
        .expect_err("CAA checked at once");
    assert!(err.is_problem(&ProblemType::Caa), "{err}");
}

/// RFC 8657 `accounturi`: the account named validates and, 8 hours on,
/// passes the recheck; another account is refused at validation.
#[tokio::test(flavor = "multi_thread")]
async fn accounturi_binds_the_name_to_one_account() {
    let (h, clock) = start().await;
    let owner = h.account().await;
    let other = h.account().await;
    h.testkit
        .add_caa(
            "bound.test",
            &[CaaPolicy::issue(format!(
                "ca.test; accounturi={}",
                owner.url()
            ))],
        )
        .expect("a CAA record");
    let names = dns(&["bound.test"]);
    h.issue(&owner, &names, &ChallengeType::Http01).await;

    let authz_url = h.answer_http01(&other, "bound.test").await;
    let err = other
        .poll_authorization(&authz_url)
        .await
        .expect_err("CAA names another account");
    assert!(err.is_problem(&ProblemType::Caa), "{err}");

    clock.advance(Duration::hours(8));
    let (_, recheck) = finalize_reusing(&owner, &names).await;
    recheck.expect("the owner passes the recheck");
}
