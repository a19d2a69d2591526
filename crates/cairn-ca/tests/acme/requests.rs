//! RFC 8555 §6.2–§6.5: what the CA checks on every request before it
//! looks at what the request asks — content type, size, JWS, `url`,
//! nonce, key — checked over the wire with hand-built requests.

use cairn_proto::objects::NewOrder;
use cairn_proto::{ProblemType, base64url};
use serde_json::json;

use crate::harness::{Harness, Reply, dns, jws, new_key};

const NEW_ACCOUNT: &[u8] = br#"{"termsOfServiceAgreed":true}"#;

fn order_payload(name: &str) -> Vec<u8> {
    serde_json::to_vec(&NewOrder::new(dns(&[name]))).unwrap()
}

/// §6.2: "...the request MUST have the Content-Type header field set to
/// application/jose+json"; 415 otherwise.
#[tokio::test(flavor = "multi_thread")]
async fn wrong_content_type_is_415_malformed() {
    let h = Harness::start(|_| {}).await;
    let url = h.directory().new_account.clone();
    let body = jws(&new_key(), None, &h.nonce().await, &url, NEW_ACCOUNT);
    for content_type in ["application/json", "text/plain", "application/jose"] {
        let reply = h
            .post_raw(&url, content_type, body.clone().into_bytes())
            .await;
        reply.problem(415, ProblemType::Malformed);
    }
    // Parameters after the media type are fine.
    let reply = h
        .post_raw(
            &url,
            "application/jose+json; charset=utf-8",
            body.into_bytes(),
        )
        .await;
    assert_eq!(
        reply.status,
        201,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn body_over_the_size_cap_is_413() {
    let h = Harness::start(|c| c.server.max_body_bytes = 8 * 1024).await;
    let url = h.directory().new_account.clone();
    let padding = "x".repeat(8 * 1024);
    let payload = serde_json::to_vec(
        &json!({ "termsOfServiceAgreed": true, "contact": [], "padding": padding }),
    )
    .unwrap();
    let body = jws(&new_key(), None, &h.nonce().await, &url, &payload);
    assert!(body.len() > 8 * 1024);
    let reply = h.post_jws(&url, body).await;
    reply.problem(413, ProblemType::Malformed);
    assert!(reply.nonce().is_some(), "a nonce with the 413");
}

/// §6.4: the JWS `url` must be the URL the request was sent to.
#[tokio::test(flavor = "multi_thread")]
async fn jws_url_other_than_the_request_url_is_unauthorized() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let new_order = h.directory().new_order.clone();
    let elsewhere = h.directory().new_account.clone();
    let nonce = h.nonce().await;
    let body = jws(
        account.key(),
        Some(account.url()),
        &nonce,
        &elsewhere,
        &order_payload("url.test"),
    );
    let reply = h.post_jws(&new_order, body).await;
    let problem = reply.problem(403, ProblemType::Unauthorized);
    assert!(
        problem.detail.unwrap_or_default().contains(&elsewhere),
        "the detail names the JWS url"
    );
}

/// §6.5: a nonce is good once; the `badNonce` answer brings a fresh one
/// that works.
#[tokio::test(flavor = "multi_thread")]
async fn reused_nonce_is_bad_nonce_and_its_fresh_nonce_works() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let url = h.directory().new_order.clone();
    let payload = order_payload("nonce.test");
    let nonce = h.nonce().await;
    let sign = |nonce: &str| jws(account.key(), Some(account.url()), nonce, &url, &payload);
    let first = h.post_jws(&url, sign(&nonce)).await;
    assert_eq!(first.status, 201);
    let replay = h.post_jws(&url, sign(&nonce)).await;
    replay.problem(400, ProblemType::BadNonce);
    let fresh = replay.nonce().expect("a fresh nonce with badNonce");
    assert_ne!(fresh, nonce);
    let retry = h.post_jws(&url, sign(fresh)).await;
    assert_eq!(
        retry.status,
        201,
        "{}",
        String::from_utf8_lossy(&retry.body)
    );

    // A nonce the CA never issued fares no better.
    let forged = h.post_jws(&url, sign(&base64url::encode([7u8; 16]))).await;
    forged.problem(400, ProblemType::BadNonce);
}

/// §6.2: a `kid` that names no account.
#[tokio::test(flavor = "multi_thread")]
async fn unknown_kid_is_account_does_not_exist() {
    let h = Harness::start(|_| {}).await;
    let url = h.directory().new_order.clone();
    let kid = format!("{}/acme/acct/424242", h.base_url());
    let reply = h
        .post_signed(&url, &new_key(), Some(&kid), &order_payload("kid.test"))
        .await;
    reply.problem(400, ProblemType::AccountDoesNotExist);
    // Not even an account URL of this CA.
    let reply = h
        .post_signed(
            &url,
            &new_key(),
            Some("https://elsewhere.test/acme/acct/1"),
            &order_payload("kid.test"),
        )
        .await;
    reply.problem(400, ProblemType::AccountDoesNotExist);
}

/// §7.3.6: "...the server MUST NOT accept further requests authorized by
/// that account's key", answering "401 (Unauthorized) with an error of
/// type unauthorized" — checked where the `kid` is looked up.
#[tokio::test(flavor = "multi_thread")]
async fn kid_of_a_deactivated_account_is_unauthorized() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    account.deactivate().await.expect("deactivate");
    let reply = h
        .post_as(
            &account,
            &h.directory().new_order,
            &order_payload("gone.test"),
        )
        .await;
    reply.problem(401, ProblemType::Unauthorized);
}

