//! CAA (RFC 8659) around a dns-01 validation that succeeds.

use std::net::IpAddr;

use cairn_ca::va::{CaaRequest, NetworkValidator, VaConfig, ValidationRequest, Validator};
use cairn_proto::challenge::dns01_txt_value;
use cairn_proto::objects::ChallengeType;
use cairn_proto::{Identifier, ProblemType};
use hickory_proto::rr::RecordType;

use crate::support::{ACCOUNT_URI, FakeDns, config, request, validator};

/// A fake DNS where dns-01 for `name` succeeds, and a validator that
/// answers to `ca.example` in CAA.
async fn setup(name: &str) -> (FakeDns, NetworkValidator, ValidationRequest) {
    let dns = FakeDns::start().await;
    let req = request(Identifier::dns(name), ChallengeType::Dns01);
    let base = name.strip_prefix("*.").unwrap_or(name);
    dns.txt(
        &format!("_acme-challenge.{base}"),
        &[&dns01_txt_value(&req.key_authorization)],
    );
    let validation = validator(VaConfig {
        caa_identities: vec!["CA.example.".into()],
        ..config(&dns)
    });
    (dns, validation, req)
}

#[tokio::test]
async fn no_caa_records_allow_issuance() {
    let (_dns, validation, req) = setup("www.a.example").await;
    let record = validation.validate(&req).await.unwrap();
    let caa = record.caa.unwrap();
    assert_eq!(
        caa.names_queried,
        vec!["www.a.example", "a.example", "example"]
    );
    assert_eq!(caa.relevant_at, None);
}

#[tokio::test]
async fn the_closest_rrset_decides() {
    let (dns, validation, req) = setup("www.a.example").await;
    dns.caa(
        "a.example",
        false,
        "issue",
        "ca.example; validationmethods=dns-01",
    );
    dns.caa("a.example", false, "iodef", "mailto:security@a.example");
    // Higher up and irrelevant: the search stops at a.example.
    dns.caa("example", false, "issue", "other.example");
    let record = validation.validate(&req).await.unwrap();
    let caa = record.caa.unwrap();
    assert_eq!(caa.names_queried, vec!["www.a.example", "a.example"]);
    assert_eq!(caa.relevant_at.as_deref(), Some("a.example"));
    assert_eq!(caa.records.len(), 2);
}

#[tokio::test]
async fn another_issuer_prevents_issuance() {
    let (dns, validation, req) = setup("a.example").await;
    dns.caa("a.example", false, "issue", "other.example");
    let err = validation.validate(&req).await.unwrap_err();
    assert_eq!(err.kind, ProblemType::Caa);
    assert_eq!(err.detail, "CAA record for a.example prevents issuance");

    // RFC 8657: the CA is named, but only for http-01.
    let (dns, validation, req) = setup("a.example").await;
    dns.caa(
        "a.example",
        false,
        "issue",
        "ca.example; validationmethods=http-01",
    );
    let err = validation.validate(&req).await.unwrap_err();
    assert_eq!(err.kind, ProblemType::Caa);
}

#[tokio::test]
async fn issuewild_governs_wildcards() {
    let (dns, validation, req) = setup("*.a.example").await;
    dns.caa("a.example", false, "issue", "ca.example");
    dns.caa("a.example", false, "issuewild", "other.example");
    let err = validation.validate(&req).await.unwrap_err();
    assert_eq!(err.kind, ProblemType::Caa);
    assert_eq!(
        err.detail,
        "CAA record for a.example prevents issuance of a wildcard certificate"
    );

    // The same records allow the name itself.
    let plain = {
        let mut plain = req.clone();
        plain.identifier = Identifier::dns("a.example");
        plain
    };
    validation.validate(&plain).await.unwrap();

    // And issuewild naming the CA allows the wildcard despite issue.
    let (dns, validation, req) = setup("*.b.example").await;
    dns.caa("b.example", false, "issue", ";");
    dns.caa("b.example", false, "issuewild", "ca.example");
    validation.validate(&req).await.unwrap();
}

#[tokio::test]
async fn an_unknown_critical_property_prevents_issuance() {
    let (dns, validation, req) = setup("a.example").await;
    dns.caa("a.example", false, "issue", "ca.example");
    dns.caa("a.example", true, "tbs", "unknown");
    let err = validation.validate(&req).await.unwrap_err();
    assert_eq!(err.kind, ProblemType::Caa);
    assert!(
        err.detail
            .starts_with("CAA record for a.example prevents issuance: its property \"tbs\""),
        "{}",
        err.detail
    );
}

