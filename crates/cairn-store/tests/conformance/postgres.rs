//! The suite on PostgreSQL, each test in a fresh schema of the server that
//! `CAIRN_POSTGRES_URL` names, and what only this backend can show: the
//! migrations apply once however many nodes start, the queries that grow
//! with the data use their indexes, and acknowledged writes survive
//! `kill -9`.
//!
//! Without `CAIRN_POSTGRES_URL` the tests print "not run: set
//! CAIRN_POSTGRES_URL" and pass. The suite's tests, which cannot return
//! early, then run on an in-memory SQLite store instead.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use cairn_proto::Identifier;
use cairn_store::{PgStore, Revocation, Storage};
use cairn_testkit::postgres::FreshSchema;
use sqlx::{Connection, PgConnection};

use crate::fixtures::*;

/// Pool size of a test's store: fewer than the suite's racing tasks, so
/// that they also contend for connections.
const MAX_CONNECTIONS: u32 = 4;

/// A store in a fresh schema, dropped with the guard; `None` (the test
/// says "not run") without a PostgreSQL server.
async fn open_fresh() -> Option<(Arc<dyn Storage>, FreshSchema)> {
    let schema = FreshSchema::create().await?;
    let store = PgStore::open(schema.database_url(), MAX_CONNECTIONS)
        .await
        .unwrap();
    Some((Arc::new(store), schema))
}

mod fresh_schema {
    conformance_tests!(super::open_fresh);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reopened_store_has_what_was_written() {
    let Some(schema) = FreshSchema::create().await else {
        return;
    };
    let store: Arc<dyn Storage> = Arc::new(
        PgStore::open(schema.database_url(), MAX_CONNECTIONS)
            .await
            .unwrap(),
    );
    let alice = account(&store, "alice").await;
    let order_id =
        issued_certificate(&store, alice.id, "0123abcd", "ecdsa-1", NOW + days(90)).await;
    let order = store.order(order_id).await.unwrap().unwrap();
    let certificate = store.certificate("0123abcd").await.unwrap().unwrap();
    assert!(certificate.der.is_some());
    drop(store);

    let store = PgStore::open(schema.database_url(), 1).await.unwrap();
    assert_eq!(store.account(alice.id).await.unwrap(), Some(alice));
    assert_eq!(store.order(order_id).await.unwrap(), Some(order));
    assert_eq!(
        store.certificate("0123abcd").await.unwrap(),
        Some(certificate)
    );
    store.close().await;
}

#[tokio::test]
async fn migrations_apply_once() {
    let Some(schema) = FreshSchema::create().await else {
        return;
    };
    let store = PgStore::open(schema.database_url(), 2).await.unwrap();
    let (alice, _) = store.create_account(new_account("alice")).await.unwrap();
    store.migrate().await.unwrap();
    store.close().await;

    let store = PgStore::open(schema.database_url(), 2).await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.account(alice.id).await.unwrap(), Some(alice));
    store.close().await;
    assert_eq!(applied_migrations(&schema).await, migrations_known());
}

/// How many migrations this build has: one per file.
fn migrations_known() -> i64 {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres");
    let files = std::fs::read_dir(dir)
        .expect("the migrations directory")
        .count();
    i64::try_from(files).expect("a few files")
}

/// Nodes that start together race to migrate: the advisory lock lets one
/// apply each migration while the others wait, then find nothing to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_starting_at_once_migrate_once() {
    let Some(schema) = FreshSchema::create().await else {
        return;
    };
    let url = schema.database_url();
    let (a, b, c) = tokio::join!(
        PgStore::open(url, 1),
        PgStore::open(url, 1),
        PgStore::open(url, 1)
    );
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    let (alice, created) = a.create_account(new_account("alice")).await.unwrap();
    assert!(created);
    assert_eq!(b.account(alice.id).await.unwrap(), Some(alice.clone()));
    assert_eq!(
        c.create_account(new_account("alice")).await.unwrap(),
        (alice, false)
    );
    for store in [a, b, c] {
        store.close().await;
    }
    assert_eq!(applied_migrations(&schema).await, migrations_known());
}

