//! Authorization reuse and challenges (RFC 8555 §7.4, §7.5, §8).

use std::sync::Arc;

use cairn_proto::objects::ChallengeType;
use cairn_proto::problem::Subproblem;
use cairn_proto::{Identifier, IdentifierType, Problem, ProblemType};
use cairn_store::{AuthzState, ChallengeState, Storage, StoreError, ValidationOutcome};
use tokio::sync::Barrier;

use super::RACERS;
use crate::fixtures::*;

pub(crate) async fn reusable_authorization_is_the_newest_valid_one(store: Arc<dyn Storage>) {
    let alice = account(&store, "alice").await;
    let bob = account(&store, "bob").await;
    let name = Identifier::dns("example.com");
    let older = authz(&store, alice.id, "example.com").await;
    validate(&store, older, NOW + days(20)).await;
    let newer = authz(&store, alice.id, "example.com").await;
    validate(&store, newer, NOW + days(30)).await;
    let _pending = authz(&store, alice.id, "example.com").await;

    assert_eq!(
        store
            .reusable_authorization(alice.id, &name, false, NOW)
            .await
            .unwrap(),
        Some(newer)
    );
    assert_eq!(
        store
            .reusable_authorization(alice.id, &name, true, NOW)
            .await
            .unwrap(),
        None,
        "wildcard differs"
    );
    assert_eq!(
        store
            .reusable_authorization(bob.id, &name, false, NOW)
            .await
            .unwrap(),
        None,
        "another account"
    );
    let other_name = Identifier::dns("www.example.com");
    assert_eq!(
        store
            .reusable_authorization(alice.id, &other_name, false, NOW)
            .await
            .unwrap(),
        None
    );
    let other_type = Identifier {
        kind: IdentifierType::Ip,
        value: "example.com".into(),
    };
    assert_eq!(
        store
            .reusable_authorization(alice.id, &other_type, false, NOW)
            .await
            .unwrap(),
        None
    );
}

pub(crate) async fn reusable_authorization_skips_invalid_deactivated_and_expired(
    store: Arc<dyn Storage>,
) {
    let alice = account(&store, "alice").await;
    let name = Identifier::dns("example.com");

    let expiring = authz(&store, alice.id, "example.com").await;
    validate(&store, expiring, NOW + days(1)).await;
    let at = |t| store.reusable_authorization(alice.id, &name, false, t);
    assert_eq!(at(NOW).await.unwrap(), Some(expiring));
    assert_eq!(
        at(NOW + days(1)).await.unwrap(),
        None,
        "expires must be after now"
    );

    let deactivated = authz(&store, alice.id, "example.com").await;
    validate(&store, deactivated, NOW + days(30)).await;
    store.deactivate_authorization(deactivated).await.unwrap();

    let invalid = authz(&store, alice.id, "example.com").await;
    let challenge = first_challenge(&store, invalid).await;
    assert!(store.start_challenge(challenge).await.unwrap());
    let problem = Problem::new(ProblemType::IncorrectResponse, "wrong key authorization");
    store
        .finish_challenge(challenge, ValidationOutcome::Invalid { problem })
        .await
        .unwrap();

    assert_eq!(
        at(NOW).await.unwrap(),
        Some(expiring),
        "only the valid one qualifies"
    );
    assert_eq!(at(NOW + days(2)).await.unwrap(), None);
}

pub(crate) async fn pending_authorization_is_the_newest_pending_one(store: Arc<dyn Storage>) {
    let alice = account(&store, "alice").await;
    let bob = account(&store, "bob").await;
    let name = Identifier::dns("example.com");
    let older = authz(&store, alice.id, "example.com").await;
    let newer = authz(&store, alice.id, "example.com").await;
    let pending = |account, wildcard, t| store.pending_authorization(account, &name, wildcard, t);
    assert_eq!(pending(alice.id, false, NOW).await.unwrap(), Some(newer));
    assert_eq!(pending(alice.id, true, NOW).await.unwrap(), None);
    assert_eq!(pending(bob.id, false, NOW).await.unwrap(), None);
    assert_eq!(
        pending(alice.id, false, NOW + days(7)).await.unwrap(),
        None,
        "expired"
    );

    // A started validation leaves the authorization pending.
    assert!(
        store
            .start_challenge(first_challenge(&store, newer).await)
            .await
            .unwrap()
    );
    assert_eq!(pending(alice.id, false, NOW).await.unwrap(), Some(newer));
    // Valid and deactivated ones are not pending.
    validate(&store, older, NOW + days(30)).await;
    store.deactivate_authorization(newer).await.unwrap();
    assert_eq!(pending(alice.id, false, NOW).await.unwrap(), None);
}

