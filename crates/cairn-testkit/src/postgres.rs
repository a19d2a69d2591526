//! A fresh PostgreSQL schema for each test, on the server that the
//! environment variable [`POSTGRES_URL_VAR`] names, dropped with its guard.
//!
//! Tests of a PostgreSQL store run in parallel against one database; each
//! gets a schema of its own (`cairn_t_` and 16 random hex digits) and a URL
//! whose connections use it, so they never see each other's rows:
//!
//! ```no_run
//! # async fn example() {
//! use cairn_testkit::postgres::FreshSchema;
//!
//! // None (after a note on stderr) when CAIRN_POSTGRES_URL is unset.
//! let Some(schema) = FreshSchema::create().await else {
//!     return;
//! };
//! // Hand schema.database_url() to PgStore::open; every connection opened
//! // with it works in the fresh schema.
//! println!("{}", schema.database_url());
//! // Dropping `schema` drops the schema and all in it.
//! # }
//! ```

use std::fmt;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{Connection, Executor, PgConnection};

/// The environment variable with the URL of the server and database the
/// tests may create schemas in, e.g. `postgres://root@127.0.0.1:5432/test`.
pub const POSTGRES_URL_VAR: &str = "CAIRN_POSTGRES_URL";

/// A schema made for one test, dropped (with everything in it) on drop.
pub struct FreshSchema {
    name: String,
    /// The URL from the environment, to connect to drop the schema.
    server_url: String,
    /// `server_url` with the schema as the search path.
    database_url: String,
}

impl FreshSchema {
    /// Creates a fresh schema. `None`, after printing "not run: set
    /// CAIRN_POSTGRES_URL" to stderr, when the variable is unset or empty,
    /// so a test can skip itself. Panics, saying why, when the server
    /// cannot be reached or refuses: then the test should fail, not skip.
    pub async fn create() -> Option<Self> {
        let Some(server_url) = std::env::var(POSTGRES_URL_VAR)
            .ok()
            .filter(|url| !url.is_empty())
        else {
            eprintln!("not run: set {POSTGRES_URL_VAR}");
            return None;
        };
        let name = format!("cairn_t_{:016x}", random_u64());
        let mut admin = PgConnection::connect(&server_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_URL_VAR}: {e}"));
        admin
            .execute(format!("CREATE SCHEMA {name}").as_str())
            .await
            .unwrap_or_else(|e| panic!("cannot create the schema {name}: {e}"));
        let _ = admin.close().await;
        let database_url = with_schema(&server_url, &name);
        Some(Self {
            name,
            server_url,
            database_url,
        })
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server's URL with two parameters added: `options` making the
    /// schema the search path (so unqualified names, migrations included,
    /// live in it) and `application_name` set to the schema's name (so the
    /// guard can end connections left open when it drops the schema).
    pub fn database_url(&self) -> &str {
        &self.database_url
    }
}

impl fmt::Debug for FreshSchema {
    /// The name only: the URLs may hold a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FreshSchema")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Drop for FreshSchema {
    /// Ends the connections still using the schema, then drops it. The
    /// work runs on a thread with a runtime of its own, so it neither needs
    /// the test's runtime (which may be shutting down) nor deadlocks it.
    fn drop(&mut self) {
        let server_url = self.server_url.clone();
        let name = self.name.clone();
        let outcome = std::thread::spawn(move || -> anyhow::Result<()> {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(drop_schema(&server_url, &name))
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: the schema {} was not dropped: {e:#}", self.name),
            Err(_) => eprintln!("warning: dropping the schema {} panicked", self.name),
        }
    }
}

async fn drop_schema(server_url: &str, name: &str) -> anyhow::Result<()> {
    let mut admin = PgConnection::connect(server_url).await?;
    sqlx::query(concat!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity ",
        "WHERE application_name = $1 AND pid <> pg_backend_pid()"
    ))
    .bind(name)
    .execute(&mut admin)
    .await?;
    admin
        .execute(format!("DROP SCHEMA IF EXISTS {name} CASCADE").as_str())
        .await?;
    admin.close().await?;
    Ok(())
}

/// `url` with query parameters that put connections in `schema`. sqlx
/// joins several `options` parameters, so options the URL already sets stay.
fn with_schema(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}&application_name={schema}")
}

/// 64 bits unlikely to repeat across tests and processes: the process's
/// random hash keys over its id, a counter and the time.
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_goes_into_the_query() {
        assert_eq!(
            with_schema("postgres://root@127.0.0.1:5432/test", "cairn_t_ab"),
            "postgres://root@127.0.0.1:5432/test?options=-c%20search_path%3Dcairn_t_ab&application_name=cairn_t_ab"
        );
        assert_eq!(
            with_schema("postgres://h/db?sslmode=disable", "s"),
            "postgres://h/db?sslmode=disable&options=-c%20search_path%3Ds&application_name=s"
        );
    }

    #[test]
    fn names_differ() {
        assert_ne!(random_u64(), random_u64());
    }
}
