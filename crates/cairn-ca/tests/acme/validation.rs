//! RFC 8555 §7.5.1 and §8: full issuance with each challenge type,
//! validated for real over loopback against the test server — http-01
//! (§8.3), dns-01 for a wildcard (§8.4), tls-alpn-01 (RFC 8737) and an IP
//! address (RFC 8738) — and a failed validation.

use cairn_client::{Error, check_certificate};
use cairn_proto::objects::{
    AuthorizationStatus, ChallengeStatus, ChallengeType, NewOrder, OrderStatus,
};
use cairn_proto::{Identifier, ProblemType};
use cairn_testkit::CaaPolicy;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::harness::{Harness, Issued, dns};

/// The CA's default lifetime, inclusive of both ends (RFC 5280 §4.1.2.5).
const NINETY_DAYS_LESS_A_SECOND: i64 = 90 * 24 * 3600 - 1;

/// What every issued certificate must satisfy: the chain checks out up to
/// `root.pem`, the leaf lasts 90 days, and its SANs are the order's.
fn assert_good_certificate(h: &Harness, issued: &Issued, names: &[Identifier]) {
    check_certificate(&issued.chain, names, &issued.key, Some(&h.root_pem))
        .expect("the chain checks out against root.pem");
    let (_, leaf) = X509Certificate::from_der(issued.chain.leaf_der().expect("a leaf"))
        .expect("the leaf parses");
    let validity = leaf.validity();
    assert_eq!(
        validity.not_after.timestamp() - validity.not_before.timestamp(),
        NINETY_DAYS_LESS_A_SECOND
    );
    let mut sans: Vec<Identifier> = leaf
        .subject_alternative_name()
        .expect("one SAN extension")
        .expect("a SAN extension")
        .value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(dns) => Identifier::dns(*dns),
            GeneralName::IPAddress(bytes) => {
                let octets: [u8; 4] = (*bytes).try_into().expect("an IPv4 address");
                Identifier::ip(std::net::IpAddr::from(octets))
            }
            other => panic!("unexpected SAN {other:?}"),
        })
        .collect();
    sans.sort();
    let mut wanted = issued.order.state().identifiers.clone();
    wanted.sort();
    assert_eq!(sans, wanted, "the SANs are the order's identifiers");
}

#[tokio::test(flavor = "multi_thread")]
async fn http01_issuance() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let names = dns(&["www.http01.test", "http01.test"]);
    let issued = h.issue(&account, &names, &ChallengeType::Http01).await;
    assert_good_certificate(&h, &issued, &names);
}

/// A wildcard and its base name: two authorizations for one name, both
/// proved by TXT records at `_acme-challenge.<base>`.
#[tokio::test(flavor = "multi_thread")]
async fn dns01_wildcard_issuance() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let names = dns(&["*.dns01.test", "dns01.test"]);
    let issued = h.issue(&account, &names, &ChallengeType::Dns01).await;
    assert_good_certificate(&h, &issued, &names);
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_alpn01_issuance() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let names = dns(&["alpn.test"]);
    let issued = h.issue(&account, &names, &ChallengeType::TlsAlpn01).await;
    assert_good_certificate(&h, &issued, &names);
}

#[tokio::test(flavor = "multi_thread")]
async fn ip_address_issuance_over_http01() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let names = vec![Identifier::ip("127.0.0.1".parse().unwrap())];
    let issued = h.issue(&account, &names, &ChallengeType::Http01).await;
    assert_good_certificate(&h, &issued, &names);
}

/// §7.5.1, §8.3: nothing served at the challenge URL — the challenge and
/// authorization become invalid, the challenge's error says `unauthorized`
/// and names the URL fetched, and the order becomes invalid (§7.1.6).
#[tokio::test(flavor = "multi_thread")]
async fn failed_http01_validation_invalidates_the_authorization_and_order() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let mut order = account
        .new_order(&NewOrder::new(dns(&["fail.test"])))
        .await
        .expect("newOrder");
    let authz = order
        .authorizations()
        .await
        .expect("authorizations")
        .remove(0);
    let challenge = authz
        .prepare(&account, &ChallengeType::Http01)
        .expect("http-01 is offered");
    // Nothing is provisioned at the test server.
    account.respond(&challenge.url).await.expect("respond");
    let err = account
        .poll_authorization(&authz.url)
        .await
        .expect_err("the validation fails");
    let Error::AuthorizationFailed {
        status, problem, ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*status, AuthorizationStatus::Invalid);
    let problem = problem.as_deref().expect("the challenge's error");
    assert_eq!(problem.kind, ProblemType::Unauthorized, "{problem}");
    let url = format!(
        "http://fail.test:{}/.well-known/acme-challenge/{}",
        h.testkit.http01_addr().expect("http-01").port(),
        challenge.token
    );
    let detail = problem.detail.as_deref().unwrap_or_default();
    assert!(detail.contains(&url), "{detail:?} names {url}");

    // §7.1.4: an invalid authorization lists "the challenge that was
    // attempted and failed".
    let authz = account
        .authorization(&authz.url)
        .await
        .expect("authorization");
    assert_eq!(authz.state.challenges.len(), 1, "{:?}", authz.state);
    let failed = authz
        .challenge(&ChallengeType::Http01)
        .expect("the challenge");
    assert_eq!(failed.status, ChallengeStatus::Invalid);
    assert_eq!(
        failed.error.as_ref().map(|e| &e.kind),
        Some(&ProblemType::Unauthorized)
    );
    assert_eq!(
        order.refresh().await.expect("order").status,
        OrderStatus::Invalid
    );
    assert!(matches!(
        order.poll_ready().await,
        Err(Error::OrderInvalid { .. })
    ));
}