// --- challenges (RFC 8555 §7.5.1, §8) ---

pub(crate) async fn challenge_comes_with_its_authorization(store: Arc<dyn Storage>) {
    let alice = account(&store, "alice").await;
    let authz_id = authz(&store, alice.id, "example.com").await;
    let authz = store.authorization(authz_id).await.unwrap().unwrap();
    let second = &authz.challenges[1];
    let (challenge, with) = store.challenge(second.id).await.unwrap().unwrap();
    assert_eq!(&challenge, second);
    assert_eq!(challenge.kind, ChallengeType::Dns01);
    assert_eq!(challenge.token, "dns-token-example.com");
    assert_eq!(with, authz);
}

pub(crate) async fn start_challenge_moves_pending_to_processing_once(store: Arc<dyn Storage>) {
    let alice = account(&store, "alice").await;
    let authz_id = authz(&store, alice.id, "example.com").await;
    let challenge = first_challenge(&store, authz_id).await;
    assert_eq!(
        store.processing_challenges().await.unwrap(),
        Vec::<i64>::new()
    );
    assert!(store.start_challenge(challenge).await.unwrap());
    assert!(!store.start_challenge(challenge).await.unwrap());
    let (stored, authz) = store.challenge(challenge).await.unwrap().unwrap();
    assert_eq!(stored.state, ChallengeState::Processing);
    assert_eq!(authz.state, AuthzState::Pending);
    assert_eq!(
        store.processing_challenges().await.unwrap(),
        vec![challenge]
    );

    let missing = store.start_challenge(challenge + 1000).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

pub(crate) async fn start_challenge_needs_a_pending_authorization(store: Arc<dyn Storage>) {
    let alice = account(&store, "alice").await;
    let deactivated = authz(&store, alice.id, "example.com").await;
    store.deactivate_authorization(deactivated).await.unwrap();
    let challenge = first_challenge(&store, deactivated).await;
    assert!(!store.start_challenge(challenge).await.unwrap());
    assert_eq!(
        store.challenge(challenge).await.unwrap().unwrap().0.state,
        ChallengeState::Pending
    );

    // After one challenge validated the authorization, the others cannot start.
    let validated = authz(&store, alice.id, "example.org").await;
    validate(&store, validated, NOW + days(30)).await;
    let other = store
        .authorization(validated)
        .await
        .unwrap()
        .unwrap()
        .challenges[1]
        .id;
    assert!(!store.start_challenge(other).await.unwrap());
}

pub(crate) async fn concurrent_start_challenge_has_one_winner(store: Arc<dyn Storage>) {
    let alice = account(&store, "alice").await;
    let challenge = first_challenge(&store, authz(&store, alice.id, "example.com").await).await;
    let barrier = Arc::new(Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.start_challenge(challenge).await
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap().unwrap());
    }
    assert_eq!(winners, 1);
}

pub(crate) async fn finish_challenge_valid_validates_the_authorization(store: Arc<dyn Storage>) {
    let alice = account(&store, "alice").await;
    let authz_id = authz(&store, alice.id, "example.com").await;
    let challenge = first_challenge(&store, authz_id).await;
    assert!(store.start_challenge(challenge).await.unwrap());
    let outcome = ValidationOutcome::Valid {
        validated_at: NOW + hours(1),
        authz_expires: NOW + days(30),
    };
    store.finish_challenge(challenge, outcome).await.unwrap();

    let (stored, authz) = store.challenge(challenge).await.unwrap().unwrap();
    assert_eq!(stored.state, ChallengeState::Valid);
    assert_eq!(stored.validated_at, Some(NOW + hours(1)));
    assert_eq!(stored.error, None);
    assert_eq!(authz.state, AuthzState::Valid);
    assert_eq!(authz.expires, NOW + days(30));
    assert!(
        store.processing_challenges().await.unwrap().is_empty(),
        "a finished challenge is not processing"
    );
    assert_eq!(
        authz.challenges[1].state,
        ChallengeState::Pending,
        "other challenges are left alone"
    );
}

