//! dns-01 (RFC 8555 §8.4).

use std::net::IpAddr;

use cairn_ca::va::{VaConfig, ValidationRequest, Validator};
use cairn_proto::challenge::dns01_txt_value;
use cairn_proto::objects::ChallengeType;
use cairn_proto::{Identifier, ProblemType};
use hickory_proto::rr::RecordType;
use tokio::net::UdpSocket;

use crate::support::{FakeDns, config, request, validator};

fn dns01(name: &str) -> ValidationRequest {
    request(Identifier::dns(name), ChallengeType::Dns01)
}

#[tokio::test]
async fn the_txt_record_validates() {
    let dns = FakeDns::start().await;
    let req = dns01("a.example");
    dns.txt("_acme-challenge.a.example", &["unrelated"]);
    dns.txt(
        "_acme-challenge.a.example",
        &[&dns01_txt_value(&req.key_authorization)],
    );
    let record = validator(config(&dns)).validate(&req).await.unwrap();
    assert_eq!(record.dns_queries, vec!["TXT _acme-challenge.a.example"]);
    assert!(record.connections.is_empty());
}

#[tokio::test]
async fn strings_of_one_record_are_concatenated() {
    let dns = FakeDns::start().await;
    let req = dns01("a.example");
    let value = dns01_txt_value(&req.key_authorization);
    let (head, tail) = value.split_at(10);
    dns.txt("_acme-challenge.a.example", &[head, tail]);
    validator(config(&dns)).validate(&req).await.unwrap();
}

#[tokio::test]
async fn cnames_are_followed() {
    let dns = FakeDns::start().await;
    let req = dns01("a.example");
    dns.cname("_acme-challenge.a.example", "a.validation.example");
    dns.cname("a.validation.example", "b.validation.example");
    dns.txt(
        "b.validation.example",
        &[&dns01_txt_value(&req.key_authorization)],
    );
    validator(config(&dns)).validate(&req).await.unwrap();
}

#[tokio::test]
async fn wildcards_use_the_base_name() {
    let dns = FakeDns::start().await;
    let validation = validator(config(&dns));

    let star = dns01("*.a.example");
    dns.txt(
        "_acme-challenge.a.example",
        &[&dns01_txt_value(&star.key_authorization)],
    );
    let record = validation.validate(&star).await.unwrap();
    assert_eq!(record.dns_queries, vec!["TXT _acme-challenge.a.example"]);

    // The same with the flag and a bare identifier.
    let mut flagged = dns01("a.example");
    flagged.wildcard = true;
    flagged
        .key_authorization
        .clone_from(&star.key_authorization);
    validation.validate(&flagged).await.unwrap();
}

#[tokio::test]
async fn a_wrong_value_is_unauthorized() {
    let dns = FakeDns::start().await;
    dns.txt("_acme-challenge.a.example", &["stale-value"]);
    let validation = validator(config(&dns));
    let err = validation.validate(&dns01("a.example")).await.unwrap_err();
    assert_eq!(err.kind, ProblemType::Unauthorized);
    assert_eq!(
        err.detail,
        "the TXT record at _acme-challenge.a.example is not the expected value \
         (got \"stale-value\")"
    );

    dns.txt("_acme-challenge.a.example", &["other-stale-value"]);
    let err = validation.validate(&dns01("a.example")).await.unwrap_err();
    assert_eq!(err.kind, ProblemType::Unauthorized);
    assert_eq!(
        err.detail,
        "none of the 2 TXT records at _acme-challenge.a.example is the expected value"
    );
}

#[tokio::test]
async fn no_record_is_unauthorized() {
    let dns = FakeDns::start().await;
    // NXDOMAIN, and a name with records of another type only.
    dns.ip("_acme-challenge.b.example", "192.0.2.1");
    let validation = validator(config(&dns));
    for name in ["a.example", "b.example"] {
        let err = validation.validate(&dns01(name)).await.unwrap_err();
        assert_eq!(err.kind, ProblemType::Unauthorized, "{name}");
        assert_eq!(
            err.detail,
            format!("no TXT record found at _acme-challenge.{name}")
        );
    }
}

#[tokio::test]
async fn servfail_is_a_dns_problem() {
    let dns = FakeDns::start().await;
    dns.servfail("_acme-challenge.a.example", RecordType::TXT);
    let err = validator(config(&dns))
        .validate(&dns01("a.example"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ProblemType::Dns);
    assert_eq!(
        err.detail,
        "could not look up TXT records at _acme-challenge.a.example: SERVFAIL"
    );
}

#[tokio::test]
async fn a_silent_resolver_fails_closed() {
    // Bound, never read: queries go unanswered.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let config = VaConfig {
        dns_resolver: Some(silent.local_addr().unwrap()),
        timeout_seconds: 2,
        ..VaConfig::dev()
    };
    let err = validator(config)
        .validate(&dns01("a.example"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ProblemType::Dns);
    assert_eq!(
        err.detail,
        "could not look up TXT records at _acme-challenge.a.example: the DNS query timed out"
    );
    drop(silent);
}

#[tokio::test]
async fn an_unreachable_resolver_fails_closed() {
    // Nothing listens: the query is refused (ICMP) or times out.
    let port = UdpSocket::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = VaConfig {
        dns_resolver: Some(([127, 0, 0, 1], port).into()),
        timeout_seconds: 2,
        ..VaConfig::dev()
    };
    let err = validator(config)
        .validate(&dns01("a.example"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ProblemType::Dns, "{}", err.detail);
    assert!(
        err.detail
            .starts_with("could not look up TXT records at _acme-challenge.a.example: "),
        "{}",
        err.detail
    );
}

#[tokio::test]
async fn ip_identifiers_cannot_use_dns01() {
    let dns = FakeDns::start().await;
    let mut req = dns01("unused");
    req.identifier = Identifier::ip("192.0.2.1".parse::<IpAddr>().unwrap());
    let err = validator(config(&dns)).validate(&req).await.unwrap_err();
    assert_eq!(err.kind, ProblemType::Malformed);
    assert!(err.detail.contains("RFC 8738"), "{}", err.detail);
}
