//! Property tests: no input, random or mutated from a valid JWS, panics any
//! parser, and a mutated JWS never verifies unless it decodes to the same
//! signed content.

use cairn_proto::ari::CertId;
use cairn_proto::challenge::Token;
use cairn_proto::eab::UnverifiedEab;
use cairn_proto::jws::{JwsKind, UnverifiedJws};
use cairn_proto::{Jwk, KeyPair, KeyType, base64url};
use proptest::prelude::*;

use crate::good_request;

fn fixture() -> (KeyPair, String) {
    let key = KeyPair::generate(KeyType::EcdsaP256).unwrap();
    let body = good_request(
        &key,
        None,
        br#"{"identifiers":[{"type":"dns","value":"a.test"}]}"#,
    );
    (key, body)
}

/// Feeds `bytes` to every parser that takes untrusted input.
fn exercise(bytes: &[u8]) {
    for kind in [JwsKind::Request, JwsKind::KeyChangeInner] {
        if let Ok(jws) = UnverifiedJws::parse(bytes, kind) {
            let _ = jws
                .verify_with_embedded_jwk()
                .map(|v| v.payload_json::<serde_json::Value>());
        }
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
        let _ = Jwk::from_json(&value);
        let _ = UnverifiedEab::parse(&value);
        let _ = serde_json::from_value::<cairn_proto::objects::Order>(value.clone());
        let _ = serde_json::from_value::<cairn_proto::Problem>(value);
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = text.parse::<CertId>();
        let _ = Token::parse(text);
        let _ = base64url::decode(text);
        let _ = cairn_proto::pem::decode_all(text, "CERTIFICATE");
    }
    let _ = KeyPair::from_pkcs8_der(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        exercise(&bytes);
    }

    #[test]
    fn random_json_shaped_text_never_panics(text in r#"\{("[a-z]{1,9}":("[A-Za-z0-9_=+/-]{0,40}"|[0-9]{1,3}|\[\]|\{\}|null|true),?){0,6}\}"#) {
        exercise(text.as_bytes());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn mutated_valid_jws_never_panics_and_never_verifies_altered_content(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6)
    ) {
        let (key, body) = fixture();
        let mut bytes = body.clone().into_bytes();
        for (index, byte, op) in edits {
            match op {
                0 if !bytes.is_empty() => { let i = index.index(bytes.len()); bytes[i] = byte; }
                1 => { let i = index.index(bytes.len() + 1); bytes.insert(i, byte); }
                _ if !bytes.is_empty() => { let i = index.index(bytes.len()); bytes.remove(i); }
                _ => {}
            }
        }
        exercise(&bytes);
        if let Ok(jws) = UnverifiedJws::parse(&bytes, JwsKind::Request)
            && let Ok(verified) = jws.verify_with(key.public_jwk())
        {
            // Only a change that decodes to the same signed content may verify
            // (JSON whitespace, say).
            let original = UnverifiedJws::parse(body.as_bytes(), JwsKind::Request).unwrap()
                .verify_with(key.public_jwk()).unwrap();
            prop_assert_eq!(verified.payload(), original.payload());
            prop_assert_eq!(verified.header(), original.header());
        }
    }

    #[test]
    fn mutated_protected_headers_never_panic(
        header in r#"\{"alg":"(ES256|none|HS256|RS256)"(,"(jwk|kid|nonce|url|crit|b64)":("[A-Za-z0-9_-]{0,24}"|\[\]|\{\}|false|1)){0,6}\}"#
    ) {
        let (key, _) = fixture();
        exercise(crate::craft(&key, &header, b"{}").as_bytes());
    }
}
