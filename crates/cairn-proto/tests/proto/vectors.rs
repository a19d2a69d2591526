//! Test vectors from the RFCs, each with its section.

use cairn_proto::jws::{JwsKind, KeyRef, UnverifiedJws};
use cairn_proto::{Algorithm, Jwk, KeyPair, KeyType, base64url};
use serde_json::json;

use crate::{URL, good_request, p256};

/// RFC 7515 Appendix A.3: the ES256 example JWS verifies under its key.
#[test]
fn rfc7515_a3_es256_verifies() {
    let key = Jwk::from_json(&json!({
        "kty": "EC",
        "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
    }))
    .unwrap();
    let protected = "eyJhbGciOiJFUzI1NiJ9";
    let payload = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
    let signature = base64url::decode(
        "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q",
    )
    .unwrap();
    let input = format!("{protected}.{payload}");
    key.verify(Algorithm::Es256, input.as_bytes(), &signature)
        .unwrap();
    let mut tampered = signature.clone();
    tampered[10] ^= 1;
    assert!(
        key.verify(Algorithm::Es256, input.as_bytes(), &tampered)
            .is_err()
    );
}

/// RFC 8037 Appendix A.1–A.4: the Ed25519 key, its RFC 7638 thumbprint,
/// and the deterministic EdDSA signature, reproduced and verified.
#[test]
fn rfc8037_ed25519_example() {
    let seed = base64url::decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A").unwrap();
    let public = base64url::decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo").unwrap();
    let key = KeyPair::ed25519_from_seed(&seed, &public).unwrap();
    // A.3: the thumbprint.
    assert_eq!(
        key.public_jwk().thumbprint(),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
    // A.4: signing "Example of Ed25519 signing" under {"alg":"EdDSA"}.
    let input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
    let expected =
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
    assert_eq!(
        base64url::encode(key.sign(input.as_bytes()).unwrap()),
        expected
    );
    // A.5: verification with the public key alone.
    let jwk = Jwk::from_json(&json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})).unwrap();
    jwk.verify(
        Algorithm::EdDsa,
        input.as_bytes(),
        &base64url::decode(expected).unwrap(),
    )
    .unwrap();
}

/// RFC 8555 §6.2 end to end: every accepted algorithm signs a request that
/// parses and verifies, with a `jwk` and with a `kid`.
#[test]
fn every_accepted_algorithm_round_trips() {
    for kind in [
        KeyType::EcdsaP256,
        KeyType::EcdsaP384,
        KeyType::Rsa2048,
        KeyType::Ed25519,
    ] {
        let key = KeyPair::generate(kind).unwrap();
        let body = good_request(&key, None, br#"{"termsOfServiceAgreed":true}"#);
        let parsed = UnverifiedJws::parse(body.as_bytes(), JwsKind::Request).unwrap();
        assert_eq!(parsed.header().alg, key.algorithm());
        assert_eq!(parsed.header().url, URL);
        assert_eq!(parsed.header().key, KeyRef::Jwk(key.public_jwk().clone()));
        let verified = parsed.verify_with_embedded_jwk().unwrap();
        let payload: serde_json::Value = verified.payload_json().unwrap();
        assert_eq!(payload, json!({"termsOfServiceAgreed": true}));

        let body = good_request(&key, Some(crate::KID), b"");
        let parsed = UnverifiedJws::parse(body.as_bytes(), JwsKind::Request).unwrap();
        assert_eq!(parsed.header().key, KeyRef::Kid(crate::KID.into()));
        let verified = parsed.verify_with(key.public_jwk()).unwrap();
        assert!(verified.is_post_as_get(), "{kind}");
    }
}

/// RFC 8555 §7.3.4: an external account binding made by `eab::sign`
/// verifies, and fails with a wrong MAC key, key or URL.
#[test]
fn external_account_binding_round_trips() {
    use cairn_proto::eab::{UnverifiedEab, sign};
    let account = p256();
    let mac = b"a MAC key of thirty-two bytes!!!";
    let binding = serde_json::to_value(sign("kid-1", mac, account.public_jwk(), URL)).unwrap();
    let eab = UnverifiedEab::parse(&binding).unwrap();
    assert_eq!(eab.key_id(), "kid-1");
    eab.verify(mac, account.public_jwk(), URL).unwrap();
    assert!(
        eab.verify(b"another key", account.public_jwk(), URL)
            .is_err()
    );
    assert!(eab.verify(mac, p256().public_jwk(), URL).is_err());
    assert!(
        eab.verify(mac, account.public_jwk(), "https://ca.test/other")
            .is_err()
    );
}

/// RFC 8555 §7.3.4: the binding's header must be HS256 with kid and url,
/// and no nonce.
#[test]
fn external_account_binding_header_rules() {
    use cairn_proto::Error;
    use cairn_proto::eab::UnverifiedEab;
    let account = p256();
    let payload = base64url::encode(account.public_jwk().canonical_json());
    let make = |header: &str| {
        json!({
            "protected": base64url::encode(header),
            "payload": payload,
            "signature": base64url::encode([0u8; 32]),
        })
    };
    const PART: &str = "externalAccountBinding header";
    let cases = [
        (
            r#"{"alg":"none","kid":"k","url":"u"}"#,
            Error::UnsupportedAlgorithm { alg: "none".into() },
        ),
        (
            r#"{"alg":"ES256","kid":"k","url":"u"}"#,
            Error::UnsupportedAlgorithm {
                alg: "ES256".into(),
            },
        ),
        (
            r#"{"alg":"HS256","url":"u"}"#,
            Error::MissingMember {
                part: PART,
                member: "kid",
            },
        ),
        (
            r#"{"alg":"HS256","kid":"k"}"#,
            Error::MissingMember {
                part: PART,
                member: "url",
            },
        ),
        (
            r#"{"alg":"HS256","kid":"k","url":"u","nonce":"AAAA"}"#,
            Error::UnexpectedMember {
                part: PART,
                member: "nonce".into(),
            },
        ),
        (
            r#"{"alg":"HS256","kid":"k","kid":"j","url":"u"}"#,
            Error::DuplicateMember {
                part: "protected header",
                member: "kid".into(),
            },
        ),
        (
            r#"{"alg":"HS256","kid":"k","url":"u","crit":["exp"]}"#,
            Error::UnknownCritical(vec!["exp".into()]),
        ),
    ];
    for (header, expected) in cases {
        assert_eq!(
            UnverifiedEab::parse(&make(header)).unwrap_err(),
            expected,
            "{header}"
        );
    }
}
