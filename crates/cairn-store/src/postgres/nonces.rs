//! Nonces shared by several nodes (RFC 8555 §6.5): the MAC secret and the
//! record of used nonces.

use time::OffsetDateTime;

use super::{PgStore, db};
use crate::codec::time_to_db;
use crate::{Result, StoreError};

/// Stores `candidate` as the secret unless one is stored; returns the stored
/// one. A concurrent first call waits on the primary key for the other
/// insert, skips its own, and reads the other's secret.
pub(super) async fn secret(store: &PgStore, candidate: &[u8]) -> Result<Vec<u8>> {
    let mut tx = store.write().await?;
    let inserted: Option<Vec<u8>> = sqlx::query_scalar(concat!(
        "INSERT INTO nonce_secret (id, secret) VALUES (1, $1) ",
        "ON CONFLICT (id) DO NOTHING RETURNING secret"
    ))
    .bind(candidate)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    let secret = match inserted {
        Some(secret) => secret,
        None => sqlx::query_scalar("SELECT secret FROM nonce_secret WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .ok_or_else(|| StoreError::Backend("the nonce secret was not stored".into()))?,
    };
    tx.commit().await.map_err(db)?;
    Ok(secret)
}

/// Inserts the nonce's record; true if it was not there. One statement,
/// committed on its own: of two nodes redeeming one nonce, the second waits
/// on the primary key for the first and then inserts nothing.
pub(super) async fn redeem(store: &PgStore, id: &[u8], expires: OffsetDateTime) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO used_nonces (id, expires) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(time_to_db(expires)?)
    .execute(&store.pool)
    .await
    .map_err(db)?
    .rows_affected()
        == 1;
    Ok(inserted)
}

/// Deletes the records that expired before `now`.
pub(super) async fn prune(store: &PgStore, now: OffsetDateTime) -> Result<u64> {
    let deleted = sqlx::query("DELETE FROM used_nonces WHERE expires < $1")
        .bind(time_to_db(now)?)
        .execute(&store.pool)
        .await
        .map_err(db)?
        .rows_affected();
    Ok(deleted)
}
