//! The CA's reading of a signed request body, as the wfe does it
//! (cairn-ca's wfe/request.rs and the handlers after it): the flattened JWS
//! envelope, the protected header and its JWK, the signature under the
//! embedded key or the account's stored one, then what handlers read from a
//! verified payload: a newAccount's external account binding, a key
//! change's inner JWS and its oldKey. Nothing may panic, a checked header
//! keeps the promises of its kind, and a JWK that parses reads back from
//! its own JSON as the same key.
#![no_main]

use std::sync::LazyLock;

use cairn_proto::Jwk;
use cairn_proto::eab::UnverifiedEab;
use cairn_proto::jws::{JwsKind, KeyRef, UnverifiedJws, VerifiedJws};
use cairn_proto::objects::{KeyChange, NewAccount};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// The account key of the seeds' `kid` requests (fuzz/seeds/generate.py),
/// standing for the key the CA has on file for the account.
const ACCOUNT_JWK: &str = r#"{"crv":"P-256","kty":"EC","x":"4s1vboOaLjtEb6MOvC__nJ1TFPqcNF-gptyjW9LZAmI","y":"7yJolXUEqiMwSlCWlzpQcttBZH73C5-T5guDT-CD1QM"}"#;
/// The MAC key of the seeds' external account bindings.
const EAB_MAC_KEY: &[u8] = b"cairn fuzz external account key!";

static ACCOUNT_KEY: LazyLock<Jwk> = LazyLock::new(|| {
    let value = serde_json::from_str(ACCOUNT_JWK).expect("ACCOUNT_JWK is JSON");
    Jwk::from_json(&value).expect("ACCOUNT_JWK is an acceptable key")
});

fuzz_target!(|data: &[u8]| {
    // Every POST body.
    if let Ok(jws) = UnverifiedJws::parse(data, JwsKind::Request) {
        request(jws);
    }
    // The same envelope where it arrives as JSON already: a key change's
    // inner JWS (the outer payload) and an external account binding (a
    // member of the newAccount payload).
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        if let Ok(inner) = UnverifiedJws::from_value(&value, JwsKind::KeyChangeInner) {
            key_change_inner(inner, None);
        }
        binding(&value, &ACCOUNT_KEY, "https://ca.test/acme/new-acct");
    }
});

fn request(jws: UnverifiedJws) {
    let header = jws.header().clone();
    let nonce = header
        .nonce
        .as_deref()
        .expect("a request always has a nonce");
    assert!(!nonce.is_empty());
    let verified = match &header.key {
        KeyRef::Jwk(jwk) => {
            check_jwk(jwk);
            jws.verify_with_embedded_jwk()
        }
        KeyRef::Kid(kid) => {
            assert!(!kid.is_empty());
            jws.verify_with(&ACCOUNT_KEY)
        }
    };
    let Ok(verified) = verified else {
        return;
    };
    assert_eq!(verified.header(), &header);
    if verified.is_post_as_get() {
        return;
    }
    let Ok(value) = verified.payload_json::<Value>() else {
        return;
    };
    if let Ok(new) = verified.payload_json::<NewAccount>()
        && let Some(eab) = &new.external_account_binding
    {
        binding(eab, verified.key(), &header.url);
    }
    if let Ok(inner) = UnverifiedJws::from_value(&value, JwsKind::KeyChangeInner) {
        key_change_inner(inner, Some(&verified));
    }
}

fn key_change_inner(inner: UnverifiedJws, outer: Option<&VerifiedJws>) {
    let header = inner.header().clone();
    assert!(header.nonce.is_none(), "an inner JWS with a nonce passed");
    let KeyRef::Jwk(new_key) = &header.key else {
        panic!("an inner JWS without a jwk passed");
    };
    check_jwk(new_key);
    let Ok(inner) = inner.verify_with_embedded_jwk() else {
        return;
    };
    if let Ok(change) = inner.payload_json::<KeyChange>()
        && let Ok(old_key) = Jwk::from_json(&change.old_key)
    {
        check_jwk(&old_key);
        if let Some(outer) = outer {
            let _ = &old_key == outer.key();
        }
    }
}

fn binding(value: &Value, account_key: &Jwk, url: &str) {
    if let Ok(eab) = UnverifiedEab::parse(value) {
        assert!(!eab.key_id().is_empty());
        let _ = eab.verify(EAB_MAC_KEY, account_key, url);
    }
}

/// A key reads back from its JSON as itself, with the same thumbprint.
fn check_jwk(jwk: &Jwk) {
    let json = jwk.to_json();
    let again = Jwk::from_json(&json).expect("a JWK's own JSON parses");
    assert_eq!(&again, jwk);
    assert_eq!(again.thumbprint(), jwk.thumbprint());
    assert_eq!(again.algorithm(), jwk.algorithm());
    assert_eq!(
        serde_json::to_string(&json).expect("serializes"),
        jwk.canonical_json()
    );
}
