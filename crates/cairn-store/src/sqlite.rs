//! The SQLite backend: one database file, the CA's default store.
//!
//! # Durability
//!
//! The database runs in WAL mode with `synchronous = FULL`: a commit
//! appends its pages to the write-ahead log and fsyncs the log before
//! `COMMIT` returns, and every [`Storage`] call returns `Ok` only after the
//! transaction holding its write committed. So what a call acknowledged
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
//! # Writes: one thread, group commit
//!
//! Every write runs on one dedicated thread that owns the only writing
//! connection. A call hands it a closure and waits. The thread takes every
//! closure that is waiting (up to [`MAX_GROUP`]), opens one `BEGIN
//! IMMEDIATE` transaction, runs each closure inside its own `SAVEPOINT`
//! (released if the closure returned `Ok`, rolled back if it failed or
//! panicked), then commits once and only then answers every caller. One
//! fsync so covers all writes that arrived while the previous one ran:
//! under load the number of commits per second stays near what the disk
//! can fsync while the writes per second grow with the callers. A caller
//! that got `Ok` is durable; if the `COMMIT` fails, every caller of that
//! group gets the error and none of its writes exist.
//!
//! Writes are serialized in the process, so none is refused with
//! `SQLITE_BUSY` for upgrading a read lock, and conditional updates
//! (`start_challenge`, `begin_finalize`) see every earlier write, including
//! those of the same group. Another process writing the same file waits for
//! the lock, up to the busy timeout. A write handed to the thread runs even
//! if its caller stops waiting (a client that hung up): it commits or fails
//! with its group like any other.
//!
//! # Reads: on the caller's thread
//!
//! Reads use a small set of `query_only` connections, which WAL lets run
//! alongside the writer. A read takes a free connection and runs on the
//! calling thread, inside one read transaction, so it sees one snapshot and
//! costs no hand-over to another thread; the statements are prepared once
//! per connection and cached. A read that starts after a write returned
//! sees that write. Reads whose size grows with the data (a CRL's revoked
//! serials) go to a blocking-pool thread instead. An in-memory store has a
//! single connection, which reads and the writer thread take turns on.

mod accounts;
mod authorizations;
mod certificates;
mod keys;
mod migrate;
mod nonces;
mod orders;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError, mpsc};
use std::time::Duration;

use async_trait::async_trait;
use cairn_proto::{Identifier, Problem};
use rusqlite::{Connection, OpenFlags};
use time::OffsetDateTime;
use tokio::sync::oneshot;

use crate::model::*;
use crate::{Result, Storage, StoreError};

/// How long a connection waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The most writes one commit groups. Each runs in microseconds, so the
/// bound only keeps one group from holding its callers for long.
const MAX_GROUP: usize = 256;

/// Prepared statements each connection keeps (the queries of this module
/// number about sixty).
const STATEMENT_CACHE: usize = 96;

/// The SQLite backend. Cloning is cheap and shares the connections.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// Hands closures to the writer thread; `None` once closed.
    writes: Mutex<Option<mpsc::Sender<WriteJob>>>,
    /// The writer thread, joined by [`SqliteStore::close`].
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Connections for reads; for an in-memory store, the writer's own.
    readers: Vec<Arc<Mutex<Option<Connection>>>>,
    /// Where the next read starts looking for a free connection.
    next_reader: AtomicUsize,
    counts: Arc<Counts>,
}

/// What the writer did since the store opened.
#[derive(Default)]
struct Counts {
    /// Writes handed to the writer thread.
    writes: AtomicU64,
    /// Transactions it committed for them.
    commits: AtomicU64,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("readers", &self.inner.readers.len())
            .finish_non_exhaustive()
    }
}

/// A write waiting for the writer thread: it runs the caller's closure and
/// returns how it went and how to answer the caller once the group's
/// commit is known.
/// Given no connection, it does not run the closure and answers with the
/// error passed to `answer`.
type WriteJob = Box<dyn FnOnce(Option<&Connection>) -> Ran + Send>;

struct Ran {
    /// Whether the closure returned `Ok` (its savepoint is kept).
    ok: bool,
    answer: Answer,
}

/// Sends the caller its result, or the error that kept its group from
/// committing.
type Answer = Box<dyn FnOnce(Option<&str>) + Send>;

