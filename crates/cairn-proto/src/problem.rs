//! Problem documents (RFC 7807) with the ACME error types of RFC 8555 §6.7
//! and the additions registered since (RFC 9773 §7.4).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::identifier::Identifier;

/// The namespace every ACME error type lives in (RFC 8555 §6.7).
pub const ACME_ERROR_NAMESPACE: &str = "urn:ietf:params:acme:error:";

/// An ACME error type (RFC 8555 §6.7, RFC 9773 §7.4).
///
/// Types outside the ACME namespace, or inside it but unknown to this crate,
/// are kept verbatim in [`ProblemType::Other`] so a client can still show them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemType {
    AccountDoesNotExist,
    AlreadyRevoked,
    BadCsr,
    BadNonce,
    BadPublicKey,
    BadRevocationReason,
    BadSignatureAlgorithm,
    Caa,
    Compound,
    Connection,
    Dns,
    ExternalAccountRequired,
    IncorrectResponse,
    InvalidContact,
    Malformed,
    OrderNotReady,
    RateLimited,
    RejectedIdentifier,
    ServerInternal,
    Tls,
    Unauthorized,
    UnsupportedContact,
    UnsupportedIdentifier,
    UserActionRequired,
    /// RFC 9773 §7.4: the certificate named in `replaces` was already replaced.
    AlreadyReplaced,
    /// Any other type URI, kept exactly as received.
    Other(String),
}

impl ProblemType {
    /// Every type this crate knows by name, in RFC order.
    pub const KNOWN: [ProblemType; 25] = [
        Self::AccountDoesNotExist,
        Self::AlreadyRevoked,
        Self::BadCsr,
        Self::BadNonce,
        Self::BadPublicKey,
        Self::BadRevocationReason,
        Self::BadSignatureAlgorithm,
        Self::Caa,
        Self::Compound,
        Self::Connection,
        Self::Dns,
        Self::ExternalAccountRequired,
        Self::IncorrectResponse,
        Self::InvalidContact,
        Self::Malformed,
        Self::OrderNotReady,
        Self::RateLimited,
        Self::RejectedIdentifier,
        Self::ServerInternal,
        Self::Tls,
        Self::Unauthorized,
        Self::UnsupportedContact,
        Self::UnsupportedIdentifier,
        Self::UserActionRequired,
        Self::AlreadyReplaced,
    ];

    /// The short name after `urn:ietf:params:acme:error:`, for known types.
    pub fn short_name(&self) -> Option<&'static str> {
        Some(match self {
            Self::AccountDoesNotExist => "accountDoesNotExist",
            Self::AlreadyRevoked => "alreadyRevoked",
            Self::BadCsr => "badCSR",
            Self::BadNonce => "badNonce",
            Self::BadPublicKey => "badPublicKey",
            Self::BadRevocationReason => "badRevocationReason",
            Self::BadSignatureAlgorithm => "badSignatureAlgorithm",
            Self::Caa => "caa",
            Self::Compound => "compound",
            Self::Connection => "connection",
            Self::Dns => "dns",
            Self::ExternalAccountRequired => "externalAccountRequired",
            Self::IncorrectResponse => "incorrectResponse",
            Self::InvalidContact => "invalidContact",
            Self::Malformed => "malformed",
            Self::OrderNotReady => "orderNotReady",
            Self::RateLimited => "rateLimited",
            Self::RejectedIdentifier => "rejectedIdentifier",
            Self::ServerInternal => "serverInternal",
            Self::Tls => "tls",
            Self::Unauthorized => "unauthorized",
            Self::UnsupportedContact => "unsupportedContact",
            Self::UnsupportedIdentifier => "unsupportedIdentifier",
            Self::UserActionRequired => "userActionRequired",
            Self::AlreadyReplaced => "alreadyReplaced",
            Self::Other(_) => return None,
        })
    }

    /// The full type URI as sent on the wire.
    pub fn uri(&self) -> String {
        match self {
            Self::Other(uri) => uri.clone(),
            known => format!(
                "{ACME_ERROR_NAMESPACE}{}",
                known.short_name().expect("known types have a short name")
            ),
        }
    }

    /// Parses a type URI; anything unknown becomes [`ProblemType::Other`].
    pub fn from_uri(uri: &str) -> Self {
        uri.strip_prefix(ACME_ERROR_NAMESPACE)
            .and_then(|short| {
                Self::KNOWN
                    .iter()
                    .find(|t| t.short_name() == Some(short))
                    .cloned()
            })
            .unwrap_or_else(|| Self::Other(uri.to_owned()))
    }

    /// The HTTP status a server sends with this type when nothing more
    /// specific applies (RFC 8555 §6.7 and the practice of deployed CAs).
    pub fn default_status(&self) -> u16 {
        match self {
            Self::BadNonce
            | Self::BadCsr
            | Self::BadPublicKey
            | Self::BadRevocationReason
            | Self::BadSignatureAlgorithm
            | Self::Malformed
            | Self::InvalidContact
            | Self::UnsupportedContact
            | Self::UnsupportedIdentifier
            | Self::RejectedIdentifier
            | Self::AlreadyRevoked
            | Self::Caa
            | Self::Compound
            | Self::Connection
            | Self::Dns
            | Self::IncorrectResponse
            | Self::Tls => 400,
            Self::Unauthorized | Self::UserActionRequired | Self::ExternalAccountRequired => 403,
            Self::AccountDoesNotExist => 400,
            Self::OrderNotReady => 403,
            Self::AlreadyReplaced => 409,
            Self::RateLimited => 429,
            Self::ServerInternal | Self::Other(_) => 500,
        }
    }
}

