//! Public keys as JWK (RFC 7517, RFC 7518 §6, RFC 8037) and their
//! thumbprints (RFC 7638).
//!
//! A [`Jwk`] that exists has passed every check a CA makes of an account
//! key: a supported type and curve, an EC point on its curve, an RSA modulus
//! of 2048 to 8192 bits with an exponent of at least 65537, and no private
//! key material.

use std::fmt;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::Error;
use crate::base64url;

/// A JWS signature algorithm (RFC 7518 §3.1, RFC 8037 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// ECDSA with P-256 and SHA-256.
    Es256,
    /// ECDSA with P-384 and SHA-384.
    Es384,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// Ed25519 (RFC 8037).
    EdDsa,
    /// HMAC with SHA-256: only for external account binding (RFC 8555 §7.3.4).
    Hs256,
}

impl Algorithm {
    /// The algorithms accepted for account-key signatures, in the order a
    /// `badSignatureAlgorithm` problem lists them (RFC 8555 §6.2).
    pub const ACCEPTED_FOR_ACCOUNTS: [Algorithm; 4] =
        [Self::Es256, Self::Es384, Self::Rs256, Self::EdDsa];

    /// The `alg` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::Rs256 => "RS256",
            Self::EdDsa => "EdDSA",
            Self::Hs256 => "HS256",
        }
    }

    /// Looks up an `alg` value; names are case-sensitive (RFC 7515 §4.1.1).
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Es256,
            Self::Es384,
            Self::Rs256,
            Self::EdDsa,
            Self::Hs256,
        ]
        .into_iter()
        .find(|a| a.as_str() == name)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An elliptic curve for ECDSA keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Curve {
    P256,
    P384,
}

impl Curve {
    fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
        }
    }

    fn coordinate_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
        }
    }

    fn algorithm(self) -> Algorithm {
        match self {
            Self::P256 => Algorithm::Es256,
            Self::P384 => Algorithm::Es384,
        }
    }
}

/// The smallest RSA modulus accepted, in bits.
pub const RSA_MIN_BITS: usize = 2048;
/// The largest RSA modulus accepted, in bits.
pub const RSA_MAX_BITS: usize = 8192;

/// A validated public key.
#[derive(Clone)]
pub struct Jwk {
    params: KeyParams,
    verifier: ParsedPublicKey,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum KeyParams {
    Ec {
        curve: Curve,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ed25519 {
        x: Vec<u8>,
    },
}

/// A [`Jwk`]'s public components, as big-endian octets without leading
/// zeros (RFC 7518 §6) or the encoded point (RFC 8037).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublicComponents<'a> {
    Ec {
        curve: Curve,
        x: &'a [u8],
        y: &'a [u8],
    },
    Rsa {
        n: &'a [u8],
        e: &'a [u8],
    },
    Ed25519 {
        x: &'a [u8],
    },
}

/// Members that only a private JWK has (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

impl Jwk {
    /// Reads a JWK from a JSON object, with every check in the module doc.
    ///
    /// If the JWK names its own `alg`, it must be the algorithm its key
    /// type implies.
    pub fn from_json(value: &Value) -> Result<Self, Error> {
        let Value::Object(members) = value else {
            return Err(Error::MissingMember {
                part: "jwk",
                member: "kty",
            });
        };
        if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| members.contains_key(**m)) {
            return Err(Error::BadPublicKey(format!(
                "the JWK carries private key material ({member:?})"
            )));
        }
        let jwk = match string_member(members, "kty")? {
            "EC" => {
                let curve = match string_member(members, "crv")? {
                    "P-256" => Curve::P256,
                    "P-384" => Curve::P384,
                    other => {
                        return Err(Error::BadPublicKey(format!(
                            "EC curve {other:?} is not accepted; use P-256 or P-384"
                        )));
                    }
                };
                Self::ec(
                    curve,
                    bytes_member(members, "x")?,
                    bytes_member(members, "y")?,
                )?
            }
            "RSA" => Self::rsa(bytes_member(members, "n")?, bytes_member(members, "e")?)?,
            "OKP" => match string_member(members, "crv")? {
                "Ed25519" => Self::ed25519(bytes_member(members, "x")?)?,
                other => {
                    return Err(Error::BadPublicKey(format!(
                        "OKP curve {other:?} is not accepted; use Ed25519"
                    )));
                }
            },
            other => {
                return Err(Error::BadPublicKey(format!(
                    "key type {other:?} is not accepted; use EC, RSA or OKP"
                )));
            }
        };
        if let Some(declared) = members.get("alg") {
            let name = declared.as_str().ok_or(Error::MissingMember {
                part: "jwk",
                member: "alg",
            })?;
            match Algorithm::from_name(name) {
                Some(alg) if alg == jwk.algorithm() => {}
                Some(alg) => {
                    return Err(Error::AlgorithmMismatch {
                        header: alg,
                        key: jwk.algorithm(),
                    });
                }
                None => {
                    return Err(Error::UnsupportedAlgorithm {
                        alg: name.to_owned(),
                    });
                }
            }
        }
        Ok(jwk)
    }