/// §8.4: a TXT record with the wrong value fails dns-01 with
/// `unauthorized` (the record was found but does not match).
#[tokio::test(flavor = "multi_thread")]
async fn wrong_dns01_record_fails_validation() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let order = account
        .new_order(&NewOrder::new(dns(&["wrongtxt.test"])))
        .await
        .expect("newOrder");
    let authz = order
        .authorizations()
        .await
        .expect("authorizations")
        .remove(0);
    let challenge = authz
        .prepare(&account, &ChallengeType::Dns01)
        .expect("dns-01 is offered");
    h.testkit
        .add_dns01("wrongtxt.test", "not-the-key-authorization")
        .expect("a TXT record");
    account.respond(&challenge.url).await.expect("respond");
    let err = account
        .poll_authorization(&authz.url)
        .await
        .expect_err("the validation fails");
    assert!(err.is_problem(&ProblemType::Unauthorized), "{err}");
}

/// §7.1.4: a valid authorization lists only the challenge that was
/// validated, with its `validated` time.
#[tokio::test(flavor = "multi_thread")]
async fn valid_authorization_lists_only_the_validated_challenge() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let order = h
        .ready_order(&account, &dns(&["only.test"]), &ChallengeType::TlsAlpn01)
        .await;
    let authz = account
        .authorization(&order.state().authorizations[0])
        .await
        .expect("authorization");
    assert_eq!(authz.state.status, AuthorizationStatus::Valid);
    assert!(authz.state.expires.is_some());
    let [challenge] = authz.state.challenges.as_slice() else {
        panic!("one challenge: {:?}", authz.state.challenges);
    };
    assert_eq!(challenge.kind, ChallengeType::TlsAlpn01);
    assert_eq!(challenge.status, ChallengeStatus::Valid);
    assert!(challenge.validated.is_some());
}

/// §7.5.1: POSTing `{}` to a challenge starts its validation; the answer
/// is the challenge, linked `rel="up"` to its authorization. A validation
/// that ends within a second is answered with its outcome.
#[tokio::test(flavor = "multi_thread")]
async fn challenge_response_is_the_challenge_linked_up_to_its_authorization() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let (authz_url, challenge_url) = provisioned_http01(&h, &account, "up.test").await;
    let reply = h.post_as(&account, &challenge_url, b"{}").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.links("up"), [authz_url.as_str()]);
    let body = reply.json();
    assert_eq!(body["url"], challenge_url.as_str());
    assert_eq!(body["type"], "http-01");
    assert_eq!(body["status"], "valid", "{body}");
    assert!(body["validated"].is_string(), "{body}");
    assert_eq!(reply.header("retry-after"), None);
    let authz = account
        .poll_authorization(&authz_url)
        .await
        .expect("the authorization is valid");
    assert_eq!(authz.status, AuthorizationStatus::Valid);
}

/// A validation longer than the answer waits for is answered `processing`
/// with `Retry-After`, and goes on to its outcome in the background.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_validation_is_answered_processing_and_finishes_alone() {
    let h = Harness::start(|c| c.testing.validation_delay_ms = 1_500).await;
    let account = h.account().await;
    let (authz_url, challenge_url) = provisioned_http01(&h, &account, "slow.test").await;
    let reply = h.post_as(&account, &challenge_url, b"{}").await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["status"], "processing", "{body}");
    assert_eq!(reply.header("retry-after"), Some("1"));
    let authz = account
        .poll_authorization(&authz_url)
        .await
        .expect("the authorization becomes valid");
    assert_eq!(authz.status, AuthorizationStatus::Valid);
}

/// A new order for `name` with its http-01 response served by the
/// testkit: the authorization's and the challenge's URLs.
async fn provisioned_http01(
    h: &Harness,
    account: &cairn_client::Account,
    name: &str,
) -> (String, String) {
    let order = account
        .new_order(&NewOrder::new(dns(&[name])))
        .await
        .expect("newOrder");
    let authz = order
        .authorizations()
        .await
        .expect("authorizations")
        .remove(0);
    let challenge = authz
        .prepare(account, &ChallengeType::Http01)
        .expect("http-01 is offered");
    h.testkit
        .add_http01(challenge.token.as_str(), &challenge.key_authorization)
        .expect("provisioned");
    (authz.url.clone(), challenge.url.clone())
}

