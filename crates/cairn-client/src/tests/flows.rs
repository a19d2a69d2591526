//! Whole flows against the scripted server: matching by identifier,
//! failures carrying their problems, finalize and download, account
//! management.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::http::Method;
use cairn_proto::jws::{JwsKind, KeyRef, UnverifiedJws};
use cairn_proto::objects::{ChallengeType, NewOrder, OrderStatus};
use cairn_proto::{Identifier, KeyPair, KeyType, ProblemType, base64url};
use serde_json::{Value, json};

use super::mock::{Mock, Reply, Req};
use super::{account, order_json, token};
use crate::testing::TestPki;
use crate::{
    Account, CertificateChain, Error, check_certificate, csr, revoke_with_certificate_key,
};

fn challenge(req: &Req, kind: &str, path: &str, status: &str) -> Value {
    json!({ "type": kind, "url": req.url(path), "status": status, "token": token(&path.replace('/', "")) })
}

#[tokio::test]
async fn shuffled_authorizations_and_challenges_are_matched_by_identifier() {
    let answered = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let seen = Arc::clone(&answered);
    let mock = Mock::start(move |req| {
        let done = seen.lock().expect("lock").clone();
        let authz = |name: &str, id: &str, order: [&str; 3]| {
            let status = if done.contains(&format!("/chall/{id}/http")) {
                "valid"
            } else {
                "pending"
            };
            let challenges: Vec<Value> = order
                .iter()
                .map(|kind| {
                    let short = kind.split('-').next().expect("type");
                    challenge(req, kind, &format!("/chall/{id}/{short}"), status)
                })
                .collect();
            Reply::json(
                200,
                json!({
                    "status": status,
                    "identifier": { "type": "dns", "value": name },
                    "challenges": challenges,
                }),
            )
        };
        match req.path.as_str() {
            "/new-order" => Some(
                // Authorizations listed in the reverse of the identifiers.
                Reply::json(
                    201,
                    order_json(
                        req,
                        "pending",
                        &["a.example", "b.example"],
                        &["/authz/b", "/authz/a"],
                    ),
                )
                .header("location", req.url("/order/1")),
            ),
            "/authz/a" => Some(authz(
                "a.example",
                "a",
                ["tls-alpn-01", "dns-01", "http-01"],
            )),
            "/authz/b" => Some(authz(
                "b.example",
                "b",
                ["http-01", "tls-alpn-01", "dns-01"],
            )),
            path if path.starts_with("/chall/") => {
                seen.lock().expect("lock").insert(path.to_owned());
                let kind = if path.ends_with("/http") {
                    "http-01"
                } else {
                    "other"
                };
                Some(Reply::json(200, challenge(req, kind, path, "processing")))
            }
            "/order/1" => {
                let status = if done.len() == 2 { "ready" } else { "pending" };
                Some(Reply::json(
                    200,
                    order_json(
                        req,
                        status,
                        &["a.example", "b.example"],
                        &["/authz/b", "/authz/a"],
                    ),
                ))
            }
            _ => None,
        }
    })
    .await;
    let (_, account) = account(&mock).await;
    let names = vec![Identifier::dns("a.example"), Identifier::dns("b.example")];
    let mut order = account
        .new_order(&NewOrder::new(names.clone()))
        .await
        .expect("order");
    let authzs = order.authorizations().await.expect("authorizations");
    assert_eq!(authzs[0].identifier().value, "b.example", "served reversed");
    for name in &names {
        let authz = authzs
            .iter()
            .find(|a| a.is_for(name))
            .expect("an authz per name");
        let prepared = authz
            .prepare(&account, &ChallengeType::Http01)
            .expect("http-01");
        let id = &name.value[..1];
        assert_eq!(prepared.url, format!("{}/chall/{id}/http", mock.base));
        assert_eq!(prepared.token.as_str(), token(&format!("chall{id}http")));
        assert_eq!(prepared.identifier, *name);
        assert_eq!(
            prepared.http01_path(),
            format!("/.well-known/acme-challenge/{}", prepared.token)
        );
        let challenge = account.respond(&prepared.url).await.expect("respond");
        assert_eq!(challenge.kind, ChallengeType::Http01);
        let state = account.poll_authorization(&authz.url).await.expect("valid");
        assert!(authz.is_for(&state.identifier));
    }
    assert_eq!(
        *answered.lock().expect("lock"),
        BTreeSet::from(["/chall/a/http".to_owned(), "/chall/b/http".to_owned()])
    );
    assert_eq!(order.poll_ready().await.expect("ready"), OrderStatus::Ready);
}

