//! ACME resource objects and request payloads (RFC 8555 §7.1, §7.3–§7.6),
//! with the extensions of RFC 9773 (renewal information) and the ACME
//! profiles draft.
//!
//! Field names are the RFC's JSON names. Optional fields are left out when
//! absent. Unknown fields are ignored on input so that a client keeps
//! working when a server adds fields; [`Challenge`] goes further and keeps
//! them, because challenge types this crate does not know carry their own
//! fields. Timestamps are RFC 3339 strings (RFC 8555 §7.1).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::identifier::Identifier;
use crate::problem::Problem;

/// The directory: the URLs of the server's resources (RFC 8555 §7.1.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Directory {
    /// Where to get a fresh replay nonce (RFC 8555 §7.2).
    pub new_nonce: String,
    /// Where to create or look up an account (RFC 8555 §7.3).
    pub new_account: String,
    /// Where to create an order (RFC 8555 §7.4).
    pub new_order: String,
    /// Pre-authorization (RFC 8555 §7.4.1); absent if unsupported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_authz: Option<String>,
    /// Where to revoke a certificate (RFC 8555 §7.6).
    pub revoke_cert: String,
    /// Where to roll an account key over (RFC 8555 §7.3.5).
    pub key_change: String,
    /// Base URL of the renewal information resource (RFC 9773 §3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_info: Option<String>,
    /// Metadata about the server (RFC 8555 §7.1.1, §9.7.6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<DirectoryMeta>,
}

/// The directory's `meta` object (RFC 8555 §7.1.1, §9.7.6).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryMeta {
    /// The current terms of service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_of_service: Option<String>,
    /// A web page about the CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// The names the CA recognises as referring to itself in CAA records
    /// (RFC 8555 §7.1.1, RFC 8659).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caa_identities: Vec<String>,
    /// Whether newAccount needs an external account binding
    /// (RFC 8555 §7.3.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_account_required: Option<bool>,
    /// Certificate profiles the client may ask for in newOrder, from name to
    /// a human-readable description (ACME profiles draft).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub profiles: BTreeMap<String, String>,
}

/// An account (RFC 8555 §7.1.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// Whether the account can be used.
    pub status: AccountStatus,
    /// Contact URLs, e.g. `mailto:` (RFC 8555 §7.3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contact: Vec<String>,
    /// Whether the client agreed to the terms of service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_of_service_agreed: Option<bool>,
    /// The external account binding the account was created with
    /// (RFC 8555 §7.3.4), a JWS object kept as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_account_binding: Option<Value>,
    /// URL of the account's orders list (RFC 8555 §7.1.2.1). Required by
    /// the RFC, but some servers leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orders: Option<String>,
}

/// The payload of a newAccount request (RFC 8555 §7.3).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAccount {
    /// Contact URLs for the new account.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contact: Vec<String>,
    /// Agreement to the terms of service in the directory's `meta`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_of_service_agreed: Option<bool>,
    /// Only look up the account for this key, do not create one
    /// (RFC 8555 §7.3.1).
    #[serde(default, skip_serializing_if = "is_false")]
    pub only_return_existing: bool,
    /// A JWS binding the account to one at the CA (RFC 8555 §7.3.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_account_binding: Option<Value>,
}

/// The payload of a POST to an account URL: an update (RFC 8555 §7.3.2),
/// an agreement to new terms (§7.3.3) or a deactivation (§7.3.6).
///
/// `contact: Some(vec![])` is sent as `"contact": []` and removes every
/// contact; `None` leaves them alone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountUpdate {
    /// New contact URLs, replacing the old ones (RFC 8555 §7.3.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Vec<String>>,
    /// `deactivated` to deactivate the account (RFC 8555 §7.3.6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<AccountStatus>,
    /// Agreement to changed terms of service (RFC 8555 §7.3.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_of_service_agreed: Option<bool>,
}

impl AccountUpdate {
    /// The payload that deactivates an account (RFC 8555 §7.3.6).
    pub fn deactivate() -> Self {
        Self {
            status: Some(AccountStatus::Deactivated),
            ..Self::default()
        }
    }
}

