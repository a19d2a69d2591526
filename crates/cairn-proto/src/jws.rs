//! JWS in the flattened JSON serialization (RFC 7515 §7.2.2), as ACME uses
//! it (RFC 8555 §6.2): signing for clients, strict parsing and verification
//! for servers.
//!
//! A server reads a request in two steps, because for `kid` requests the key
//! lives in its database: [`UnverifiedJws::parse`] checks the envelope and
//! the protected header, then [`UnverifiedJws::verify_with`] (or
//! [`UnverifiedJws::verify_with_embedded_jwk`]) checks the signature and
//! returns a [`VerifiedJws`], the only way to reach the payload.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::from_strict;
use crate::jwk::{Algorithm, Jwk};
use crate::key::KeyPair;
use crate::{Error, base64url, strict_json};

/// Which of RFC 8555's rules a JWS must follow, by where it appears.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwsKind {
    /// A request to the server (RFC 8555 §6.2): `nonce` and `url` required.
    Request,
    /// The inner JWS of a key change (RFC 8555 §7.3.5): `jwk` required,
    /// `nonce` forbidden.
    KeyChangeInner,
}

/// How the protected header names the signing key (RFC 8555 §6.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRef {
    /// The key itself: newAccount, revocation by certificate key, key change.
    Jwk(Jwk),
    /// An account URL: every other request.
    Kid(String),
}

/// The protected header of a checked JWS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtectedHeader {
    pub alg: Algorithm,
    pub key: KeyRef,
    /// Present for [`JwsKind::Request`], absent for [`JwsKind::KeyChangeInner`].
    pub nonce: Option<String>,
    pub url: String,
}

/// A JWS whose envelope and protected header passed every check, whose
/// signature is not yet verified.
#[derive(Debug)]
pub struct UnverifiedJws {
    header: ProtectedHeader,
    signing_input: Vec<u8>,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

/// A JWS whose signature verified under [`VerifiedJws::key`].
#[derive(Debug, Clone)]
pub struct VerifiedJws {
    header: ProtectedHeader,
    payload: Vec<u8>,
    key: Jwk,
}

/// A JWS in the flattened JSON serialization, as sent on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlattenedJws {
    pub protected: String,
    pub payload: String,
    pub signature: String,
}

/// What a client puts in the protected header besides `alg`.
#[derive(Clone, Copy, Debug)]
pub struct SigningHeader<'a> {
    /// The account URL; `None` embeds the public key as `jwk` instead.
    pub kid: Option<&'a str>,
    /// The server's nonce; `None` only for a key change's inner JWS.
    pub nonce: Option<&'a str>,
    pub url: &'a str,
}

impl FlattenedJws {
    /// Signs `payload` with `key`. An empty payload is a POST-as-GET
    /// (RFC 8555 §6.3).
    pub fn sign(key: &KeyPair, header: SigningHeader<'_>, payload: &[u8]) -> Result<Self, Error> {
        let mut protected = Map::new();
        protected.insert("alg".into(), json!(key.algorithm().as_str()));
        match header.kid {
            Some(kid) => protected.insert("kid".into(), json!(kid)),
            None => protected.insert("jwk".into(), key.public_jwk().to_json()),
        };
        if let Some(nonce) = header.nonce {
            protected.insert("nonce".into(), json!(nonce));
        }
        protected.insert("url".into(), json!(header.url));
        let protected = base64url::encode(Value::Object(protected).to_string());
        let payload = base64url::encode(payload);
        let signature = key.sign(format!("{protected}.{payload}").as_bytes())?;
        Ok(Self {
            protected,
            payload,
            signature: base64url::encode(signature),
        })
    }

    /// The JSON text of this JWS, the body of an `application/jose+json` request.
    pub fn to_json_string(&self) -> String {
        serde_json::to_string(self).expect("strings always serialize")
    }
}

impl UnverifiedJws {
    /// Parses a request body and checks everything but the signature.
    pub fn parse(body: &[u8], kind: JwsKind) -> Result<Self, Error> {
        let object = strict_json::parse_object(body).map_err(|e| from_strict("JWS", e))?;
        Self::from_object(&object, kind)
    }

    /// As [`UnverifiedJws::parse`], for a JWS already parsed as JSON (the
    /// inner JWS of a key change is the outer one's payload).
    pub fn from_value(value: &Value, kind: JwsKind) -> Result<Self, Error> {
        match value {
            Value::Object(object) => Self::from_object(object, kind),
            _ => Err(Error::InvalidJson {
                part: "JWS",
                reason: "expected a JSON object".into(),
            }),
        }
    }

