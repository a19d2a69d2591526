//! cairn-proto's integration tests: RFC test vectors, every refusal of the
//! strict JWS verifier, and property tests that no input panics.
#![allow(clippy::unwrap_used)]

mod jws_refusals;
mod objects;
mod properties;
mod vectors;

use cairn_proto::base64url;
use cairn_proto::jws::{FlattenedJws, SigningHeader};
use cairn_proto::{KeyPair, KeyType};

pub(crate) const URL: &str = "https://ca.test/acme/new-order";
pub(crate) const NONCE: &str = "6S8IqOGY7eL2lsGoTZYifg";
pub(crate) const KID: &str = "https://ca.test/acme/acct/1";

/// A JWS with an arbitrary protected header text, signed with `key`, so a
/// test can put anything the signer would never produce on the wire.
pub(crate) fn craft(key: &KeyPair, header_json: &str, payload: &[u8]) -> String {
    let protected = base64url::encode(header_json);
    let payload = base64url::encode(payload);
    let sig = key
        .sign(format!("{protected}.{payload}").as_bytes())
        .unwrap();
    format!(
        r#"{{"protected":"{protected}","payload":"{payload}","signature":"{}"}}"#,
        base64url::encode(sig)
    )
}

/// A well-formed request JWS as a client sends it.
pub(crate) fn good_request(key: &KeyPair, kid: Option<&str>, payload: &[u8]) -> String {
    FlattenedJws::sign(
        key,
        SigningHeader {
            kid,
            nonce: Some(NONCE),
            url: URL,
        },
        payload,
    )
    .unwrap()
    .to_json_string()
}

pub(crate) fn p256() -> KeyPair {
    KeyPair::generate(KeyType::EcdsaP256).unwrap()
}