/// The database holds every account key and certificate: only its owner
/// may read it. A missing file is created 0600 whatever the umask (SQLite
/// gives the `-wal` and `-shm` files the database's mode); an existing one
/// readable by others is narrowed to 0600, with a warning.
fn make_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = Path::new(&file);
        let mode = match std::fs::metadata(file) {
            Ok(metadata) => metadata.permissions().mode() & 0o777,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if mode & 0o077 != 0 {
            tracing::warn!(file = %file.display(), mode = format!("{mode:o}"), "the database was readable by others; narrowing it to 0600");
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
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
        let path = path.to_owned();
        // One per thread that may read at once (the runtime's workers),
        // and one spare, so a read rarely waits for a connection.
        let reader_count = std::thread::available_parallelism()
            .map_or(4, |n| n.get())
            .clamp(2, 16)
            + 1;
        let (writer, reader_connections) =
            tokio::task::spawn_blocking(move || -> Result<_> {
                let cannot =
                    |e: rusqlite::Error| format!("cannot open the database {}: {e}", path.display());
                make_private(&path).map_err(|e| {
                    StoreError::Backend(format!(
                        "cannot make the database {} private: {e}",
                        path.display()
                    ))
                })?;
                // No SQLITE_OPEN_URI: the path is a file name, even one
                // that starts with "file:".
                let writer = Connection::open_with_flags(
                    &path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE
                        | OpenFlags::SQLITE_OPEN_CREATE
                        | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(|e| StoreError::Backend(cannot(e)))?;
                configure(&writer).map_err(|e| StoreError::Backend(cannot(e)))?;
                writer
                    .pragma_update(None, "journal_mode", "WAL")
                    .and_then(|()| writer.pragma_update(None, "synchronous", "FULL"))
                    .map_err(|e| StoreError::Backend(cannot(e)))?;
                migrate::run(&writer)?;
                let mut readers = Vec::with_capacity(reader_count);
                for _ in 0..reader_count {
                    let reader = Connection::open_with_flags(
                        &path,
                        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )
                    .and_then(|c| configure(&c).map(|()| c))
                    .and_then(|c| c.pragma_update(None, "query_only", "ON").map(|()| c))
                    .map_err(|e| StoreError::Backend(cannot(e)))?;
                    readers.push(Arc::new(Mutex::new(Some(reader))));
                }
                tracing::info!(path = %path.display(), readers = readers.len(), "opened the SQLite store");
                Ok((writer, readers))
            })
            .await
            .map_err(|e| StoreError::Backend(format!("opening the database: {e}")))??;
        Self::start(Arc::new(Mutex::new(Some(writer))), reader_connections)
    }

    /// A fresh, empty database in memory, migrated: for tests. Reads and
    /// writes share its one connection.
    pub async fn open_in_memory() -> Result<Self> {
        let conn = Connection::open_in_memory().map_err(db)?;
        configure(&conn).map_err(db)?;
        migrate::run(&conn)?;
        let conn = Arc::new(Mutex::new(Some(conn)));
        Self::start(conn.clone(), vec![conn])
    }

    fn start(
        writer: Arc<Mutex<Option<Connection>>>,
        readers: Vec<Arc<Mutex<Option<Connection>>>>,
    ) -> Result<Self> {
        let (sender, jobs) = mpsc::channel();
        let counts = Arc::new(Counts::default());
        let thread = {
            let counts = counts.clone();
            std::thread::Builder::new()
                .name("sqlite-writer".into())
                .spawn(move || write_groups(&writer, &jobs, &counts))
                .map_err(|e| StoreError::Backend(format!("starting the SQLite writer: {e}")))?
        };
        Ok(Self {
            inner: Arc::new(Inner {
                writes: Mutex::new(Some(sender)),
                writer: Mutex::new(Some(thread)),
                readers,
                next_reader: AtomicUsize::new(0),
                counts,
            }),
        })
    }

    /// Applies the migrations this build knows and the database lacks.
    /// [`SqliteStore::open`] already does; calling it again does nothing.
    pub async fn migrate(&self) -> Result<()> {
        self.write(migrate::run_in_transaction).await
    }

    /// How many writes the store took and in how many commits, since it
    /// opened: their ratio is the mean size of a commit group.
    pub fn write_counts(&self) -> (u64, u64) {
        let counts = &self.inner.counts;
        (
            counts.writes.load(Ordering::Relaxed),
            counts.commits.load(Ordering::Relaxed),
        )
    }

    /// Waits for the writes handed over so far, then closes every
    /// connection; SQLite checkpoints the write-ahead log into the main
    /// file as the last one closes. Calls made afterwards fail.
    pub async fn close(&self) {
        drop(lock(&self.inner.writes).take());
        let thread = lock(&self.inner.writer).take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        for reader in &self.inner.readers {
            drop(lock(reader).take());
        }
    }

    /// Runs `f` as one write in the next group commit; returns its result
    /// once the group is durable. If `f` fails, what it wrote is undone and
    /// the rest of the group is unaffected.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T>>();
        let job: WriteJob = Box::new(move |conn| {
            let Some(conn) = conn else {
                return Ran {
                    ok: false,
                    answer: Box::new(move |error| {
                        let error = error.unwrap_or("the write was not run");
                        let _ = reply.send(Err(StoreError::Backend(error.to_owned())));
                    }),
                };
            };
            let result = f(conn);
            Ran {
                ok: result.is_ok(),
                answer: Box::new(move |commit_error| {
                    let result = match commit_error {
                        Some(e) if result.is_ok() => Err(StoreError::Backend(e.to_owned())),
                        _ => result,
                    };
                    let _ = reply.send(result);
                }),
            }
        });
        let sent = lock(&self.inner.writes)
            .as_ref()
            .is_some_and(|writes| writes.send(job).is_ok());
        if !sent {
            return Err(closed());
        }
        self.inner.counts.writes.fetch_add(1, Ordering::Relaxed);
        answer.await.map_err(|_| {
            StoreError::Backend(
                "the SQLite writer dropped this write: it panicked, or the store closed".into(),
            )
        })?
    }

    /// Runs `f` in a read transaction on a reader connection, on this
    /// thread: one snapshot for all its statements. For the short reads of
    /// the request path, which cost less than handing them to a thread.
    pub(crate) async fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.read_here(f)
    }

    /// [`SqliteStore::read`] on a blocking-pool thread, for a read whose
    /// size grows with the data (the revoked serials of a CRL), which must
    /// not hold up an async worker thread.
    pub(crate) async fn read_elsewhere<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read_here(f))
            .await
            .map_err(|e| StoreError::Backend(format!("a read stopped: {e}")))?
    }

    fn read_here<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let readers = &self.inner.readers;
        let start = self.inner.next_reader.fetch_add(1, Ordering::Relaxed);
        let mut guard = None;
        for i in 0..readers.len() {
            match readers[(start + i) % readers.len()].try_lock() {
                Ok(g) => guard = Some(g),
                Err(TryLockError::Poisoned(poisoned)) => guard = Some(poisoned.into_inner()),
                Err(TryLockError::WouldBlock) => continue,
            }
            break;
        }
        let guard = match guard {
            Some(guard) => guard,
            None => lock(&readers[start % readers.len()]),
        };
        let conn = guard.as_ref().ok_or_else(closed)?;
        if !conn.is_autocommit() {
            // Only a writer thread that stopped mid-group could leave this
            // (in memory, where it shares the connection).
            run(conn, "ROLLBACK").map_err(db)?;
        }
        run(conn, "BEGIN").map_err(db)?;
        let snapshot = EndSnapshot(conn);
        let result = f(conn)?;
        // Nothing was written: ending the snapshot cannot lose data.
        run(conn, "COMMIT").map_err(db)?;
        drop(snapshot);
        Ok(result)
    }
}