    /// An ECDSA key from its affine coordinates (big-endian, fixed length).
    pub fn ec(curve: Curve, x: Vec<u8>, y: Vec<u8>) -> Result<Self, Error> {
        let len = curve.coordinate_len();
        if x.len() != len || y.len() != len {
            return Err(Error::BadPublicKey(format!(
                "{} coordinates must be {len} bytes each",
                curve.name()
            )));
        }
        let mut point = Vec::with_capacity(1 + 2 * len);
        point.push(0x04);
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        let alg: &'static signature::EcdsaVerificationAlgorithm = match curve {
            Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
            Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
        };
        let verifier = ParsedPublicKey::new(alg, &point).map_err(|_| {
            Error::BadPublicKey(format!("the point is not on curve {}", curve.name()))
        })?;
        Ok(Self {
            params: KeyParams::Ec { curve, x, y },
            verifier,
        })
    }

    /// An RSA key from its modulus and public exponent (big-endian, no
    /// leading zero octets, RFC 7518 §6.3.1).
    pub fn rsa(n: Vec<u8>, e: Vec<u8>) -> Result<Self, Error> {
        if n.first() == Some(&0) || e.first() == Some(&0) {
            return Err(Error::BadPublicKey(
                "RSA modulus and exponent must not have leading zero octets".into(),
            ));
        }
        let bits = bit_length(&n);
        if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
            return Err(Error::BadPublicKey(format!(
                "RSA modulus of {bits} bits; {RSA_MIN_BITS} to {RSA_MAX_BITS} are accepted"
            )));
        }
        if n.last().is_some_and(|b| b & 1 == 0) {
            return Err(Error::BadPublicKey("RSA modulus is even".into()));
        }
        // Exponents from 65537 up to 2^32 - 1, and odd.
        let exponent = (e.len() <= 4)
            .then(|| e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
            .filter(|v| *v >= 65_537 && v % 2 == 1);
        if exponent.is_none() {
            return Err(Error::BadPublicKey(
                "RSA public exponent must be odd, at least 65537 and at most 32 bits".into(),
            ));
        }
        let verifier = RsaPublicKeyComponents { n: &n, e: &e }
            .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
            .map_err(|_| Error::BadPublicKey("RSA key is not valid".into()))?;
        Ok(Self {
            params: KeyParams::Rsa { n, e },
            verifier,
        })
    }

    /// An Ed25519 key from its 32-byte public value (RFC 8037 §2).
    pub fn ed25519(x: Vec<u8>) -> Result<Self, Error> {
        if x.len() != 32 {
            return Err(Error::BadPublicKey("Ed25519 keys are 32 bytes".into()));
        }
        let verifier = ParsedPublicKey::new(&signature::ED25519, &x)
            .map_err(|_| Error::BadPublicKey("not a valid Ed25519 key".into()))?;
        Ok(Self {
            params: KeyParams::Ed25519 { x },
            verifier,
        })
    }

    /// The one JWS algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        match &self.params {
            KeyParams::Ec { curve, .. } => curve.algorithm(),
            KeyParams::Rsa { .. } => Algorithm::Rs256,
            KeyParams::Ed25519 { .. } => Algorithm::EdDsa,
        }
    }

    /// The key's public components, for checks beyond this module's (a
    /// CA's key policy) and for encoding the key in other forms.
    pub fn components(&self) -> PublicComponents<'_> {
        match &self.params {
            KeyParams::Ec { curve, x, y } => PublicComponents::Ec {
                curve: *curve,
                x,
                y,
            },
            KeyParams::Rsa { n, e } => PublicComponents::Rsa { n, e },
            KeyParams::Ed25519 { x } => PublicComponents::Ed25519 { x },
        }
    }

    /// The RSA modulus size in bits, for RSA keys.
    pub fn rsa_bits(&self) -> Option<usize> {
        match &self.params {
            KeyParams::Rsa { n, .. } => Some(bit_length(n)),
            _ => None,
        }
    }

    /// The JWK as JSON, with only the required public members.
    pub fn to_json(&self) -> Value {
        serde_json::from_str(&self.canonical_json()).expect("canonical JWK is valid JSON")
    }

    /// The RFC 7638 §3 thumbprint input: required members, sorted, no space.
    pub fn canonical_json(&self) -> String {
        match &self.params {
            KeyParams::Ec { curve, x, y } => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                curve.name(),
                base64url::encode(x),
                base64url::encode(y)
            ),
            KeyParams::Rsa { n, e } => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                base64url::encode(e),
                base64url::encode(n)
            ),
            KeyParams::Ed25519 { x } => {
                format!(
                    r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                    base64url::encode(x)
                )
            }
        }
    }

    /// The SHA-256 JWK thumbprint (RFC 7638 §3).
    pub fn thumbprint_sha256(&self) -> [u8; 32] {
        let digest = digest::digest(&digest::SHA256, self.canonical_json().as_bytes());
        digest
            .as_ref()
            .try_into()
            .expect("SHA-256 digests are 32 bytes")
    }

    /// The thumbprint as base64url, as used in key authorizations (RFC 8555 §8.1).
    pub fn thumbprint(&self) -> String {
        base64url::encode(self.thumbprint_sha256())
    }

    /// Verifies `signature` over `message` with algorithm `alg`.
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> Result<(), Error> {
        if alg != self.algorithm() {
            return Err(Error::AlgorithmMismatch {
                header: alg,
                key: self.algorithm(),
            });
        }
        self.verifier
            .verify_sig(message, signature)
            .map_err(|_| Error::BadSignature)
    }
}

