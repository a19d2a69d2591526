//! The SQLite backend: one database file, the CA's default store.
//!
//! # Durability
//!
//! The database runs in WAL mode with `synchronous = FULL`: a commit
//! appends its pages to the write-ahead log and fsyncs the log before
//! `COMMIT` returns, and every [`Storage`] call returns `Ok` only after its
//! transaction committed. So what a call acknowledged
//!
//! - survives `kill -9` of the CA, or a crash of it: the log is on disk and
//!   the next open reads (and later checkpoints) it;
//! - survives an operating system crash or power loss, as far as the disk
//!   honours fsync. On macOS `fsync` does not flush the drive's cache and
//!   `F_FULLFSYNC` is not enabled here, so there the last commits before a
//!   power loss may be lost.
//!
//! Nothing survives losing the disk. The `-wal` file is part of the
//! database until it is checkpointed: copy it with the main file, or back
//! up with `VACUUM INTO`.
//!
//! # Writers and readers
//!
//! Every write goes through one dedicated connection (a pool of one), in a
//! `BEGIN IMMEDIATE` transaction. Writes are serialized in the process, so
//! none is refused with `SQLITE_BUSY` for upgrading a read lock while
//! another connection writes, and conditional updates (`start_challenge`,
//! `begin_finalize`) see every earlier write. Another process writing the
//! same file waits for the lock, up to the busy timeout. Having one writer
//! also leaves one place where a later change can group several calls into
//! one commit.
//!
//! Reads use a separate pool of `query_only` connections, which WAL lets
//! run alongside the writer. A read that takes several statements runs in
//! one read transaction and so sees one snapshot. A read that starts after
//! a write returned sees that write.

mod accounts;
mod authorizations;
mod certificates;
mod nonces;
mod orders;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use cairn_proto::{Identifier, Problem};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};
use time::OffsetDateTime;

use crate::model::*;
use crate::{Result, Storage, StoreError};

/// The schema, embedded at build time from `migrations/sqlite`.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a connection waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The SQLite backend. Cloning is cheap and shares the connections.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// The only connection that writes: a pool of exactly one.
    writer: SqlitePool,
    /// Connections for reads. For an in-memory store this is `writer`,
    /// since each in-memory connection would see its own database.
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens the database at `path`, creating the file if it is missing
    /// (its directory must exist), and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        if !tokio::fs::metadata(dir).await.is_ok_and(|m| m.is_dir()) {
            return Err(StoreError::Backend(format!(
                "cannot open the database {}: directory {} does not exist",
                path.display(),
                dir.display()
            )));
        }

        let base = SqliteConnectOptions::new()
            .filename(path)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let writer_options = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let writer = single_connection_pool()
            .connect_with(writer_options)
            .await
            .map_err(|e| {
                StoreError::Backend(format!("cannot open the database {}: {e}", path.display()))
            })?;

        let readers = std::thread::available_parallelism()
            .map_or(4, |n| n.get())
            .clamp(2, 16);
        let reader = SqlitePoolOptions::new()
            .max_connections(u32::try_from(readers).unwrap_or(16))
            .test_before_acquire(false)
            .connect_lazy_with(base.pragma("query_only", "ON"));

        let store = Self { writer, reader };
        store.migrate().await?;
        tracing::info!(path = %path.display(), readers, "opened the SQLite store");
        Ok(store)
    }

    /// A fresh, empty database in memory, migrated: for tests. All calls
    /// share one connection, so reads wait for writes.
    pub async fn open_in_memory() -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(db)?
            .foreign_keys(true);
        let pool = single_connection_pool()
            .connect_with(options)
            .await
            .map_err(db)?;
        let store = Self {
            writer: pool.clone(),
            reader: pool,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the migrations this build knows and the database lacks.
    /// [`SqliteStore::open`] already does; calling it again does nothing.
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR
            .run(&self.writer)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating the SQLite schema: {e}")))
    }

    /// Closes every connection, waiting for them to finish; SQLite then
    /// checkpoints the write-ahead log into the main file. Calls made
    /// afterwards fail.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// A write transaction on the writer connection, holding the write
    /// lock from its first statement. Dropping it uncommitted rolls back.
    async fn write(&self) -> Result<Transaction<'static, Sqlite>> {
        self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)
    }

    /// A read transaction: one snapshot for the statements run in it.
    async fn read(&self) -> Result<Transaction<'static, Sqlite>> {
        self.reader.begin().await.map_err(db)
    }
}

