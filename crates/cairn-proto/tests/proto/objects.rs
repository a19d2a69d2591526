//! The RFC 8555 (and RFC 8737, RFC 9773) example objects, parsed and
//! written back unchanged, each with its section.

use serde::de::DeserializeOwned;
use time::macros::datetime;

use cairn_proto::objects::*;
use cairn_proto::{Identifier, IdentifierType, Problem, ProblemType};
use serde::Serialize;
use serde_json::Value;

/// Parses `text` as `T`, serializes it again and checks that the JSON
/// is the same value as the original.
fn round_trip<T: DeserializeOwned + Serialize>(text: &str) -> T {
    let original: Value = serde_json::from_str(text).expect("example is JSON");
    let parsed: T = serde_json::from_str(text).expect("example parses");
    let again = serde_json::to_value(&parsed).expect("serializes");
    assert_eq!(again, original);
    parsed
}

#[test]
fn directory_of_rfc8555_7_1_1() {
    // RFC 8555 §7.1.1.
    let directory: Directory = round_trip(
        r#"{
          "newNonce": "https://example.com/acme/new-nonce",
          "newAccount": "https://example.com/acme/new-account",
          "newOrder": "https://example.com/acme/new-order",
          "newAuthz": "https://example.com/acme/new-authz",
          "revokeCert": "https://example.com/acme/revoke-cert",
          "keyChange": "https://example.com/acme/key-change",
          "meta": {
            "termsOfService": "https://example.com/acme/terms/2017-5-30",
            "website": "https://www.example.com/",
            "caaIdentities": ["example.com"],
            "externalAccountRequired": false
          }
        }"#,
    );
    assert_eq!(directory.new_nonce, "https://example.com/acme/new-nonce");
    assert_eq!(
        directory.new_authz.as_deref(),
        Some("https://example.com/acme/new-authz")
    );
    assert_eq!(directory.renewal_info, None);
    let meta = directory.meta.expect("has meta");
    assert_eq!(meta.caa_identities, ["example.com"]);
    assert_eq!(meta.external_account_required, Some(false));
    assert!(meta.profiles.is_empty());
}

#[test]
fn directory_tolerates_unknown_fields_and_reads_extensions() {
    let text = r#"{
      "newNonce": "https://ca.example/nonce",
      "newAccount": "https://ca.example/account",
      "newOrder": "https://ca.example/order",
      "revokeCert": "https://ca.example/revoke",
      "keyChange": "https://ca.example/key-change",
      "renewalInfo": "https://ca.example/renewal-info",
      "someFutureResource": "https://ca.example/future",
      "meta": {
        "profiles": {
          "tlsserver": "https://ca.example/docs/profiles#tlsserver",
          "classic": "The usual profile"
        },
        "someFutureFlag": true
      }
    }"#;
    let directory: Directory = serde_json::from_str(text).expect("parses");
    assert_eq!(directory.new_authz, None);
    assert_eq!(
        directory.renewal_info.as_deref(),
        Some("https://ca.example/renewal-info")
    );
    let meta = directory.meta.as_ref().expect("has meta");
    assert_eq!(meta.profiles["classic"], "The usual profile");
    // Profiles come out in name order, whatever order they came in.
    let names: Vec<&str> = meta.profiles.keys().map(String::as_str).collect();
    assert_eq!(names, ["classic", "tlsserver"]);

    // The known fields survive; the unknown ones are dropped.
    let again = serde_json::to_value(&directory).expect("serializes");
    assert_eq!(again.get("someFutureResource"), None);
    assert_eq!(again["meta"].get("someFutureFlag"), None);
    assert_eq!(again["renewalInfo"], "https://ca.example/renewal-info");
}

#[test]
fn account_of_rfc8555_7_1_2() {
    // RFC 8555 §7.1.2.
    let account: Account = round_trip(
        r#"{
          "status": "valid",
          "contact": [
            "mailto:cert-admin@example.org",
            "mailto:admin@example.org"
          ],
          "termsOfServiceAgreed": true,
          "orders": "https://example.com/acme/orders/rzGoeA"
        }"#,
    );
    assert_eq!(account.status, AccountStatus::Valid);
    assert_eq!(account.contact.len(), 2);
    assert_eq!(account.terms_of_service_agreed, Some(true));
    assert_eq!(
        account.orders.as_deref(),
        Some("https://example.com/acme/orders/rzGoeA")
    );
}