#[tokio::test]
async fn failures_carry_the_identifier_and_the_servers_problem() {
    let mock = Mock::start(|req| match req.path.as_str() {
        "/new-order" => Some(
            Reply::json(
                201,
                order_json(req, "pending", &["x.example"], &["/authz/x"]),
            )
            .header("location", req.url("/order/1")),
        ),
        "/authz/x" => {
            let mut failed = challenge(req, "http-01", "/chall/x", "invalid");
            failed["error"] = json!({
                "type": "urn:ietf:params:acme:error:incorrectResponse",
                "detail": "the key authorization served was wrong",
            });
            Some(Reply::json(
                200,
                json!({
                    "status": "invalid",
                    "identifier": { "type": "dns", "value": "x.example" },
                    "challenges": [failed],
                }),
            ))
        }
        "/order/1" => {
            let mut order = order_json(req, "invalid", &["x.example"], &["/authz/x"]);
            order["error"] = json!({
                "type": "urn:ietf:params:acme:error:unauthorized",
                "detail": "authorization for x.example failed",
            });
            Some(Reply::json(200, order))
        }
        _ => None,
    })
    .await;
    let (_, account) = account(&mock).await;
    let mut order = account
        .new_order(&NewOrder::new(vec![Identifier::dns("x.example")]))
        .await
        .expect("order");
    let err = account
        .poll_authorization(&order.state().authorizations[0])
        .await
        .expect_err("invalid");
    assert!(err.is_problem(&ProblemType::IncorrectResponse), "{err:?}");
    assert_eq!(
        err.to_string(),
        "authorization for dns:x.example is invalid: incorrectResponse: the key authorization served was wrong"
    );
    let err = order.poll_ready().await.expect_err("invalid");
    assert!(matches!(err, Error::OrderInvalid { .. }), "{err:?}");
    assert!(err.is_problem(&ProblemType::Unauthorized), "{err:?}");
    assert!(err.to_string().contains("x.example failed"), "{err}");
}

