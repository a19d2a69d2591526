//! The CA's check of a finalize CSR (cairn-ca's `signer::check_csr`) on
//! arbitrary DER, and the two certificate readers that revokeCert uses
//! (`certificate_serial`, `certificate_key_matches`) on the same bytes.
//! Nothing may panic, and what passes keeps the check's promises: names
//! sorted, without duplicates, lowercase DNS names and canonical IP
//! addresses, and a key the CA certifies.
#![no_main]

use std::net::IpAddr;
use std::sync::LazyLock;

use cairn_ca::signer::{CsrKey, Curve, certificate_key_matches, certificate_serial, check_csr};
use cairn_proto::{IdentifierType, Jwk};
use libfuzzer_sys::fuzz_target;

/// The account key (fuzz/seeds/generate.py): the seed
/// csr_parse/bad-account-key.der is signed with it, and certificate.der
/// certifies it.
const ACCOUNT_JWK: &str = r#"{"crv":"P-256","kty":"EC","x":"4s1vboOaLjtEb6MOvC__nJ1TFPqcNF-gptyjW9LZAmI","y":"7yJolXUEqiMwSlCWlzpQcttBZH73C5-T5guDT-CD1QM"}"#;

static ACCOUNT_KEY: LazyLock<Jwk> = LazyLock::new(|| {
    let value = serde_json::from_str(ACCOUNT_JWK).expect("ACCOUNT_JWK is JSON");
    Jwk::from_json(&value).expect("ACCOUNT_JWK is an acceptable key")
});

fuzz_target!(|data: &[u8]| {
    if let Ok(csr) = check_csr(data, &ACCOUNT_KEY) {
        assert!(!csr.names.is_empty(), "a CSR without names passed");
        assert!(
            csr.names.windows(2).all(|w| w[0] < w[1]),
            "names not sorted or not deduplicated: {:?}",
            csr.names
        );
        for id in &csr.names {
            match id.kind {
                IdentifierType::Dns => assert!(
                    !id.value.is_empty()
                        && id
                            .value
                            .bytes()
                            .all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase()),
                    "DNS name {:?}",
                    id.value
                ),
                IdentifierType::Ip => {
                    let ip: IpAddr = id.value.parse().expect("an IP identifier parses");
                    assert_eq!(ip.to_string(), id.value, "IP identifier not canonical");
                }
                ref other => panic!("identifier type {other:?} passed"),
            }
        }
        match csr.key {
            CsrKey::Rsa { bits } => assert!([2048, 3072, 4096].contains(&bits), "{bits}"),
            CsrKey::Ecdsa(Curve::P256 | Curve::P384) => {}
        }
        assert!(
            data.windows(csr.public_key_spki_der.len())
                .any(|w| w == csr.public_key_spki_der),
            "the SPKI is not a part of the CSR"
        );
    }
    let _ = certificate_serial(data);
    let _ = certificate_key_matches(data, &ACCOUNT_KEY);
});