#[tokio::test]
async fn a_closed_store_refuses_calls() {
    let Some(schema) = FreshSchema::create().await else {
        return;
    };
    let store = PgStore::open(schema.database_url(), 1).await.unwrap();
    store.close().await;
    assert!(store.account(1).await.is_err());
    assert!(store.create_account(new_account("alice")).await.is_err());
}

#[tokio::test]
async fn the_schema_has_what_the_queries_rely_on() {
    let Some(schema) = FreshSchema::create().await else {
        return;
    };
    PgStore::open(schema.database_url(), 1)
        .await
        .unwrap()
        .close()
        .await;
    let mut conn = PgConnection::connect(schema.database_url()).await.unwrap();
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname FROM pg_indexes WHERE schemaname = $1 ORDER BY indexname",
    )
    .bind(schema.name())
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        indexes,
        [
            "_sqlx_migrations_pkey",
            "accounts_by_thumbprint",
            "accounts_pkey",
            "authorizations_for_reuse",
            "authorizations_pkey",
            "blocked_keys_pkey",
            "certificates_by_key",
            "certificates_by_not_after",
            "certificates_order_id_key",
            "certificates_pkey",
            "certificates_revoked_at_by_issuer",
            "certificates_revoked_by_issuer",
            "challenges_by_authz",
            "challenges_pkey",
            "challenges_processing",
            "nonce_secret_pkey",
            "order_authorizations_by_authz",
            "order_authorizations_pkey",
            "orders_by_account",
            "orders_by_replaces",
            "orders_pkey",
            "orders_processing",
            "used_nonces_by_expiry",
            "used_nonces_pkey",
        ]
    );
    let unique: Vec<String> = sqlx::query_scalar(concat!(
        "SELECT c.relname::TEXT FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid ",
        "JOIN pg_namespace n ON n.oid = c.relnamespace ",
        "WHERE n.nspname = $1 AND i.indisunique AND NOT i.indisprimary ORDER BY 1"
    ))
    .bind(schema.name())
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        unique,
        ["accounts_by_thumbprint", "certificates_order_id_key"]
    );
    conn.close().await.unwrap();
}

/// Rows for [`queries_that_grow_with_the_data_use_an_index`], in the
/// proportions of a CA that has run for a while: many accounts with a few
/// orders each, most authorizations valid or expired, few certificates
/// revoked, nothing processing.
const BULK_ROWS: &str = r#"
INSERT INTO accounts (jwk, thumbprint, contact, status, terms_agreed, created_at)
SELECT '{}', 'bulk-' || i, '[]', 'valid', true, 0 FROM generate_series(1, 2000) i;

INSERT INTO orders (account_id, identifiers, expires, replaces, state, certificate_serial, created_at)
SELECT a.id, '[]', g, CASE WHEN g = 1 THEN 'ari-' || a.id END, 'valid',
       to_hex(a.id) || '-' || g, 0
FROM accounts a, generate_series(1, 10) g WHERE a.thumbprint LIKE 'bulk-%';

INSERT INTO authorizations
    (account_id, identifier_type, identifier_value, wildcard, state, expires, created_at)
SELECT a.id, 'dns', g || '.' || a.id || '.example', g % 4 = 0,
       CASE WHEN g % 3 = 0 THEN 'pending' ELSE 'valid' END, g * 1000, 0
FROM accounts a, generate_series(1, 10) g WHERE a.thumbprint LIKE 'bulk-%';

INSERT INTO challenges (authz_id, kind, token, state)
SELECT z.id, k, 'token-' || z.id || '-' || k, CASE WHEN z.state = 'valid' AND k = 'http-01' THEN 'valid' ELSE 'pending' END
FROM authorizations z JOIN accounts a ON a.id = z.account_id, unnest(ARRAY['http-01', 'dns-01']) k
WHERE a.thumbprint LIKE 'bulk-%';

