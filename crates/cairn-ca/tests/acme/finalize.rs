//! RFC 8555 §7.4 finalize: the CSR must match the order and not use the
//! account key (§11.1); only a ready order is finalized, once (DESIGN:
//! at most one certificate per order); the order shows its certificate
//! URL only once valid.

use cairn_client::csr;
use cairn_proto::objects::{ChallengeType, NewOrder};
use cairn_proto::{Identifier, KeyPair, ProblemType, base64url};
use serde_json::json;

use crate::harness::{Harness, dns, id_of, jws, new_key};

fn finalize_payload(names: &[Identifier], key: &KeyPair) -> Vec<u8> {
    let der = csr(names, key).expect("a CSR");
    serde_json::to_vec(&json!({ "csr": base64url::encode(der) })).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn csr_names_other_than_the_orders_are_bad_csr() {
    let h = Harness::start(|c| c.testing.always_valid = true).await;
    let account = h.account().await;
    let names = dns(&["csr.test"]);
    let order = h
        .ready_order(&account, &names, &ChallengeType::Http01)
        .await;
    let finalize = order.state().finalize.clone();
    for wrong in [
        dns(&["csr.test", "extra.csr.test"]),
        dns(&["other.csr.test"]),
    ] {
        let reply = h
            .post_as(&account, &finalize, &finalize_payload(&wrong, &new_key()))
            .await;
        let problem = reply.problem(400, ProblemType::BadCsr);
        assert!(
            problem.detail.unwrap_or_default().contains("csr.test"),
            "the detail names the order's identifiers"
        );
    }
    assert!(h.store.reserved_for(id_of(order.url())).is_empty());
}

/// §11.1: the certificate key must not be the account key.
#[tokio::test(flavor = "multi_thread")]
async fn csr_with_the_account_key_is_bad_csr() {
    let h = Harness::start(|c| c.testing.always_valid = true).await;
    let account = h.account().await;
    let names = dns(&["samekey.test"]);
    let order = h
        .ready_order(&account, &names, &ChallengeType::Http01)
        .await;
    let reply = h
        .post_as(
            &account,
            &order.state().finalize,
            &finalize_payload(&names, account.key()),
        )
        .await;
    let problem = reply.problem(400, ProblemType::BadCsr);
    assert!(
        problem.detail.unwrap_or_default().contains("account key"),
        "the detail says why"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn finalize_of_a_pending_order_is_order_not_ready() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let names = dns(&["pending.test"]);
    let order = account
        .new_order(&NewOrder::new(names.clone()))
        .await
        .expect("newOrder");
    let reply = h
        .post_as(
            &account,
            &order.state().finalize,
            &finalize_payload(&names, &new_key()),
        )
        .await;
    reply.problem(403, ProblemType::OrderNotReady);
}

/// DESIGN: "Finalize is idempotent ... at most one certificate per
/// order". Ten finalize requests race for one ready order: one wins, the
/// others get `orderNotReady`, and the store holds one certificate row.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_finalizes_issue_one_certificate() {
    const RACERS: usize = 10;
    let h = Harness::start(|c| c.testing.always_valid = true).await;
    let account = h.account().await;
    let names = dns(&["race.test"]);
    let order = h
        .ready_order(&account, &names, &ChallengeType::Http01)
        .await;
    let url = order.state().finalize.clone();

    let mut bodies = Vec::with_capacity(RACERS);
    for _ in 0..RACERS {
        let payload = finalize_payload(&names, &new_key());
        let nonce = h.nonce().await;
        bodies.push(jws(
            account.key(),
            Some(account.url()),
            &nonce,
            &url,
            &payload,
        ));
    }
    let replies = h.race(&url, bodies).await;
    let mut winners = Vec::new();
    for reply in replies {
        if reply.status == 200 {
            let order = reply.json();
            assert_eq!(order["status"], "valid", "{order}");
            winners.push(
                order["certificate"]
                    .as_str()
                    .expect("a certificate URL")
                    .to_owned(),
            );
        } else {
            reply.problem(403, ProblemType::OrderNotReady);
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one finalize succeeds: {winners:?}"
    );

    let order_id = id_of(order.url());
    let reserved = h.store.reserved_for(order_id);
    assert_eq!(reserved.len(), 1, "one certificate row: {reserved:?}");
    assert_eq!(h.store.completed_for(order_id), reserved);
    assert!(winners[0].ends_with(&format!("/acme/cert/{}", reserved[0])));
    let current = h.post_as(&account, order.url(), b"").await.json();
    assert_eq!(current["certificate"].as_str(), Some(winners[0].as_str()));
}

/// §7.1.3: `certificate` is there once the order is valid, not before.
#[tokio::test(flavor = "multi_thread")]
async fn order_has_a_certificate_url_only_when_valid() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let names = dns(&["certurl.test"]);
    let order = account
        .new_order(&NewOrder::new(names.clone()))
        .await
        .expect("newOrder");
    let read = || async { h.post_as(&account, order.url(), b"").await.json() };
    let pending = read().await;
    assert_eq!(pending["status"], "pending");
    assert!(pending.get("certificate").is_none(), "{pending}");

    h.authorize(&account, &order, &ChallengeType::Http01).await;
    let ready = read().await;
    assert_eq!(ready["status"], "ready");
    assert!(ready.get("certificate").is_none(), "{ready}");

    let finalized = h
        .post_as(
            &account,
            &order.state().finalize,
            &finalize_payload(&names, &new_key()),
        )
        .await;
    assert_eq!(finalized.status, 200);
    assert_eq!(finalized.header("location"), Some(order.url()));
    let valid = read().await;
    assert_eq!(valid["status"], "valid");
    let certificate = valid["certificate"].as_str().expect("a certificate URL");
    assert_eq!(finalized.json()["certificate"].as_str(), Some(certificate));

    // A second finalize of the valid order is refused, and changes nothing.
    let again = h
        .post_as(
            &account,
            &order.state().finalize,
            &finalize_payload(&names, &new_key()),
        )
        .await;
    again.problem(403, ProblemType::OrderNotReady);
    assert_eq!(read().await["certificate"].as_str(), Some(certificate));
}

/// A node killed between reserving a serial and storing the certificate
/// leaves its order `processing`; once `finalize_timeout_seconds` passed,
/// the CA fails it with a reason, so the client orders again rather than
/// polling until the order expires. A finalize still within the timeout,
/// and a finished one, are left alone.
#[tokio::test(flavor = "multi_thread")]
async fn a_finalize_cut_off_by_a_crash_fails_after_the_timeout() {
    use std::sync::Arc;

    use cairn_ca::app::Overrides;
    use cairn_ca::clock::{Clock, FakeClock};
    use cairn_proto::objects::OrderStatus;
    use cairn_store::{PendingCertificate, Storage};
    use time::{Duration, OffsetDateTime};

    let clock = Arc::new(FakeClock::new(OffsetDateTime::now_utc()));
    let overrides = Overrides {
        clock: Some(Arc::clone(&clock) as Arc<dyn Clock>),
        ..Overrides::default()
    };
    let h = Harness::start_with(overrides, |_| {}).await;
    let account = h.account().await;
    let names = dns(&["cut-off.finalize.test"]);
    let mut order = h
        .ready_order(&account, &names, &ChallengeType::Http01)
        .await;
    let order_id = id_of(order.url());
    // What a finalize does before it signs, then nothing: the crash.
    let began = h
        .store
        .begin_finalize(PendingCertificate {
            serial: "7a11ed".into(),
            order_id,
            account_id: id_of(account.url()),
            issuer: "ecdsa-1".into(),
            names: names.clone(),
            not_before: clock.now(),
            not_after: clock.now() + Duration::days(90),
            created_at: clock.now(),
            spki_sha256: vec![0; 32],
        })
        .await
        .expect("begin finalize");
    assert!(began);
    let done = h
        .issue(
            &account,
            &dns(&["done.finalize.test"]),
            &ChallengeType::Http01,
        )
        .await;

    let ra = &h.ca.wfe.ra;
    clock.advance(Duration::seconds(59));
    assert_eq!(
        ra.fail_stalled_finalizes(Duration::minutes(1))
            .await
            .expect("sweep"),
        0
    );
    assert_eq!(
        order.refresh().await.expect("order").status,
        OrderStatus::Processing
    );

    clock.advance(Duration::seconds(2));
    assert_eq!(
        ra.fail_stalled_finalizes(Duration::minutes(1))
            .await
            .expect("sweep"),
        1
    );
    let state = order.refresh().await.expect("order");
    assert_eq!(state.status, OrderStatus::Invalid);
    let error = state.error.as_ref().expect("a reason");
    assert_eq!(error.kind, ProblemType::ServerInternal);
    assert!(
        error
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("interrupted"),
        "{error:?}"
    );
    assert_eq!(
        ra.fail_stalled_finalizes(Duration::minutes(1))
            .await
            .expect("sweep"),
        0
    );

    let mut finished = done.order;
    assert_eq!(
        finished.refresh().await.expect("order").status,
        OrderStatus::Valid
    );
}
