//! Finalize and certificates (RFC 8555 §7.4, §7.6).

use std::sync::Arc;

use cairn_proto::{Problem, ProblemType};
use cairn_store::{AuthzSource, OrderState, Revocation, Storage, StoreError};
use time::Duration;
use tokio::sync::Barrier;

use super::RACERS;
use crate::fixtures::*;

pub(crate) async fn begin_finalize_reserves_the_serial(store: Arc<dyn Storage>) {
    let alice = account(&store, "alice").await;
    let order = order(&store, alice.id, &["example.com", "www.example.com"]).await;
    let pending = pending_certificate(&order, "0123456789abcdef01", "ecdsa-1");
    assert!(store.begin_finalize(pending.clone()).await.unwrap());

    let stored = store.order(order.id).await.unwrap().unwrap();
    assert_eq!(stored.state, OrderState::Processing);
    assert_eq!(
        stored.certificate_serial.as_deref(),
        Some("0123456789abcdef01")
    );

    let certificate = store.certificate(&pending.serial).await.unwrap().unwrap();
    assert_eq!(certificate.serial, pending.serial);
    assert_eq!(certificate.order_id, Some(order.id));
    assert_eq!(certificate.account_id, alice.id);
    assert_eq!(certificate.issuer, "ecdsa-1");
    assert_eq!(certificate.names, order.identifiers);
    assert_eq!(certificate.not_before, pending.not_before);
    assert_eq!(certificate.not_after, pending.not_after);
    assert_eq!(certificate.der, None, "reserved before signing");
    assert_eq!(certificate.revocation, None);
    assert_eq!(certificate.created_at, NOW);

    let mut missing = pending_certificate(&order, "02", "ecdsa-1");
    missing.order_id = order.id + 1000;
    let result = store.begin_finalize(missing).await;
    assert!(matches!(result, Err(StoreError::NotFound(_))), "{result:?}");
}