impl PartialEq for Jwk {
    fn eq(&self, other: &Self) -> bool {
        self.params == other.params
    }
}

impl Eq for Jwk {}

impl std::hash::Hash for Jwk {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.params.hash(state);
    }
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical_json())
    }
}

impl Serialize for Jwk {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Jwk {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_json(&value).map_err(serde::de::Error::custom)
    }
}

fn string_member<'a>(
    members: &'a Map<String, Value>,
    name: &'static str,
) -> Result<&'a str, Error> {
    members
        .get(name)
        .and_then(Value::as_str)
        .ok_or(Error::MissingMember {
            part: "jwk",
            member: name,
        })
}

fn bytes_member(members: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, Error> {
    base64url::decode(string_member(members, name)?)
        .map_err(|_| Error::InvalidBase64 { field: name })
}

fn bit_length(big_endian: &[u8]) -> usize {
    match big_endian.iter().position(|b| *b != 0) {
        Some(i) => (big_endian.len() - i - 1) * 8 + (8 - big_endian[i].leading_zeros() as usize),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// RFC 7638 §3.1: the example RSA key and its thumbprint.
    #[test]
    fn rfc7638_thumbprint_example() {
        let jwk = Jwk::from_json(&json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        }))
        .expect("RFC 7638 key is valid");
        assert_eq!(
            jwk.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert_eq!(jwk.rsa_bits(), Some(2048));
    }

    /// RFC 7515 Appendix A.3: the ES256 example key.
    pub(crate) fn rfc7515_a3_key() -> Value {
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
        })
    }

    #[test]
    fn ec_point_off_the_curve_is_refused() {
        let mut key = rfc7515_a3_key();
        // Flip the last bit of y: (x, y') is not on P-256.
        key["y"] = json!("x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a4");
        let err = Jwk::from_json(&key).expect_err("off-curve point");
        assert!(
            matches!(err, Error::BadPublicKey(ref m) if m.contains("not on curve")),
            "{err}"
        );
        assert_eq!(err.problem_type(), crate::ProblemType::BadPublicKey);
    }

    #[test]
    fn ec_coordinates_of_the_wrong_length_are_refused() {
        let mut key = rfc7515_a3_key();
        key["crv"] = json!("P-384");
        assert!(matches!(Jwk::from_json(&key), Err(Error::BadPublicKey(_))));
    }

    #[test]
    fn unsupported_types_and_curves_are_refused() {
        for key in [
            json!({"kty": "oct", "k": "AAAA"}),
            json!({"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"}),
            json!({"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA"}),
            json!({"kty": "OKP", "crv": "X25519", "x": "AA"}),
            json!({"kty": "DSA"}),
        ] {
            let err = Jwk::from_json(&key).expect_err("refused");
            assert_eq!(
                err.problem_type(),
                crate::ProblemType::BadPublicKey,
                "{key}"
            );
        }
    }

    #[test]
    fn private_key_material_is_refused() {
        let mut key = rfc7515_a3_key();
        key["d"] = json!("jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI");
        assert!(
            matches!(Jwk::from_json(&key), Err(Error::BadPublicKey(m)) if m.contains("private"))
        );
    }

    #[test]
    fn declared_alg_must_match_the_key() {
        let mut key = rfc7515_a3_key();
        key["alg"] = json!("ES256");
        assert!(Jwk::from_json(&key).is_ok());
        key["alg"] = json!("RS256");
        assert_eq!(
            Jwk::from_json(&key),
            Err(Error::AlgorithmMismatch {
                header: Algorithm::Rs256,
                key: Algorithm::Es256
            })
        );
        key["alg"] = json!("none");
        assert!(matches!(
            Jwk::from_json(&key),
            Err(Error::UnsupportedAlgorithm { .. })
        ));
    }

    fn modulus(bits: usize) -> Vec<u8> {
        // An odd modulus of exactly `bits` bits (not a real RSA modulus, which
        // the size checks do not need).
        let mut n = vec![0xffu8; bits.div_ceil(8)];
        if !bits.is_multiple_of(8) {
            n[0] = 0xff >> (8 - bits % 8);
        }
        n
    }

    #[test]
    fn small_rsa_moduli_are_refused() {
        for bits in [512, 1024, 2047] {
            let err = Jwk::rsa(modulus(bits), vec![1, 0, 1]).expect_err("small modulus");
            assert!(
                matches!(err, Error::BadPublicKey(ref m) if m.contains(&format!("{bits} bits"))),
                "{err}"
            );
        }
        assert!(Jwk::rsa(modulus(8200), vec![1, 0, 1]).is_err());
    }

    #[test]
    fn tiny_even_or_huge_rsa_exponents_are_refused() {
        let rfc = Jwk::from_json(&json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB"
        }))
        .expect("valid");
        let KeyParams::Rsa { n, .. } = rfc.params else {
            unreachable!()
        };
        for e in [
            vec![3],
            vec![1],
            vec![0x01, 0x00, 0x00],
            vec![0x01, 0x00, 0x01, 0x00, 0x01],
            vec![0, 1, 0, 1],
        ] {
            let err = Jwk::rsa(n.clone(), e.clone()).expect_err("bad exponent");
            assert_eq!(
                err.problem_type(),
                crate::ProblemType::BadPublicKey,
                "{e:?}"
            );
        }
        assert!(Jwk::rsa(n, vec![1, 0, 1]).is_ok());
    }

    #[test]
    fn malformed_base64_in_a_key_is_refused() {
        let mut key = rfc7515_a3_key();
        key["x"] = json!("f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU=");
        assert_eq!(
            Jwk::from_json(&key),
            Err(Error::InvalidBase64 { field: "x" })
        );
        key["x"] = json!("f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVE+");
        assert_eq!(
            Jwk::from_json(&key),
            Err(Error::InvalidBase64 { field: "x" })
        );
    }

    #[test]
    fn canonical_json_round_trips() {
        let jwk = Jwk::from_json(&rfc7515_a3_key()).expect("valid");
        let again = Jwk::from_json(&jwk.to_json()).expect("valid");
        assert_eq!(jwk, again);
        assert_eq!(jwk.algorithm(), Algorithm::Es256);
    }
}
