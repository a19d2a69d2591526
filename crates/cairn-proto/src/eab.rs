//! External account binding (RFC 8555 §7.3.4): an HS256 JWS over the new
//! account's public key, made with a MAC key the CA handed out of band.

use aws_lc_rs::hmac;
use serde_json::{Map, Value, json};

use crate::error::from_strict;
use crate::jwk::{Algorithm, Jwk};
use crate::jws::{Envelope, FlattenedJws, check_extensions};
use crate::{Error, base64url, strict_json};

/// Builds the `externalAccountBinding` value for a newAccount request.
pub fn sign(key_id: &str, mac_key: &[u8], account_key: &Jwk, url: &str) -> FlattenedJws {
    let protected = json!({ "alg": Algorithm::Hs256.as_str(), "kid": key_id, "url": url });
    let protected = base64url::encode(protected.to_string());
    let payload = base64url::encode(account_key.canonical_json());
    let key = hmac::Key::new(hmac::HMAC_SHA256, mac_key);
    let tag = hmac::sign(&key, format!("{protected}.{payload}").as_bytes());
    FlattenedJws {
        protected,
        payload,
        signature: base64url::encode(tag),
    }
}

/// A binding whose shape is checked; the CA looks up the MAC key for
/// [`UnverifiedEab::key_id`], then calls [`UnverifiedEab::verify`].
#[derive(Debug)]
pub struct UnverifiedEab {
    key_id: String,
    url: String,
    bound_key: Jwk,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

impl UnverifiedEab {
    /// Checks the binding's envelope and protected header.
    pub fn parse(value: &Value) -> Result<Self, Error> {
        let Value::Object(object) = value else {
            return Err(Error::InvalidJson {
                part: "externalAccountBinding",
                reason: "expected a JSON object".into(),
            });
        };
        Self::from_object(object)
    }

    fn from_object(object: &Map<String, Value>) -> Result<Self, Error> {
        const PART: &str = "externalAccountBinding header";
        let envelope = Envelope::from_object(object)?;
        let header = envelope.header()?;
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or(Error::MissingMember {
                part: PART,
                member: "alg",
            })?;
        if alg != Algorithm::Hs256.as_str() {
            return Err(Error::UnsupportedAlgorithm {
                alg: alg.to_owned(),
            });
        }
        check_extensions(&header)?;
        for forbidden in ["nonce", "jwk"] {
            if header.contains_key(forbidden) {
                return Err(Error::UnexpectedMember {
                    part: PART,
                    member: forbidden.into(),
                });
            }
        }
        let text = |member: &'static str| {
            header
                .get(member)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or(Error::MissingMember { part: PART, member })
        };
        let key_id = text("kid")?;
        let url = text("url")?;
        let bound = strict_json::parse(envelope.payload())
            .map_err(|e| from_strict("externalAccountBinding payload", e))?;
        let bound_key = Jwk::from_json(&bound)?;
        Ok(Self {
            key_id,
            url,
            bound_key,
            signing_input: envelope.signing_input(),
            signature: envelope.signature().to_vec(),
        })
    }

    /// The CA-assigned key identifier (`kid`).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Checks the MAC, that the bound key is the account key of the outer
    /// JWS, and that `url` matches the outer JWS's (RFC 8555 §7.3.4).
    pub fn verify(&self, mac_key: &[u8], account_key: &Jwk, outer_url: &str) -> Result<(), Error> {
        let key = hmac::Key::new(hmac::HMAC_SHA256, mac_key);
        hmac::verify(&key, &self.signing_input, &self.signature)
            .map_err(|_| Error::BadSignature)?;
        if &self.bound_key != account_key {
            return Err(Error::Malformed(
                "externalAccountBinding binds a different key than the request's jwk".into(),
            ));
        }
        if self.url != outer_url {
            return Err(Error::Malformed(
                "externalAccountBinding url differs from the request's url".into(),
            ));
        }
        Ok(())
    }
}
