//! The blocked-keys list and the certificates of a key.

use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

use super::{SqliteStore, db};
use crate::Result;
use crate::codec::{blocked_key_from_db, time_to_db};
use crate::model::BlockedKey;

pub(super) async fn block(store: &SqliteStore, key: &BlockedKey) -> Result<bool> {
    let blocked_at = time_to_db(key.blocked_at)?;
    let (hash, reason) = (key.spki_sha256.clone(), key.reason.clone());
    store
        .write(move |conn| {
            let added = conn
                .prepare_cached(concat!(
                    "INSERT INTO blocked_keys (spki_sha256, reason, blocked_at) VALUES (?, ?, ?) ",
                    "ON CONFLICT (spki_sha256) DO NOTHING"
                ))
                .map_err(db)?
                .execute(params![hash, reason, blocked_at])
                .map_err(db)?;
            Ok(added == 1)
        })
        .await
}

pub(super) async fn blocked(store: &SqliteStore, spki_sha256: &[u8]) -> Result<Option<BlockedKey>> {
    let row: Option<(Vec<u8>, String, i64)> = store
        .read(|conn| {
            conn.prepare_cached(
                "SELECT spki_sha256, reason, blocked_at FROM blocked_keys WHERE spki_sha256 = ?",
            )
            .map_err(db)?
            .query_row(params![spki_sha256], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .optional()
            .map_err(db)
        })
        .await?;
    row.map(blocked_key_from_db).transpose()
}

pub(super) async fn live_certificates(
    store: &SqliteStore,
    spki_sha256: &[u8],
    now: OffsetDateTime,
) -> Result<Vec<String>> {
    let now = time_to_db(now)?;
    store
        .read(|conn| {
            conn.prepare_cached(concat!(
                "SELECT serial FROM certificates WHERE spki_sha256 = ? AND der IS NOT NULL ",
                "AND revoked_at IS NULL AND not_after > ? ORDER BY serial"
            ))
            .map_err(db)?
            .query_map(params![spki_sha256, now], |row| row.get(0))
            .map_err(db)?
            .collect::<rusqlite::Result<_>>()
            .map_err(db)
        })
        .await
}