/// One page of an account's orders (RFC 8555 §7.1.2.1). Further pages are
/// linked with `Link: rel="next"` headers, which are not part of the body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrdersList {
    /// Order URLs.
    pub orders: Vec<String>,
}

/// An order for a certificate (RFC 8555 §7.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// Where the order stands (RFC 8555 §7.1.6).
    pub status: OrderStatus,
    /// When the server will stop honouring the order; required for
    /// `pending` and `valid` orders.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires: Option<OffsetDateTime>,
    /// The identifiers the order is for.
    pub identifiers: Vec<Identifier>,
    /// Requested start of the certificate's validity.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub not_before: Option<OffsetDateTime>,
    /// Requested end of the certificate's validity.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub not_after: Option<OffsetDateTime>,
    /// Why processing failed, for an `invalid` order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
    /// Authorization URLs, one per identifier to prove control of.
    pub authorizations: Vec<String>,
    /// Where to send the CSR (RFC 8555 §7.4).
    pub finalize: String,
    /// Where to download the certificate once the order is `valid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// The certificate profile chosen (ACME profiles draft).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The ARI certificate identifier of the certificate this order replaces
    /// (RFC 9773 §5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

/// The payload of a newOrder request (RFC 8555 §7.4).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewOrder {
    /// The identifiers to put in the certificate.
    pub identifiers: Vec<Identifier>,
    /// Requested start of the certificate's validity.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub not_before: Option<OffsetDateTime>,
    /// Requested end of the certificate's validity.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub not_after: Option<OffsetDateTime>,
    /// A profile name from the directory's `meta.profiles` (ACME profiles
    /// draft).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The ARI certificate identifier of the certificate being replaced
    /// (RFC 9773 §5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

impl NewOrder {
    /// A newOrder payload for `identifiers` with no other fields.
    pub fn new(identifiers: Vec<Identifier>) -> Self {
        Self {
            identifiers,
            ..Self::default()
        }
    }
}

/// An authorization: the account's proof of control over one identifier
/// (RFC 8555 §7.1.4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authorization {
    /// The identifier authorized. For a wildcard order this is the base
    /// name, without `*.`, and `wildcard` is true.
    pub identifier: Identifier,
    /// Where the authorization stands (RFC 8555 §7.1.6).
    pub status: AuthorizationStatus,
    /// When the authorization stops being usable; required for `valid`.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires: Option<OffsetDateTime>,
    /// The ways the client may prove control; once the authorization is
    /// final, the challenge that settled it.
    pub challenges: Vec<Challenge>,
    /// True if the authorization came from a wildcard identifier in
    /// newOrder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wildcard: Option<bool>,
}

impl Authorization {
    /// The first challenge of type `kind`, if the server offers one.
    pub fn challenge(&self, kind: &ChallengeType) -> Option<&Challenge> {
        self.challenges.iter().find(|c| &c.kind == kind)
    }
}

/// A challenge (RFC 8555 §8; http-01 §8.3, dns-01 §8.4, tls-alpn-01
/// RFC 8737 §3).
///
/// Fields this crate does not model, including every field of challenge
/// types it does not know, are kept in `extra` and written back unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// The challenge type (`"type"` on the wire).
    #[serde(rename = "type")]
    pub kind: ChallengeType,
    /// Where to POST to ask for validation (RFC 8555 §7.5.1).
    pub url: String,
    /// Where the challenge stands (RFC 8555 §7.1.6). Required by RFC 8555
    /// §8, yet the RFC's own example in §7.5 leaves it out; a missing
    /// status reads as `pending`.
    #[serde(default)]
    pub status: ChallengeStatus,
    /// When the server validated the challenge; present once `valid`.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub validated: Option<OffsetDateTime>,
    /// Why validation failed (RFC 8555 §8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
    /// The token for the key authorization (RFC 8555 §8.1); present for
    /// http-01, dns-01 and tls-alpn-01.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Every other field, as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The type of a challenge, sent as a plain string.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChallengeType {
    /// `"http-01"` (RFC 8555 §8.3).
    Http01,
    /// `"dns-01"` (RFC 8555 §8.4).
    Dns01,
    /// `"tls-alpn-01"` (RFC 8737 §3).
    TlsAlpn01,
    /// Any other type string, kept exactly as received.
    Other(String),
}