#[test]
fn orders_list_of_rfc8555_7_1_2_1() {
    // RFC 8555 §7.1.2.1, without the comment standing for more URLs.
    let list: OrdersList = round_trip(
        r#"{
          "orders": [
            "https://example.com/acme/order/TOlocE8rfgo",
            "https://example.com/acme/order/4E16bbL5iSw",
            "https://example.com/acme/order/neBHYLfw0mg"
          ]
        }"#,
    );
    assert_eq!(list.orders.len(), 3);
}

#[test]
fn order_of_rfc8555_7_1_3() {
    // RFC 8555 §7.1.3. The fractional "expires" comes back as ".99Z":
    // `time` writes the fewest digits that keep the value.
    let order: Order = round_trip(
        r#"{
          "status": "valid",
          "expires": "2016-01-20T14:09:07.99Z",

          "identifiers": [
            { "type": "dns", "value": "www.example.org" },
            { "type": "dns", "value": "example.org" }
          ],

          "notBefore": "2016-01-01T00:00:00Z",
          "notAfter": "2016-01-08T00:00:00Z",

          "authorizations": [
            "https://example.com/acme/authz/PAniVnsZcis",
            "https://example.com/acme/authz/r4HqLzrSrpI"
          ],

          "finalize": "https://example.com/acme/order/TOlocE8rfgo/finalize",

          "certificate": "https://example.com/acme/cert/mAt3xBGaobw"
        }"#,
    );
    assert_eq!(order.status, OrderStatus::Valid);
    assert_eq!(order.expires, Some(datetime!(2016-01-20 14:09:07.99 UTC)));
    assert_eq!(order.not_before, Some(datetime!(2016-01-01 00:00 UTC)));
    assert_eq!(order.identifiers[1], Identifier::dns("example.org"));
    assert_eq!(order.authorizations.len(), 2);
    assert_eq!(order.error, None);
    assert_eq!(order.profile, None);
    assert_eq!(order.replaces, None);
}

#[test]
fn invalid_order_with_error_profile_and_replaces() {
    // No RFC example has these fields together; shapes from RFC 8555
    // §7.1.3, RFC 9773 §5 and the profiles draft.
    let order: Order = round_trip(
        r#"{
          "status": "invalid",
          "identifiers": [{ "type": "ip", "value": "2001:db8::1" }],
          "error": {
            "type": "urn:ietf:params:acme:error:rejectedIdentifier",
            "detail": "This CA will not issue for 2001:db8::1",
            "status": 400
          },
          "authorizations": [],
          "finalize": "https://ca.example/order/1/finalize",
          "profile": "shortlived",
          "replaces": "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
        }"#,
    );
    let error = order.error.expect("has error");
    assert_eq!(error.kind, ProblemType::RejectedIdentifier);
    assert_eq!(order.identifiers[0].kind, IdentifierType::Ip);
    assert_eq!(order.profile.as_deref(), Some("shortlived"));
    assert_eq!(
        order.replaces.as_deref(),
        Some("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE")
    );
}

#[test]
fn new_order_of_rfc8555_7_4() {
    // RFC 8555 §7.4, the payload of the newOrder request. The "+04:00"
    // offsets are kept, so the round trip is exact.
    let new_order: NewOrder = round_trip(
        r#"{
          "identifiers": [
            { "type": "dns", "value": "www.example.org" },
            { "type": "dns", "value": "example.org" }
          ],
          "notBefore": "2016-01-01T00:04:00+04:00",
          "notAfter": "2016-01-08T00:04:00+04:00"
        }"#,
    );
    assert_eq!(new_order.identifiers.len(), 2);
    assert_eq!(
        new_order.not_before,
        Some(datetime!(2016-01-01 00:04 +04:00))
    );
    assert_eq!(new_order.not_before, Some(datetime!(2015-12-31 20:04 UTC)));
    assert_eq!(new_order.profile, None);

    let minimal = NewOrder::new(vec![Identifier::dns("example.org")]);
    assert_eq!(
        serde_json::to_value(&minimal).expect("serializes"),
        serde_json::json!({ "identifiers": [{ "type": "dns", "value": "example.org" }] })
    );
}

