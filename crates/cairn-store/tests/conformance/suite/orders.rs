//! Orders and reading authorizations back (RFC 8555 §7.1.3, §7.4).

use std::sync::Arc;

use cairn_proto::Identifier;
use cairn_store::{
    AuthzSource, AuthzState, ChallengeState, NewOrder, OrderState, Storage, StoreError,
};

use crate::fixtures::*;

pub(crate) async fn create_order_creates_new_and_links_existing_authorizations(
    store: Arc<dyn Storage>,
) {
    let alice = account(&store, "alice").await;
    let existing = authz(&store, alice.id, "b.example.com").await;
    validate(&store, existing, NOW + days(30)).await;

    let mut new = new_order(
        alice.id,
        &["a.example.com", "b.example.com", "example.com"],
        vec![
            AuthzSource::New(new_authz("a.example.com", false)),
            AuthzSource::Existing(existing),
            AuthzSource::New(new_authz("example.com", true)),
        ],
    );
    new.identifiers[2] = Identifier::dns("*.example.com");
    new.not_before = Some(NOW + hours(1));
    new.not_after = Some(NOW + days(6));
    new.profile = Some("shortlived".into());
    new.replaces = Some("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE".into());
    let order = store.create_order(new.clone()).await.unwrap();

    assert_eq!(order.account_id, alice.id);
    assert_eq!(order.identifiers, new.identifiers);
    assert_eq!(order.authz_ids.len(), 3);
    assert_eq!(order.authz_ids[1], existing);
    assert_eq!(order.expires, new.expires);
    assert_eq!(order.not_before, new.not_before);
    assert_eq!(order.not_after, new.not_after);
    assert_eq!(order.profile, new.profile);
    assert_eq!(order.replaces, new.replaces);
    assert_eq!(order.state, OrderState::Open);
    assert_eq!(order.error, None);
    assert_eq!(order.certificate_serial, None);
    assert_eq!(order.created_at, NOW);
    assert_eq!(store.order(order.id).await.unwrap(), Some(order.clone()));

    let authzs = store.authorizations(&order.authz_ids).await.unwrap();
    assert_eq!(
        authzs[1].state,
        AuthzState::Valid,
        "the reused authorization is untouched"
    );
    for (authz, name, wildcard) in [
        (&authzs[0], "a.example.com", false),
        (&authzs[2], "example.com", true),
    ] {
        assert_eq!(authz.account_id, alice.id);
        assert_eq!(authz.identifier, Identifier::dns(name));
        assert_eq!(authz.wildcard, wildcard);
        assert_eq!(authz.state, AuthzState::Pending);
        assert_eq!(authz.expires, NOW + days(7));
        assert_eq!(authz.created_at, NOW);
        let kinds: Vec<_> = authz
            .challenges
            .iter()
            .map(|c| (c.kind.clone(), c.token.clone()))
            .collect();
        assert_eq!(kinds, new_authz(name, wildcard).challenges);
        for challenge in &authz.challenges {
            assert_eq!(challenge.authz_id, authz.id);
            assert_eq!(challenge.state, ChallengeState::Pending);
            assert_eq!(challenge.validated_at, None);
            assert_eq!(challenge.error, None);
        }
    }
}

pub(crate) async fn create_order_is_all_or_nothing(store: Arc<dyn Storage>) {
    let alice = account(&store, "alice").await;
    let bob = account(&store, "bob").await;
    let bobs = authz(&store, bob.id, "bob.example.com").await;

    let attempt = |source: AuthzSource| -> NewOrder {
        new_order(
            alice.id,
            &["new.example.com", "bob.example.com"],
            vec![
                AuthzSource::New(new_authz("new.example.com", false)),
                source,
            ],
        )
    };
    let foreign = store
        .create_order(attempt(AuthzSource::Existing(bobs)))
        .await;
    assert!(
        matches!(foreign, Err(StoreError::Conflict(_))),
        "another account's authorization: {foreign:?}"
    );
    let missing = store
        .create_order(attempt(AuthzSource::Existing(bobs + 1000)))
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );

    assert!(
        store
            .account_orders(alice.id, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let leftover = store
        .pending_authorization(alice.id, &Identifier::dns("new.example.com"), false, NOW)
        .await
        .unwrap();
    assert_eq!(
        leftover, None,
        "a failed order left an authorization behind"
    );

    let no_account = store
        .create_order(new_order(bob.id + 1000, &[], Vec::new()))
        .await;
    assert!(
        matches!(no_account, Err(StoreError::NotFound(_))),
        "{no_account:?}"
    );
}

pub(crate) async fn getters_of_missing_rows_return_none(store: Arc<dyn Storage>) {
    assert_eq!(store.account(1).await.unwrap(), None);
    assert_eq!(store.order(1).await.unwrap(), None);
    assert_eq!(store.authorization(1).await.unwrap(), None);
    assert_eq!(store.challenge(1).await.unwrap(), None);
    assert_eq!(store.certificate("00ff").await.unwrap(), None);
    assert!(store.account_orders(1, None, 10).await.unwrap().is_empty());
    assert!(store.authorizations(&[]).await.unwrap().is_empty());
    assert!(
        store
            .revoked_certificates("ecdsa-1", NOW)
            .await
            .unwrap()
            .is_empty()
    );

    let missing = store.authorizations(&[1]).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

pub(crate) async fn account_orders_pages_newest_first(store: Arc<dyn Storage>) {
    let alice = account(&store, "alice").await;
    let bob = account(&store, "bob").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            order(&store, alice.id, &[&format!("{i}.example.com")])
                .await
                .id,
        );
        order(&store, bob.id, &[&format!("{i}.example.net")]).await;
    }
    ids.reverse();

    assert_eq!(store.account_orders(alice.id, None, 10).await.unwrap(), ids);
    assert_eq!(
        store.account_orders(alice.id, None, 2).await.unwrap(),
        ids[..2]
    );
    assert_eq!(
        store
            .account_orders(alice.id, Some(ids[1]), 2)
            .await
            .unwrap(),
        ids[2..4]
    );
    assert_eq!(
        store
            .account_orders(alice.id, Some(ids[3]), 2)
            .await
            .unwrap(),
        ids[4..]
    );
    assert!(
        store
            .account_orders(alice.id, Some(ids[4]), 2)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .account_orders(alice.id, None, 0)
            .await
            .unwrap()
            .is_empty()
    );
}

pub(crate) async fn authorizations_come_in_the_requested_order(store: Arc<dyn Storage>) {
    let alice = account(&store, "alice").await;
    let order = order(
        &store,
        alice.id,
        &["a.example.com", "b.example.com", "c.example.com"],
    )
    .await;
    let mut ids = order.authz_ids.clone();
    ids.reverse();
    let authzs = store.authorizations(&ids).await.unwrap();
    assert_eq!(authzs.iter().map(|a| a.id).collect::<Vec<_>>(), ids);
    for authz in &authzs {
        assert_eq!(
            store.authorization(authz.id).await.unwrap().as_ref(),
            Some(authz)
        );
    }
    let names: Vec<_> = authzs.iter().map(|a| a.identifier.value.as_str()).collect();
    assert_eq!(names, ["c.example.com", "b.example.com", "a.example.com"]);

    let partly_missing = store.authorizations(&[ids[0], ids[0] + 1000]).await;
    assert!(
        matches!(partly_missing, Err(StoreError::NotFound(_))),
        "{partly_missing:?}"
    );
}
