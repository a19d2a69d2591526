//! The PostgreSQL backend: one database shared by every node of the CA.
//!
//! # Durability
//!
//! Every [`Storage`] call returns `Ok` only after its transaction committed,
//! and with `synchronous_commit = on` (the server's default) `COMMIT`
//! returns only once the server has flushed the transaction's write-ahead
//! log to disk. So what a call acknowledged survives `kill -9` of the CA and
//! of the PostgreSQL server, and a power loss as far as the disk honours
//! fsync (and the server runs with `fsync = on`). Each connection this store
//! opens turns `synchronous_commit` back on if the server or role set it to
//! `off`; stronger settings (`remote_write`, `remote_apply`) are kept.
//! `fsync = off` on the server cannot be undone from a session: opening the
//! store logs a warning then. Replication and backups are the operator's.
//!
//! # Concurrency
//!
//! Several CA processes may share the database, so nothing here relies on
//! serializing calls in one process. Writes run in `READ COMMITTED`
//! transactions whose decisions are single conditional statements: `UPDATE
//! … WHERE state = …` (the row lock makes a second updater re-check the
//! condition on the committed row and find it false) and `INSERT … ON
//! CONFLICT DO NOTHING` (the unique index makes the second inserter wait
//! for the first and then skip). A read that takes several statements runs
//! in one `REPEATABLE READ, READ ONLY` transaction and so sees one snapshot.
//!
//! Migrations run under the advisory lock `sqlx` takes, so nodes starting
//! at once apply each migration once.

mod accounts;
mod authorizations;
mod certificates;
mod keys;
mod nonces;
mod orders;

use std::str::FromStr;

use async_trait::async_trait;
use cairn_proto::{Identifier, Problem};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Executor, PgConnection, Postgres, Transaction};
use time::OffsetDateTime;

use crate::model::*;
use crate::{Result, Storage, StoreError};

/// The schema, embedded at build time from `migrations/postgres`.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// The PostgreSQL backend. Cloning is cheap and shares the pool.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`,
    /// with libpq's query parameters such as `sslmode` or `options`) with a
    /// pool of at most `max_connections` (at least 1), and applies pending
    /// migrations. Errors name the server and database, never the password.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self> {
        let written = password_in(url);
        let options = PgConnectOptions::from_str(url).map_err(|e| {
            StoreError::Backend(redact(
                &format!("the PostgreSQL URL is invalid: {e}"),
                &[written],
            ))
        })?;
        let target = describe(&options);
        // The password as the options hold it, which may also come from a
        // `password` query parameter.
        let held = options.to_url_lossy().password().map(percent_decode);
        let secrets = [written, held.as_deref()];
        let options = match options.get_application_name() {
            Some(_) => options,
            None => options.application_name("cairn"),
        };

        // One connection first, outside the pool, so that a refused
        // connection or a failed login is reported at once and as it is
        // (the pool would retry a refused one until its timeout).
        let mut first = options.connect().await.map_err(|e| {
            StoreError::Backend(redact(
                &format!("cannot connect to PostgreSQL at {target}: {e}"),
                &secrets,
            ))
        })?;
        warn_unless_fsync(&mut first, &target).await?;
        let _ = first.close().await;

        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .after_connect(|conn, _| Box::pin(async move { keep_commits_durable(conn).await }))
            .connect_lazy_with(options);
        let store = Self { pool };
        store.migrate().await?;
        tracing::info!(%target, max_connections, "opened the PostgreSQL store");
        Ok(store)
    }

    /// Applies the migrations this build knows and the database lacks,
    /// holding sqlx's advisory lock meanwhile. [`PgStore::open`] already
    /// does; calling it again does nothing.
    pub async fn migrate(&self) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        // Closing the connection afterwards ends its session, and with it
        // the advisory lock, even if a migration failed halfway.
        conn.close_on_drop();
        MIGRATOR
            .run(&mut *conn)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating the PostgreSQL schema: {e}")))
    }

    /// Closes every connection, waiting for calls in flight to finish.
    /// Calls made afterwards fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A write transaction. Dropping it uncommitted rolls back.
    async fn write(&self) -> Result<Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(db)
    }

    /// A read transaction: one snapshot for the statements run in it.
    async fn read(&self) -> Result<Transaction<'static, Postgres>> {
        self.pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
            .map_err(db)
    }
}

/// Turns `synchronous_commit` on for a new connection if the server's or
/// role's default turned it off; every other value already waits for the
/// local flush.
async fn keep_commits_durable(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    conn.execute(concat!(
        "SELECT set_config('synchronous_commit', 'on', false) ",
        "WHERE current_setting('synchronous_commit') = 'off'"
    ))
    .await
    .map(drop)
}

/// Warns when the server does not fsync: then no commit survives a crash
/// of its machine, whatever this store does.
async fn warn_unless_fsync(conn: &mut PgConnection, target: &str) -> Result<()> {
    let fsync: String = sqlx::query_scalar("SELECT current_setting('fsync')")
        .fetch_one(conn)
        .await
        .map_err(db)?;
    if fsync != "on" {
        tracing::warn!(
            %target,
            fsync,
            "PostgreSQL runs with fsync off: acknowledged writes can be lost if its machine crashes"
        );
    }
    Ok(())
}