/// Ends a read transaction that did not end normally (an error or a
/// panic in the read), so the connection goes back to the pool clean.
struct EndSnapshot<'a>(&'a Connection);

impl Drop for EndSnapshot<'_> {
    fn drop(&mut self) {
        if !self.0.is_autocommit() {
            let _ = run(self.0, "ROLLBACK");
        }
    }
}

/// Settings every connection gets.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

/// The writer thread: runs groups until every sender is gone or the store
/// is closed, then drops its connection.
fn write_groups(
    conn: &Mutex<Option<Connection>>,
    jobs: &mpsc::Receiver<WriteJob>,
    counts: &Counts,
) {
    while let Ok(first) = jobs.recv() {
        let mut group = Vec::with_capacity(8);
        group.push(first);
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let guard = lock(conn);
        match guard.as_ref() {
            Some(conn) => commit_group(conn, group, counts),
            None => {
                for job in group {
                    fail_unrun(job, "the SQLite store is closed");
                }
            }
        }
    }
    drop(lock(conn).take());
    tracing::info!(
        writes = counts.writes.load(Ordering::Relaxed),
        commits = counts.commits.load(Ordering::Relaxed),
        "closed the SQLite store"
    );
}

/// One transaction for `group`, a savepoint for each write in it.
fn commit_group(conn: &Connection, group: Vec<WriteJob>, counts: &Counts) {
    if !conn.is_autocommit() {
        // An earlier failure left a transaction open; nothing in it was
        // acknowledged.
        let _ = run(conn, "ROLLBACK");
    }
    if let Err(e) = run(conn, "BEGIN IMMEDIATE") {
        let message = format!("starting a write transaction: {e}");
        for job in group {
            fail_unrun(job, &message);
        }
        return;
    }
    let mut answers = Vec::with_capacity(group.len());
    let mut jobs = group.into_iter();
    while let Some(job) = jobs.next() {
        let ran = run(conn, "SAVEPOINT write").map(|()| {
            let ran = catch_unwind(AssertUnwindSafe(|| job(Some(conn))));
            let kept = matches!(&ran, Ok(ran) if ran.ok);
            let ended = if kept {
                run(conn, "RELEASE write")
            } else {
                run(conn, "ROLLBACK TO write").and_then(|()| run(conn, "RELEASE write"))
            };
            (ran, ended)
        });
        let failure = match ran {
            Err(e) => format!("starting a savepoint: {e}"),
            // SQLite may end the whole transaction on its own after some
            // errors (a full disk, I/O); then the group cannot be trusted.
            Ok((ran, Ok(()))) if !conn.is_autocommit() => {
                match ran {
                    Ok(ran) => answers.push(ran.answer),
                    Err(_) => tracing::error!("a write panicked; it was rolled back"),
                }
                continue;
            }
            Ok((ran, ended)) => {
                if let Ok(ran) = ran {
                    answers.push(ran.answer);
                }
                match ended {
                    Err(e) => format!("ending a savepoint: {e}"),
                    Ok(()) => "the write transaction ended early".to_owned(),
                }
            }
        };
        // Abandon the group: roll back what it wrote, fail every caller.
        tracing::error!(error = %failure, "a group of writes was abandoned");
        if !conn.is_autocommit() {
            let _ = run(conn, "ROLLBACK");
        }
        for answer in answers {
            answer(Some(&failure));
        }
        for job in jobs {
            fail_unrun(job, &failure);
        }
        return;
    }
    match run(conn, "COMMIT") {
        Ok(()) => {
            counts.commits.fetch_add(1, Ordering::Relaxed);
            for answer in answers {
                answer(None);
            }
        }
        Err(e) => {
            let message = format!("committing: {e}");
            tracing::error!(error = %e, writes = answers.len(), "a group commit failed");
            if !conn.is_autocommit() {
                let _ = run(conn, "ROLLBACK");
            }
            for answer in answers {
                answer(Some(&message));
            }
        }
    }
}

