//! RFC 8555 §7.3: accounts — creation and lookup (§7.3.1), contacts,
//! terms of service, update (§7.3.2), the orders list (§7.1.2.1), key
//! rollover (§7.3.5) and deactivation (§7.3.6).

use std::collections::HashSet;

use cairn_client::Account;
use cairn_proto::objects::{AccountStatus, NewOrder};
use cairn_proto::{KeyPair, ProblemType};
use serde_json::json;

use crate::harness::{Harness, dns, jws, new_key};

fn payload(value: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&value).unwrap()
}

/// A second handle on the same key: `KeyPair` is not `Clone`.
fn same_key(key: &KeyPair) -> KeyPair {
    KeyPair::from_pkcs8_der(&key.to_pkcs8_der().unwrap()).unwrap()
}

/// §7.3: 201 with the account URL in `Location`; the same key again is
/// 200 with the same `Location` (§7.3.1).
#[tokio::test(flavor = "multi_thread")]
async fn new_account_is_201_and_the_same_key_again_is_200_at_the_same_url() {
    let h = Harness::start(|_| {}).await;
    let key = new_key();
    let url = h.directory().new_account.clone();
    let body = payload(json!({
        "termsOfServiceAgreed": true,
        "contact": ["mailto:admin@example.com"],
    }));
    let created = h.post_signed(&url, &key, None, &body).await;
    assert_eq!(created.status, 201);
    let location = created.header("location").expect("Location").to_owned();
    assert!(
        location.starts_with(&format!("{}/acme/acct/", h.base_url())),
        "{location}"
    );
    let account = created.json();
    assert_eq!(account["status"], "valid");
    assert_eq!(account["contact"], json!(["mailto:admin@example.com"]));
    assert_eq!(account["termsOfServiceAgreed"], true);
    assert!(account["orders"].is_string(), "{account}");

    let again = h.post_signed(&url, &key, None, &body).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.header("location"), Some(location.as_str()));
    let lookup = h
        .post_signed(
            &url,
            &key,
            None,
            &payload(json!({ "onlyReturnExisting": true })),
        )
        .await;
    assert_eq!(lookup.status, 200);
    assert_eq!(lookup.header("location"), Some(location.as_str()));
}

/// §7.3.1: `onlyReturnExisting` for a key with no account.
#[tokio::test(flavor = "multi_thread")]
async fn only_return_existing_with_an_unknown_key_is_account_does_not_exist() {
    let h = Harness::start(|_| {}).await;
    let reply = h
        .post_signed(
            &h.directory().new_account,
            &new_key(),
            None,
            &payload(json!({ "onlyReturnExisting": true })),
        )
        .await;
    reply.problem(400, ProblemType::AccountDoesNotExist);
    assert!(reply.header("location").is_none());
}

/// §7.3: a scheme the CA does not take is `unsupportedContact`.
#[tokio::test(flavor = "multi_thread")]
async fn tel_contact_is_unsupported_contact() {
    let h = Harness::start(|_| {}).await;
    let reply = h
        .post_signed(
            &h.directory().new_account,
            &new_key(),
            None,
            &payload(json!({ "termsOfServiceAgreed": true, "contact": ["tel:+15555550100"] })),
        )
        .await;
    reply.problem(400, ProblemType::UnsupportedContact);
}

/// §7.3: a `mailto:` that is not one plain address is `invalidContact`.
#[tokio::test(flavor = "multi_thread")]
async fn bad_mailto_is_invalid_contact() {
    let h = Harness::start(|_| {}).await;
    for contact in [
        "mailto:",
        "mailto:no-at-sign",
        "mailto:a@b.example?subject=hi",
        "mailto:a@b.example,c@d.example",
    ] {
        let reply = h
            .post_signed(
                &h.directory().new_account,
                &new_key(),
                None,
                &payload(json!({ "termsOfServiceAgreed": true, "contact": [contact] })),
            )
            .await;
        let problem = reply.problem(400, ProblemType::InvalidContact);
        assert!(
            problem.detail.unwrap_or_default().contains(contact),
            "the detail quotes {contact}"
        );
    }
}

