//! The blocked-keys list and the certificates of one key.

use std::sync::Arc;

use cairn_store::{BlockedKey, Revocation, Storage};

use crate::fixtures::*;

pub(crate) async fn a_key_is_blocked_once_and_reads_back(store: Arc<dyn Storage>) {
    let key = BlockedKey {
        spki_sha256: vec![0xab; 32],
        reason: "keyCompromise revocation of certificate 0a".into(),
        blocked_at: NOW,
    };
    assert_eq!(store.blocked_key(&key.spki_sha256).await.unwrap(), None);
    assert!(store.block_key(&key).await.unwrap());
    let again = BlockedKey {
        reason: "blocked by an operator".into(),
        blocked_at: NOW + hours(1),
        ..key.clone()
    };
    assert!(!store.block_key(&again).await.unwrap(), "already blocked");
    assert_eq!(
        store.blocked_key(&key.spki_sha256).await.unwrap(),
        Some(key),
        "the first entry stays"
    );
    assert_eq!(store.blocked_key(&[0xcd; 32]).await.unwrap(), None);
}

pub(crate) async fn live_certificates_with_key_are_signed_unexpired_and_unrevoked(
    store: Arc<dyn Storage>,
) {
    let alice = account(&store, "alice").await;
    let key = b"the compromised key".to_vec();
    for (serial, not_after, signed, revoked, same_key) in [
        ("c1", NOW + days(30), true, false, true),
        ("c2", NOW + days(60), true, false, true),
        ("c3", NOW, true, false, true),
        ("c4", NOW + days(30), true, true, true),
        ("c5", NOW + days(30), false, false, true),
        ("c6", NOW + days(30), true, false, false),
    ] {
        let order = order(&store, alice.id, &[&format!("{serial}.example.com")]).await;
        let mut pending = pending_certificate(&order, serial, "ecdsa-1");
        pending.not_after = not_after;
        if same_key {
            pending.spki_sha256 = key.clone();
        }
        assert!(store.begin_finalize(pending).await.unwrap());
        if signed {
            store
                .complete_finalize(order.id, serial, serial.as_bytes())
                .await
                .unwrap();
        }
        if revoked {
            let revocation = Revocation {
                revoked_at: NOW - hours(1),
                reason: 1,
            };
            assert!(store.revoke_certificate(serial, revocation).await.unwrap());
        }
    }
    assert_eq!(
        store.live_certificates_with_key(&key, NOW).await.unwrap(),
        ["c1", "c2"]
    );
    assert!(
        store
            .live_certificates_with_key(b"no such key", NOW)
            .await
            .unwrap()
            .is_empty()
    );
}
