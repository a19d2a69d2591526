//! What the server pays to read one signed ACME request (RFC 8555 §6.2):
//! parse the flattened JWS and verify its signature, per account key
//! algorithm, on a typical newOrder body. Signing is measured for
//! reference (the client's side).
//!
//! ```sh
//! cargo bench -p cairn-proto --bench jws
//! ```

use std::hint::black_box;

use cairn_proto::jws::{FlattenedJws, JwsKind, SigningHeader, UnverifiedJws};
use cairn_proto::objects::NewOrder;
use cairn_proto::{Identifier, KeyPair, KeyType};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const ACCOUNT_URL: &str = "https://ca.example/acme/acct/8b1d3c5e";
const NEW_ORDER_URL: &str = "https://ca.example/acme/new-order";
/// The shape of a nonce from `LocalNonces`: 16 bytes, base64url.
const NONCE: &str = "AAAAAAAAAAE0Fw3Vd8mY1Q";

/// The payload of a newOrder request for two names (RFC 8555 §7.4).
fn new_order_payload() -> Vec<u8> {
    let order = NewOrder::new(vec![
        Identifier::dns("example.com"),
        Identifier::dns("www.example.com"),
    ]);
    serde_json::to_vec(&order).expect("a newOrder serializes")
}

/// A newOrder request body signed by `key`, with `kid` or an embedded `jwk`.
fn signed_body(key: &KeyPair, kid: Option<&str>) -> Vec<u8> {
    let header = SigningHeader {
        kid,
        nonce: Some(NONCE),
        url: NEW_ORDER_URL,
    };
    FlattenedJws::sign(key, header, &new_order_payload())
        .expect("signs")
        .to_json_string()
        .into_bytes()
}

fn verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("jws");
    group.throughput(Throughput::Elements(1));

    for (name, kind) in [
        ("ES256", KeyType::EcdsaP256),
        ("ES384", KeyType::EcdsaP384),
        ("RS256-2048", KeyType::Rsa2048),
        ("EdDSA", KeyType::Ed25519),
    ] {
        let key = KeyPair::generate(kind).expect("generates");
        let account_key = key.public_jwk().clone();
        let body = signed_body(&key, Some(ACCOUNT_URL));
        group.bench_function(format!("parse+verify_with/{name}"), |b| {
            b.iter(|| {
                let jws = UnverifiedJws::parse(black_box(&body), JwsKind::Request).expect("parses");
                jws.verify_with(black_box(&account_key)).expect("verifies")
            });
        });
    }

    let key = KeyPair::generate(KeyType::EcdsaP256).expect("generates");
    let body = signed_body(&key, Some(ACCOUNT_URL));
    group.bench_function("parse_only/ES256", |b| {
        b.iter(|| UnverifiedJws::parse(black_box(&body), JwsKind::Request).expect("parses"));
    });

    let body = signed_body(&key, None);
    group.bench_function("parse+verify_with_embedded_jwk/ES256", |b| {
        b.iter(|| {
            let jws = UnverifiedJws::parse(black_box(&body), JwsKind::Request).expect("parses");
            jws.verify_with_embedded_jwk().expect("verifies")
        });
    });

    let payload = new_order_payload();
    group.bench_function("sign/ES256", |b| {
        b.iter(|| {
            let header = SigningHeader {
                kid: Some(ACCOUNT_URL),
                nonce: Some(NONCE),
                url: NEW_ORDER_URL,
            };
            FlattenedJws::sign(black_box(&key), header, black_box(&payload)).expect("signs")
        });
    });

    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