/// Answers a write that was not run with `message`.
fn fail_unrun(job: WriteJob, message: &str) {
    (job(None).answer)(Some(message));
}

/// Runs one statement without parameters or rows, prepared once.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// Locks `mutex`, going on if a panic poisoned it: the data it guards
/// (a connection between transactions, a sender) stays consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn closed() -> StoreError {
    StoreError::Backend("the SQLite store is closed, or its writer thread stopped".into())
}

/// A backend failure, for logs.
fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Whether `e` is a UNIQUE (or PRIMARY KEY) constraint refusing a write.
fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
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

    fn int_pragma(conn: &Connection, name: &str) -> Result<i64> {
        conn.pragma_query_value(None, name, |row| row.get(0))
            .map_err(db)
    }

    #[tokio::test]
    async fn the_writer_is_durable_and_readers_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("ca.db")).await.unwrap();

        let (journal, synchronous, foreign_keys, busy) = store
            .write(|conn| {
                let journal: String = conn
                    .pragma_query_value(None, "journal_mode", |row| row.get(0))
                    .map_err(db)?;
                Ok((
                    journal,
                    int_pragma(conn, "synchronous")?,
                    int_pragma(conn, "foreign_keys")?,
                    int_pragma(conn, "busy_timeout")?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(journal, "wal");
        assert_eq!(synchronous, 2, "FULL");
        assert_eq!(foreign_keys, 1);
        assert_eq!(busy, 5000);

        for _ in 0..store.inner.readers.len() {
            let (query_only, busy) = store
                .read(|conn| {
                    Ok((
                        int_pragma(conn, "query_only")?,
                        int_pragma(conn, "busy_timeout")?,
                    ))
                })
                .await
                .unwrap();
            assert_eq!((query_only, busy), (1, 5000));
            let write = store
                .read(|conn| conn.execute("DELETE FROM accounts", []).map_err(db))
                .await;
            assert!(write.is_err(), "a reader connection wrote");
        }
    }

    #[tokio::test]
    async fn a_failed_write_is_undone_and_the_others_are_kept() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        let insert = |secret: &'static [u8], fail: bool| {
            let store = store.clone();
            async move {
                store
                    .write(move |conn| {
                        conn.execute(
                            "INSERT INTO used_nonces (id, expires) VALUES (?, 0)",
                            [secret],
                        )
                        .map_err(db)?;
                        if fail {
                            return Err(StoreError::Conflict("refused".into()));
                        }
                        Ok(())
                    })
                    .await
            }
        };
        let (a, b, c) = tokio::join!(insert(b"a", false), insert(b"b", true), insert(b"c", false));
        assert!(a.is_ok() && c.is_ok(), "{a:?} {c:?}");
        assert!(matches!(b, Err(StoreError::Conflict(_))), "{b:?}");

        let panicked = store
            .write(|conn| -> Result<()> {
                conn.execute(
                    "INSERT INTO used_nonces (id, expires) VALUES (x'64', 0)",
                    [],
                )
                .map_err(db)?;
                panic!("a write that panics");
            })
            .await;
        assert!(panicked.is_err());

        let ids: Vec<Vec<u8>> = store
            .read(|conn| {
                let mut select = conn
                    .prepare("SELECT id FROM used_nonces ORDER BY id")
                    .map_err(db)?;
                let rows = select.query_map([], |row| row.get(0)).map_err(db)?;
                rows.collect::<rusqlite::Result<_>>().map_err(db)
            })
            .await
            .unwrap();
        assert_eq!(ids, [b"a".to_vec(), b"c".to_vec()]);
        assert!(store.write(|_| Ok(())).await.is_ok(), "the writer survived");
    }

    #[tokio::test]
    async fn a_read_that_panics_leaves_its_connection_usable() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        let panicked = catch_unwind(AssertUnwindSafe(|| {
            store.read_here(|conn| -> Result<()> {
                conn.query_row("SELECT count(*) FROM accounts", [], |row| {
                    row.get::<_, i64>(0)
                })
                .map_err(db)?;
                panic!("a read that panics");
            })
        }));
        assert!(panicked.is_err());
        // In memory the writer shares the connection the read left.
        store
            .write(|conn| {
                conn.execute(
                    "INSERT INTO used_nonces (id, expires) VALUES (x'01', 0)",
                    [],
                )
                .map_err(db)
            })
            .await
            .unwrap();
        let count = used_nonces(&store).await;
        assert_eq!(count, 1);
    }

    /// How many rows `used_nonces`, the table these tests write, holds.
    async fn used_nonces(store: &SqliteStore) -> i64 {
        store
            .read(|conn| {
                conn.query_row("SELECT count(*) FROM used_nonces", [], |row| row.get(0))
                    .map_err(db)
            })
            .await
            .unwrap()
    }

    /// Occupies the writer thread until the returned sender sends.
    async fn hold_writer(
        store: &SqliteStore,
    ) -> (mpsc::Sender<()>, tokio::task::JoinHandle<Result<()>>) {
        let (release, hold) = mpsc::channel::<()>();
        let (running, started) = oneshot::channel::<()>();
        let blocker = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .write(move |_| {
                        running.send(()).ok();
                        hold.recv().ok();
                        Ok(())
                    })
                    .await
            }
        });
        started.await.unwrap();
        (release, blocker)
    }

    /// Queues a write and waits until the writer thread has it.
    async fn queue<T: Send + 'static>(
        store: &SqliteStore,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> tokio::task::JoinHandle<Result<T>> {
        let queued = store.write_counts().0;
        let write = tokio::spawn({
            let store = store.clone();
            async move { store.write(f).await }
        });
        while store.write_counts().0 == queued {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        write
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_whose_transaction_ended_early_fails_every_write_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("ca.db")).await.unwrap();
        let insert = |id: &'static [u8]| {
            move |conn: &Connection| {
                conn.execute("INSERT INTO used_nonces (id, expires) VALUES (?, 0)", [id])
                    .map_err(db)
            }
        };
        let (release, blocker) = hold_writer(&store).await;
        let before = queue(&store, insert(b"before")).await;
        // Ends the group's transaction the way SQLite does after some I/O
        // errors, and reports success.
        let ender = queue(&store, move |conn: &Connection| {
            insert(b"ender")(conn)?;
            conn.execute_batch("ROLLBACK").map_err(db)
        })
        .await;
        let after = queue(&store, insert(b"after")).await;
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();

        assert!(
            before.await.unwrap().is_err(),
            "a write of the group was acknowledged"
        );
        assert!(ender.await.unwrap().is_err());
        assert!(after.await.unwrap().is_err());
        let count = used_nonces(&store).await;
        assert_eq!(count, 0, "nothing of the abandoned group was kept");
        store.write(insert(b"later")).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn writes_that_wait_together_share_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("ca.db")).await.unwrap();

        // Hold the writer thread until 50 more writes are waiting for it.
        let (release, blocker) = hold_writer(&store).await;
        let writes: Vec<_> = (0..50u32)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .write(move |conn| {
                            conn.execute(
                                "INSERT INTO used_nonces (id, expires) VALUES (?, 0)",
                                [i.to_be_bytes().to_vec()],
                            )
                            .map_err(db)
                        })
                        .await
                })
            })
            .collect();
        while store.write_counts().0 < 51 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        for write in writes {
            assert_eq!(write.await.unwrap().unwrap(), 1);
        }
        let (writes, commits) = store.write_counts();
        assert_eq!(writes, 51);
        assert_eq!(commits, 2, "the 50 waiting writes were one group");

        let count = used_nonces(&store).await;
        assert_eq!(count, 50);
        store.close().await;
        assert!(
            store.write(|_| Ok(())).await.is_err(),
            "a closed store wrote"
        );
        assert!(store.read(|_| Ok(())).await.is_err(), "a closed store read");
        let reopened = SqliteStore::open(&dir.path().join("ca.db")).await.unwrap();
        let count = used_nonces(&reopened).await;
        assert_eq!(count, 50, "the group is durable");
    }

    async fn strings(store: &SqliteStore, sql: &str) -> Vec<String> {
        store
            .read(|conn| {
                let mut select = conn.prepare(sql).map_err(db)?;
                let rows = select.query_map([], |row| row.get(0)).map_err(db)?;
                rows.collect::<rusqlite::Result<_>>().map_err(db)
            })
            .await
            .unwrap()
    }

    /// The `detail` column of the plan of `query`.
    async fn query_plan(store: &SqliteStore, query: &str) -> Vec<String> {
        store
            .read(|conn| {
                let mut select = conn
                    .prepare(&format!("EXPLAIN QUERY PLAN {query}"))
                    .map_err(db)?;
                let rows = select.query_map([], |row| row.get(3)).map_err(db)?;
                rows.collect::<rusqlite::Result<_>>().map_err(db)
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_schema_has_what_the_queries_rely_on() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        let indexes = strings(&store, "SELECT name FROM sqlite_schema WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name").await;
        assert_eq!(
            indexes,
            [
                "authorizations_for_reuse",
                "certificates_by_key",
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
        let plan = query_plan(&store, concat!(
            "SELECT id FROM authorizations ",
            "WHERE account_id = 1 AND identifier_type = 'dns' AND identifier_value = 'example.com' ",
            "AND wildcard = 0 AND state = 'valid' AND expires > 0 ORDER BY id DESC LIMIT 1"
        ))
        .await;
        assert!(
            plan.iter()
                .any(|row| row.contains("authorizations_for_reuse")),
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
            let plan = query_plan(&store, query).await;
            assert!(
                plan.iter().any(|row| row.contains(index)),
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