/// A pool that keeps exactly one connection open for its whole life.
fn single_connection_pool() -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .test_before_acquire(false)
}

/// A backend failure, for logs.
fn db(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Whether `e` is a UNIQUE (or PRIMARY KEY) constraint refusing a write.
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Ends a read transaction. Nothing was written, so this cannot lose data.
async fn end_read(tx: Transaction<'static, Sqlite>) -> Result<()> {
    tx.commit().await.map_err(db)
}

#[async_trait]
impl Storage for SqliteStore {
    async fn create_account(&self, new: NewAccount) -> Result<(Account, bool)> {
        accounts::create(self, new).await
    }

    async fn account(&self, id: AccountId) -> Result<Option<Account>> {
        accounts::by_id(self, id).await
    }

    async fn account_by_thumbprint(&self, thumbprint: &str) -> Result<Option<Account>> {
        accounts::by_thumbprint(self, thumbprint).await
    }

    async fn update_account_contact(&self, id: AccountId, contact: &[String]) -> Result<Account> {
        accounts::update_contact(self, id, contact).await
    }

    async fn deactivate_account(&self, id: AccountId) -> Result<Account> {
        accounts::deactivate(self, id).await
    }

    async fn change_account_key(
        &self,
        id: AccountId,
        new_jwk: &str,
        new_thumbprint: &str,
    ) -> Result<Account> {
        accounts::change_key(self, id, new_jwk, new_thumbprint).await
    }

    async fn create_order(&self, new: NewOrder) -> Result<Order> {
        orders::create(self, new).await
    }

    async fn order(&self, id: OrderId) -> Result<Option<Order>> {
        orders::by_id(self, id).await
    }

    async fn account_orders(
        &self,
        account: AccountId,
        before: Option<OrderId>,
        limit: u32,
    ) -> Result<Vec<OrderId>> {
        orders::of_account(self, account, before, limit).await
    }

    async fn authorization(&self, id: AuthzId) -> Result<Option<Authorization>> {
        authorizations::by_id(self, id).await
    }

    async fn authorizations(&self, ids: &[AuthzId]) -> Result<Vec<Authorization>> {
        authorizations::by_ids(self, ids).await
    }

    async fn reusable_authorization(
        &self,
        account: AccountId,
        identifier: &Identifier,
        wildcard: bool,
        now: OffsetDateTime,
    ) -> Result<Option<AuthzId>> {
        authorizations::newest(self, AuthzState::Valid, account, identifier, wildcard, now).await
    }

    async fn pending_authorization(
        &self,
        account: AccountId,
        identifier: &Identifier,
        wildcard: bool,
        now: OffsetDateTime,
    ) -> Result<Option<AuthzId>> {
        authorizations::newest(
            self,
            AuthzState::Pending,
            account,
            identifier,
            wildcard,
            now,
        )
        .await
    }

    async fn challenge(&self, id: ChallengeId) -> Result<Option<(Challenge, Authorization)>> {
        authorizations::challenge(self, id).await
    }

    async fn start_challenge(&self, id: ChallengeId) -> Result<bool> {
        authorizations::start_challenge(self, id).await
    }

    async fn certificate_replaced(&self, replaces: &str) -> Result<bool> {
        orders::certificate_replaced(self, replaces).await
    }

    async fn processing_challenges(&self) -> Result<Vec<ChallengeId>> {
        authorizations::processing_challenges(self).await
    }

    async fn finish_challenge(&self, id: ChallengeId, outcome: ValidationOutcome) -> Result<()> {
        authorizations::finish_challenge(self, id, outcome).await
    }

    async fn deactivate_authorization(&self, id: AuthzId) -> Result<Authorization> {
        authorizations::deactivate(self, id).await
    }

    async fn begin_finalize(&self, pending: PendingCertificate) -> Result<bool> {
        certificates::begin_finalize(self, pending).await
    }

    async fn complete_finalize(&self, order: OrderId, serial: &str, der: &[u8]) -> Result<()> {
        certificates::complete_finalize(self, order, serial, der).await
    }

    async fn fail_finalize(&self, order: OrderId, problem: &Problem) -> Result<()> {
        certificates::fail_finalize(self, order, problem).await
    }

    async fn stalled_finalizes(&self, before: OffsetDateTime) -> Result<Vec<OrderId>> {
        certificates::stalled(self, before).await
    }

    async fn certificate(&self, serial: &str) -> Result<Option<Certificate>> {
        certificates::by_serial(self, serial).await
    }

    async fn revoke_certificate(&self, serial: &str, revocation: Revocation) -> Result<bool> {
        certificates::revoke(self, serial, revocation).await
    }

    async fn revoked_certificates(
        &self,
        issuer: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<RevokedEntry>> {
        certificates::revoked(self, issuer, now).await
    }

    async fn last_revocation(&self, issuer: &str) -> Result<Option<OffsetDateTime>> {
        certificates::last_revocation(self, issuer).await
    }

    async fn nonce_secret(&self, candidate: &[u8]) -> Result<Vec<u8>> {
        nonces::secret(self, candidate).await
    }

    async fn redeem_nonce(&self, id: &[u8], expires: OffsetDateTime) -> Result<bool> {
        nonces::redeem(self, id, expires).await
    }

    async fn prune_nonces(&self, now: OffsetDateTime) -> Result<u64> {
        nonces::prune(self, now).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    async fn text_pragma(pool: &SqlitePool, name: &str) -> String {
        sqlx::query_scalar(&format!("PRAGMA {name}"))
            .fetch_one(pool)
            .await
            .unwrap()
    }

    async fn int_pragma(pool: &SqlitePool, name: &str) -> i64 {
        sqlx::query_scalar(&format!("PRAGMA {name}"))
            .fetch_one(pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_writer_is_durable_and_readers_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("ca.db")).await.unwrap();

        assert_eq!(text_pragma(&store.writer, "journal_mode").await, "wal");
        assert_eq!(int_pragma(&store.writer, "synchronous").await, 2, "FULL");
        assert_eq!(int_pragma(&store.writer, "foreign_keys").await, 1);
        assert_eq!(int_pragma(&store.writer, "busy_timeout").await, 5000);
        assert_eq!(store.writer.options().get_max_connections(), 1);

        assert_eq!(int_pragma(&store.reader, "query_only").await, 1);
        assert_eq!(int_pragma(&store.reader, "busy_timeout").await, 5000);
        let write = sqlx::query("DELETE FROM accounts")
            .execute(&store.reader)
            .await;
        assert!(write.is_err(), "a reader connection wrote");
    }

    #[tokio::test]
    async fn the_schema_has_what_the_queries_rely_on() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        let indexes: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_schema WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name")
                .fetch_all(&store.reader)
                .await
                .unwrap();
        assert_eq!(
            indexes,
            [
                "authorizations_for_reuse",
                "certificates_by_not_after",
                "certificates_revoked_at_by_issuer",
                "certificates_revoked_by_issuer",
                "challenges_by_authz",
                "challenges_processing",
                "order_authorizations_by_authz",
                "orders_by_account",
                "orders_by_replaces",
                "orders_processing",
                "used_nonces_by_expiry",
            ]
        );
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(concat!(
            "EXPLAIN QUERY PLAN SELECT id FROM authorizations ",
            "WHERE account_id = 1 AND identifier_type = 'dns' AND identifier_value = 'example.com' ",
            "AND wildcard = 0 AND state = 'valid' AND expires > 0 ORDER BY id DESC LIMIT 1"
        ))
        .fetch_all(&store.reader)
        .await
        .unwrap();
        assert!(
            plan.iter()
                .any(|row| row.3.contains("authorizations_for_reuse")),
            "{plan:?}"
        );
        for (query, index) in [
            (
                "SELECT o.id FROM orders o JOIN certificates c ON c.serial = o.certificate_serial \
                 WHERE o.state = 'processing' AND c.created_at < 0 ORDER BY c.created_at, o.id",
                "orders_processing",
            ),
            (
                "SELECT id FROM challenges WHERE state = 'processing' ORDER BY id",
                "challenges_processing",
            ),
            (
                "SELECT id FROM orders WHERE account_id = 1 AND id < 100 ORDER BY id DESC LIMIT 50",
                "orders_by_account (account_id=? AND id<?)",
            ),
        ] {
            let plan: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(&format!("EXPLAIN QUERY PLAN {query}"))
                    .fetch_all(&store.reader)
                    .await
                    .unwrap();
            assert!(
                plan.iter().any(|row| row.3.contains(index)),
                "{query}: {plan:?}"
            );
        }
    }

    #[tokio::test]
    async fn opening_under_a_missing_directory_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let err = SqliteStore::open(&dir.path().join("absent").join("ca.db"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
