//! Every refusal of the strict verifier (RFC 8555 §6.2, RFC 7515), each
//! with a hand-made bad JWS and the exact error it must produce.

use cairn_proto::jws::{JwsKind, UnverifiedJws};
use cairn_proto::{Error, KeyPair, KeyType, ProblemType, base64url};
use serde_json::json;

use crate::{KID, NONCE, URL, craft, good_request, p256};

fn parse(body: &str) -> Result<UnverifiedJws, Error> {
    UnverifiedJws::parse(body.as_bytes(), JwsKind::Request)
}

/// The header of a well-formed `jwk` request from `key`, to mutate.
fn header(key: &KeyPair) -> serde_json::Value {
    json!({
        "alg": key.algorithm().as_str(),
        "jwk": key.public_jwk().to_json(),
        "nonce": NONCE,
        "url": URL,
    })
}

fn with(
    key: &KeyPair,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> String {
    let mut h = header(key);
    edit(h.as_object_mut().unwrap());
    craft(key, &h.to_string(), b"{}")
}

#[test]
fn baseline_crafted_request_is_accepted() {
    let key = p256();
    let body = with(&key, |_| {});
    parse(&body).unwrap().verify_with_embedded_jwk().unwrap();
}

#[test]
fn not_json_or_not_an_object() {
    assert!(matches!(
        parse("not json"),
        Err(Error::InvalidJson { part: "JWS", .. })
    ));
    assert!(matches!(
        parse("[]"),
        Err(Error::InvalidJson { part: "JWS", .. })
    ));
    assert!(matches!(parse(""), Err(Error::InvalidJson { .. })));
}

#[test]
fn general_serialization_and_several_signatures_are_refused() {
    let key = p256();
    let good: serde_json::Value = serde_json::from_str(&good_request(&key, None, b"{}")).unwrap();
    let general = json!({
        "payload": good["payload"],
        "signatures": [
            {"protected": good["protected"], "signature": good["signature"]},
            {"protected": good["protected"], "signature": good["signature"]},
        ]
    });
    assert_eq!(
        parse(&general.to_string()).unwrap_err(),
        Error::MultipleSignatures
    );
    let mut both = good.clone();
    both["signatures"] = json!([]);
    assert_eq!(
        parse(&both.to_string()).unwrap_err(),
        Error::MultipleSignatures
    );
}

#[test]
fn unprotected_header_is_refused() {
    let key = p256();
    let mut jws: serde_json::Value =
        serde_json::from_str(&good_request(&key, None, b"{}")).unwrap();
    jws["header"] = json!({"kid": KID});
    assert_eq!(
        parse(&jws.to_string()).unwrap_err(),
        Error::UnexpectedMember {
            part: "JWS",
            member: "header".into()
        }
    );
}

#[test]
fn missing_envelope_members_are_refused() {
    let key = p256();
    let jws: serde_json::Value = serde_json::from_str(&good_request(&key, None, b"{}")).unwrap();
    for member in ["protected", "payload", "signature"] {
        let mut cut = jws.clone();
        cut.as_object_mut().unwrap().remove(member);
        assert_eq!(
            parse(&cut.to_string()).unwrap_err(),
            Error::MissingMember {
                part: "JWS",
                member
            }
        );
    }
}

#[test]
fn duplicate_members_are_refused_in_envelope_header_and_payload() {
    let key = p256();
    let jws: serde_json::Value = serde_json::from_str(&good_request(&key, None, b"{}")).unwrap();
    let body = format!(
        r#"{{"protected":{p},"payload":{pl},"payload":{pl},"signature":{s}}}"#,
        p = jws["protected"],
        pl = jws["payload"],
        s = jws["signature"]
    );
    assert_eq!(
        parse(&body).unwrap_err(),
        Error::DuplicateMember {
            part: "JWS",
            member: "payload".into()
        }
    );

    let jwk = key.public_jwk().to_json();
    let header = format!(
        r#"{{"alg":"ES256","jwk":{jwk},"nonce":"{NONCE}","url":"{URL}","url":"https://evil.test/"}}"#
    );
    assert_eq!(
        parse(&craft(&key, &header, b"{}")).unwrap_err(),
        Error::DuplicateMember {
            part: "protected header",
            member: "url".into()
        }
    );

    let header = format!(r#"{{"alg":"ES256","jwk":{jwk},"nonce":"{NONCE}","url":"{URL}"}}"#);
    let body = craft(
        &key,
        &header,
        br#"{"contact":["mailto:a@a.test"],"contact":[]}"#,
    );
    let verified = parse(&body).unwrap().verify_with_embedded_jwk().unwrap();
    assert_eq!(
        verified.payload_json::<serde_json::Value>().unwrap_err(),
        Error::DuplicateMember {
            part: "payload",
            member: "contact".into()
        }
    );
}

#[test]
fn alg_none_hmac_and_unknown_algorithms_are_refused_with_the_accepted_list() {
    let key = p256();
    for alg in [
        "none", "HS256", "HS512", "RS512", "PS256", "es256", "ES512", "",
    ] {
        let body = with(&key, |h| {
            h.insert("alg".into(), json!(alg));
        });
        let err = parse(&body).unwrap_err();
        assert_eq!(err, Error::UnsupportedAlgorithm { alg: alg.into() });
        let problem = err.to_problem();
        assert_eq!(problem.kind, ProblemType::BadSignatureAlgorithm);
        assert_eq!(
            problem.algorithms.as_deref(),
            Some(
                &[
                    "ES256".to_owned(),
                    "ES384".into(),
                    "RS256".into(),
                    "EdDSA".into()
                ][..]
            )
        );
    }
    let body = with(&key, |h| {
        h.remove("alg");
    });
    assert_eq!(
        parse(&body).unwrap_err(),
        Error::MissingMember {
            part: "protected header",
            member: "alg"
        }
    );
}

#[test]
fn alg_must_match_the_key() {
    let key = p256();
    // ES384 claimed for a P-256 jwk.
    let body = with(&key, |h| {
        h.insert("alg".into(), json!("ES384"));
    });
    let err = parse(&body).unwrap_err();
    assert_eq!(
        err,
        Error::AlgorithmMismatch {
            header: cairn_proto::Algorithm::Es384,
            key: cairn_proto::Algorithm::Es256
        }
    );
    assert_eq!(err.problem_type(), ProblemType::BadSignatureAlgorithm);

    // The JWK's own "alg" disagrees with the key type.
    let body = with(&key, |h| {
        h["jwk"]["alg"] = json!("RS256");
    });
    assert_eq!(
        parse(&body).unwrap_err(),
        Error::AlgorithmMismatch {
            header: cairn_proto::Algorithm::Rs256,
            key: cairn_proto::Algorithm::Es256
        }
    );

    // A kid request signed with Ed25519 while the account key is P-256.
    let ed = KeyPair::generate(KeyType::Ed25519).unwrap();
    let body = good_request(&ed, Some(KID), b"{}");
    assert_eq!(
        parse(&body)
            .unwrap()
            .verify_with(key.public_jwk())
            .unwrap_err(),
        Error::AlgorithmMismatch {
            header: cairn_proto::Algorithm::EdDsa,
            key: cairn_proto::Algorithm::Es256
        }
    );
}

#[test]
fn exactly_one_of_jwk_and_kid() {
    let key = p256();
    let both = with(&key, |h| {
        h.insert("kid".into(), json!(KID));
    });
    assert_eq!(parse(&both).unwrap_err(), Error::JwkXorKid);
    let neither = with(&key, |h| {
        h.remove("jwk");
    });
    assert_eq!(parse(&neither).unwrap_err(), Error::JwkXorKid);
    let bad_kid = with(&key, |h| {
        h.remove("jwk");
        h.insert("kid".into(), json!(42));
    });
    assert_eq!(
        parse(&bad_kid).unwrap_err(),
        Error::MissingMember {
            part: "protected header",
            member: "kid"
        }
    );
    let kid_only = good_request(&key, Some(KID), b"{}");
    assert_eq!(
        parse(&kid_only)
            .unwrap()
            .verify_with_embedded_jwk()
            .unwrap_err(),
        Error::MissingMember {
            part: "protected header",
            member: "jwk"
        }
    );
}

#[test]
fn nonce_is_required_and_base64url() {
    let key = p256();
    let missing = with(&key, |h| {
        h.remove("nonce");
    });
    let err = parse(&missing).unwrap_err();
    assert_eq!(err, Error::MissingNonce);
    assert_eq!(err.problem_type(), ProblemType::BadNonce);
    for bad in [
        json!(""),
        json!("not base64!"),
        json!("AAAA=="),
        json!(12),
        json!(null),
    ] {
        let body = with(&key, |h| {
            h.insert("nonce".into(), bad.clone());
        });
        let err = parse(&body).unwrap_err();
        assert_eq!(err, Error::InvalidNonce, "{bad}");
        assert_eq!(err.problem_type(), ProblemType::BadNonce);
    }
}

#[test]
fn url_is_required() {
    let key = p256();
    for edit in [None, Some(json!(7))] {
        let body = with(&key, |h| match &edit {
            None => {
                h.remove("url");
            }
            Some(v) => {
                h.insert("url".into(), v.clone());
            }
        });
        assert_eq!(
            parse(&body).unwrap_err(),
            Error::MissingMember {
                part: "protected header",
                member: "url"
            }
        );
    }
}

#[test]
fn unencoded_payload_is_refused() {
    let key = p256();
    let body = with(&key, |h| {
        h.insert("b64".into(), json!(false));
        h.insert("crit".into(), json!(["b64"]));
    });
    assert_eq!(parse(&body).unwrap_err(), Error::UnencodedPayload);
    let body = with(&key, |h| {
        h.insert("b64".into(), json!(false));
    });
    assert_eq!(parse(&body).unwrap_err(), Error::UnencodedPayload);
}

#[test]
fn unknown_critical_parameters_are_refused() {
    let key = p256();
    let body = with(&key, |h| {
        h.insert("crit".into(), json!(["exp"]));
        h.insert("exp".into(), json!(1_363_284_000));
    });
    assert_eq!(
        parse(&body).unwrap_err(),
        Error::UnknownCritical(vec!["exp".into()])
    );
    let empty = with(&key, |h| {
        h.insert("crit".into(), json!([]));
    });
    assert_eq!(parse(&empty).unwrap_err(), Error::UnknownCritical(vec![]));
}

#[test]
fn malformed_base64url_is_refused_in_every_part() {
    let key = p256();
    let good: serde_json::Value = serde_json::from_str(&good_request(&key, None, b"{}")).unwrap();
    for (member, field) in [
        ("protected", "protected"),
        ("payload", "payload"),
        ("signature", "signature"),
    ] {
        for mutate in [
            |s: &str| format!("{s}="),
            |s: &str| s.replacen(|c: char| c.is_alphanumeric(), "+", 1),
            |s: &str| format!(" {s}"),
        ] {
            let mut bad = good.clone();
            bad[member] = json!(mutate(good[member].as_str().unwrap()));
            assert_eq!(
                parse(&bad.to_string()).unwrap_err(),
                Error::InvalidBase64 { field },
                "{member}: {}",
                bad[member]
            );
        }
    }
    // Padding inside a JWK member inside the header.
    let body = with(&key, |h| {
        let x = h["jwk"]["x"].as_str().unwrap().to_owned();
        h["jwk"]["x"] = json!(format!("{x}="));
    });
    assert_eq!(
        parse(&body).unwrap_err(),
        Error::InvalidBase64 { field: "x" }
    );
}

#[test]
fn weak_or_invalid_keys_are_refused_as_bad_public_key() {
    let key = p256();
    let mut small_modulus = vec![0xC3u8; 128]; // 1024 bits
    small_modulus[127] |= 1;
    let cases = [
        json!({"kty": "RSA", "n": base64url::encode(&small_modulus), "e": "AQAB"}),
        json!({"kty": "RSA", "n": base64url::encode(vec![0xC3u8; 256]), "e": "Aw"}),
        json!({
            "kty": "EC", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a4"
        }),
        json!({"kty": "EC", "crv": "P-256", "x": base64url::encode([0u8; 32]), "y": base64url::encode([0u8; 32])}),
        json!({"kty": "oct", "k": "c2VjcmV0"}),
    ];
    for jwk in cases {
        let alg = if jwk["kty"] == "RSA" {
            "RS256"
        } else {
            "ES256"
        };
        let body = with(&key, |h| {
            h.insert("alg".into(), json!(alg));
            h.insert("jwk".into(), jwk.clone());
        });
        let err = parse(&body).unwrap_err();
        assert!(matches!(err, Error::BadPublicKey(_)), "{jwk}: {err:?}");
        assert_eq!(err.problem_type(), ProblemType::BadPublicKey);
    }
}

#[test]
fn signatures_that_do_not_verify_are_refused() {
    let key = p256();
    let other = p256();
    let mut jws: serde_json::Value =
        serde_json::from_str(&good_request(&key, None, b"{}")).unwrap();
    // Another payload under the same signature.
    let original = jws.clone();
    jws["payload"] = json!(base64url::encode(br#"{"onlyReturnExisting":true}"#));
    assert_eq!(
        parse(&jws.to_string())
            .unwrap()
            .verify_with_embedded_jwk()
            .unwrap_err(),
        Error::BadSignature
    );
    // Right structure, wrong key for the kid.
    let kid_body = good_request(&key, Some(KID), b"{}");
    assert_eq!(
        parse(&kid_body)
            .unwrap()
            .verify_with(other.public_jwk())
            .unwrap_err(),
        Error::BadSignature
    );
    // Truncated and empty signatures.
    for sig in [
        String::new(),
        original["signature"].as_str().unwrap()[..20].to_owned(),
    ] {
        let mut bad = original.clone();
        bad["signature"] = json!(sig);
        assert_eq!(
            parse(&bad.to_string())
                .unwrap()
                .verify_with_embedded_jwk()
                .unwrap_err(),
            Error::BadSignature
        );
    }
}

#[test]
fn key_change_inner_jws_rules() {
    use cairn_proto::jws::{FlattenedJws, SigningHeader};
    let new_key = p256();
    let inner = FlattenedJws::sign(
        &new_key,
        SigningHeader {
            kid: None,
            nonce: None,
            url: URL,
        },
        b"{}",
    )
    .unwrap();
    let value = serde_json::to_value(&inner).unwrap();
    let parsed = UnverifiedJws::from_value(&value, JwsKind::KeyChangeInner).unwrap();
    assert_eq!(parsed.header().nonce, None);
    parsed.verify_with_embedded_jwk().unwrap();
    // The same JWS is not a valid outer request: it lacks a nonce.
    assert_eq!(
        UnverifiedJws::from_value(&value, JwsKind::Request).unwrap_err(),
        Error::MissingNonce
    );

    let with_nonce = good_request(&new_key, None, b"{}");
    assert_eq!(
        UnverifiedJws::parse(with_nonce.as_bytes(), JwsKind::KeyChangeInner).unwrap_err(),
        Error::UnexpectedMember {
            part: "key change inner JWS header",
            member: "nonce".into()
        }
    );
    let with_kid = FlattenedJws::sign(
        &new_key,
        SigningHeader {
            kid: Some(KID),
            nonce: None,
            url: URL,
        },
        b"{}",
    )
    .unwrap();
    assert_eq!(
        UnverifiedJws::from_value(
            &serde_json::to_value(&with_kid).unwrap(),
            JwsKind::KeyChangeInner
        )
        .unwrap_err(),
        Error::MissingMember {
            part: "key change inner JWS header",
            member: "jwk"
        }
    );
}