/// §7.5.1: only a POST of `{}` starts a validation; POST-as-GET reads the
/// challenge, and other payloads are malformed.
#[tokio::test(flavor = "multi_thread")]
async fn post_as_get_reads_a_challenge_without_starting_it() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let order = account
        .new_order(&NewOrder::new(dns(&["read.test"])))
        .await
        .expect("newOrder");
    let authz = order
        .authorizations()
        .await
        .expect("authorizations")
        .remove(0);
    let url = authz
        .challenge(&ChallengeType::Http01)
        .expect("http-01 is offered")
        .url
        .clone();
    let read = h.post_as(&account, &url, b"").await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json()["status"], "pending");
    for payload in [&b"[]"[..], b"\"go\"", b"null"] {
        h.post_as(&account, &url, payload)
            .await
            .problem(400, ProblemType::Malformed);
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let authz = account
        .authorization(&authz.url)
        .await
        .expect("authorization");
    assert_eq!(authz.state.status, AuthorizationStatus::Pending);
    assert!(
        authz
            .state
            .challenges
            .iter()
            .all(|c| c.status == ChallengeStatus::Pending),
        "nothing was started: {:?}",
        authz.state.challenges
    );
}

/// RFC 8738 §6: tls-alpn-01 for an IP address, the SNI being its reverse
/// name.
#[tokio::test(flavor = "multi_thread")]
async fn ip_address_issuance_over_tls_alpn01() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let names = vec![Identifier::ip("127.0.0.1".parse().unwrap())];
    let issued = h.issue(&account, &names, &ChallengeType::TlsAlpn01).await;
    assert_good_certificate(&h, &issued, &names);
}

/// RFC 8659 via §8: a CAA record naming only another CA stops validation
/// with `caa`; one naming this CA lets it through.
#[tokio::test(flavor = "multi_thread")]
async fn caa_for_another_ca_fails_validation() {
    let h = Harness::start(|c| c.validation.caa_identities = vec!["ca.test".into()]).await;
    h.testkit
        .add_caa("caa.test", &[CaaPolicy::issue("other-ca.example")])
        .expect("a CAA record");
    h.testkit
        .add_caa("allowed.test", &[CaaPolicy::issue("ca.test")])
        .expect("a CAA record");
    let account = h.account().await;

    let authz_url = h.answer_http01(&account, "www.caa.test").await;
    let err = account
        .poll_authorization(&authz_url)
        .await
        .expect_err("CAA forbids it");
    assert!(err.is_problem(&ProblemType::Caa), "{err}");

    let names = dns(&["www.allowed.test"]);
    let issued = h.issue(&account, &names, &ChallengeType::Http01).await;
    assert_good_certificate(&h, &issued, &names);
}

/// The validation queue: an account past `waiting_per_account` is told
/// `rateLimited` with Retry-After and its challenge stays pending; another
/// account's validation is not stuck behind the busy one's.
#[tokio::test(flavor = "multi_thread")]
async fn validations_are_bounded_per_account_and_fair() {
    let h = Harness::start(|c| {
        c.validation.queue.running = 1;
        c.validation.queue.per_account = 1;
        c.validation.queue.waiting_per_account = 3;
        // Longer than the CA waits before answering a challenge (1 s).
        c.testing.validation_delay_ms = 1500;
    })
    .await;
    let busy = h.account().await;
    let names: Vec<String> = (0..4).map(|i| format!("n{i}.busy.test")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let order = busy
        .new_order(&NewOrder::new(dns(&names)))
        .await
        .expect("newOrder");
    let mut urls = Vec::new();
    for authz in order.authorizations().await.expect("authorizations") {
        let challenge = authz
            .prepare(&busy, &ChallengeType::Http01)
            .expect("http-01");
        h.testkit
            .add_http01(challenge.token.as_str(), &challenge.key_authorization)
            .expect("provisioned");
        urls.push((challenge.url, authz.url));
    }
    let (a, b, c) = tokio::join!(
        busy.respond(&urls[0].0),
        busy.respond(&urls[1].0),
        busy.respond(&urls[2].0)
    );
    for answer in [a, b, c] {
        answer.expect("within the bound");
    }
    let err = busy
        .respond(&urls[3].0)
        .await
        .expect_err("a fourth waiting validation");
    assert!(err.is_problem(&ProblemType::RateLimited), "{err}");
    let fourth = busy.authorization(&urls[3].1).await.expect("authz");
    assert_eq!(fourth.state.status, AuthorizationStatus::Pending);

    // Another account: its validation does not wait for all three of
    // the busy account's (at most one running and one in line before it).
    let other = h.account().await;
    let authz_url = h.answer_http01(&other, "other.quiet.test").await;
    other.poll_authorization(&authz_url).await.expect("valid");
    let mut busy_valid = 0;
    for (_, authz) in &urls[..3] {
        let state = busy.authorization(authz).await.expect("authz").state.status;
        busy_valid += usize::from(state == AuthorizationStatus::Valid);
    }
    assert!(
        busy_valid <= 2,
        "{busy_valid} of the busy account's 3 went first"
    );

    // Once they finished, the fourth is accepted.
    for (_, authz) in &urls[..3] {
        busy.poll_authorization(authz).await.expect("valid");
    }
    busy.respond(&urls[3].0).await.expect("room again");
}
