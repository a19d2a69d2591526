//! Storage for the Cairn CA: the [`Storage`] trait the CA's components use,
//! and its backends, each with its own migrations and all held to one
//! conformance suite:
//!
//! - [`SqliteStore`], one database file: a single CA node;
//! - [`PgStore`], a PostgreSQL database that several CA nodes share.
//!
//! `docs/storage.md` gives each backend's tables and indexes, what every
//! call costs as the data grows, and what survives which crash.
//!
//! Every write returns only after it is durable: a 2xx from the CA rests on it.
#![forbid(unsafe_code)]

mod codec;
pub mod model;
mod postgres;
mod sqlite;

use async_trait::async_trait;
use cairn_proto::{Identifier, Problem};
use time::OffsetDateTime;

pub use model::*;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The record does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness rule refused the write (an account key in use, a serial
    /// already taken, a second certificate for one order).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The backend failed; the message is for logs, not for clients.
    #[error("storage backend: {0}")]
    Backend(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What the CA keeps. Implementations must make each call atomic and
/// durable before returning `Ok`.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    // --- accounts (RFC 8555 §7.3) ---

    /// Inserts the account, or returns the existing one with the same
    /// thumbprint: `(account, created)`. Two concurrent calls with one key
    /// create one account.
    async fn create_account(&self, new: NewAccount) -> Result<(Account, bool)>;
    async fn account(&self, id: AccountId) -> Result<Option<Account>>;
    async fn account_by_thumbprint(&self, thumbprint: &str) -> Result<Option<Account>>;
    /// Replaces the contact list.
    async fn update_account_contact(&self, id: AccountId, contact: &[String]) -> Result<Account>;
    /// Marks the account deactivated (RFC 8555 §7.3.6); idempotent.
    async fn deactivate_account(&self, id: AccountId) -> Result<Account>;
    /// Swaps the account key (RFC 8555 §7.3.5). `Conflict` if another
    /// account holds `new_thumbprint`.
    async fn change_account_key(
        &self,
        id: AccountId,
        new_jwk: &str,
        new_thumbprint: &str,
    ) -> Result<Account>;

    // --- orders and authorizations (RFC 8555 §7.4, §7.5) ---

    /// Creates the order and its new authorizations in one transaction.
    async fn create_order(&self, new: NewOrder) -> Result<Order>;
    async fn order(&self, id: OrderId) -> Result<Option<Order>>;
    /// True when a valid (finalized) order names `replaces`, the ARI
    /// certificate ID of an earlier certificate (RFC 9773 §5).
    async fn certificate_replaced(&self, replaces: &str) -> Result<bool>;
    /// Order ids of an account, newest first, after the cursor `before`
    /// (exclusive), at most `limit`.
    async fn account_orders(
        &self,
        account: AccountId,
        before: Option<OrderId>,
        limit: u32,
    ) -> Result<Vec<OrderId>>;
    async fn authorization(&self, id: AuthzId) -> Result<Option<Authorization>>;
    /// The authorizations with these ids, in the same order; missing ids are an error.
    async fn authorizations(&self, ids: &[AuthzId]) -> Result<Vec<Authorization>>;
    /// The newest valid authorization of `account` for `identifier` (and
    /// wildcard flag) that expires after `now`: the reuse of RFC 8555 §7.4.
    async fn reusable_authorization(
        &self,
        account: AccountId,
        identifier: &Identifier,
        wildcard: bool,
        now: OffsetDateTime,
    ) -> Result<Option<AuthzId>>;
    /// The newest pending authorization of `account` for `identifier` that
    /// expires after `now`, so repeated orders do not pile up pending ones.
    async fn pending_authorization(
        &self,
        account: AccountId,
        identifier: &Identifier,
        wildcard: bool,
        now: OffsetDateTime,
    ) -> Result<Option<AuthzId>>;
    /// The challenge and its authorization.
    async fn challenge(&self, id: ChallengeId) -> Result<Option<(Challenge, Authorization)>>;
    /// Moves a pending challenge of a pending authorization to processing.
    /// `false` if it was not pending (someone else started it, or it ended).
    async fn start_challenge(&self, id: ChallengeId) -> Result<bool>;
    /// Challenges left in processing, oldest first: after a crash the CA
    /// runs their validations again.
    async fn processing_challenges(&self) -> Result<Vec<ChallengeId>>;
    /// Records a validation's end on the challenge and its authorization
    /// atomically (only from processing).
    async fn finish_challenge(&self, id: ChallengeId, outcome: ValidationOutcome) -> Result<()>;
    /// Deactivates a pending or valid authorization (RFC 8555 §7.5.2).
    async fn deactivate_authorization(&self, id: AuthzId) -> Result<Authorization>;

    // --- finalize and certificates (RFC 8555 §7.4, §7.6) ---

    /// The conditional step of finalize: moves the order from `Open` to
    /// `Processing` and inserts the certificate row with its serial, in one
    /// transaction. `Ok(false)` if the order was not `Open`; `Conflict` if
    /// the serial is taken (pick another and retry).
    async fn begin_finalize(&self, pending: PendingCertificate) -> Result<bool>;
    /// Stores the signed certificate and moves the order to `Valid`.
    async fn complete_finalize(&self, order: OrderId, serial: &str, der: &[u8]) -> Result<()>;
    /// Moves a processing order to `Invalid` with `problem`.
    async fn fail_finalize(&self, order: OrderId, problem: &Problem) -> Result<()>;
    /// Orders still `Processing` whose finalize began (their certificate
    /// row's `created_at`) before `before`, oldest first: a node died
    /// between reserving the serial and storing the certificate. The CA
    /// fails them with [`Storage::fail_finalize`] so clients are told.
    async fn stalled_finalizes(&self, before: OffsetDateTime) -> Result<Vec<OrderId>>;
    async fn certificate(&self, serial: &str) -> Result<Option<Certificate>>;
    /// Records a revocation. `Ok(false)` if it was already revoked.
    async fn revoke_certificate(&self, serial: &str, revocation: Revocation) -> Result<bool>;
    /// Revoked certificates of `issuer` that have not expired at `now`,
    /// for the CRL.
    async fn revoked_certificates(
        &self,
        issuer: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<RevokedEntry>>;
    /// When the newest revocation of a certificate from `issuer` was
    /// recorded (`None` if none was): a node compares it with the one its
    /// cached CRL was made from, so a revocation on any node shows at once.
    async fn last_revocation(&self, issuer: &str) -> Result<Option<OffsetDateTime>>;

    // --- blocked keys ---

    /// Adds a key to the blocked list; `false` if it was there already
    /// (the first reason stays).
    async fn block_key(&self, key: &BlockedKey) -> Result<bool>;
    /// The blocked-list entry of a key, if it is blocked.
    async fn blocked_key(&self, spki_sha256: &[u8]) -> Result<Option<BlockedKey>>;
    /// Serials of the signed, unrevoked certificates with this key that
    /// have not expired at `now`, in serial order.
    async fn live_certificates_with_key(
        &self,
        spki_sha256: &[u8],
        now: OffsetDateTime,
    ) -> Result<Vec<String>>;

    // --- nonces shared by several nodes (RFC 8555 §6.5) ---

    /// The secret every node authenticates its nonces with. The first call
    /// stores `candidate` (random bytes the caller made); every call, from
    /// any node, returns the stored one.
    async fn nonce_secret(&self, candidate: &[u8]) -> Result<Vec<u8>>;
    /// Records that the nonce `id` was used: `true` the first time, `false`
    /// for every later call with the same id, from any node. The record may
    /// be forgotten after `expires`, when the nonce is refused for its age.
    async fn redeem_nonce(&self, id: &[u8], expires: OffsetDateTime) -> Result<bool>;
    /// Forgets the nonce records that expired before `now`; how many.
    async fn prune_nonces(&self, now: OffsetDateTime) -> Result<u64>;
}