/// §7.3: with terms of service in the directory, an account needs
/// `termsOfServiceAgreed: true`.
#[tokio::test(flavor = "multi_thread")]
async fn terms_of_service_must_be_agreed_when_configured() {
    let h =
        Harness::start(|c| c.issuance.terms_of_service = Some("https://ca.test/tos".into())).await;
    let url = h.directory().new_account.clone();
    for body in [json!({}), json!({ "termsOfServiceAgreed": false })] {
        let reply = h.post_signed(&url, &new_key(), None, &payload(body)).await;
        let problem = reply.problem(400, ProblemType::Malformed);
        assert!(
            problem
                .detail
                .unwrap_or_default()
                .contains("terms of service"),
            "the detail says what is missing"
        );
    }
    let reply = h
        .post_signed(
            &url,
            &new_key(),
            None,
            &payload(json!({ "termsOfServiceAgreed": true })),
        )
        .await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.json()["termsOfServiceAgreed"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn terms_of_service_are_not_required_when_not_configured() {
    let h = Harness::start(|_| {}).await;
    let reply = h
        .post_signed(&h.directory().new_account, &new_key(), None, b"{}")
        .await;
    assert_eq!(reply.status, 201);
}

/// §7.3.2: POST to the account URL replaces the contacts.
#[tokio::test(flavor = "multi_thread")]
async fn contact_update_replaces_the_contacts() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let updated = account
        .update_contact(vec![
            "mailto:ops@example.com".into(),
            "mailto:oncall@example.com".into(),
        ])
        .await
        .expect("update");
    assert_eq!(
        updated.contact,
        ["mailto:ops@example.com", "mailto:oncall@example.com"]
    );
    assert_eq!(
        account.info().await.expect("account").contact,
        updated.contact
    );

    let reply = h
        .post_as(
            &account,
            account.url(),
            &payload(json!({ "contact": ["tel:+15555550100"] })),
        )
        .await;
    reply.problem(400, ProblemType::UnsupportedContact);
    assert_eq!(
        account.info().await.expect("account").contact,
        updated.contact,
        "a refused update changes nothing"
    );

    let cleared = account.update_contact(vec![]).await.expect("update");
    assert!(cleared.contact.is_empty());
}

/// An account URL is only for its own account.
#[tokio::test(flavor = "multi_thread")]
async fn another_accounts_url_is_unauthorized() {
    let h = Harness::start(|_| {}).await;
    let mine = h.account().await;
    let theirs = h.account().await;
    let reply = h.post_as(&mine, theirs.url(), b"").await;
    reply.problem(403, ProblemType::Unauthorized);
}

/// §7.3.6: after deactivation every request signed by the account is
/// refused with 401 `unauthorized`, and its key cannot make a new account.
#[tokio::test(flavor = "multi_thread")]
async fn deactivated_account_is_refused_everywhere() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let order = account
        .new_order(&NewOrder::new(dns(&["deactivate.test"])))
        .await
        .expect("newOrder");
    let authz = order.state().authorizations[0].clone();
    let deactivated = account.deactivate().await.expect("deactivate");
    assert_eq!(deactivated.status, AccountStatus::Deactivated);

    let new_order = payload(json!({ "identifiers": [{ "type": "dns", "value": "x.test" }] }));
    let orders_url = format!("{}/orders", account.url());
    let requests: [(&str, &str, &[u8]); 5] = [
        ("account", account.url(), b""),
        ("orders list", &orders_url, b""),
        ("newOrder", &h.directory().new_order, &new_order),
        ("order", order.url(), b""),
        ("authorization", &authz, b""),
    ];
    for (what, url, body) in requests {
        let reply = h.post_as(&account, url, body).await;
        assert_eq!(reply.status, 401, "{what}");
        reply.problem(401, ProblemType::Unauthorized);
    }
    let again = h
        .post_signed(
            &h.directory().new_account,
            account.key(),
            None,
            &payload(json!({ "termsOfServiceAgreed": true })),
        )
        .await;
    again.problem(401, ProblemType::Unauthorized);
}

