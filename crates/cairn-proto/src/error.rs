//! The crate's one error type, and how each error reads on the wire.

use crate::jwk::Algorithm;
use crate::problem::{Problem, ProblemType};

/// Everything that can go wrong in this crate.
///
/// Each variant maps to the RFC 8555 problem type a server sends for it
/// ([`Error::problem_type`]); [`Error::to_problem`] builds the document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The body or a decoded part of it is not the JSON it must be.
    #[error("malformed JSON in {part}: {reason}")]
    InvalidJson { part: &'static str, reason: String },
    /// A JSON object repeated a member name (RFC 7515 §4, RFC 8259 §4).
    #[error("duplicate member {member:?} in {part}")]
    DuplicateMember { part: &'static str, member: String },
    /// A member that must be present is missing or has the wrong JSON type.
    #[error("{part} needs a {member:?} member of the right type")]
    MissingMember {
        part: &'static str,
        member: &'static str,
    },
    /// A member that must not be present is present.
    #[error("{part} must not have a {member:?} member")]
    UnexpectedMember { part: &'static str, member: String },
    /// A base64url field is not canonical unpadded base64url (RFC 7515 §2).
    #[error("{field} is not unpadded base64url")]
    InvalidBase64 { field: &'static str },
    /// The JWS uses the general serialization or carries several signatures;
    /// RFC 8555 §6.2 requires exactly one, in the flattened serialization.
    #[error("a JWS must carry exactly one signature in the flattened JSON serialization")]
    MultipleSignatures,
    /// `alg` is not one this side accepts (none, HMAC, or unknown).
    #[error("algorithm {alg:?} is not accepted")]
    UnsupportedAlgorithm { alg: String },
    /// `alg` does not fit the key that must verify it, or the JWK's own `alg`.
    #[error("algorithm {header} does not match the key, which needs {key}")]
    AlgorithmMismatch { header: Algorithm, key: Algorithm },
    /// Both or neither of `jwk` and `kid` (RFC 8555 §6.2).
    #[error("the protected header must have exactly one of \"jwk\" and \"kid\"")]
    JwkXorKid,
    /// A request JWS without `nonce` (RFC 8555 §6.5).
    #[error("the protected header has no \"nonce\"")]
    MissingNonce,
    /// `nonce` is not a base64url octet string (RFC 8555 §6.5.2).
    #[error("the \"nonce\" header is not base64url")]
    InvalidNonce,
    /// `b64: false` (RFC 7797) is not allowed in ACME.
    #[error("unencoded payloads (\"b64\": false) are not accepted")]
    UnencodedPayload,
    /// `crit` names extensions we do not understand (RFC 7515 §4.1.11).
    #[error("critical header parameters not understood: {0:?}")]
    UnknownCritical(Vec<String>),
    /// The key is refused: too small, bad exponent, off the curve, unknown type.
    #[error("public key refused: {0}")]
    BadPublicKey(String),
    /// The signature does not verify under the key.
    #[error("the JWS signature does not verify")]
    BadSignature,
    /// A key could not be generated, loaded or used to sign.
    #[error("key error: {0}")]
    Key(String),
    /// A malformed value elsewhere (an ARI certificate identifier, say).
    #[error("{0}")]
    Malformed(String),
}

impl Error {
    /// The problem type a server sends for this error (RFC 8555 §6.7).
    pub fn problem_type(&self) -> ProblemType {
        match self {
            Self::UnsupportedAlgorithm { .. } | Self::AlgorithmMismatch { .. } => {
                ProblemType::BadSignatureAlgorithm
            }
            Self::MissingNonce | Self::InvalidNonce => ProblemType::BadNonce,
            Self::BadPublicKey(_) => ProblemType::BadPublicKey,
            Self::Key(_) => ProblemType::ServerInternal,
            Self::InvalidJson { .. }
            | Self::DuplicateMember { .. }
            | Self::MissingMember { .. }
            | Self::UnexpectedMember { .. }
            | Self::InvalidBase64 { .. }
            | Self::MultipleSignatures
            | Self::JwkXorKid
            | Self::UnencodedPayload
            | Self::UnknownCritical(_)
            | Self::BadSignature
            | Self::Malformed(_) => ProblemType::Malformed,
        }
    }

    /// The problem document a server sends for this error. For
    /// `badSignatureAlgorithm` it lists the accepted algorithms (RFC 8555 §6.2).
    pub fn to_problem(&self) -> Problem {
        let mut problem = Problem::new(self.problem_type(), self.to_string());
        if problem.kind == ProblemType::BadSignatureAlgorithm {
            problem.algorithms = Some(
                Algorithm::ACCEPTED_FOR_ACCOUNTS
                    .iter()
                    .map(|a| a.as_str().to_owned())
                    .collect(),
            );
        }
        problem
    }
}

pub(crate) fn from_strict(part: &'static str, e: crate::strict_json::StrictJsonError) -> Error {
    use crate::strict_json::StrictJsonError;
    match e {
        StrictJsonError::Duplicate(member) => Error::DuplicateMember { part, member },
        StrictJsonError::Syntax(reason) => Error::InvalidJson { part, reason },
    }
}
