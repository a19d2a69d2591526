//! A server that misbehaves must get a typed error, never a panic, a hang
//! or an unbounded loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::Method;
use cairn_proto::objects::{ChallengeType, NewOrder, OrderStatus};
use cairn_proto::{Identifier, ProblemType};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::mock::{Mock, Reply, test_options};
use super::{account, order_json, token};
use crate::{AcmeClient, ClientOptions, Error};

fn new_order() -> NewOrder {
    NewOrder::new(vec![Identifier::dns("a.example")])
}

/// A route that answers newOrder with a pending order and counts polls of
/// it, replying to poll `n` with `poll(n)`.
fn order_route(
    polls: Arc<AtomicUsize>,
    poll: impl Fn(usize, &super::mock::Req) -> Reply + Send + Sync + 'static,
) -> impl Fn(&super::mock::Req) -> Option<Reply> + Send + Sync + 'static {
    move |req| {
        if req.is(Method::POST, "/new-order") {
            let body = order_json(req, "pending", &["a.example"], &["/authz/1"]);
            return Some(Reply::json(201, body).header("location", req.url("/order/1")));
        }
        if req.is(Method::POST, "/order/1") {
            return Some(poll(polls.fetch_add(1, Ordering::SeqCst), req));
        }
        None
    }
}

#[tokio::test]
async fn an_html_error_page_is_an_invalid_response_quoting_it() {
    let page = "<html>\n<head><title>500 Internal Server Error</title></head>\n<body><center><h1>500 Internal Server Error</h1></center></body></html>";
    let mock = Mock::start(move |req| {
        (req.is(Method::GET, "/dir") || req.is(Method::POST, "/new-order"))
            .then(|| Reply::raw(500, "text/html", page))
    })
    .await;
    let err = AcmeClient::new(&mock.directory_url(), test_options())
        .await
        .expect_err("refused");
    let msg = err.to_string();
    assert!(matches!(err, Error::InvalidResponse { .. }), "{err:?}");
    assert!(msg.contains("/dir"), "{msg}");
    assert!(
        msg.contains("HTTP 500 Internal Server Error, text/html"),
        "{msg}"
    );
    assert!(msg.contains("<h1>500 Internal Server Error</h1>"), "{msg}");
}

#[tokio::test]
async fn an_html_error_page_to_a_post_is_an_invalid_response() {
    let mock = Mock::start(|req| {
        req.is(Method::POST, "/new-order")
            .then(|| Reply::raw(502, "text/html", "<html><h1>Bad Gateway</h1></html>"))
    })
    .await;
    let (_, account) = account(&mock).await;
    let err = account.new_order(&new_order()).await.expect_err("refused");
    assert!(
        matches!(&err, Error::InvalidResponse { url, detail }
            if url.ends_with("/new-order") && detail.contains("502") && detail.contains("Bad Gateway")),
        "{err:?}"
    );
}

#[tokio::test]
async fn invalid_json_is_an_invalid_response() {
    let mock = Mock::start(|req| {
        req.is(Method::POST, "/new-order").then(|| {
            Reply::raw(201, "application/json", r#"{"status": "pending", "identif"#)
                .header("location", req.url("/order/1"))
        })
    })
    .await;
    let (_, account) = account(&mock).await;
    let err = account.new_order(&new_order()).await.expect_err("refused");
    assert!(
        matches!(&err, Error::InvalidResponse { detail, .. } if detail.contains("not the expected JSON")),
        "{err:?}"
    );

    let mock = Mock::start(|req| {
        req.is(Method::GET, "/dir")
            .then(|| Reply::json(200, json!({ "newNonce": 7 })))
    })
    .await;
    let err = AcmeClient::new(&mock.directory_url(), test_options())
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::InvalidResponse { .. }), "{err:?}");
}

#[tokio::test]
async fn an_oversize_body_with_a_length_is_refused() {
    let mock = Mock::start(|req| {
        req.is(Method::GET, "/dir")
            .then(|| Reply::raw(200, "application/json", vec![b' '; 2 * 1024 * 1024]))
    })
    .await;
    let err = AcmeClient::new(&mock.directory_url(), test_options())
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, Error::InvalidResponse { detail, .. } if detail.contains("1048576-byte limit")),
        "{err:?}"
    );
}