    fn from_object(object: &Map<String, Value>, kind: JwsKind) -> Result<Self, Error> {
        let envelope = Envelope::from_object(object)?;
        let header = envelope.header()?;
        let alg_name = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or(Error::MissingMember {
                part: "protected header",
                member: "alg",
            })?;
        let alg = match Algorithm::from_name(alg_name) {
            Some(alg) if Algorithm::ACCEPTED_FOR_ACCOUNTS.contains(&alg) => alg,
            _ => {
                return Err(Error::UnsupportedAlgorithm {
                    alg: alg_name.to_owned(),
                });
            }
        };
        check_extensions(&header)?;

        let key = match (header.get("jwk"), header.get("kid")) {
            (Some(jwk), None) => KeyRef::Jwk(Jwk::from_json(jwk)?),
            (None, Some(Value::String(kid))) if !kid.is_empty() => KeyRef::Kid(kid.clone()),
            (None, Some(_)) => {
                return Err(Error::MissingMember {
                    part: "protected header",
                    member: "kid",
                });
            }
            _ => return Err(Error::JwkXorKid),
        };
        if let KeyRef::Jwk(jwk) = &key
            && jwk.algorithm() != alg
        {
            return Err(Error::AlgorithmMismatch {
                header: alg,
                key: jwk.algorithm(),
            });
        }

        let nonce = match (kind, header.get("nonce")) {
            (JwsKind::Request, None) => return Err(Error::MissingNonce),
            (JwsKind::Request, Some(Value::String(nonce)))
                if !nonce.is_empty() && base64url::decode(nonce).is_ok() =>
            {
                Some(nonce.clone())
            }
            (JwsKind::Request, Some(_)) => return Err(Error::InvalidNonce),
            (JwsKind::KeyChangeInner, None) => None,
            (JwsKind::KeyChangeInner, Some(_)) => {
                return Err(Error::UnexpectedMember {
                    part: "key change inner JWS header",
                    member: "nonce".into(),
                });
            }
        };
        if kind == JwsKind::KeyChangeInner && matches!(key, KeyRef::Kid(_)) {
            return Err(Error::MissingMember {
                part: "key change inner JWS header",
                member: "jwk",
            });
        }
        let url = header
            .get("url")
            .and_then(Value::as_str)
            .ok_or(Error::MissingMember {
                part: "protected header",
                member: "url",
            })?
            .to_owned();

        Ok(Self {
            header: ProtectedHeader {
                alg,
                key,
                nonce,
                url,
            },
            signing_input: envelope.signing_input(),
            payload: envelope.payload,
            signature: envelope.signature,
        })
    }

    /// The checked protected header: the server reads `kid`, `nonce` and
    /// `url` from here before it can verify.
    pub fn header(&self) -> &ProtectedHeader {
        &self.header
    }

    /// Verifies with `key`, the key on file for the header's `kid`.
    pub fn verify_with(self, key: &Jwk) -> Result<VerifiedJws, Error> {
        key.verify(self.header.alg, &self.signing_input, &self.signature)?;
        Ok(VerifiedJws {
            header: self.header,
            payload: self.payload,
            key: key.clone(),
        })
    }

    /// Verifies with the `jwk` in the header; refuses a `kid` JWS.
    pub fn verify_with_embedded_jwk(self) -> Result<VerifiedJws, Error> {
        let KeyRef::Jwk(jwk) = &self.header.key else {
            return Err(Error::MissingMember {
                part: "protected header",
                member: "jwk",
            });
        };
        let jwk = jwk.clone();
        self.verify_with(&jwk)
    }
}

impl VerifiedJws {
    pub fn header(&self) -> &ProtectedHeader {
        &self.header
    }

    /// The key the signature verified under.
    pub fn key(&self) -> &Jwk {
        &self.key
    }

    /// The decoded payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// True for a POST-as-GET: an empty payload (RFC 8555 §6.3).
    pub fn is_post_as_get(&self) -> bool {
        self.payload.is_empty()
    }

    /// The payload as JSON, duplicate members refused.
    pub fn payload_json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        strict_json::from_slice(&self.payload).map_err(|e| from_strict("payload", e))
    }
}

/// The three members of a flattened JWS, decoded, plus the encoded forms
/// the signature covers.
pub(crate) struct Envelope {
    protected_b64: String,
    payload_b64: String,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl Envelope {
    pub(crate) fn from_object(object: &Map<String, Value>) -> Result<Self, Error> {
        if object.contains_key("signatures") {
            return Err(Error::MultipleSignatures);
        }
        if let Some(other) = object
            .keys()
            .find(|k| !matches!(k.as_str(), "protected" | "payload" | "signature"))
        {
            return Err(Error::UnexpectedMember {
                part: "JWS",
                member: other.clone(),
            });
        }
        let field = |member: &'static str| {
            object
                .get(member)
                .and_then(Value::as_str)
                .ok_or(Error::MissingMember {
                    part: "JWS",
                    member,
                })
        };
        let protected_b64 = field("protected")?.to_owned();
        let payload_b64 = field("payload")?.to_owned();
        let payload = base64url::decode(&payload_b64)
            .map_err(|_| Error::InvalidBase64 { field: "payload" })?;
        let signature = base64url::decode(field("signature")?)
            .map_err(|_| Error::InvalidBase64 { field: "signature" })?;
        Ok(Self {
            protected_b64,
            payload_b64,
            payload,
            signature,
        })
    }

    /// The protected header, decoded and parsed strictly.
    pub(crate) fn header(&self) -> Result<Map<String, Value>, Error> {
        let bytes = base64url::decode(&self.protected_b64)
            .map_err(|_| Error::InvalidBase64 { field: "protected" })?;
        strict_json::parse_object(&bytes).map_err(|e| from_strict("protected header", e))
    }

    pub(crate) fn signing_input(&self) -> Vec<u8> {
        format!("{}.{}", self.protected_b64, self.payload_b64).into_bytes()
    }

    pub(crate) fn payload(&self) -> &[u8] {
        &self.payload
    }

    pub(crate) fn signature(&self) -> &[u8] {
        &self.signature
    }
}

/// Refuses `b64: false` (RFC 7797) and any `crit` (RFC 7515 §4.1.11): we
/// understand no extension, and an empty `crit` list is itself invalid.
pub(crate) fn check_extensions(header: &Map<String, Value>) -> Result<(), Error> {
    if let Some(b64) = header.get("b64")
        && b64 != &Value::Bool(true)
    {
        return Err(Error::UnencodedPayload);
    }
    if let Some(crit) = header.get("crit") {
        let names = match crit {
            Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect(),
            other => vec![other.to_string()],
        };
        return Err(Error::UnknownCritical(names));
    }
    Ok(())
}
