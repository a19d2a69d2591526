//! The CA's real SQLite store with a record of every certificate row it
//! reserved and completed, so a test can count the certificates of an
//! order without reaching into the database.

use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use cairn_proto::{Identifier, Problem};
use cairn_store::{
    Account, AccountId, Authorization, AuthzId, BlockedKey, Certificate, Challenge, ChallengeId,
    NewAccount, NewOrder, Order, OrderId, PendingCertificate, Result, Revocation, RevokedEntry,
    SqliteStore, Storage, ValidationOutcome,
};
use time::OffsetDateTime;

/// [`SqliteStore`], delegated to call for call.
pub(crate) struct RecordingStore {
    inner: SqliteStore,
    /// `(order, serial)` of every certificate row inserted by `begin_finalize`.
    reserved: Mutex<Vec<(OrderId, String)>>,
    /// `(order, serial)` of every `complete_finalize` that succeeded.
    completed: Mutex<Vec<(OrderId, String)>>,
    /// How many times the revoked entries were read: once per CRL built.
    pub(crate) crl_reads: std::sync::atomic::AtomicUsize,
}

impl RecordingStore {
    pub(crate) async fn open(path: &Path) -> Self {
        Self {
            inner: SqliteStore::open(path)
                .await
                .expect("the SQLite store opens"),
            reserved: Mutex::default(),
            completed: Mutex::default(),
            crl_reads: Default::default(),
        }
    }

    /// Serials of the certificate rows inserted for `order`.
    pub(crate) fn reserved_for(&self, order: OrderId) -> Vec<String> {
        serials_of(&self.reserved, order)
    }

    /// Serials of the certificates stored, signed, for `order`.
    pub(crate) fn completed_for(&self, order: OrderId) -> Vec<String> {
        serials_of(&self.completed, order)
    }
}

fn serials_of(list: &Mutex<Vec<(OrderId, String)>>, order: OrderId) -> Vec<String> {
    let list = list.lock().expect("not poisoned");
    list.iter()
        .filter(|(o, _)| *o == order)
        .map(|(_, serial)| serial.clone())
        .collect()
}

#[async_trait]
impl Storage for RecordingStore {
    async fn create_account(&self, new: NewAccount) -> Result<(Account, bool)> {
        self.inner.create_account(new).await
    }

    async fn account(&self, id: AccountId) -> Result<Option<Account>> {
        self.inner.account(id).await
    }

    async fn account_by_thumbprint(&self, thumbprint: &str) -> Result<Option<Account>> {
        self.inner.account_by_thumbprint(thumbprint).await
    }

    async fn update_account_contact(&self, id: AccountId, contact: &[String]) -> Result<Account> {
        self.inner.update_account_contact(id, contact).await
    }

    async fn deactivate_account(&self, id: AccountId) -> Result<Account> {
        self.inner.deactivate_account(id).await
    }

    async fn change_account_key(
        &self,
        id: AccountId,
        new_jwk: &str,
        new_thumbprint: &str,
    ) -> Result<Account> {
        self.inner
            .change_account_key(id, new_jwk, new_thumbprint)
            .await
    }

    async fn create_order(&self, new: NewOrder) -> Result<Order> {
        self.inner.create_order(new).await
    }

    async fn order(&self, id: OrderId) -> Result<Option<Order>> {
        self.inner.order(id).await
    }

    async fn certificate_replaced(&self, replaces: &str) -> Result<bool> {
        self.inner.certificate_replaced(replaces).await
    }

    async fn account_orders(
        &self,
        account: AccountId,
        before: Option<OrderId>,
        limit: u32,
    ) -> Result<Vec<OrderId>> {
        self.inner.account_orders(account, before, limit).await
    }

    async fn authorization(&self, id: AuthzId) -> Result<Option<Authorization>> {
        self.inner.authorization(id).await
    }

    async fn authorizations(&self, ids: &[AuthzId]) -> Result<Vec<Authorization>> {
        self.inner.authorizations(ids).await
    }