pub(crate) async fn begin_finalize_on_a_finalized_order_returns_false(store: Arc<dyn Storage>) {
    let alice = account(&store, "alice").await;
    let order = order(&store, alice.id, &["example.com"]).await;
    assert!(
        store
            .begin_finalize(pending_certificate(&order, "01", "ecdsa-1"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .begin_finalize(pending_certificate(&order, "02", "ecdsa-1"))
            .await
            .unwrap()
    );
    assert_eq!(
        store.certificate("02").await.unwrap(),
        None,
        "the loser reserved nothing"
    );
    assert_eq!(
        store
            .order(order.id)
            .await
            .unwrap()
            .unwrap()
            .certificate_serial
            .as_deref(),
        Some("01")
    );

    store
        .complete_finalize(order.id, "01", b"der")
        .await
        .unwrap();
    assert!(
        !store
            .begin_finalize(pending_certificate(&order, "03", "ecdsa-1"))
            .await
            .unwrap()
    );
    assert_eq!(store.certificate("03").await.unwrap(), None);
}

pub(crate) async fn begin_finalize_with_a_taken_serial_conflicts_and_rolls_back(
    store: Arc<dyn Storage>,
) {
    let alice = account(&store, "alice").await;
    let first = order(&store, alice.id, &["a.example.com"]).await;
    let second = order(&store, alice.id, &["b.example.com"]).await;
    assert!(
        store
            .begin_finalize(pending_certificate(&first, "0a", "ecdsa-1"))
            .await
            .unwrap()
    );

    let taken = store
        .begin_finalize(pending_certificate(&second, "0a", "ecdsa-1"))
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    let unchanged = store.order(second.id).await.unwrap().unwrap();
    assert_eq!(
        unchanged.state,
        OrderState::Open,
        "the order update rolled back"
    );
    assert_eq!(unchanged.certificate_serial, None);
    assert_eq!(
        store.certificate("0a").await.unwrap().unwrap().order_id,
        Some(first.id)
    );

    // With a fresh serial the retry goes through.
    assert!(
        store
            .begin_finalize(pending_certificate(&second, "0b", "ecdsa-1"))
            .await
            .unwrap()
    );
}

pub(crate) async fn concurrent_begin_finalize_has_one_winner(store: Arc<dyn Storage>) {
    let alice = account(&store, "alice").await;
    let order = order(&store, alice.id, &["example.com"]).await;
    let barrier = Arc::new(Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            let pending = pending_certificate(&order, &format!("{:02x}", i + 1), "ecdsa-1");
            tokio::spawn(async move {
                barrier.wait().await;
                (pending.serial.clone(), store.begin_finalize(pending).await)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (serial, won) = task.await.unwrap();
        if won.unwrap() {
            winners.push(serial);
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let stored = store.order(order.id).await.unwrap().unwrap();
    assert_eq!(stored.certificate_serial.as_ref(), Some(&winners[0]));
    for i in 0..RACERS {
        let serial = format!("{:02x}", i + 1);
        let reserved = store.certificate(&serial).await.unwrap().is_some();
        assert_eq!(reserved, serial == winners[0], "serial {serial}");
    }
}

pub(crate) async fn complete_finalize_stores_the_certificate(store: Arc<dyn Storage>) {
    let alice = account(&store, "alice").await;
    let order = order(&store, alice.id, &["example.com"]).await;
    let early = store.complete_finalize(order.id, "01", b"der").await;
    assert!(
        matches!(early, Err(StoreError::Conflict(_))),
        "not processing yet: {early:?}"
    );

    assert!(
        store
            .begin_finalize(pending_certificate(&order, "01", "ecdsa-1"))
            .await
            .unwrap()
    );
    let der = vec![0x30, 0x82, 0x01, 0x00, 0xff, 0x00];
    store.complete_finalize(order.id, "01", &der).await.unwrap();
    assert_eq!(
        store.order(order.id).await.unwrap().unwrap().state,
        OrderState::Valid
    );
    assert_eq!(
        store.certificate("01").await.unwrap().unwrap().der,
        Some(der.clone())
    );

    let twice = store.complete_finalize(order.id, "01", b"other").await;
    assert!(matches!(twice, Err(StoreError::Conflict(_))), "{twice:?}");
    assert_eq!(
        store.certificate("01").await.unwrap().unwrap().der,
        Some(der)
    );

    let missing = store.complete_finalize(order.id + 1000, "01", b"der").await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

pub(crate) async fn fail_finalize_marks_the_order_invalid(store: Arc<dyn Storage>) {
    let alice = account(&store, "alice").await;
    let order = order(&store, alice.id, &["example.com"]).await;
    let problem = Problem::new(ProblemType::ServerInternal, "the signer is unavailable");
    let early = store.fail_finalize(order.id, &problem).await;
    assert!(
        matches!(early, Err(StoreError::Conflict(_))),
        "not processing yet: {early:?}"
    );

    assert!(
        store
            .begin_finalize(pending_certificate(&order, "01", "ecdsa-1"))
            .await
            .unwrap()
    );
    store.fail_finalize(order.id, &problem).await.unwrap();
    let stored = store.order(order.id).await.unwrap().unwrap();
    assert_eq!(stored.state, OrderState::Invalid);
    assert_eq!(stored.error, Some(problem.clone()));
    let reserved = store.certificate("01").await.unwrap().unwrap();
    assert_eq!(reserved.der, None, "the serial stays reserved, unsigned");

    let after = store.complete_finalize(order.id, "01", b"der").await;
    assert!(matches!(after, Err(StoreError::Conflict(_))), "{after:?}");
    let missing = store.fail_finalize(order.id + 1000, &problem).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

pub(crate) async fn revoke_certificate_records_once(store: Arc<dyn Storage>) {
    let alice = account(&store, "alice").await;
    issued_certificate(&store, alice.id, "0c", "ecdsa-1", NOW + days(90)).await;
    let revocation = Revocation {
        revoked_at: NOW + hours(2),
        reason: 1,
    };
    assert!(store.revoke_certificate("0c", revocation).await.unwrap());
    let later = Revocation {
        revoked_at: NOW + hours(3),
        reason: 4,
    };
    assert!(!store.revoke_certificate("0c", later).await.unwrap());
    assert_eq!(
        store.certificate("0c").await.unwrap().unwrap().revocation,
        Some(revocation)
    );

    let missing = store.revoke_certificate("0d", revocation).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

pub(crate) async fn revoked_certificates_lists_the_issuers_unexpired_revocations(
    store: Arc<dyn Storage>,
) {
    let alice = account(&store, "alice").await;
    let revoked_at = NOW - hours(1);
    for (serial, issuer, not_after, reason) in [
        ("a1", "ecdsa-1", NOW + days(30), Some(1)),
        ("a2", "ecdsa-1", NOW + days(60), Some(0)),
        ("a3", "ecdsa-1", NOW, Some(1)),
        ("a4", "ecdsa-1", NOW + days(30), None),
        ("b1", "rsa-1", NOW + days(30), Some(1)),
    ] {
        issued_certificate(&store, alice.id, serial, issuer, not_after).await;
        if let Some(reason) = reason {
            assert!(
                store
                    .revoke_certificate(serial, Revocation { revoked_at, reason })
                    .await
                    .unwrap()
            );
        }
    }
    let mut entries = store.revoked_certificates("ecdsa-1", NOW).await.unwrap();
    entries.sort_by(|a, b| a.serial.cmp(&b.serial));
    let listed: Vec<_> = entries
        .iter()
        .map(|e| (e.serial.as_str(), e.revoked_at, e.reason))
        .collect();
    assert_eq!(listed, [("a1", revoked_at, 1), ("a2", revoked_at, 0)]);

    let later = store
        .revoked_certificates("ecdsa-1", NOW + days(45))
        .await
        .unwrap();
    assert_eq!(
        later.iter().map(|e| e.serial.as_str()).collect::<Vec<_>>(),
        ["a2"]
    );
}

pub(crate) async fn a_certificate_is_replaced_once_an_order_naming_it_is_valid(
    store: Arc<dyn Storage>,
) {
    let alice = account(&store, "alice").await;
    let replaces = "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE";
    let mut request = new_order(
        alice.id,
        &["example.com"],
        vec![AuthzSource::New(new_authz("example.com", false))],
    );
    request.replaces = Some(replaces.to_owned());
    let order = store.create_order(request).await.unwrap();
    assert_eq!(order.replaces.as_deref(), Some(replaces));
    assert!(
        !store.certificate_replaced(replaces).await.unwrap(),
        "an open order replaces nothing yet"
    );

    assert!(
        store
            .begin_finalize(pending_certificate(&order, "0a", "ecdsa-1"))
            .await
            .unwrap()
    );
    assert!(
        !store.certificate_replaced(replaces).await.unwrap(),
        "nor does a processing one"
    );
    store
        .complete_finalize(order.id, "0a", b"der")
        .await
        .unwrap();
    assert!(store.certificate_replaced(replaces).await.unwrap());
    assert!(!store.certificate_replaced("other.AQ").await.unwrap());
}

pub(crate) async fn stalled_finalizes_are_processing_orders_begun_before_the_cutoff(
    store: Arc<dyn Storage>,
) {
    let alice = account(&store, "alice").await;
    let mut begun = Vec::new();
    for (serial, minutes) in [("s1", 0), ("s2", 5), ("s3", 10)] {
        let order = order(&store, alice.id, &[&format!("{serial}.example.com")]).await;
        let mut pending = pending_certificate(&order, serial, "ecdsa-1");
        pending.created_at = NOW + Duration::minutes(minutes);
        assert!(store.begin_finalize(pending).await.unwrap());
        begun.push(order.id);
    }
    issued_certificate(&store, alice.id, "done", "ecdsa-1", NOW + days(90)).await;
    assert_eq!(
        store
            .stalled_finalizes(NOW + Duration::minutes(6))
            .await
            .unwrap(),
        begun[..2]
    );
    let problem = Problem::new(ProblemType::ServerInternal, "interrupted");
    store.fail_finalize(begun[0], &problem).await.unwrap();
    assert_eq!(
        store.stalled_finalizes(NOW + days(1)).await.unwrap(),
        begun[1..]
    );
    assert!(store.stalled_finalizes(NOW).await.unwrap().is_empty());
}
