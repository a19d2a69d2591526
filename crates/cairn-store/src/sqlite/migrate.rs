//! The SQLite schema's migrations: the files of `migrations/sqlite`,
//! embedded at build time and applied in order, each once.
//!
//! What was applied is recorded in `_sqlx_migrations`, the table (and
//! layout, SHA-384 checksums included) that builds up to 0.1 wrote when
//! they migrated through sqlx, so a database they made opens unchanged.

use aws_lc_rs::digest;
use rusqlite::{Connection, OptionalExtension, params};

use super::{db, run as run_statement};
use crate::{Result, StoreError};

/// Every migration this build knows, in order: (version, description, SQL).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../migrations/sqlite/0001_initial.sql"),
    ),
    (
        2,
        "replaces index",
        include_str!("../../migrations/sqlite/0002_replaces_index.sql"),
    ),
    (
        3,
        "nonces and crl freshness",
        include_str!("../../migrations/sqlite/0003_nonces_and_crl_freshness.sql"),
    ),
    (
        4,
        "challenges processing",
        include_str!("../../migrations/sqlite/0004_challenges_processing.sql"),
    ),
    (
        5,
        "blocked keys",
        include_str!("../../migrations/sqlite/0005_blocked_keys.sql"),
    ),
];

/// Applies what is missing, in one write transaction of its own.
pub(super) fn run(conn: &Connection) -> Result<()> {
    run_statement(conn, "BEGIN IMMEDIATE").map_err(failed)?;
    match run_in_transaction(conn) {
        Ok(()) => run_statement(conn, "COMMIT").map_err(failed),
        Err(e) => {
            let _ = run_statement(conn, "ROLLBACK");
            Err(e)
        }
    }
}

/// Applies what is missing inside the caller's write transaction.
pub(super) fn run_in_transaction(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            success BOOLEAN NOT NULL,
            checksum BLOB NOT NULL,
            execution_time BIGINT NOT NULL
        )",
    )
    .map_err(failed)?;

    let newest_known = MIGRATIONS.last().map_or(0, |m| m.0);
    let unknown: Option<i64> = conn
        .query_row(
            "SELECT version FROM _sqlx_migrations WHERE version > ? ORDER BY version LIMIT 1",
            [newest_known],
            |row| row.get(0),
        )
        .optional()
        .map_err(failed)?;
    if let Some(version) = unknown {
        return Err(StoreError::Backend(format!(
            "migrating the SQLite schema: the database has migration {version}, which this build \
             does not know; it was made by a newer cairn-ca"
        )));
    }

    for &(version, description, sql) in MIGRATIONS {
        let checksum = digest::digest(&digest::SHA384, sql.as_bytes());
        let applied: Option<(bool, Vec<u8>)> = conn
            .query_row(
                "SELECT success, checksum FROM _sqlx_migrations WHERE version = ?",
                [version],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(failed)?;
        match applied {
            Some((true, stored)) if stored == checksum.as_ref() => continue,
            Some((true, _)) => {
                return Err(StoreError::Backend(format!(
                    "migrating the SQLite schema: migration {version} ({description}) was \
                     applied from a different file than this build has"
                )));
            }
            Some((false, _)) => {
                return Err(StoreError::Backend(format!(
                    "migrating the SQLite schema: migration {version} ({description}) is \
                     recorded as failed; restore the database from a backup"
                )));
            }
            None => {}
        }
        let started = std::time::Instant::now();
        conn.execute_batch(sql).map_err(|e| {
            StoreError::Backend(format!(
                "migrating the SQLite schema: migration {version} ({description}): {e}"
            ))
        })?;
        let nanos = i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX);
        conn.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (?, ?, TRUE, ?, ?)",
            params![version, description, checksum.as_ref(), nanos],
        )
        .map_err(db)?;
        tracing::info!(
            version,
            description,
            "applied a migration to the SQLite schema"
        );
    }
    Ok(())
}

fn failed(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("migrating the SQLite schema: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_list_names_every_file_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        assert_eq!(files.len(), MIGRATIONS.len());
        for (file, (version, description, sql)) in files.iter().zip(MIGRATIONS) {
            let expected = format!("{version:04}_{}.sql", description.replace(' ', "_"));
            assert_eq!(file, &expected);
            assert_eq!(
                &std::fs::read_to_string(format!("{dir}/{file}")).unwrap(),
                sql
            );
        }
    }

    #[test]
    fn running_twice_applies_once_and_a_newer_database_is_refused() {
        let conn = Connection::open_in_memory().unwrap();
        run(&conn).unwrap();
        run(&conn).unwrap();
        let count: i64 = conn
            .query_row("SELECT count(*) FROM _sqlx_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, i64::try_from(MIGRATIONS.len()).unwrap());

        conn.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (999, 'future', TRUE, x'00', 0)",
            [],
        )
        .unwrap();
        let err = run(&conn).unwrap_err().to_string();
        assert!(err.contains("newer cairn-ca"), "{err}");
    }

    #[test]
    fn a_changed_migration_is_refused() {
        let conn = Connection::open_in_memory().unwrap();
        run(&conn).unwrap();
        conn.execute(
            "UPDATE _sqlx_migrations SET checksum = x'00' WHERE version = 2",
            [],
        )
        .unwrap();
        let err = run(&conn).unwrap_err().to_string();
        assert!(err.contains("migration 2"), "{err}");
    }
}
