//! The suite on SQLite, in a file and in memory, and what only a file can
//! show: acknowledged writes survive closing, dropping and `kill -9`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use cairn_store::{SqliteStore, Storage};
use tempfile::TempDir;

use crate::fixtures::*;

/// A fresh store in a file of its own directory, removed with the guard.
async fn open_file() -> Option<(Arc<dyn Storage>, TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("ca.db")).await.unwrap();
    Some((Arc::new(store), dir))
}

async fn open_memory() -> Option<(Arc<dyn Storage>, ())> {
    Some((Arc::new(SqliteStore::open_in_memory().await.unwrap()), ()))
}

mod file {
    conformance_tests!(super::open_file);
}

mod memory {
    conformance_tests!(super::open_memory);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reopened_file_has_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.db");
    let store: Arc<dyn Storage> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let alice = account(&store, "alice").await;
    let order_id =
        issued_certificate(&store, alice.id, "0123abcd", "ecdsa-1", NOW + days(90)).await;
    let order = store.order(order_id).await.unwrap().unwrap();
    let certificate = store.certificate("0123abcd").await.unwrap().unwrap();
    drop(store);

    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.account(alice.id).await.unwrap(), Some(alice));
    assert_eq!(store.order(order_id).await.unwrap(), Some(order));
    assert_eq!(
        store.certificate("0123abcd").await.unwrap(),
        Some(certificate)
    );
    assert!(
        store
            .certificate("0123abcd")
            .await
            .unwrap()
            .unwrap()
            .der
            .is_some()
    );
}

#[tokio::test]
async fn migrations_apply_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let (alice, _) = store.create_account(new_account("alice")).await.unwrap();
    store.migrate().await.unwrap();
    store.close().await;

    let store = SqliteStore::open(&path).await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.account(alice.id).await.unwrap(), Some(alice));
}

#[tokio::test]
async fn a_closed_store_refuses_calls() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    store.close().await;
    assert!(store.account(1).await.is_err());
    assert!(store.create_account(new_account("alice")).await.is_err());
}

/// Set for the child process of [`acknowledged_writes_survive_kill_9`]: the
/// database it writes to.
const CRASH_CHILD_DB: &str = "CAIRN_STORE_CRASH_CHILD_DB";

/// How many acknowledged writes the parent waits for before killing.
const ACKS_BEFORE_KILL: usize = 40;

/// Runs a child process (this test binary, running only
/// [`crash_child_writes_until_killed`]) that creates accounts as fast as it
/// can and prints each id once `create_account` returned; kills it with
/// SIGKILL mid-stream; then every printed id must be in the database.
#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.db");
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sqlite::crash_child_writes_until_killed",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_CHILD_DB, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
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
    assert_eq!(acked.len(), ACKS_BEFORE_KILL, "the child stopped early");
    child.0.kill().unwrap();
    child.0.wait().unwrap();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(&path).await.unwrap();
        for id in acked {
            assert!(
                store.account(id).await.unwrap().is_some(),
                "acknowledged account {id} was lost"
            );
        }
    });
}

/// The child of [`acknowledged_writes_survive_kill_9`]; without its
/// environment variable (a normal test run) it does nothing.
#[tokio::test]
async fn crash_child_writes_until_killed() {
    let Some(path) = std::env::var_os(CRASH_CHILD_DB) else {
        return;
    };
    let store = SqliteStore::open(Path::new(&path)).await.unwrap();
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