impl ChallengeType {
    /// The string sent on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Http01 => "http-01",
            Self::Dns01 => "dns-01",
            Self::TlsAlpn01 => "tls-alpn-01",
            Self::Other(other) => other,
        }
    }
}

impl From<&str> for ChallengeType {
    fn from(s: &str) -> Self {
        match s {
            "http-01" => Self::Http01,
            "dns-01" => Self::Dns01,
            "tls-alpn-01" => Self::TlsAlpn01,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for ChallengeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ChallengeType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ChallengeType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Ok(Self::from(s.as_str()))
    }
}

/// The payload of a finalize request (RFC 8555 §7.4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finalize {
    /// The DER CSR, base64url-encoded without padding.
    pub csr: String,
}

/// The payload of a revokeCert request (RFC 8555 §7.6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// The DER certificate, base64url-encoded without padding.
    pub certificate: String,
    /// A CRL reason code (RFC 5280 §5.3.1); none means unspecified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<u8>,
}

/// The inner payload of a keyChange request, signed by the new key
/// (RFC 8555 §7.3.5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyChange {
    /// The account URL (the outer JWS's `kid`).
    pub account: String,
    /// The account's current key, as a JWK object.
    pub old_key: Value,
}

/// Renewal information for one certificate (RFC 9773 §4.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenewalInfo {
    /// When the server would like the client to renew.
    pub suggested_window: SuggestedWindow,
    /// A page explaining the suggestion, e.g. an incident report.
    #[serde(
        default,
        rename = "explanationURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub explanation_url: Option<String>,
}

/// The renewal window of [`RenewalInfo`] (RFC 9773 §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuggestedWindow {
    /// Start of the window.
    #[serde(with = "time::serde::rfc3339")]
    pub start: OffsetDateTime,
    /// End of the window; later than `start`.
    #[serde(with = "time::serde::rfc3339")]
    pub end: OffsetDateTime,
}

/// Defines a status enum from its variants and their wire strings, so the
/// serde names and `as_str` cannot drift apart.
macro_rules! status_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident => $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[$variant_meta])* #[serde(rename = $wire)] $variant, )+
        }

        impl $name {
            /// Every status, in the order of the RFC.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The string sent on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $wire, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status_enum! {
    /// The status of an account (RFC 8555 §7.1.6).
    AccountStatus {
        /// Usable.
        Valid => "valid",
        /// Deactivated by the client (RFC 8555 §7.3.6).
        Deactivated => "deactivated",
        /// Revoked by the server.
        Revoked => "revoked",
    }
}

status_enum! {
    /// The status of an order (RFC 8555 §7.1.6).
    OrderStatus {
        /// Some authorizations are not yet valid.
        Pending => "pending",
        /// All authorizations are valid; the order may be finalized.
        Ready => "ready",
        /// Finalized; the certificate is being issued.
        Processing => "processing",
        /// The certificate has been issued.
        Valid => "valid",
        /// The order failed or expired; see its `error`.
        Invalid => "invalid",
    }
}

status_enum! {
    /// The status of an authorization (RFC 8555 §7.1.6).
    AuthorizationStatus {
        /// Waiting for a challenge to succeed.
        Pending => "pending",
        /// A challenge succeeded.
        Valid => "valid",
        /// A challenge failed, or the authorization was abandoned.
        Invalid => "invalid",
        /// Deactivated by the client (RFC 8555 §7.5.2).
        Deactivated => "deactivated",
        /// Passed its `expires` time.
        Expired => "expired",
        /// Revoked by the server.
        Revoked => "revoked",
    }
}

status_enum! {
    /// The status of a challenge (RFC 8555 §7.1.6).
    #[derive(Default)]
    ChallengeStatus {
        /// Not yet attempted.
        #[default]
        Pending => "pending",
        /// The client has asked for validation; the server is working.
        Processing => "processing",
        /// Validation succeeded.
        Valid => "valid",
        /// Validation failed; see the challenge's `error`.
        Invalid => "invalid",
    }
}

fn is_false(value: &bool) -> bool {
    !*value
}