#[test]
fn authorization_of_rfc8555_7_1_4() {
    // RFC 8555 §7.1.4.
    let authz: Authorization = round_trip(
        r#"{
          "status": "valid",
          "expires": "2015-03-01T14:09:07.99Z",

          "identifier": {
            "type": "dns",
            "value": "www.example.org"
          },

          "challenges": [
            {
              "url": "https://example.com/acme/chall/prV_B7yEyA4",
              "type": "http-01",
              "status": "valid",
              "token": "DGyRejmCefe7v4NfDGDKfA",
              "validated": "2014-12-01T12:05:58.16Z"
            }
          ],

          "wildcard": false
        }"#,
    );
    assert_eq!(authz.status, AuthorizationStatus::Valid);
    assert_eq!(authz.identifier, Identifier::dns("www.example.org"));
    assert_eq!(authz.wildcard, Some(false));
    let http01 = authz
        .challenge(&ChallengeType::Http01)
        .expect("has http-01");
    assert_eq!(http01.status, ChallengeStatus::Valid);
    assert_eq!(
        http01.validated,
        Some(datetime!(2014-12-01 12:05:58.16 UTC))
    );
    assert!(http01.extra.is_empty());
    assert_eq!(authz.challenge(&ChallengeType::Dns01), None);
}

#[test]
fn pending_authorization_of_rfc8555_7_5() {
    // RFC 8555 §7.5. Its two challenges have no "status" although §8
    // requires one; they read as pending and are written back with
    // "status": "pending", so the comparison adds that field.
    let text = r#"{
      "status": "pending",
      "expires": "2016-01-02T14:09:30Z",

      "identifier": {
        "type": "dns",
        "value": "www.example.org"
      },

      "challenges": [
        {
          "type": "http-01",
          "url": "https://example.com/acme/chall/prV_B7yEyA4",
          "token": "DGyRejmCefe7v4NfDGDKfA"
        },
        {
          "type": "dns-01",
          "url": "https://example.com/acme/chall/Rg5dV14Gh1Q",
          "token": "DGyRejmCefe7v4NfDGDKfA"
        }
      ]
    }"#;
    let authz: Authorization = serde_json::from_str(text).expect("parses");
    assert_eq!(authz.status, AuthorizationStatus::Pending);
    assert_eq!(authz.expires, Some(datetime!(2016-01-02 14:09:30 UTC)));
    assert_eq!(authz.wildcard, None);
    let kinds: Vec<&ChallengeType> = authz.challenges.iter().map(|c| &c.kind).collect();
    assert_eq!(kinds, [&ChallengeType::Http01, &ChallengeType::Dns01]);
    let dns01 = authz.challenge(&ChallengeType::Dns01).expect("has dns-01");
    assert_eq!(dns01.status, ChallengeStatus::Pending);
    assert_eq!(dns01.token.as_deref(), Some("DGyRejmCefe7v4NfDGDKfA"));

    let mut expected: Value = serde_json::from_str(text).expect("example is JSON");
    for challenge in expected["challenges"]
        .as_array_mut()
        .expect("challenges is an array")
    {
        challenge["status"] = "pending".into();
    }
    assert_eq!(serde_json::to_value(&authz).expect("serializes"), expected);
}

#[test]
fn http01_challenge_of_rfc8555_8_3() {
    // RFC 8555 §8.3.
    let challenge: Challenge = round_trip(
        r#"{
          "type": "http-01",
          "url": "https://example.com/acme/chall/prV_B7yEyA4",
          "status": "pending",
          "token": "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
        }"#,
    );
    assert_eq!(challenge.kind, ChallengeType::Http01);
    assert_eq!(
        challenge.token.as_deref(),
        Some("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0")
    );
}

#[test]
fn dns01_challenge_of_rfc8555_8_4() {
    // RFC 8555 §8.4.
    let challenge: Challenge = round_trip(
        r#"{
          "type": "dns-01",
          "url": "https://example.com/acme/chall/Rg5dV14Gh1Q",
          "status": "pending",
          "token": "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
        }"#,
    );
    assert_eq!(challenge.kind, ChallengeType::Dns01);
    assert_eq!(challenge.status, ChallengeStatus::Pending);
}

#[test]
fn tls_alpn01_challenge_of_rfc8737_3() {
    // RFC 8737 §3.
    let challenge: Challenge = round_trip(
        r#"{
          "type": "tls-alpn-01",
          "url": "https://example.com/acme/chall/prV_B7yEyA4",
          "status": "pending",
          "token": "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
        }"#,
    );
    assert_eq!(challenge.kind, ChallengeType::TlsAlpn01);
    assert_eq!(challenge.kind.to_string(), "tls-alpn-01");
    assert!(challenge.extra.is_empty());
}

