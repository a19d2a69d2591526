//! Sans-IO ACME (RFC 8555) protocol for Cairn: resource objects, problem
//! documents, JWS and JWK, key authorizations, external account binding
//! and ARI certificate identifiers.
//!
//! Nothing here touches the network, the disk or the clock; the CA and the
//! agent bring those in. Verification types carry their proof: a
//! [`jws::VerifiedJws`] exists only after its signature checked out, a
//! [`Jwk`] only after the key passed the CA's key checks.
//!
//! ```
//! use cairn_proto::jws::{FlattenedJws, JwsKind, SigningHeader, UnverifiedJws};
//! use cairn_proto::{KeyPair, KeyType};
//!
//! let key = KeyPair::generate(KeyType::EcdsaP256)?;
//! let header = SigningHeader {
//!     kid: None,
//!     nonce: Some("6S8IqOGY7eL2lsGoTZYifg"),
//!     url: "https://ca.test/acme/new-acct",
//! };
//! let body = FlattenedJws::sign(&key, header, br#"{"termsOfServiceAgreed":true}"#)?.to_json_string();
//!
//! // On the server: check the envelope and header, then the signature.
//! let request = UnverifiedJws::parse(body.as_bytes(), JwsKind::Request)?;
//! let verified = request.verify_with_embedded_jwk()?;
//! assert_eq!(verified.key(), key.public_jwk());
//! # Ok::<(), cairn_proto::Error>(())
//! ```
#![forbid(unsafe_code)]

pub mod ari;
pub mod base64url;
pub mod challenge;
pub mod eab;
mod error;
pub mod identifier;
pub mod jwk;
pub mod jws;
pub mod key;
pub mod objects;
pub mod pem;
pub mod problem;
mod strict_json;

pub use error::Error;
pub use identifier::{Identifier, IdentifierType};
pub use jwk::{Algorithm, Curve, Jwk, PublicComponents};
pub use key::{KeyPair, KeyType};
pub use problem::{Problem, ProblemType};

/// For the fuzz targets in `fuzz/`: internals they test directly. Not
/// part of the API.
#[doc(hidden)]
pub mod fuzzing {
    /// The strict JSON reading of [`crate::jws::VerifiedJws::payload_json`]
    /// (duplicate members refused at any depth), without a signature first.
    pub fn payload_json<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, crate::Error> {
        crate::strict_json::from_slice(payload).map_err(|e| crate::error::from_strict("payload", e))
    }
}