#[tokio::test]
async fn a_failed_lookup_fails_closed() {
    let (dns, validation, req) = setup("www.a.example").await;
    dns.servfail("a.example", RecordType::CAA);
    let err = validation.validate(&req).await.unwrap_err();
    assert_eq!(err.kind, ProblemType::Dns);
    assert_eq!(
        err.detail,
        "could not look up CAA records at a.example for www.a.example: SERVFAIL; the CA \
         does not issue while CAA cannot be checked"
    );
}

#[tokio::test]
async fn a_failed_challenge_is_reported_before_caa() {
    let (dns, validation, _) = setup("a.example").await;
    dns.caa("a.example", false, "issue", "other.example");
    // A fresh request whose TXT value is not published.
    let req = request(Identifier::dns("a.example"), ChallengeType::Dns01);
    let err = validation.validate(&req).await.unwrap_err();
    assert_eq!(err.kind, ProblemType::Unauthorized);
}

#[tokio::test]
async fn caa_is_skipped_for_ip_addresses_and_without_identities() {
    let (dns, _, req) = setup("a.example").await;
    dns.caa("a.example", false, "issue", "other.example");
    // No caa_identities: not checked.
    let record = validator(config(&dns)).validate(&req).await.unwrap();
    assert_eq!(record.caa, None);

    // IP identifiers have no CAA (checked over http-01, whose failure
    // here is expected; CAA would have queried names first).
    let validation = validator(VaConfig {
        caa_identities: vec!["ca.example".into()],
        http01_port: crate::support::closed_port().await,
        ..config(&dns)
    });
    let mut req = request(Identifier::dns("unused"), ChallengeType::Http01);
    req.identifier = Identifier::ip("127.0.0.1".parse::<IpAddr>().unwrap());
    let err = validation.validate(&req).await.unwrap_err();
    assert_eq!(err.kind, ProblemType::Connection);
}

/// RFC 8657 §3: `accounturi` lets only the account it names through.
#[tokio::test]
async fn accounturi_names_the_one_account_allowed() {
    let (dns, validation, req) = setup("a.example").await;
    dns.caa(
        "a.example",
        false,
        "issue",
        &format!("ca.example; accounturi={ACCOUNT_URI}"),
    );
    validation.validate(&req).await.unwrap();

    let mut other = req.clone();
    other.account_uri = "https://ca.test/acme/acct/8".into();
    let err = validation.validate(&other).await.unwrap_err();
    assert_eq!(err.kind, ProblemType::Caa);
}

/// The check finalize makes alone, with the method that validated.
#[tokio::test]
async fn caa_checked_alone() {
    let dns = FakeDns::start().await;
    let validation = validator(VaConfig {
        caa_identities: vec!["ca.example".into()],
        ..config(&dns)
    });
    let ask = |name: &str, method: ChallengeType| CaaRequest {
        identifier: Identifier::dns(name),
        wildcard: false,
        method,
        account_uri: ACCOUNT_URI.into(),
    };
    let record = validation
        .check_caa(&ask("www.a.example", ChallengeType::Http01))
        .await
        .unwrap();
    assert_eq!(record.relevant_at, None);

    dns.caa(
        "a.example",
        false,
        "issue",
        "ca.example; validationmethods=dns-01",
    );
    let record = validation
        .check_caa(&ask("www.a.example", ChallengeType::Dns01))
        .await
        .unwrap();
    assert_eq!(record.relevant_at.as_deref(), Some("a.example"));
    let err = validation
        .check_caa(&ask("www.a.example", ChallengeType::Http01))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ProblemType::Caa);

    dns.servfail("b.example", RecordType::CAA);
    let err = validation
        .check_caa(&ask("b.example", ChallengeType::Dns01))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ProblemType::Dns);

    // No CAA for IP addresses.
    let ip = CaaRequest {
        identifier: Identifier::ip("192.0.2.1".parse::<IpAddr>().unwrap()),
        ..ask("unused", ChallengeType::Http01)
    };
    assert_eq!(validation.check_caa(&ip).await.unwrap(), Default::default());
}