#[test]
fn failed_challenge_keeps_its_error() {
    // RFC 8555 §8, a challenge that failed with a problem document.
    let challenge: Challenge = round_trip(
        r#"{
          "type": "http-01",
          "url": "https://ca.example/chall/1",
          "status": "invalid",
          "token": "DGyRejmCefe7v4NfDGDKfA",
          "error": {
            "type": "urn:ietf:params:acme:error:connection",
            "detail": "Timeout during connect"
          }
        }"#,
    );
    assert_eq!(challenge.status, ChallengeStatus::Invalid);
    let error = challenge.error.expect("has error");
    assert_eq!(error.kind, ProblemType::Connection);
}

#[test]
fn unknown_challenge_type_round_trips_unchanged() {
    let challenge: Challenge = round_trip(
        r#"{
          "type": "example-42",
          "url": "https://ca.example/chall/42",
          "status": "processing",
          "nonce": "bm9uY2U",
          "attempts": 3,
          "params": { "ports": [443, 8443], "strict": true, "note": null }
        }"#,
    );
    assert_eq!(challenge.kind, ChallengeType::Other("example-42".into()));
    assert_eq!(challenge.status, ChallengeStatus::Processing);
    assert_eq!(challenge.token, None);
    assert_eq!(challenge.extra["attempts"], 3);
    assert_eq!(challenge.extra["params"]["ports"][1], 8443);
    assert!(!challenge.extra.contains_key("type"));
    assert!(!challenge.extra.contains_key("url"));
}

/// Found by the objects_json fuzz target: serde_json's default float
/// reading can be one unit in the last place off, so a number in a field
/// kept in `extra` changed each time it was read and written back.
#[test]
fn numbers_in_unknown_fields_are_read_exactly() {
    let text = r#"{"type":"http-01","url":"https://ca.example/chall/8","status":"pending","w":1.2345678001033457e+29,"x":0.1,"z":1e-320}"#;
    let challenge: Challenge = round_trip(text);
    assert_eq!(
        challenge.extra["w"].as_f64(),
        Some(1.234_567_800_103_345_7e29)
    );
    assert_eq!(challenge.extra["x"].as_f64(), Some(0.1));
    assert_eq!(challenge.extra["z"].as_f64(), Some(1e-320));
    let again: Challenge =
        serde_json::from_str(&serde_json::to_string(&challenge).unwrap()).unwrap();
    assert_eq!(again, challenge);
}

#[test]
fn unknown_fields_of_known_challenges_are_kept() {
    let challenge: Challenge = round_trip(
        r#"{
          "type": "dns-01",
          "url": "https://ca.example/chall/7",
          "status": "pending",
          "token": "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA",
          "validationRecord": [{ "hostname": "example.org" }]
        }"#,
    );
    assert_eq!(challenge.extra.len(), 1);
    assert!(challenge.extra.contains_key("validationRecord"));
}

#[test]
fn problem_with_subproblems_of_rfc8555_6_7_1() {
    // RFC 8555 §6.7.1.
    let problem: Problem = round_trip(
        r#"{
          "type": "urn:ietf:params:acme:error:malformed",
          "detail": "Some of the identifiers requested were rejected",
          "subproblems": [
            {
              "type": "urn:ietf:params:acme:error:malformed",
              "detail": "Invalid underscore in DNS name \"_example.org\"",
              "identifier": {
                "type": "dns",
                "value": "_example.org"
              }
            },
            {
              "type": "urn:ietf:params:acme:error:rejectedIdentifier",
              "detail": "This CA will not issue for \"example.net\"",
              "identifier": {
                "type": "dns",
                "value": "example.net"
              }
            }
          ]
        }"#,
    );
    assert_eq!(problem.kind, ProblemType::Malformed);
    assert_eq!(problem.subproblems.len(), 2);
    let second = &problem.subproblems[1];
    assert_eq!(second.kind, ProblemType::RejectedIdentifier);
    assert_eq!(second.identifier, Some(Identifier::dns("example.net")));
    assert_eq!(
        second.to_string(),
        "dns:example.net: rejectedIdentifier: This CA will not issue for \"example.net\""
    );
}

#[test]
fn new_account_of_rfc8555_7_3() {
    // RFC 8555 §7.3, the payload of the newAccount request.
    let new_account: NewAccount = round_trip(
        r#"{
          "termsOfServiceAgreed": true,
          "contact": [
            "mailto:cert-admin@example.org",
            "mailto:admin@example.org"
          ]
        }"#,
    );
    assert_eq!(new_account.terms_of_service_agreed, Some(true));
    assert!(!new_account.only_return_existing);
    assert_eq!(new_account.external_account_binding, None);

    // RFC 8555 §7.3.1.
    let lookup: NewAccount = round_trip(r#"{ "onlyReturnExisting": true }"#);
    assert!(lookup.only_return_existing);
}