#[tokio::test]
async fn finalize_poll_and_download_with_alternates_then_check() {
    let pki = TestPki::new("mock");
    let other_pki = TestPki::new("alternate");
    let names = vec![Identifier::dns("a.example")];
    let cert_key = KeyPair::generate(KeyType::EcdsaP256).expect("key");
    let wrong_key = KeyPair::generate(KeyType::EcdsaP256).expect("key");
    // The default chain is for the wrong key; the first alternate is right.
    let wrong_chain = pki.issue(&names, &wrong_key);
    let right_chain = other_pki.issue(&names, &cert_key);
    let root_pem = other_pki.root_pem();
    let csr_seen = Arc::new(Mutex::new(None::<Vec<u8>>));
    let csr_log = Arc::clone(&csr_seen);
    let polls = Arc::new(Mutex::new(0));
    let mock = Mock::start(move |req| {
        let pem = |chain: &str| Reply::raw(200, "application/pem-certificate-chain", chain);
        match req.path.as_str() {
            "/new-order" => Some(
                Reply::json(201, order_json(req, "ready", &["a.example"], &["/authz/1"]))
                    .header("location", req.url("/order/1")),
            ),
            "/order/1/finalize" => {
                let der = base64url::decode(req.payload()["csr"].as_str().expect("csr"))
                    .expect("base64url");
                *csr_log.lock().expect("lock") = Some(der);
                Some(Reply::json(
                    200,
                    order_json(req, "processing", &["a.example"], &["/authz/1"]),
                ))
            }
            "/order/1" => {
                let mut n = polls.lock().expect("lock");
                *n += 1;
                let mut order = order_json(
                    req,
                    if *n < 2 { "processing" } else { "valid" },
                    &["a.example"],
                    &["/authz/1"],
                );
                if *n >= 2 {
                    order["certificate"] = json!(req.url("/cert/1"));
                }
                Some(Reply::json(200, order).header("retry-after", "0"))
            }
            "/cert/1" => Some(
                pem(&wrong_chain)
                    .header(
                        "link",
                        r#"</cert/1/alt/1>;rel="alternate", <https://elsewhere.test/>;rel=index"#,
                    )
                    .header("link", "</cert/1/alt/2>; rel=alternate"),
            ),
            "/cert/1/alt/1" => Some(pem(&right_chain)),
            "/cert/1/alt/2" => Some(pem(&right_chain)),
            _ => None,
        }
    })
    .await;
    let (_, account) = account(&mock).await;
    let mut order = account
        .new_order(&NewOrder::new(names.clone()))
        .await
        .expect("order");
    assert_eq!(order.poll_ready().await.expect("ready"), OrderStatus::Ready);
    let err = order.certificate().await.expect_err("not valid yet");
    assert!(matches!(err, Error::UnexpectedStatus { .. }), "{err:?}");

    let csr_der = csr(&names, &cert_key).expect("csr");
    order.finalize(&csr_der).await.expect("finalize");
    assert_eq!(order.state().status, OrderStatus::Processing);
    assert_eq!(
        csr_seen.lock().expect("lock").as_deref(),
        Some(csr_der.as_slice())
    );
    order.poll_valid().await.expect("valid");

    let chain = order.certificate().await.expect("download");
    assert_eq!(chain.certificates_der.len(), 2);
    assert_eq!(chain.alternates.len(), 2);
    let cert_requests: Vec<_> = mock
        .log()
        .into_iter()
        .filter(|l| l.path.starts_with("/cert/"))
        .collect();
    assert_eq!(cert_requests.len(), 3);
    for entry in cert_requests {
        assert_eq!(
            entry.accept.as_deref(),
            Some("application/pem-certificate-chain")
        );
    }

    let err = check_certificate(&chain, &names, &cert_key, None).expect_err("wrong key");
    assert!(matches!(err, Error::CertificateRefused(_)), "{err:?}");
    let err = check_certificate(&chain, &[Identifier::dns("b.example")], &wrong_key, None)
        .expect_err("wrong names");
    assert!(err.to_string().contains("missing dns:b.example"), "{err}");

    let alternate = CertificateChain::from_pem(&chain.alternates[0]).expect("pem");
    check_certificate(&alternate, &names, &cert_key, Some(root_pem.as_bytes()))
        .expect("the alternate is right");
}