/// §7.1.2.1: the orders list comes in pages linked with `rel="next"`.
#[tokio::test(flavor = "multi_thread")]
async fn orders_list_is_paginated() {
    let h = Harness::start(|c| c.issuance.orders_page_size = 2).await;
    let account = h.account().await;
    let other = h.account().await;
    let mut created = HashSet::new();
    for i in 0..5 {
        let order = account
            .new_order(&NewOrder::new(dns(&[&format!("page{i}.test")])))
            .await
            .expect("newOrder");
        created.insert(order.url().to_owned());
    }
    other
        .new_order(&NewOrder::new(dns(&["other.test"])))
        .await
        .expect("another account's order");

    let mut next = Some(
        account
            .info()
            .await
            .expect("account")
            .orders
            .expect("orders URL"),
    );
    let mut seen = Vec::new();
    let mut pages = 0;
    while let Some(url) = next {
        pages += 1;
        assert!(pages <= 5, "the pages never end");
        let reply = h.post_as(&account, &url, b"").await;
        assert_eq!(reply.status, 200);
        let orders = reply.json()["orders"].as_array().expect("orders").clone();
        assert!(
            orders.len() <= 2,
            "page {pages} has {} orders",
            orders.len()
        );
        seen.extend(orders.iter().map(|o| o.as_str().expect("a URL").to_owned()));
        let links = reply.links("next");
        assert!(links.len() <= 1);
        next = links.into_iter().next();
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 5, "each order once: {seen:?}");
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), created);
    assert_eq!(
        account
            .orders()
            .await
            .expect("the client follows the pages")
            .len(),
        5
    );
}

/// §7.1.2.1: an account's orders list is its own.
#[tokio::test(flavor = "multi_thread")]
async fn another_accounts_orders_list_is_unauthorized() {
    let h = Harness::start(|_| {}).await;
    let mine = h.account().await;
    let theirs = h.account().await;
    let url = theirs
        .info()
        .await
        .expect("account")
        .orders
        .expect("orders URL");
    let reply = h.post_as(&mine, &url, b"").await;
    reply.problem(403, ProblemType::Unauthorized);
}

/// §7.3.5: after a key change the old key is refused and the new one
/// works, under the same account URL.
#[tokio::test(flavor = "multi_thread")]
async fn key_change_replaces_the_account_key() {
    let h = Harness::start(|_| {}).await;
    let mut account = h.account().await;
    let before = account.clone();
    let new_key = new_key();
    let new_copy = same_key(&new_key);
    account.change_key(new_key).await.expect("keyChange");

    assert_eq!(account.url(), before.url());
    account.info().await.expect("the new key works");
    let refused = h.post_as(&before, before.url(), b"").await;
    refused.problem(400, ProblemType::Malformed);

    // newAccount finds the account by its new key only.
    let found = Account::find_existing(&h.client, new_copy)
        .await
        .expect("lookup")
        .expect("an account for the new key");
    assert_eq!(found.url(), account.url());
    let old = Account::find_existing(&h.client, same_key(before.key()))
        .await
        .expect("lookup");
    assert!(old.is_none(), "the old key has no account any more");
}

/// §7.3.5: "If there is an existing account registered with the new key,
/// then the server SHOULD return a 409 (Conflict) response with a
/// Location header field pointing to the account."
#[tokio::test(flavor = "multi_thread")]
async fn key_change_to_another_accounts_key_is_409() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let other = h.account().await;
    let url = h.directory().key_change.clone();
    let inner = cairn_proto::jws::FlattenedJws::sign(
        other.key(),
        cairn_proto::jws::SigningHeader {
            kid: None,
            nonce: None,
            url: &url,
        },
        &payload(json!({
            "account": account.url(),
            "oldKey": account.key().public_jwk().to_json(),
        })),
    )
    .unwrap();
    let reply = h
        .post_as(&account, &url, inner.to_json_string().as_bytes())
        .await;
    assert_eq!(
        reply.status,
        409,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.header("location"), Some(other.url()));
    account.info().await.expect("the old key still works");
    other.info().await.expect("the other account is untouched");
}

