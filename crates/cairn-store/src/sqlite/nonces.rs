//! Nonces shared by several nodes (RFC 8555 §6.5): the MAC secret and the
//! record of used nonces.

use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

use super::{SqliteStore, db};
use crate::codec::time_to_db;
use crate::{Result, StoreError};

/// Stores `candidate` as the secret unless one is stored; returns the stored one.
pub(super) async fn secret(store: &SqliteStore, candidate: &[u8]) -> Result<Vec<u8>> {
    let candidate = candidate.to_vec();
    store
        .write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO nonce_secret (id, secret) VALUES (1, ?) ON CONFLICT (id) DO NOTHING",
            )
            .and_then(|mut insert| insert.execute([&candidate]))
            .map_err(db)?;
            conn.prepare_cached("SELECT secret FROM nonce_secret WHERE id = 1")
                .and_then(|mut select| select.query_row([], |row| row.get(0)).optional())
                .map_err(db)?
                .ok_or_else(|| StoreError::Backend("the nonce secret was not stored".into()))
        })
        .await
}

/// Inserts the nonce's record; true if it was not there.
pub(super) async fn redeem(
    store: &SqliteStore,
    id: &[u8],
    expires: OffsetDateTime,
) -> Result<bool> {
    let id = id.to_vec();
    let expires = time_to_db(expires)?;
    store
        .write(move |conn| {
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO used_nonces (id, expires) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
                )
                .and_then(|mut insert| insert.execute(params![id, expires]))
                .map_err(db)?;
            Ok(inserted == 1)
        })
        .await
}

/// Deletes the records that expired before `now`.
pub(super) async fn prune(store: &SqliteStore, now: OffsetDateTime) -> Result<u64> {
    let now = time_to_db(now)?;
    store
        .write(move |conn| {
            let deleted = conn
                .prepare_cached("DELETE FROM used_nonces WHERE expires < ?")
                .and_then(|mut delete| delete.execute([now]))
                .map_err(db)?;
            Ok(deleted as u64)
        })
        .await
}