    async fn reusable_authorization(
        &self,
        account: AccountId,
        identifier: &Identifier,
        wildcard: bool,
        now: OffsetDateTime,
    ) -> Result<Option<AuthzId>> {
        self.inner
            .reusable_authorization(account, identifier, wildcard, now)
            .await
    }

    async fn pending_authorization(
        &self,
        account: AccountId,
        identifier: &Identifier,
        wildcard: bool,
        now: OffsetDateTime,
    ) -> Result<Option<AuthzId>> {
        self.inner
            .pending_authorization(account, identifier, wildcard, now)
            .await
    }

    async fn challenge(&self, id: ChallengeId) -> Result<Option<(Challenge, Authorization)>> {
        self.inner.challenge(id).await
    }

    async fn start_challenge(&self, id: ChallengeId) -> Result<bool> {
        self.inner.start_challenge(id).await
    }

    async fn processing_challenges(&self) -> Result<Vec<ChallengeId>> {
        self.inner.processing_challenges().await
    }

    async fn finish_challenge(&self, id: ChallengeId, outcome: ValidationOutcome) -> Result<()> {
        self.inner.finish_challenge(id, outcome).await
    }

    async fn deactivate_authorization(&self, id: AuthzId) -> Result<Authorization> {
        self.inner.deactivate_authorization(id).await
    }

    async fn begin_finalize(&self, pending: PendingCertificate) -> Result<bool> {
        let (order, serial) = (pending.order_id, pending.serial.clone());
        let inserted = self.inner.begin_finalize(pending).await?;
        if inserted {
            self.reserved
                .lock()
                .expect("not poisoned")
                .push((order, serial));
        }
        Ok(inserted)
    }

    async fn complete_finalize(&self, order: OrderId, serial: &str, der: &[u8]) -> Result<()> {
        self.inner.complete_finalize(order, serial, der).await?;
        self.completed
            .lock()
            .expect("not poisoned")
            .push((order, serial.to_owned()));
        Ok(())
    }

    async fn fail_finalize(&self, order: OrderId, problem: &Problem) -> Result<()> {
        self.inner.fail_finalize(order, problem).await
    }

    async fn certificate(&self, serial: &str) -> Result<Option<Certificate>> {
        self.inner.certificate(serial).await
    }

    async fn revoke_certificate(&self, serial: &str, revocation: Revocation) -> Result<bool> {
        self.inner.revoke_certificate(serial, revocation).await
    }

    async fn revoked_certificates(
        &self,
        issuer: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<RevokedEntry>> {
        self.crl_reads
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // As slow as a CRL of many entries would be, so that requests
        // building at once overlap instead of passing one another.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        self.inner.revoked_certificates(issuer, now).await
    }

    async fn block_key(&self, key: &BlockedKey) -> Result<bool> {
        self.inner.block_key(key).await
    }

    async fn blocked_key(&self, spki_sha256: &[u8]) -> Result<Option<BlockedKey>> {
        self.inner.blocked_key(spki_sha256).await
    }

    async fn live_certificates_with_key(
        &self,
        spki_sha256: &[u8],
        now: OffsetDateTime,
    ) -> Result<Vec<String>> {
        self.inner
            .live_certificates_with_key(spki_sha256, now)
            .await
    }

    async fn stalled_finalizes(&self, before: OffsetDateTime) -> Result<Vec<OrderId>> {
        self.inner.stalled_finalizes(before).await
    }

    async fn last_revocation(&self, issuer: &str) -> Result<Option<OffsetDateTime>> {
        self.inner.last_revocation(issuer).await
    }

    async fn nonce_secret(&self, candidate: &[u8]) -> Result<Vec<u8>> {
        self.inner.nonce_secret(candidate).await
    }

    async fn redeem_nonce(&self, id: &[u8], expires: OffsetDateTime) -> Result<bool> {
        self.inner.redeem_nonce(id, expires).await
    }

    async fn prune_nonces(&self, now: OffsetDateTime) -> Result<u64> {
        self.inner.prune_nonces(now).await
    }
}