/// `user@host:port/database`, for messages: everything that says which
/// server was meant, and no password.
fn describe(options: &PgConnectOptions) -> String {
    let host = match options.get_socket() {
        Some(socket) => socket.display().to_string(),
        None => options.get_host().to_owned(),
    };
    format!(
        "{}@{}:{}/{}",
        options.get_username(),
        host,
        options.get_port(),
        options.get_database().unwrap_or("")
    )
}

/// The password in a URL's user information, as written (percent-encoded).
fn password_in(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (user_info, _) = authority.rsplit_once('@')?;
    let (_, password) = user_info.split_once(':')?;
    Some(password)
}

/// `message` with every occurrence of each secret, as written and
/// percent-decoded, masked: whatever a driver error quotes, the message
/// never carries a password.
fn redact(message: &str, secrets: &[Option<&str>]) -> String {
    let mut message = message.to_owned();
    for secret in secrets.iter().flatten() {
        for form in [secret.to_string(), percent_decode(secret)] {
            if !form.is_empty() {
                message = message.replace(&form, "***");
            }
        }
    }
    message
}

/// Decodes `%XX` escapes; anything else is kept as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
async fn end_read(tx: Transaction<'static, Postgres>) -> Result<()> {
    tx.commit().await.map_err(db)
}

#[async_trait]
impl Storage for PgStore {
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

    async fn certificate_replaced(&self, replaces: &str) -> Result<bool> {
        orders::certificate_replaced(self, replaces).await
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

    async fn block_key(&self, key: &BlockedKey) -> Result<bool> {
        keys::block(self, key).await
    }

    async fn blocked_key(&self, spki_sha256: &[u8]) -> Result<Option<BlockedKey>> {
        keys::blocked(self, spki_sha256).await
    }

    async fn live_certificates_with_key(
        &self,
        spki_sha256: &[u8],
        now: OffsetDateTime,
    ) -> Result<Vec<String>> {
        keys::live_certificates(self, spki_sha256, now).await
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

    #[test]
    fn the_password_is_found_in_the_user_information_only() {
        assert_eq!(
            password_in("postgres://cairn:s%40cret@db.example:5432/ca?sslmode=require"),
            Some("s%40cret")
        );
        assert_eq!(password_in("postgres://cairn@db.example/ca"), None);
        assert_eq!(password_in("postgres://db.example/ca?password=x"), None);
        assert_eq!(password_in("not a url"), None);
    }

    #[test]
    fn redaction_masks_the_password_as_written_and_decoded() {
        let message = "failed for s%40cret and for s@cret";
        assert_eq!(
            redact(message, &[Some("s%40cret")]),
            "failed for *** and for ***"
        );
        assert_eq!(
            redact(message, &[None, Some("s@cret")]),
            "failed for s%40cret and for ***"
        );
        assert_eq!(redact(message, &[None, Some("")]), message);
    }

    #[test]
    fn percent_decoding_keeps_what_is_not_an_escape() {
        assert_eq!(percent_decode("a%20b%2"), "a b%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(percent_decode("%e2%82%ac"), "€");
    }

    #[test]
    fn descriptions_name_the_server_but_not_the_password() {
        let options =
            PgConnectOptions::from_str("postgres://cairn:hunter2@db.example:6543/ca").unwrap();
        assert_eq!(describe(&options), "cairn@db.example:6543/ca");
    }

    /// A role or database may default to `synchronous_commit = off`; the
    /// store's connections turn it back on, and keep stronger settings.
    #[tokio::test]
    async fn commits_wait_for_the_disk_whatever_the_defaults() {
        let Some(schema) = cairn_testkit::postgres::FreshSchema::create().await else {
            return;
        };
        for (default, expected) in [("off", "on"), ("remote_apply", "remote_apply")] {
            let url = format!(
                "{}&options=-c%20synchronous_commit%3D{default}",
                schema.database_url()
            );
            let store = PgStore::open(&url, 1).await.unwrap();
            let setting: String = sqlx::query_scalar("SHOW synchronous_commit")
                .fetch_one(&store.pool)
                .await
                .unwrap();
            assert_eq!(setting, expected);
            let search_path: String = sqlx::query_scalar("SHOW search_path")
                .fetch_one(&store.pool)
                .await
                .unwrap();
            assert_eq!(search_path, schema.name(), "the URL's options add up");
            store.close().await;
        }
    }

    #[tokio::test]
    async fn errors_never_carry_the_password() {
        // Nothing listens on port 1, and "notaport" is not a port.
        for url in [
            "postgres://cairn:hunter2%21@127.0.0.1:1/ca",
            "postgres://cairn@127.0.0.1:1/ca?password=hunter2%21",
            "postgres://cairn:hunter2%21@127.0.0.1:notaport/ca",
        ] {
            let err = PgStore::open(url, 1).await.unwrap_err().to_string();
            assert!(!err.contains("hunter2"), "{err}");
            assert!(err.contains("PostgreSQL"), "{err}");
        }
    }
}
