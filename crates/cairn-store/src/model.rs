//! The CA's records as storage keeps them. These are storage rows, not
//! the RFC 8555 objects a client sees: the RA derives those (an order's
//! public status, say) from these on every read.

use cairn_proto::objects::ChallengeType;
use cairn_proto::{Identifier, Problem};
use time::OffsetDateTime;

/// Row ids. URLs carry them, so they are stable for a record's life.
pub type AccountId = i64;
pub type OrderId = i64;
pub type AuthzId = i64;
pub type ChallengeId = i64;

/// A registered account (RFC 8555 §7.1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    /// The account key as canonical JWK JSON (`Jwk::canonical_json`).
    pub jwk: String,
    /// RFC 7638 SHA-256 thumbprint of the key, base64url: the lookup key.
    pub thumbprint: String,
    pub contact: Vec<String>,
    pub status: AccountState,
    pub terms_agreed: bool,
    pub created_at: OffsetDateTime,
}

/// What is stored of an account's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccountState {
    Valid,
    Deactivated,
    Revoked,
}

/// A new account to insert.
#[derive(Clone, Debug)]
pub struct NewAccount {
    pub jwk: String,
    pub thumbprint: String,
    pub contact: Vec<String>,
    pub terms_agreed: bool,
    pub created_at: OffsetDateTime,
}

/// An order (RFC 8555 §7.1.3) as stored. Its public status is derived by
/// the RA from `state`, its authorizations and `expires`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    pub id: OrderId,
    pub account_id: AccountId,
    pub identifiers: Vec<Identifier>,
    /// In the order the authorizations were created for `identifiers`.
    pub authz_ids: Vec<AuthzId>,
    pub expires: OffsetDateTime,
    pub not_before: Option<OffsetDateTime>,
    pub not_after: Option<OffsetDateTime>,
    pub profile: Option<String>,
    pub replaces: Option<String>,
    pub state: OrderState,
    /// Why finalization failed, with `OrderState::Invalid`.
    pub error: Option<Problem>,
    /// The serial (lowercase hex) of the order's certificate, once finalize began.
    pub certificate_serial: Option<String>,
    pub created_at: OffsetDateTime,
}

/// The finalize progress of an order: the only order status that is
/// stored rather than derived.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrderState {
    /// Not finalized yet: pending or ready, depending on authorizations.
    Open,
    /// Finalize won the conditional update; the certificate is being signed.
    Processing,
    /// The certificate is issued and stored.
    Valid,
    /// Finalization failed for good (`Order::error` says why).
    Invalid,
}

/// A new order with its authorizations: existing ones to reuse and new ones
/// to create, in one transaction.
#[derive(Clone, Debug)]
pub struct NewOrder {
    pub account_id: AccountId,
    pub identifiers: Vec<Identifier>,
    pub authorizations: Vec<AuthzSource>,
    pub expires: OffsetDateTime,
    pub not_before: Option<OffsetDateTime>,
    pub not_after: Option<OffsetDateTime>,
    pub profile: Option<String>,
    pub replaces: Option<String>,
    pub created_at: OffsetDateTime,
}

/// Where an order's authorization comes from.
#[derive(Clone, Debug)]
pub enum AuthzSource {
    /// A still-usable authorization of the same account (RFC 8555 §7.4 reuse).
    Existing(AuthzId),
    /// A fresh pending authorization.
    New(NewAuthorization),
}

/// A pending authorization to create, with its challenges.
#[derive(Clone, Debug)]
pub struct NewAuthorization {
    pub identifier: Identifier,
    pub wildcard: bool,
    pub expires: OffsetDateTime,
    /// One per offered challenge type, each with its own token.
    pub challenges: Vec<(ChallengeType, String)>,
}

/// An authorization (RFC 8555 §7.1.4) with its challenges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    pub id: AuthzId,
    pub account_id: AccountId,
    /// For a wildcard, the base domain (`*.` removed) as RFC 8555 §7.1.4 says.
    pub identifier: Identifier,
    pub wildcard: bool,
    /// Stored status; `expired` is derived from `expires` by the reader.
    pub state: AuthzState,
    pub expires: OffsetDateTime,
    pub challenges: Vec<Challenge>,
    pub created_at: OffsetDateTime,
}

/// What is stored of an authorization's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthzState {
    Pending,
    Valid,
    Invalid,
    Deactivated,
    Revoked,
}

/// A challenge (RFC 8555 §8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub id: ChallengeId,
    pub authz_id: AuthzId,
    pub kind: ChallengeType,
    pub token: String,
    pub state: ChallengeState,
    pub validated_at: Option<OffsetDateTime>,
    pub error: Option<Problem>,
}

/// A challenge's stored status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChallengeState {
    Pending,
    Processing,
    Valid,
    Invalid,
}

/// How a validation ended.
#[derive(Clone, Debug)]
pub enum ValidationOutcome {
    /// The challenge passed: it becomes valid, and so does its
    /// authorization, whose expiry becomes `authz_expires` (the reuse period).
    Valid {
        validated_at: OffsetDateTime,
        authz_expires: OffsetDateTime,
    },
    /// The challenge failed: it and its authorization become invalid.
    Invalid { problem: Problem },
}

/// A certificate row. It exists, with `der: None`, from the moment its
/// serial is reserved, before signing, so nothing signed goes unrecorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    /// Lowercase hex of the serial's unsigned big-endian bytes.
    pub serial: String,
    pub order_id: Option<OrderId>,
    pub account_id: AccountId,
    /// Which issuing CA signs (or signed) it, e.g. `ecdsa-1`.
    pub issuer: String,
    pub names: Vec<Identifier>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub der: Option<Vec<u8>>,
    pub revocation: Option<Revocation>,
    pub created_at: OffsetDateTime,
}

/// A revocation record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Revocation {
    pub revoked_at: OffsetDateTime,
    /// RFC 5280 §5.3.1 CRLReason code.
    pub reason: u8,
}

/// The reservation finalize makes before it signs.
#[derive(Clone, Debug)]
pub struct PendingCertificate {
    pub serial: String,
    pub order_id: OrderId,
    pub account_id: AccountId,
    pub issuer: String,
    pub names: Vec<Identifier>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub created_at: OffsetDateTime,
    /// SHA-256 of the certificate key's DER SubjectPublicKeyInfo.
    pub spki_sha256: Vec<u8>,
}

/// A key the CA refuses (a blocked-keys entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockedKey {
    /// SHA-256 of the key's DER SubjectPublicKeyInfo.
    pub spki_sha256: Vec<u8>,
    /// Why, for the problem detail and the operator: "keyCompromise
    /// revocation of certificate 0a1b…", "blocked by an operator: …".
    pub reason: String,
    pub blocked_at: OffsetDateTime,
}

/// One entry of a CRL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedEntry {
    pub serial: String,
    pub revoked_at: OffsetDateTime,
    pub reason: u8,
}