#[tokio::test]
async fn orders_follow_next_links_and_a_circle_is_caught() {
    let mock = Mock::start(|req| {
        let page = |orders: &[&str]| {
            let urls: Vec<String> = orders.iter().map(|o| req.url(o)).collect();
            Reply::json(200, json!({ "orders": urls }))
        };
        match req.path.as_str() {
            "/acct/1/orders" => {
                Some(page(&["/o/1", "/o/2"]).header("link", r#"</acct/1/orders/p2>; rel="next""#))
            }
            "/acct/1/orders/p2" => Some(
                page(&["/o/3"])
                    .header("link", r#"<https://docs.test/>;rel="help""#)
                    .header("link", "</acct/1/orders/p3>;rel=next"),
            ),
            "/acct/1/orders/p3" => Some(page(&["/o/4"])),
            _ => None,
        }
    })
    .await;
    let (_, account) = account(&mock).await;
    let orders = account.orders().await.expect("orders");
    let expected: Vec<String> = ["/o/1", "/o/2", "/o/3", "/o/4"]
        .iter()
        .map(|o| format!("{}{o}", mock.base))
        .collect();
    assert_eq!(orders, expected);

    let mock = Mock::start(|req| {
        (req.path == "/acct/1/orders").then(|| {
            Reply::json(200, json!({ "orders": [] })).header("link", "</acct/1/orders>;rel=next")
        })
    })
    .await;
    let (_, circular) = super::account(&mock).await;
    let err = circular.orders().await.expect_err("circle");
    assert!(matches!(err, Error::InvalidResponse { .. }), "{err:?}");
}

#[tokio::test]
async fn key_change_signs_inner_with_the_new_key_and_outer_with_the_old() {
    let mock = Mock::start(|req| {
        if !req.is(Method::POST, "/key-change") {
            return None;
        }
        let outer = req.jws.as_ref().expect("verified with the old key");
        assert!(matches!(outer.header().key, KeyRef::Kid(_)));
        let inner = UnverifiedJws::parse(outer.payload(), JwsKind::KeyChangeInner)
            .expect("inner JWS")
            .verify_with_embedded_jwk()
            .expect("signed by the new key");
        assert_eq!(inner.header().url, req.url("/key-change"));
        let payload: Value = inner.payload_json().expect("payload");
        assert_eq!(payload["account"], json!(req.url("/acct/1")));
        let mut registered = req.account_key.lock().expect("key");
        assert_eq!(
            Some(&payload["oldKey"]),
            registered.as_ref().map(|k| k.to_json()).as_ref()
        );
        *registered = Some(inner.key().clone());
        Some(Reply::json(200, json!({ "status": "valid" })))
    })
    .await;
    let (_, mut account) = account(&mock).await;
    let before = account.clone();
    let new_key = KeyPair::generate(KeyType::EcdsaP384).expect("key");
    let new_jwk = new_key.public_jwk().clone();
    account.change_key(new_key).await.expect("rolled over");
    assert_eq!(account.key().public_jwk(), &new_jwk);
    assert_eq!(account.credentials().account_url(), before.url());
    account.info().await.expect("the new key is accepted");
    let err = before.info().await.expect_err("the old key is not");
    assert!(err.is_problem(&ProblemType::Malformed), "{err:?}");
}

#[tokio::test]
async fn lookup_credentials_and_revocation() {
    let revocations = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&revocations);
    let mock = Mock::start(move |req| {
        if !req.is(Method::POST, "/revoke") {
            return None;
        }
        let jws = req.jws.as_ref().expect("verified");
        let by = match &jws.header().key {
            KeyRef::Kid(kid) => kid.clone(),
            KeyRef::Jwk(jwk) => jwk.thumbprint(),
        };
        let payload = req.payload();
        log.lock().expect("lock").push((
            by,
            payload["certificate"].clone(),
            payload["reason"].clone(),
        ));
        Some(Reply::raw(200, "application/json", ""))
    })
    .await;
    let client = mock.client().await;
    let key = KeyPair::generate(KeyType::Ed25519).expect("key");
    assert!(
        Account::find_existing(&client, key)
            .await
            .expect("lookup")
            .is_none()
    );

    let (_, account) = account(&mock).await;
    let again = KeyPair::from_pkcs8_der(&account.key().to_pkcs8_der().expect("der")).expect("key");
    let found = Account::find_existing(&client, again)
        .await
        .expect("lookup")
        .expect("exists");
    assert_eq!(found.url(), account.url());

    let saved = serde_json::to_string(&account.credentials()).expect("json");
    let debug = format!("{:?}", account.credentials());
    assert!(!debug.contains(&base64url::encode(
        account.key().to_pkcs8_der().expect("der")
    )));
    let restored = Account::from_credentials(&client, serde_json::from_str(&saved).expect("parse"))
        .expect("restored");
    assert_eq!(restored.url(), account.url());
    assert_eq!(restored.key().public_jwk(), account.key().public_jwk());
    restored.info().await.expect("usable");

    let elsewhere = Mock::start(|_| None).await;
    let other_client = elsewhere.client().await;
    let err =
        Account::from_credentials(&other_client, account.credentials()).expect_err("other CA");
    assert!(matches!(err, Error::Config(_)), "{err:?}");

    let cert_key = KeyPair::generate(KeyType::EcdsaP256).expect("key");
    let chain = TestPki::new("revoke").issue(&[Identifier::dns("a.example")], &cert_key);
    let der = CertificateChain::from_pem(&chain)
        .expect("pem")
        .certificates_der[0]
        .clone();
    account
        .revoke(&der, Some(4))
        .await
        .expect("revoked by account");
    revoke_with_certificate_key(&client, &der, &cert_key, None)
        .await
        .expect("revoked by certificate key");
    let seen: BTreeMap<String, (Value, Value)> = revocations
        .lock()
        .expect("lock")
        .iter()
        .map(|(by, cert, reason)| (by.clone(), (cert.clone(), reason.clone())))
        .collect();
    let b64 = json!(base64url::encode(&der));
    assert_eq!(seen.get(account.url()), Some(&(b64.clone(), json!(4))));
    assert_eq!(
        seen.get(&cert_key.public_jwk().thumbprint()),
        Some(&(b64, Value::Null))
    );
}

#[tokio::test]
async fn external_account_binding_is_sent_and_verifies() {
    const MAC_KEY: &[u8] = b"a MAC key the CA handed out of band";
    let mock = Mock::start(|req| {
        if !req.is(Method::POST, "/new-acct") {
            return None;
        }
        let jws = req.jws.as_ref().expect("verified");
        let binding =
            cairn_proto::eab::UnverifiedEab::parse(&req.payload()["externalAccountBinding"])
                .expect("a binding");
        assert_eq!(binding.key_id(), "kid-1");
        binding
            .verify(MAC_KEY, jws.key(), &req.url("/new-acct"))
            .expect("binds the account key");
        None // The default route registers the account.
    })
    .await;
    let client = mock.client().await;
    let key = KeyPair::generate(KeyType::EcdsaP256).expect("key");
    let new = cairn_proto::objects::NewAccount {
        terms_of_service_agreed: Some(true),
        ..Default::default()
    };
    let (account, _) = Account::create(&client, key, &new, Some(("kid-1", MAC_KEY)))
        .await
        .expect("account");
    assert_eq!(account.url(), format!("{}/acct/1", mock.base));
}

#[tokio::test]
async fn authorizations_refresh_and_deactivate() {
    let mock = Mock::start(|req| {
        (req.path == "/authz/1").then(|| {
            let status = match req.payload() {
                Value::Null => "pending",
                update => {
                    assert_eq!(update, json!({ "status": "deactivated" }));
                    "deactivated"
                }
            };
            Reply::json(
                200,
                json!({
                    "status": status,
                    "identifier": { "type": "dns", "value": "a.example" },
                    "challenges": [challenge(req, "http-01", "/chall/1", "pending")],
                }),
            )
        })
    })
    .await;
    let (_, account) = account(&mock).await;
    let mut authz = account
        .authorization(&format!("{}/authz/1", mock.base))
        .await
        .expect("authz");
    assert!(authz.is_for(&Identifier::dns("a.example")));
    let err = authz
        .prepare(&account, &ChallengeType::Dns01)
        .expect_err("no dns-01 offered");
    assert_eq!(
        err.to_string(),
        "the CA offers no dns-01 challenge for dns:a.example (it offers: http-01)"
    );
    let state = authz.refresh(&account).await.expect("refresh");
    assert_eq!(
        state.status,
        cairn_proto::objects::AuthorizationStatus::Pending
    );
    let state = authz.deactivate(&account).await.expect("deactivate");
    assert_eq!(
        state.status,
        cairn_proto::objects::AuthorizationStatus::Deactivated
    );
    assert_eq!(
        authz.state.status,
        cairn_proto::objects::AuthorizationStatus::Deactivated
    );
}
