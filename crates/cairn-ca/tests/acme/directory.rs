//! RFC 8555 §7.1.1 (directory), §7.2 (newNonce), §6.5 (a fresh nonce on
//! every POST response, errors included) and §7.1 (`Link: rel="index"`).

use cairn_proto::ProblemType;
use cairn_proto::objects::NewOrder;

use crate::harness::{Harness, Reply, dns, jws, new_key};

const NEW_ACCOUNT: &[u8] = br#"{"termsOfServiceAgreed":true}"#;

#[tokio::test(flavor = "multi_thread")]
async fn directory_lists_every_endpoint_and_the_meta() {
    let h = Harness::start(|c| {
        c.issuance.terms_of_service = Some("https://ca.test/terms".into());
        c.issuance.website = Some("https://ca.test/".into());
        c.validation.caa_identities = vec!["ca.test".into()];
    })
    .await;
    let reply = h.get(h.directory_url()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    let base = h.base_url();
    for (field, path) in [
        ("newNonce", "/acme/new-nonce"),
        ("newAccount", "/acme/new-account"),
        ("newOrder", "/acme/new-order"),
        ("revokeCert", "/acme/revoke-cert"),
        ("keyChange", "/acme/key-change"),
        ("renewalInfo", "/acme/renewal-info"),
    ] {
        assert_eq!(body[field], format!("{base}{path}"), "{field} in {body}");
    }
    assert!(
        body.get("newAuthz").is_none(),
        "no pre-authorization (§7.4.1): {body}"
    );
    let meta = &body["meta"];
    assert_eq!(meta["termsOfService"], "https://ca.test/terms");
    assert_eq!(meta["website"], "https://ca.test/");
    assert_eq!(meta["caaIdentities"], serde_json::json!(["ca.test"]));
    assert_eq!(meta["externalAccountRequired"], false);
    assert!(
        reply.links("index").is_empty(),
        "the directory does not link to itself"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn directory_meta_leaves_out_what_is_not_configured() {
    let h = Harness::start(|_| {}).await;
    let body = h.get(h.directory_url()).await.json();
    let meta = body["meta"].as_object().expect("a meta object");
    assert!(!meta.contains_key("termsOfService"), "{body}");
    assert!(!meta.contains_key("website"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn new_nonce_head_is_200_with_a_nonce_and_no_store() {
    let h = Harness::start(|_| {}).await;
    let reply = h.head(&h.directory().new_nonce).await;
    assert_eq!(reply.status, 200);
    assert_fresh_nonce_headers(&reply);
    let again = h.head(&h.directory().new_nonce).await;
    assert_ne!(reply.nonce(), again.nonce(), "each nonce is new");
}

#[tokio::test(flavor = "multi_thread")]
async fn new_nonce_get_is_204_with_a_nonce_and_no_store() {
    let h = Harness::start(|_| {}).await;
    let reply = h.get(&h.directory().new_nonce).await;
    assert_eq!(reply.status, 204);
    assert!(reply.body.is_empty());
    assert_fresh_nonce_headers(&reply);
}

/// §6.5: "The server MUST include a Replay-Nonce header field in every
/// successful response to a POST request" — and the nonce is usable.
#[tokio::test(flavor = "multi_thread")]
async fn successful_posts_carry_a_fresh_nonce() {
    let h = Harness::start(|_| {}).await;
    let key = new_key();
    let url = h.directory().new_account.clone();
    let created = h.post_signed(&url, &key, None, NEW_ACCOUNT).await;
    assert_eq!(created.status, 201);
    let nonce = created.nonce().expect("Replay-Nonce on 201");
    // The nonce given with the answer is good for the next request.
    let again = h
        .post_jws(&url, jws(&key, None, nonce, &url, NEW_ACCOUNT))
        .await;
    assert_eq!(again.status, 200);
    assert!(again.nonce().is_some(), "Replay-Nonce on 200");
}

/// §6.5: "...and it SHOULD provide it in error responses as well" — Cairn
/// does on every one (DESIGN: every non-GET response). Each nonce handed
/// out with an error must then work.
#[tokio::test(flavor = "multi_thread")]
async fn error_responses_carry_a_fresh_nonce() {
    let h = Harness::start(|_| {}).await;
    let url = h.directory().new_account.clone();
    let key = new_key();

    let not_found = h
        .post_signed(
            &format!("{}/acme/nothing-here", h.base_url()),
            &key,
            None,
            b"",
        )
        .await;
    not_found.problem(404, ProblemType::Malformed);

    let malformed = h.post_jws(&url, "{not json".into()).await;
    malformed.problem(400, ProblemType::Malformed);

    let nonce = h.nonce().await;
    let first = h
        .post_jws(&url, jws(&key, None, &nonce, &url, NEW_ACCOUNT))
        .await;
    assert_eq!(first.status, 201);
    let replayed = h
        .post_jws(&url, jws(&key, None, &nonce, &url, NEW_ACCOUNT))
        .await;
    replayed.problem(400, ProblemType::BadNonce);

    for (what, reply) in [
        ("404", &not_found),
        ("malformed", &malformed),
        ("badNonce", &replayed),
    ] {
        let nonce = reply
            .nonce()
            .unwrap_or_else(|| panic!("no Replay-Nonce with the {what} error"));
        let used = h
            .post_jws(&url, jws(&key, None, nonce, &url, NEW_ACCOUNT))
            .await;
        assert_eq!(
            used.status,
            200,
            "the nonce of the {what} error works: {:?}",
            String::from_utf8_lossy(&used.body)
        );
    }
}

/// §7.1: every response but the directory's links to the directory.
#[tokio::test(flavor = "multi_thread")]
async fn responses_link_to_the_directory() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let order = account
        .new_order(&NewOrder::new(dns(&["index.test"])))
        .await
        .expect("newOrder");
    let new_account = h.directory().new_account.clone();
    let replies = [
        ("HEAD newNonce", h.head(&h.directory().new_nonce).await),
        ("GET newNonce", h.get(&h.directory().new_nonce).await),
        (
            "newAccount",
            h.post_signed(&new_account, &new_key(), None, NEW_ACCOUNT)
                .await,
        ),
        ("order", h.post_as(&account, order.url(), b"").await),
        ("GET order (405)", h.get(order.url()).await),
        (
            "unknown URL (404)",
            h.get(&format!("{}/acme/nothing-here", h.base_url())).await,
        ),
    ];
    for (what, reply) in &replies {
        assert_eq!(
            reply.links("index"),
            [h.directory_url()],
            "{what}: HTTP {}",
            reply.status
        );
    }
}

fn assert_fresh_nonce_headers(reply: &Reply) {
    let nonce = reply.nonce().expect("a Replay-Nonce header");
    assert!(
        nonce.len() >= 16
            && nonce
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "a base64url nonce: {nonce:?}"
    );
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.links("index").len(), 1, "Link rel=\"index\"");
}
