//! Nonces shared by several nodes, and the newest revocation of an issuer.

use std::sync::Arc;

use cairn_store::{Revocation, Storage};

use crate::fixtures::*;
use crate::suite::RACERS;

pub(crate) async fn nonce_secret_is_the_first_candidate_forever(store: Arc<dyn Storage>) {
    let first = store.nonce_secret(&[1; 32]).await.unwrap();
    assert_eq!(first, vec![1; 32]);
    assert_eq!(store.nonce_secret(&[2; 32]).await.unwrap(), first);
}

pub(crate) async fn concurrent_nonce_secret_calls_agree(store: Arc<dyn Storage>) {
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let store = Arc::clone(&store);
            let candidate = vec![u8::try_from(i).unwrap(); 32];
            tokio::spawn(async move { store.nonce_secret(&candidate).await.unwrap() })
        })
        .collect();
    let mut secrets = Vec::new();
    for task in tasks {
        secrets.push(task.await.unwrap());
    }
    assert!(secrets.windows(2).all(|w| w[0] == w[1]), "{secrets:?}");
}

pub(crate) async fn a_nonce_redeems_once(store: Arc<dyn Storage>) {
    let expires = NOW + hours(1);
    assert!(store.redeem_nonce(b"nonce-a", expires).await.unwrap());
    assert!(!store.redeem_nonce(b"nonce-a", expires).await.unwrap());
    assert!(store.redeem_nonce(b"nonce-b", expires).await.unwrap());
    assert!(
        !store
            .redeem_nonce(b"nonce-a", expires + hours(1))
            .await
            .unwrap()
    );
}

pub(crate) async fn concurrent_redeems_of_one_nonce_have_one_winner(store: Arc<dyn Storage>) {
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.redeem_nonce(b"raced", NOW + hours(1)).await.unwrap() })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap());
    }
    assert_eq!(winners, 1);
}

pub(crate) async fn prune_nonces_forgets_only_expired_records(store: Arc<dyn Storage>) {
    assert!(store.redeem_nonce(b"old", NOW - hours(1)).await.unwrap());
    assert!(store.redeem_nonce(b"new", NOW + hours(1)).await.unwrap());
    assert_eq!(store.prune_nonces(NOW).await.unwrap(), 1);
    assert_eq!(store.prune_nonces(NOW).await.unwrap(), 0);
    assert!(!store.redeem_nonce(b"new", NOW + hours(1)).await.unwrap());
    assert!(store.redeem_nonce(b"old", NOW + hours(1)).await.unwrap());
}

pub(crate) async fn last_revocation_is_the_issuers_newest(store: Arc<dyn Storage>) {
    let alice = account(&store, "alice").await;
    assert_eq!(store.last_revocation("ecdsa-1").await.unwrap(), None);
    for (serial, issuer) in [("c1", "ecdsa-1"), ("c2", "ecdsa-1"), ("c3", "rsa-1")] {
        issued_certificate(&store, alice.id, serial, issuer, NOW + days(90)).await;
    }
    for (serial, at) in [
        ("c2", NOW + hours(2)),
        ("c1", NOW + hours(1)),
        ("c3", NOW + hours(5)),
    ] {
        let revocation = Revocation {
            revoked_at: at,
            reason: 1,
        };
        assert!(store.revoke_certificate(serial, revocation).await.unwrap());
    }
    assert_eq!(
        store.last_revocation("ecdsa-1").await.unwrap(),
        Some(NOW + hours(2))
    );
    assert_eq!(
        store.last_revocation("rsa-1").await.unwrap(),
        Some(NOW + hours(5))
    );
    assert_eq!(store.last_revocation("other").await.unwrap(), None);
}
