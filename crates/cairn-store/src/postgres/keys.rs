//! The blocked-keys list and the certificates of a key.

use time::OffsetDateTime;

use super::{PgStore, db};
use crate::Result;
use crate::codec::{blocked_key_from_db, time_to_db};
use crate::model::BlockedKey;

pub(super) async fn block(store: &PgStore, key: &BlockedKey) -> Result<bool> {
    let added = sqlx::query(concat!(
        "INSERT INTO blocked_keys (spki_sha256, reason, blocked_at) VALUES ($1, $2, $3) ",
        "ON CONFLICT (spki_sha256) DO NOTHING"
    ))
    .bind(&key.spki_sha256)
    .bind(&key.reason)
    .bind(time_to_db(key.blocked_at)?)
    .execute(&store.pool)
    .await
    .map_err(db)?
    .rows_affected();
    Ok(added == 1)
}

pub(super) async fn blocked(store: &PgStore, spki_sha256: &[u8]) -> Result<Option<BlockedKey>> {
    let row: Option<(Vec<u8>, String, i64)> = sqlx::query_as(
        "SELECT spki_sha256, reason, blocked_at FROM blocked_keys WHERE spki_sha256 = $1",
    )
    .bind(spki_sha256)
    .fetch_optional(&store.pool)
    .await
    .map_err(db)?;
    row.map(blocked_key_from_db).transpose()
}

pub(super) async fn live_certificates(
    store: &PgStore,
    spki_sha256: &[u8],
    now: OffsetDateTime,
) -> Result<Vec<String>> {
    sqlx::query_scalar(concat!(
        "SELECT serial FROM certificates WHERE spki_sha256 = $1 AND der IS NOT NULL ",
        "AND revoked_at IS NULL AND not_after > $2 ORDER BY serial"
    ))
    .bind(spki_sha256)
    .bind(time_to_db(now)?)
    .fetch_all(&store.pool)
    .await
    .map_err(db)
}