impl fmt::Display for ProblemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.short_name() {
            Some(short) => f.write_str(short),
            None => f.write_str(&self.uri()),
        }
    }
}

impl Serialize for ProblemType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.uri())
    }
}

impl<'de> Deserialize<'de> for ProblemType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let uri = String::deserialize(deserializer)?;
        Ok(Self::from_uri(&uri))
    }
}

/// A problem document (RFC 7807 as profiled by RFC 8555 §6.7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: ProblemType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// RFC 8555 §6.7.1: one entry per identifier that failed on its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subproblems: Vec<Subproblem>,
    /// RFC 8555 §6.2: with `badSignatureAlgorithm`, the algorithms the
    /// server accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithms: Option<Vec<String>>,
}

impl Problem {
    /// A problem of `kind` with `detail` and that type's default status.
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        let status = kind.default_status();
        Self {
            kind,
            detail: Some(detail.into()),
            status: Some(status),
            instance: None,
            subproblems: Vec::new(),
            algorithms: None,
        }
    }

    /// Replaces the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Adds subproblems (RFC 8555 §6.7.1).
    pub fn with_subproblems(mut self, subproblems: Vec<Subproblem>) -> Self {
        self.subproblems = subproblems;
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        for sub in &self.subproblems {
            write!(f, "; {sub}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problem {}

/// One entry of a problem's `subproblems` (RFC 8555 §6.7.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subproblem {
    #[serde(rename = "type")]
    pub kind: ProblemType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
}

impl fmt::Display for Subproblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(id) = &self.identifier {
            write!(f, "{id}: ")?;
        }
        write!(f, "{}", self.kind)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_type_round_trips_through_its_uri() {
        for kind in ProblemType::KNOWN {
            assert_eq!(ProblemType::from_uri(&kind.uri()), kind);
        }
    }

    #[test]
    fn unknown_types_are_kept_verbatim() {
        let other = ProblemType::from_uri("urn:ietf:params:acme:error:somethingNew");
        assert_eq!(
            other,
            ProblemType::Other("urn:ietf:params:acme:error:somethingNew".into())
        );
        assert_eq!(other.uri(), "urn:ietf:params:acme:error:somethingNew");
        let about = ProblemType::from_uri("about:blank");
        assert_eq!(about.uri(), "about:blank");
    }

    #[test]
    fn bad_csr_keeps_the_rfc_spelling() {
        assert_eq!(
            ProblemType::BadCsr.uri(),
            "urn:ietf:params:acme:error:badCSR"
        );
    }
}
