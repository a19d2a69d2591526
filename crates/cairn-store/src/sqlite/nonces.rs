//! Nonces shared by several nodes (RFC 8555 §6.5): the MAC secret and the
//! record of used nonces.

use time::OffsetDateTime;

use super::{SqliteStore, db};
use crate::codec::time_to_db;
use crate::{Result, StoreError};

/// Stores `candidate` as the secret unless one is stored; returns the stored one.
pub(super) async fn secret(store: &SqliteStore, candidate: &[u8]) -> Result<Vec<u8>> {
    let mut tx = store.write().await?;
    sqlx::query("INSERT INTO nonce_secret (id, secret) VALUES (1, ?) ON CONFLICT (id) DO NOTHING")
        .bind(candidate)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let secret: Vec<u8> = sqlx::query_scalar("SELECT secret FROM nonce_secret WHERE id = 1")
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?
        .ok_or_else(|| StoreError::Backend("the nonce secret was not stored".into()))?;
    tx.commit().await.map_err(db)?;
    Ok(secret)
}

/// Inserts the nonce's record; true if it was not there.
pub(super) async fn redeem(
    store: &SqliteStore,
    id: &[u8],
    expires: OffsetDateTime,
) -> Result<bool> {
    let mut tx = store.write().await?;
    let inserted = sqlx::query(
        "INSERT INTO used_nonces (id, expires) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(time_to_db(expires)?)
    .execute(&mut *tx)
    .await
    .map_err(db)?
    .rows_affected()
        == 1;
    tx.commit().await.map_err(db)?;
    Ok(inserted)
}

/// Deletes the records that expired before `now`.
pub(super) async fn prune(store: &SqliteStore, now: OffsetDateTime) -> Result<u64> {
    let mut tx = store.write().await?;
    let deleted = sqlx::query("DELETE FROM used_nonces WHERE expires < ?")
        .bind(time_to_db(now)?)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
    tx.commit().await.map_err(db)?;
    Ok(deleted)
}
