//! Accounts (RFC 8555 §7.3).

use std::collections::HashSet;
use std::sync::Arc;

use cairn_store::{AccountState, Storage, StoreError};
use tokio::sync::Barrier;

use super::RACERS;
use crate::fixtures::*;

pub(crate) async fn create_account_inserts_then_returns_the_existing(store: Arc<dyn Storage>) {
    let new = new_account("alice");
    let (account, created) = store.create_account(new.clone()).await.unwrap();
    assert!(created);
    assert_eq!(account.jwk, new.jwk);
    assert_eq!(account.thumbprint, new.thumbprint);
    assert_eq!(account.contact, new.contact);
    assert_eq!(account.status, AccountState::Valid);
    assert!(account.terms_agreed);
    assert_eq!(account.created_at, NOW);

    let mut again = new_account("alice");
    again.contact = vec!["mailto:other@example.com".into()];
    again.created_at = NOW + hours(1);
    let (existing, created) = store.create_account(again).await.unwrap();
    assert!(!created);
    assert_eq!(existing, account);
}

pub(crate) async fn concurrent_create_account_makes_one_account(store: Arc<dyn Storage>) {
    let barrier = Arc::new(Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.create_account(new_account("racer")).await
            })
        })
        .collect();
    let mut ids = HashSet::new();
    let mut created = 0;
    for task in tasks {
        let (account, was_created) = task.await.unwrap().unwrap();
        ids.insert(account.id);
        created += usize::from(was_created);
    }
    assert_eq!(ids.len(), 1, "one account for one key");
    assert_eq!(created, 1, "exactly one call created it");
}

pub(crate) async fn account_lookups_by_id_and_thumbprint(store: Arc<dyn Storage>) {
    let alice = account(&store, "alice").await;
    let bob = account(&store, "bob").await;
    assert_ne!(alice.id, bob.id);
    assert_eq!(store.account(alice.id).await.unwrap(), Some(alice.clone()));
    assert_eq!(
        store
            .account_by_thumbprint(&thumbprint("bob"))
            .await
            .unwrap(),
        Some(bob)
    );
    assert_eq!(
        store
            .account_by_thumbprint(&thumbprint("carol"))
            .await
            .unwrap(),
        None
    );
}

pub(crate) async fn update_account_contact_replaces_the_list(store: Arc<dyn Storage>) {
    let alice = account(&store, "alice").await;
    let contact = vec![
        "mailto:a@example.com".to_owned(),
        "mailto:b@example.com".to_owned(),
    ];
    let updated = store
        .update_account_contact(alice.id, &contact)
        .await
        .unwrap();
    assert_eq!(updated.contact, contact);
    assert_eq!(
        store.account(alice.id).await.unwrap().unwrap().contact,
        contact
    );

    let cleared = store.update_account_contact(alice.id, &[]).await.unwrap();
    assert!(cleared.contact.is_empty());

    let missing = store
        .update_account_contact(alice.id + 1000, &contact)
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

pub(crate) async fn deactivate_account_is_idempotent(store: Arc<dyn Storage>) {
    let alice = account(&store, "alice").await;
    let once = store.deactivate_account(alice.id).await.unwrap();
    assert_eq!(once.status, AccountState::Deactivated);
    let twice = store.deactivate_account(alice.id).await.unwrap();
    assert_eq!(twice, once);
    assert_eq!(
        store.account(alice.id).await.unwrap().unwrap().status,
        AccountState::Deactivated
    );

    let missing = store.deactivate_account(alice.id + 1000).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

pub(crate) async fn change_account_key_moves_the_thumbprint(store: Arc<dyn Storage>) {
    let alice = account(&store, "alice").await;
    let rolled = new_account("alice-rolled");
    let changed = store
        .change_account_key(alice.id, &rolled.jwk, &rolled.thumbprint)
        .await
        .unwrap();
    assert_eq!(changed.id, alice.id);
    assert_eq!(changed.jwk, rolled.jwk);
    assert_eq!(changed.thumbprint, rolled.thumbprint);

    assert_eq!(
        store
            .account_by_thumbprint(&rolled.thumbprint)
            .await
            .unwrap(),
        Some(changed)
    );
    assert_eq!(
        store
            .account_by_thumbprint(&alice.thumbprint)
            .await
            .unwrap(),
        None
    );
    // The old key is free again: registering it makes a new account.
    let (fresh, created) = store.create_account(new_account("alice")).await.unwrap();
    assert!(created);
    assert_ne!(fresh.id, alice.id);
}

pub(crate) async fn change_account_key_to_a_key_in_use_conflicts(store: Arc<dyn Storage>) {
    let alice = account(&store, "alice").await;
    let bob = account(&store, "bob").await;
    let result = store
        .change_account_key(alice.id, &bob.jwk, &bob.thumbprint)
        .await;
    assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
    assert_eq!(store.account(alice.id).await.unwrap(), Some(alice.clone()));
    assert_eq!(
        store.account_by_thumbprint(&bob.thumbprint).await.unwrap(),
        Some(bob)
    );

    let missing = store
        .change_account_key(alice.id + 1000, "{}", "unused")
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}