/// A server that streams an endless chunked body: the client must stop
/// reading at the cap rather than wait for the end.
#[tokio::test]
async fn an_endless_body_is_abandoned_at_the_cap() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&sent);
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut request = [0u8; 4096];
        let _ = socket.read(&mut request).await;
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
        if socket.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = format!("4000\r\n{}\r\n", " ".repeat(0x4000));
        while socket.write_all(chunk.as_bytes()).await.is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let options = ClientOptions {
        max_response_bytes: 64 * 1024,
        ..test_options()
    };
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        AcmeClient::new(&format!("http://{addr}/dir"), options),
    )
    .await
    .expect("the client stops reading instead of hanging");
    let err = result.expect_err("refused");
    assert!(
        matches!(&err, Error::InvalidResponse { detail, .. } if detail.contains("65536-byte limit")),
        "{err:?}"
    );
}

#[tokio::test]
async fn bad_nonce_twice_then_success_uses_the_nonces_from_the_errors() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&attempts);
    let mock = Mock::start(move |req| {
        if !req.is(Method::POST, "/new-order") {
            return None;
        }
        let nonce = req
            .jws
            .as_ref()
            .and_then(|j| j.header().nonce.clone())
            .unwrap_or_default();
        Some(match counter.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::problem(400, "badNonce", "stale").header("replay-nonce", "fromErrorOne"),
            1 if nonce == "fromErrorOne" => {
                Reply::problem(400, "badNonce", "stale").header("replay-nonce", "fromErrorTwo")
            }
            2 if nonce == "fromErrorTwo" => Reply::json(
                201,
                order_json(req, "pending", &["a.example"], &["/authz/1"]),
            )
            .header("location", req.url("/order/1")),
            n => Reply::problem(400, "malformed", &format!("attempt {n} used nonce {nonce}")),
        })
    })
    .await;
    let (client, account) = account(&mock).await;
    let order = account
        .new_order(&new_order())
        .await
        .expect("third time lucky");
    assert_eq!(order.url(), format!("{}/order/1", mock.base));
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(
        mock.count(Method::HEAD, "/nonce"),
        1,
        "only the very first request needed newNonce"
    );
    assert_eq!(client.pooled_nonces(), 1, "the success's nonce is pooled");
}

#[tokio::test]
async fn bad_nonce_forever_gives_up_with_the_problem() {
    let mock = Mock::start(|req| {
        req.is(Method::POST, "/new-order")
            .then(|| Reply::problem(400, "badNonce", "never good enough"))
    })
    .await;
    let (client, account) = account(&mock).await;
    let err = account.new_order(&new_order()).await.expect_err("gives up");
    assert!(err.is_problem(&ProblemType::BadNonce), "{err:?}");
    assert!(err.to_string().contains("never good enough"), "{err}");
    assert!(err.to_string().contains("/new-order"), "{err}");
    let tries = 1 + client.options().bad_nonce_retries as usize;
    assert_eq!(mock.count(Method::POST, "/new-order"), tries);
}

#[tokio::test]
async fn nonces_are_pooled_and_new_nonce_is_asked_only_when_the_pool_is_empty() {
    let mock = Mock::start(|req| {
        if req.is(Method::POST, "/acct/1") && req.payload().get("contact").is_some() {
            // No nonce in this reply, and a malformed one in the next kind.
            return Some(Reply::json(200, json!({ "status": "valid" })).without_nonce());
        }
        if req.is(Method::POST, "/acct/1") && req.payload()["status"] == "deactivated" {
            return Some(
                Reply::json(200, json!({ "status": "deactivated" }))
                    .header("replay-nonce", "not a valid nonce!"),
            );
        }
        None
    })
    .await;
    let (client, account) = account(&mock).await;
    for _ in 0..3 {
        account.info().await.expect("info");
    }
    assert_eq!(mock.count(Method::HEAD, "/nonce"), 1);
    let used: Vec<_> = mock.log().into_iter().filter_map(|l| l.nonce).collect();
    let unique: std::collections::HashSet<_> = used.iter().collect();
    assert_eq!(used.len(), unique.len(), "no nonce is used twice: {used:?}");

    account
        .update_contact(vec!["mailto:a@a.example".into()])
        .await
        .expect("update");
    assert_eq!(client.pooled_nonces(), 0);
    account.deactivate().await.expect("deactivate");
    assert_eq!(
        mock.count(Method::HEAD, "/nonce"),
        2,
        "pool empty: newNonce"
    );
    assert_eq!(client.pooled_nonces(), 0, "the malformed nonce was ignored");
    account.info().await.expect("info");
    assert_eq!(mock.count(Method::HEAD, "/nonce"), 3);
}