#[test]
fn account_updates_of_rfc8555_7_3_2_and_7_3_6() {
    // RFC 8555 §7.3.2.
    let update: AccountUpdate = round_trip(
        r#"{
          "contact": [
            "mailto:certificates@example.org",
            "mailto:admin@example.org"
          ]
        }"#,
    );
    assert_eq!(update.contact.map(|c| c.len()), Some(2));
    assert_eq!(update.status, None);

    // RFC 8555 §7.3.6.
    let deactivate: AccountUpdate = round_trip(r#"{ "status": "deactivated" }"#);
    assert_eq!(deactivate, AccountUpdate::deactivate());

    // Removing every contact must still send the field.
    let clear = AccountUpdate {
        contact: Some(Vec::new()),
        ..AccountUpdate::default()
    };
    assert_eq!(
        serde_json::to_value(&clear).expect("serializes"),
        serde_json::json!({ "contact": [] })
    );
}

#[test]
fn finalize_revocation_and_key_change_payloads() {
    // RFC 8555 §7.4, §7.6 and §7.3.5; the RFC elides the base64url
    // values, so these are shortened stand-ins.
    let finalize: Finalize = round_trip(r#"{ "csr": "MIIBPTCBxAIBADBFMQswCQYDVQQGEwJBVTET" }"#);
    assert!(finalize.csr.starts_with("MIIBPTCB"));

    let revocation: Revocation =
        round_trip(r#"{ "certificate": "MIIEDTCCAvegAwIBAgIRAP8", "reason": 4 }"#);
    assert_eq!(revocation.reason, Some(4));
    let no_reason: Revocation = round_trip(r#"{ "certificate": "MIIEDTCCAvegAwIBAgIRAP8" }"#);
    assert_eq!(no_reason.reason, None);

    let key_change: KeyChange = round_trip(
        r#"{
          "account": "https://example.com/acme/acct/evOfKhNU60wg",
          "oldKey": {
            "kty": "EC",
            "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
          }
        }"#,
    );
    assert_eq!(
        key_change.account,
        "https://example.com/acme/acct/evOfKhNU60wg"
    );
    assert_eq!(key_change.old_key["kty"], "EC");
}

#[test]
fn renewal_info_of_rfc9773_4_2() {
    // RFC 9773 §4.2.
    let info: RenewalInfo = round_trip(
        r#"{
          "suggestedWindow": {
            "start": "2025-01-02T04:00:00Z",
            "end": "2025-01-03T04:00:00Z"
          },
          "explanationURL": "https://acme.example.com/docs/ari"
        }"#,
    );
    assert_eq!(info.suggested_window.start, datetime!(2025-01-02 04:00 UTC));
    assert_eq!(info.suggested_window.end, datetime!(2025-01-03 04:00 UTC));
    assert_eq!(
        info.explanation_url.as_deref(),
        Some("https://acme.example.com/docs/ari")
    );
}

#[test]
fn status_strings_match_serde() {
    fn check<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
        all: &[T],
        as_str: fn(&T) -> &'static str,
    ) {
        for status in all {
            let wire = Value::String(as_str(status).to_owned());
            assert_eq!(serde_json::to_value(status).expect("serializes"), wire);
            let back: T = serde_json::from_value(wire).expect("parses");
            assert_eq!(&back, status);
        }
    }
    check(AccountStatus::ALL, |s| s.as_str());
    check(OrderStatus::ALL, |s| s.as_str());
    check(AuthorizationStatus::ALL, |s| s.as_str());
    check(ChallengeStatus::ALL, |s| s.as_str());
    assert_eq!(OrderStatus::Ready.to_string(), "ready");
    assert!(serde_json::from_str::<OrderStatus>(r#""Ready""#).is_err());
}

#[test]
fn challenge_types_use_the_registered_names() {
    for (kind, wire) in [
        (ChallengeType::Http01, "http-01"),
        (ChallengeType::Dns01, "dns-01"),
        (ChallengeType::TlsAlpn01, "tls-alpn-01"),
        (
            ChallengeType::Other("dns-account-01".into()),
            "dns-account-01",
        ),
    ] {
        assert_eq!(kind.as_str(), wire);
        assert_eq!(ChallengeType::from(wire), kind);
    }
}