/// A request whose signature does not verify leaves its nonce unspent, so
/// someone who sees a client's nonce cannot burn it with a forgery.
#[tokio::test(flavor = "multi_thread")]
async fn a_forged_request_does_not_spend_the_nonce() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let url = h.directory().new_order.clone();
    let payload = order_payload("forged.test");
    let nonce = h.nonce().await;
    let forged = jws(&new_key(), Some(account.url()), &nonce, &url, &payload);
    let reply = h.post_jws(&url, forged).await;
    assert!(
        (400..500).contains(&reply.status) && reply.status != 201,
        "the forgery is refused: {}",
        String::from_utf8_lossy(&reply.body)
    );
    let problem = reply.json();
    assert_ne!(
        problem["type"], "urn:ietf:params:acme:error:badNonce",
        "{problem}"
    );
    let genuine = jws(account.key(), Some(account.url()), &nonce, &url, &payload);
    let reply = h.post_jws(&url, genuine).await;
    assert_eq!(
        reply.status,
        201,
        "the nonce still works: {}",
        String::from_utf8_lossy(&reply.body)
    );
}

/// §6.2: only newAccount and revokeCert take `jwk`; the rest take `kid`.
#[tokio::test(flavor = "multi_thread")]
async fn jwk_on_a_kid_only_endpoint_is_malformed() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let reply = h
        .post_signed(
            &h.directory().new_order,
            account.key(),
            None,
            &order_payload("jwk.test"),
        )
        .await;
    reply.problem(400, ProblemType::Malformed);
    // And the other way round: kid on newAccount.
    let reply = h
        .post_signed(
            &h.directory().new_account,
            account.key(),
            Some(account.url()),
            NEW_ACCOUNT,
        )
        .await;
    reply.problem(400, ProblemType::Malformed);
}

/// §6.2: `alg` none is refused with `badSignatureAlgorithm`, listing the
/// algorithms the CA takes.
#[tokio::test(flavor = "multi_thread")]
async fn alg_none_is_bad_signature_algorithm_with_the_algorithms() {
    let h = Harness::start(|_| {}).await;
    let url = h.directory().new_account.clone();
    let key = new_key();
    for alg in ["none", "HS256"] {
        let protected = json!({
            "alg": alg,
            "jwk": key.public_jwk().to_json(),
            "nonce": h.nonce().await,
            "url": url,
        });
        let body = json!({
            "protected": base64url::encode(protected.to_string()),
            "payload": base64url::encode(NEW_ACCOUNT),
            "signature": "",
        });
        let reply = h.post_jws(&url, body.to_string()).await;
        let problem = reply.problem(400, ProblemType::BadSignatureAlgorithm);
        let algorithms = problem.algorithms.expect("an algorithms list");
        for expected in ["ES256", "RS256"] {
            assert!(
                algorithms.iter().any(|a| a == expected),
                "{expected} in {algorithms:?}"
            );
        }
        assert!(!algorithms.iter().any(|a| a == alg));
    }
}

/// §6.3: resources read with POST-as-GET refuse GET with 405.
#[tokio::test(flavor = "multi_thread")]
async fn get_on_a_post_as_get_resource_is_405() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let order = account
        .new_order(&NewOrder::new(dns(&["get.test"])))
        .await
        .expect("newOrder");
    let authz = order.state().authorizations[0].clone();
    for url in [
        account.url(),
        order.url(),
        authz.as_str(),
        &h.directory().new_order,
    ] {
        let reply = h.get(url).await;
        reply.problem(405, ProblemType::Malformed);
        assert!(
            reply.header("allow").is_some_and(|a| a.contains("POST")),
            "{url}: Allow"
        );
    }
}

/// §6.3: where POST-as-GET is required, the payload must be empty.
#[tokio::test(flavor = "multi_thread")]
async fn payload_where_post_as_get_is_required_is_malformed() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let order = account
        .new_order(&NewOrder::new(dns(&["pag.test"])))
        .await
        .expect("newOrder");
    for payload in [&b"{}"[..], b"\"\"", b"null"] {
        let reply = h.post_as(&account, order.url(), payload).await;
        reply.problem(400, ProblemType::Malformed);
    }
    let orders = account
        .info()
        .await
        .expect("account")
        .orders
        .expect("orders URL");
    let reply = h.post_as(&account, &orders, b"{}").await;
    reply.problem(400, ProblemType::Malformed);
    assert_eq!(h.post_as(&account, order.url(), b"").await.status, 200);
}

/// §6.2: the signature must verify under the account's key.
#[tokio::test(flavor = "multi_thread")]
async fn signature_by_another_key_is_refused() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let impostor = new_key();
    let reply = h
        .post_signed(
            &h.directory().new_order,
            &impostor,
            Some(account.url()),
            &order_payload("sig.test"),
        )
        .await;
    reply.problem(400, ProblemType::Malformed);
}

/// §6.7: an error answer is a problem document — a method the resource
/// does not take included.
#[tokio::test(flavor = "multi_thread")]
async fn wrong_method_is_405_with_a_problem_document() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let body = || jws(&new_key(), None, "AAAAAAAAAAAAAAAAAAAAAA", "x", b"{}");
    for (method, url) in [
        (reqwest::Method::POST, h.directory_url().to_owned()),
        (reqwest::Method::POST, h.directory().new_nonce.clone()),
        (reqwest::Method::PUT, h.directory().new_order.clone()),
        (reqwest::Method::DELETE, account.url().to_owned()),
    ] {
        let request = h
            .http
            .request(method.clone(), &url)
            .header("content-type", "application/jose+json")
            .body(body());
        let reply = Reply::read(request).await;
        reply.problem(405, ProblemType::Malformed);
        assert!(reply.nonce().is_some(), "{method} {url}: a nonce");
        // RFC 9110 §15.5.6: a 405 lists the methods that are allowed.
        assert!(reply.header("allow").is_some(), "{method} {url}: Allow");
    }
}