#[tokio::test]
async fn retry_after_zero_and_a_past_http_date_are_honoured() {
    let polls = Arc::new(AtomicUsize::new(0));
    let route = order_route(Arc::clone(&polls), |n, req| {
        let status = if n < 2 { "pending" } else { "ready" };
        let reply = Reply::json(200, order_json(req, status, &["a.example"], &["/authz/1"]));
        match n {
            0 => reply.header("retry-after", "0"),
            1 => reply.header("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT"),
            _ => reply,
        }
    });
    let mock = Mock::start(route).await;
    let (_, account) = account(&mock).await;
    let mut order = account.new_order(&new_order()).await.expect("order");
    let status = tokio::time::timeout(Duration::from_secs(5), order.poll_ready())
        .await
        .expect("quick")
        .expect("ready");
    assert_eq!(status, OrderStatus::Ready);
    assert_eq!(polls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_huge_retry_after_is_capped() {
    let polls = Arc::new(AtomicUsize::new(0));
    let route = order_route(Arc::clone(&polls), |n, req| {
        let status = if n < 2 { "pending" } else { "ready" };
        Reply::json(200, order_json(req, status, &["a.example"], &["/authz/1"]))
            .header("retry-after", "86400")
    });
    let mock = Mock::start(route).await;
    let options = ClientOptions {
        max_retry_after: Duration::from_millis(100),
        ..test_options()
    };
    let client = AcmeClient::new(&mock.directory_url(), options)
        .await
        .expect("client");
    let key = cairn_proto::KeyPair::generate(cairn_proto::KeyType::EcdsaP256).expect("key");
    let (account, _) = crate::Account::create(&client, key, &Default::default(), None)
        .await
        .expect("account");
    let mut order = account.new_order(&new_order()).await.expect("order");
    let status = tokio::time::timeout(Duration::from_secs(10), order.poll_ready())
        .await
        .expect("a day-long Retry-After was capped")
        .expect("ready");
    assert_eq!(status, OrderStatus::Ready);
}

#[tokio::test]
async fn polling_stops_at_the_deadline() {
    let route = order_route(Arc::default(), |_, req| {
        Reply::json(
            200,
            order_json(req, "pending", &["a.example"], &["/authz/1"]),
        )
    });
    let mock = Mock::start(route).await;
    let options = ClientOptions {
        poll_deadline: Duration::from_millis(600),
        ..test_options()
    };
    let client = AcmeClient::new(&mock.directory_url(), options)
        .await
        .expect("client");
    let key = cairn_proto::KeyPair::generate(cairn_proto::KeyType::EcdsaP256).expect("key");
    let (account, _) = crate::Account::create(&client, key, &Default::default(), None)
        .await
        .expect("account");
    let mut order = account.new_order(&new_order()).await.expect("order");
    let err = order.poll_ready().await.expect_err("never ready");
    assert!(
        matches!(&err, Error::Timeout { url, detail, .. }
            if url.ends_with("/order/1") && detail.contains("still pending")),
        "{err:?}"
    );
}

#[tokio::test]
async fn problem_documents_become_problem_errors_with_the_url() {
    let mock = Mock::start(|req| {
        req.is(Method::POST, "/new-order").then(|| {
            let body = json!({
                "type": "urn:ietf:params:acme:error:rejectedIdentifier",
                "detail": "policy forbids these names",
                "subproblems": [{
                    "type": "urn:ietf:params:acme:error:rejectedIdentifier",
                    "detail": "forbidden",
                    "identifier": { "type": "dns", "value": "a.example" }
                }]
            });
            Reply::raw(
                403,
                "application/problem+json; charset=utf-8",
                body.to_string(),
            )
        })
    })
    .await;
    let (_, account) = account(&mock).await;
    let err = account.new_order(&new_order()).await.expect_err("refused");
    let Error::Problem { problem, url } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(problem.kind, ProblemType::RejectedIdentifier);
    assert_eq!(url, &format!("{}/new-order", mock.base));
    assert!(
        err.to_string()
            .contains("dns:a.example: rejectedIdentifier: forbidden"),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_location_or_a_redirect_is_an_invalid_response() {
    let mock = Mock::start(|req| {
        if req.is(Method::POST, "/new-order") {
            return Some(Reply::json(
                201,
                order_json(req, "pending", &["a.example"], &["/authz/1"]),
            ));
        }
        if req.is(Method::POST, "/order/9") {
            return Some(Reply::raw(302, "text/plain", "").header("location", req.url("/order/1")));
        }
        None
    })
    .await;
    let (_, account) = account(&mock).await;
    let err = account.new_order(&new_order()).await.expect_err("refused");
    assert!(
        matches!(&err, Error::InvalidResponse { detail, .. } if detail.contains("Location")),
        "{err:?}"
    );
    let err = account
        .order(&format!("{}/order/9", mock.base))
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, Error::InvalidResponse { detail, .. } if detail.contains("redirect")),
        "{err:?}"
    );
    assert_eq!(mock.count(Method::POST, "/order/1"), 0, "not followed");
}

#[tokio::test]
async fn requests_are_jose_json_with_a_user_agent() {
    let mock = Mock::start(|_| None).await;
    let (_, account) = account(&mock).await;
    account.info().await.expect("info");
    let log = mock.log();
    assert!(log.len() >= 4);
    for entry in &log {
        let ua = entry.user_agent.as_deref().unwrap_or_default();
        assert!(ua.starts_with("cairn-client/"), "{entry:?}");
        if entry.method == Method::POST {
            assert_eq!(
                entry.content_type.as_deref(),
                Some("application/jose+json"),
                "{entry:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_token_with_dot_dot_is_refused_before_anything_is_written() {
    let mock = Mock::start(|req| {
        if req.is(Method::POST, "/new-order") {
            let body = order_json(req, "pending", &["a.example"], &["/authz/1"]);
            return Some(Reply::json(201, body).header("location", req.url("/order/1")));
        }
        if req.is(Method::POST, "/authz/1") {
            return Some(Reply::json(
                200,
                json!({
                    "status": "pending",
                    "identifier": { "type": "dns", "value": "a.example" },
                    "challenges": [
                        { "type": "http-01", "url": req.url("/chall/1"), "status": "pending",
                          "token": "../../../../etc/cron.d/owned-aaaaaaaaaaaa" },
                        { "type": "dns-01", "url": req.url("/chall/2"), "status": "pending",
                          "token": format!("{}\n", token("dns")) },
                    ]
                }),
            ));
        }
        None
    })
    .await;
    let (_, account) = account(&mock).await;
    let webroot = tempfile::tempdir().expect("tempdir");
    let order = account.new_order(&new_order()).await.expect("order");
    let authzs = order.authorizations().await.expect("authorizations");
    let authz = authzs
        .iter()
        .find(|a| a.is_for(&Identifier::dns("a.example")))
        .expect("authz");
    for kind in [ChallengeType::Http01, ChallengeType::Dns01] {
        // What a webroot solver does: prepare, then write. The write must
        // never be reached.
        let result = authz.prepare(&account, &kind).map(|prepared| {
            let path = webroot.path().join(prepared.token.as_str());
            std::fs::write(path, prepared.key_authorization).expect("write");
        });
        let err = result.expect_err("refused");
        assert!(
            matches!(&err, Error::BadToken { identifier, .. } if identifier.value == "a.example"),
            "{err:?}"
        );
        assert!(err.to_string().contains(kind.as_str()), "{err}");
    }
    assert_eq!(
        std::fs::read_dir(webroot.path()).expect("dir").count(),
        0,
        "nothing written"
    );
    assert_eq!(mock.count(Method::POST, "/chall/1"), 0, "nothing answered");
}