INSERT INTO certificates
    (serial, order_id, account_id, issuer, names, not_before, not_after, der,
     revoked_at, revocation_reason, created_at)
SELECT o.certificate_serial, o.id, o.account_id,
       CASE WHEN o.id % 2 = 0 THEN 'ecdsa-1' ELSE 'rsa-1' END, '[]', 0, o.id * 1000, '0',
       CASE WHEN o.id % 100 = 0 THEN o.id END, CASE WHEN o.id % 100 = 0 THEN 1 END, 0
FROM orders o WHERE o.certificate_serial LIKE '%-%';

INSERT INTO used_nonces (id, expires)
SELECT decode(lpad(to_hex(i), 16, '0'), 'hex'), i FROM generate_series(1, 10000) i;
"#;

/// The plans of the queries whose cost would otherwise grow with the
/// tables: each reads its index, in the generic plan of its prepared
/// statement (the one PostgreSQL caches, made without the parameters'
/// values) too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_that_grow_with_the_data_use_an_index() {
    let Some(schema) = FreshSchema::create().await else {
        return;
    };
    let pg = PgStore::open(schema.database_url(), 2).await.unwrap();
    let store: Arc<dyn Storage> = Arc::new(pg.clone());
    // A few rows as the store writes them, among the bulk.
    let alice = account(&store, "alice").await;
    for i in 0..4 {
        let authz = authz(&store, alice.id, &format!("{i}.alice.example")).await;
        validate(&store, authz, NOW + days(30)).await;
        let serial = format!("a11ce{i:02}");
        issued_certificate(&store, alice.id, &serial, "ecdsa-1", NOW + days(90)).await;
    }
    let revocation = Revocation {
        revoked_at: NOW,
        reason: 1,
    };
    assert!(
        store
            .revoke_certificate("a11ce00", revocation)
            .await
            .unwrap()
    );
    let reusable = store
        .reusable_authorization(alice.id, &Identifier::dns("0.alice.example"), false, NOW)
        .await
        .unwrap();
    assert!(reusable.is_some());
    pg.close().await;

    let mut conn = PgConnection::connect(schema.database_url()).await.unwrap();
    sqlx::raw_sql(BULK_ROWS).execute(&mut conn).await.unwrap();
    for setting in ["ANALYZE", "SET plan_cache_mode = force_generic_plan"] {
        sqlx::query(setting).execute(&mut conn).await.unwrap();
    }
    // The store's queries as it sends them, the values to explain them
    // with, and the indexes they may use.
    for (query, values, indexes) in [
        (
            concat!(
                "SELECT id FROM authorizations ",
                "WHERE account_id = $1 AND identifier_type = $2 AND identifier_value = $3 ",
                "AND wildcard = $4 AND state = $5 AND expires > $6 ",
                "ORDER BY id DESC LIMIT 1"
            ),
            "1, 'dns', '0.alice.example', false, 'valid', 0",
            &["authorizations_for_reuse"][..],
        ),
        (
            "SELECT id FROM orders WHERE account_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
            "1, 9223372036854775807, 10",
            &["orders_by_account"],
        ),
        (
            concat!(
                "SELECT revoked_at FROM certificates WHERE issuer = $1 AND revoked_at IS NOT NULL ",
                "ORDER BY revoked_at DESC LIMIT 1"
            ),
            "'ecdsa-1'",
            &["certificates_revoked_at_by_issuer"],
        ),
        (
            // Both partial indexes hold just the issuer's revoked
            // certificates; which one reads fewer depends on the data.
            concat!(
                "SELECT serial, revoked_at, revocation_reason FROM certificates ",
                "WHERE issuer = $1 AND revoked_at IS NOT NULL AND not_after > $2 ORDER BY serial"
            ),
            "'ecdsa-1', 0",
            &[
                "certificates_revoked_by_issuer",
                "certificates_revoked_at_by_issuer",
            ],
        ),
        (
            concat!(
                "SELECT id, jwk, thumbprint, contact, status, terms_agreed, created_at ",
                "FROM accounts WHERE thumbprint = $1"
            ),
            "'thumbprint-bob'",
            &["accounts_by_thumbprint"],
        ),
        (
            "SELECT 1 FROM orders WHERE replaces = $1 AND state = $2 LIMIT 1",
            "'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE', 'valid'",
            &["orders_by_replaces"],
        ),
        (
            concat!(
                "SELECT o.id FROM orders o JOIN certificates c ON c.serial = o.certificate_serial ",
                "WHERE o.state = 'processing' AND c.created_at < $1 ORDER BY c.created_at, o.id"
            ),
            "0",
            &["orders_processing"],
        ),
        (
            "SELECT id FROM challenges WHERE state = 'processing' ORDER BY id",
            "",
            &["challenges_processing"],
        ),
        (
            "DELETE FROM used_nonces WHERE expires < $1",
            "0",
            &["used_nonces_by_expiry"],
        ),
    ] {
        sqlx::raw_sql(&format!("PREPARE q AS {query}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let execute = if values.is_empty() {
            "EXPLAIN EXECUTE q".to_owned()
        } else {
            format!("EXPLAIN EXECUTE q({values})")
        };
        let plan: Vec<String> = sqlx::query_scalar(&execute)
            .fetch_all(&mut conn)
            .await
            .unwrap();
        sqlx::raw_sql("DEALLOCATE q")
            .execute(&mut conn)
            .await
            .unwrap();
        let plan = plan.join("\n");
        assert!(
            indexes.iter().any(|index| plan.contains(index)),
            "{query}\n{plan}"
        );
    }
    conn.close().await.unwrap();
}