pub(crate) async fn finish_challenge_invalid_records_the_problem(store: Arc<dyn Storage>) {
    let alice = account(&store, "alice").await;
    let authz_id = authz(&store, alice.id, "example.com").await;
    let challenge = first_challenge(&store, authz_id).await;
    assert!(store.start_challenge(challenge).await.unwrap());
    let problem = Problem::new(
        ProblemType::Dns,
        "no TXT record at _acme-challenge.example.com",
    )
    .with_subproblems(vec![Subproblem {
        kind: ProblemType::Caa,
        detail: Some("CAA forbids issuance".into()),
        identifier: Some(Identifier::dns("example.com")),
    }]);
    let outcome = ValidationOutcome::Invalid {
        problem: problem.clone(),
    };
    store.finish_challenge(challenge, outcome).await.unwrap();

    let (stored, authz) = store.challenge(challenge).await.unwrap().unwrap();
    assert_eq!(stored.state, ChallengeState::Invalid);
    assert_eq!(stored.error, Some(problem));
    assert_eq!(stored.validated_at, None);
    assert_eq!(authz.state, AuthzState::Invalid);
    assert_eq!(authz.expires, NOW + days(7));
}

pub(crate) async fn finish_challenge_needs_a_processing_challenge(store: Arc<dyn Storage>) {
    let alice = account(&store, "alice").await;
    let authz_id = authz(&store, alice.id, "example.com").await;
    let challenge = first_challenge(&store, authz_id).await;
    let valid = || ValidationOutcome::Valid {
        validated_at: NOW,
        authz_expires: NOW + days(30),
    };
    let pending = store.finish_challenge(challenge, valid()).await;
    assert!(
        matches!(pending, Err(StoreError::Conflict(_))),
        "{pending:?}"
    );
    assert_eq!(
        store.authorization(authz_id).await.unwrap().unwrap().state,
        AuthzState::Pending
    );

    assert!(store.start_challenge(challenge).await.unwrap());
    store.finish_challenge(challenge, valid()).await.unwrap();
    let again = store.finish_challenge(challenge, valid()).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");

    let missing = store.finish_challenge(challenge + 1000, valid()).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

pub(crate) async fn deactivate_authorization_from_pending_or_valid_only(store: Arc<dyn Storage>) {
    let alice = account(&store, "alice").await;
    let pending = authz(&store, alice.id, "a.example.com").await;
    let deactivated = store.deactivate_authorization(pending).await.unwrap();
    assert_eq!(deactivated.id, pending);
    assert_eq!(deactivated.state, AuthzState::Deactivated);
    assert_eq!(
        store.authorization(pending).await.unwrap(),
        Some(deactivated)
    );
    let again = store.deactivate_authorization(pending).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");

    let valid = authz(&store, alice.id, "b.example.com").await;
    validate(&store, valid, NOW + days(30)).await;
    assert_eq!(
        store.deactivate_authorization(valid).await.unwrap().state,
        AuthzState::Deactivated
    );

    let invalid = authz(&store, alice.id, "c.example.com").await;
    let challenge = first_challenge(&store, invalid).await;
    assert!(store.start_challenge(challenge).await.unwrap());
    let problem = Problem::new(ProblemType::Connection, "connection refused");
    store
        .finish_challenge(challenge, ValidationOutcome::Invalid { problem })
        .await
        .unwrap();
    let result = store.deactivate_authorization(invalid).await;
    assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
    assert_eq!(
        store.authorization(invalid).await.unwrap().unwrap().state,
        AuthzState::Invalid
    );

    let missing = store.deactivate_authorization(invalid + 1000).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}