/// §7.3.5: the inner JWS must name the account and its current key.
#[tokio::test(flavor = "multi_thread")]
async fn key_change_with_a_wrong_old_key_is_malformed() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let url = h.directory().key_change.clone();
    let replacement = new_key();
    let inner = cairn_proto::jws::FlattenedJws::sign(
        &replacement,
        cairn_proto::jws::SigningHeader {
            kid: None,
            nonce: None,
            url: &url,
        },
        &payload(json!({
            "account": account.url(),
            "oldKey": new_key().public_jwk().to_json(),
        })),
    )
    .unwrap();
    let reply = h
        .post_as(&account, &url, inner.to_json_string().as_bytes())
        .await;
    reply.problem(400, ProblemType::Malformed);
    account.info().await.expect("the key is unchanged");
}

/// §7.3: newAccount with one key, many times at once, makes one account.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_new_accounts_with_one_key_make_one_account() {
    const RACERS: usize = 8;
    let h = Harness::start(|_| {}).await;
    let key = new_key();
    let url = h.directory().new_account.clone();
    let body = payload(json!({ "termsOfServiceAgreed": true }));
    let mut bodies = Vec::new();
    for _ in 0..RACERS {
        bodies.push(jws(&key, None, &h.nonce().await, &url, &body));
    }
    let replies = h.race(&url, bodies).await;
    let mut created = 0;
    let mut locations = HashSet::new();
    for reply in replies {
        match reply.status {
            201 => created += 1,
            200 => {}
            other => panic!("HTTP {other}: {}", String::from_utf8_lossy(&reply.body)),
        }
        locations.insert(reply.header("location").expect("Location").to_owned());
    }
    assert_eq!(created, 1, "one 201, the rest 200");
    assert_eq!(locations.len(), 1, "one account URL: {locations:?}");
}

/// Key policy: an Ed25519 account key of small order (here the identity
/// point) lets anyone forge signatures — R = identity, S = 0 verifies for
/// every message. newAccount refuses it with badPublicKey.
#[tokio::test(flavor = "multi_thread")]
async fn a_small_order_ed25519_key_is_a_bad_public_key() {
    use cairn_proto::base64url;

    let h = Harness::start(|_| {}).await;
    let url = h.directory().new_account.clone();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let protected = json!({
        "alg": "EdDSA",
        "jwk": {"kty": "OKP", "crv": "Ed25519", "x": base64url::encode(identity)},
        "nonce": h.nonce().await,
        "url": url,
    });
    let payload = json!({"termsOfServiceAgreed": true});
    let mut signature = identity.to_vec();
    signature.extend_from_slice(&[0u8; 32]);
    let body = json!({
        "protected": base64url::encode(protected.to_string()),
        "payload": base64url::encode(payload.to_string()),
        "signature": base64url::encode(signature),
    });
    let reply = h.post_jws(&url, body.to_string()).await;
    let problem = reply.problem(400, ProblemType::BadPublicKey);
    let detail = problem.detail.unwrap_or_default();
    assert!(detail.contains("small order"), "{detail}");
}

/// A key on the blocked list cannot become an account's key either.
#[tokio::test(flavor = "multi_thread")]
async fn key_change_to_a_blocked_key_is_a_bad_public_key() {
    use cairn_ca::policy::keys;
    use cairn_store::{BlockedKey, Storage as _};

    let h = Harness::start(|_| {}).await;
    let mut account = h.account().await;
    let new_key = new_key();
    let spki = keys::spki_der(new_key.public_jwk());
    let blocked = BlockedKey {
        spki_sha256: keys::spki_sha256(&spki),
        reason: "blocked by an operator: test".into(),
        blocked_at: time::OffsetDateTime::now_utc(),
    };
    assert!(h.store.block_key(&blocked).await.unwrap());
    let err = account
        .change_key(new_key)
        .await
        .expect_err("the new key is blocked");
    assert!(err.is_problem(&ProblemType::BadPublicKey), "{err}");
}
