//! RFC 9773 renewal information: the suggested window (§4.2) and
//! `replaces` in newOrder (§5), `alreadyReplaced` included.

use cairn_ca::signer::leaf_ari_cert_id;
use cairn_proto::ProblemType;
use cairn_proto::objects::{ChallengeType, NewOrder, RenewalInfo};
use serde_json::json;
use time::Duration;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::harness::{Harness, Issued, dns};

fn cert_id(issued: &Issued) -> String {
    leaf_ari_cert_id(issued.chain.leaf_der().expect("a leaf"))
        .expect("an ARI id")
        .to_string()
}

fn renewal_url(h: &Harness, id: &str) -> String {
    format!(
        "{}/{id}",
        h.directory()
            .renewal_info
            .as_deref()
            .expect("the directory offers renewalInfo")
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn renewal_window_starts_when_a_third_of_the_lifetime_is_left() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let issued = h
        .issue(&account, &dns(&["ari.example.com"]), &ChallengeType::Http01)
        .await;
    let reply = h.get(&renewal_url(&h, &cert_id(&issued))).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.header("retry-after"), Some("21600"));
    let info: RenewalInfo = serde_json::from_slice(&reply.body).expect("renewal info");
    let (_, leaf) =
        X509Certificate::from_der(issued.chain.leaf_der().expect("leaf")).expect("parses");
    let not_before: time::OffsetDateTime = leaf.validity().not_before.to_datetime();
    let not_after: time::OffsetDateTime = leaf.validity().not_after.to_datetime();
    let lifetime: Duration = not_after - not_before;
    let window = info.suggested_window;
    let start_off: Duration = window.start - (not_before + lifetime * 2 / 3);
    let end_off: Duration = window.end - (not_before + lifetime * 3 / 4);
    assert!(start_off.abs() < Duration::seconds(1), "{window:?}");
    assert!(end_off.abs() < Duration::seconds(1), "{window:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_certificate_should_be_renewed_now() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let issued = h
        .issue(
            &account,
            &dns(&["ari-revoked.example.com"]),
            &ChallengeType::Http01,
        )
        .await;
    account
        .revoke(issued.chain.leaf_der().expect("leaf"), Some(4))
        .await
        .expect("revoked");
    let info: RenewalInfo =
        serde_json::from_slice(&h.get(&renewal_url(&h, &cert_id(&issued))).await.body)
            .expect("renewal info");
    let now = time::OffsetDateTime::now_utc();
    assert!(
        info.suggested_window.end < now,
        "{:?} is not in the past",
        info.suggested_window
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_and_malformed_ids_are_refused() {
    let h = Harness::start(|_| {}).await;
    h.get(&renewal_url(&h, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"))
        .await
        .problem(404, ProblemType::Malformed);
    h.get(&renewal_url(&h, "not-an-id"))
        .await
        .problem(400, ProblemType::Malformed);
}

#[tokio::test(flavor = "multi_thread")]
async fn replaces_is_accepted_once_and_then_already_replaced() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let names = dns(&["replace.example.com"]);
    let first = h.issue(&account, &names, &ChallengeType::Http01).await;
    let id = cert_id(&first);

    let order = |replaces: &str| {
        let mut request = NewOrder::new(names.clone());
        request.replaces = Some(replaces.to_owned());
        request
    };
    // An order naming it may be made (and abandoned) while nothing replaced it yet.
    account
        .new_order(&order(&id))
        .await
        .expect("an order that replaces the first certificate");
    let mut renewal = account
        .new_order(&order(&id))
        .await
        .expect("a second one, still unfinalized");
    assert_eq!(renewal.state().replaces.as_deref(), Some(id.as_str()));
    renewal
        .finalize(&cairn_client::csr(&names, &crate::harness::new_key()).expect("csr"))
        .await
        .expect("finalize");
    renewal.poll_valid().await.expect("valid");

    let reply = h
        .post_as(
            &account,
            &h.directory().new_order,
            &serde_json::to_vec(&json!({
                "identifiers": [{"type": "dns", "value": "replace.example.com"}],
                "replaces": id,
            }))
            .expect("json"),
        )
        .await;
    reply.problem(409, ProblemType::AlreadyReplaced);
}

#[tokio::test(flavor = "multi_thread")]
async fn replaces_must_name_a_certificate_of_this_account() {
    let h = Harness::start(|_| {}).await;
    let alice = h.account().await;
    let bob = h.account().await;
    let names = dns(&["owner.example.com"]);
    let issued = h.issue(&alice, &names, &ChallengeType::Http01).await;
    let body = |replaces: &str| {
        serde_json::to_vec(&json!({
            "identifiers": [{"type": "dns", "value": "owner.example.com"}],
            "replaces": replaces,
        }))
        .expect("json")
    };
    h.post_as(&bob, &h.directory().new_order, &body(&cert_id(&issued)))
        .await
        .problem(403, ProblemType::Unauthorized);
    h.post_as(&alice, &h.directory().new_order, &body("garbage"))
        .await
        .problem(400, ProblemType::Malformed);
    h.post_as(
        &alice,
        &h.directory().new_order,
        &body("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"),
    )
    .await
    .problem(400, ProblemType::Malformed);
}