async fn applied_migrations(schema: &FreshSchema) -> i64 {
    let mut conn = PgConnection::connect(schema.database_url()).await.unwrap();
    let applied = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    applied
}

/// Set for the child process of [`acknowledged_writes_survive_kill_9`]: the
/// URL of the schema it writes to.
const CRASH_CHILD_URL: &str = "CAIRN_STORE_CRASH_CHILD_POSTGRES_URL";

/// How many acknowledged writes the parent waits for before killing.
const ACKS_BEFORE_KILL: usize = 40;

/// Runs a child process (this test binary, running only
/// [`crash_child_writes_until_killed`]) that creates accounts as fast as it
/// can and prints each id once `create_account` returned; kills it with
/// SIGKILL mid-stream; then every printed id must be in the database.
#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let Some(schema) = FreshSchema::create().await else {
        return;
    };
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "postgres::crash_child_writes_until_killed",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_CHILD_URL, schema.database_url())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let acked = tokio::task::spawn_blocking(move || {
        let mut acked = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(id) = line.strip_prefix("ACK ") {
                acked.push(id.parse::<i64>().unwrap());
                if acked.len() == ACKS_BEFORE_KILL {
                    break;
                }
            }
        }
        acked
    })
    .await
    .unwrap();
    assert_eq!(acked.len(), ACKS_BEFORE_KILL, "the child stopped early");
    child.0.kill().unwrap();
    child.0.wait().unwrap();

    let store = PgStore::open(schema.database_url(), 1).await.unwrap();
    for id in acked {
        assert!(
            store.account(id).await.unwrap().is_some(),
            "acknowledged account {id} was lost"
        );
    }
    store.close().await;
}

/// The child of [`acknowledged_writes_survive_kill_9`]; without its
/// environment variable (a normal test run) it does nothing.
#[tokio::test]
async fn crash_child_writes_until_killed() {
    let Ok(url) = std::env::var(CRASH_CHILD_URL) else {
        return;
    };
    let store = PgStore::open(&url, 1).await.unwrap();
    for i in 0.. {
        let (account, _) = store
            .create_account(new_account(&format!("crash-{i}")))
            .await
            .unwrap();
        println!("ACK {}", account.id);
    }
}

/// A child process that is killed if the test fails before killing it.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
