//! Finalize and certificates (RFC 8555 §7.4, §7.6).

use cairn_proto::Problem;
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;

use super::{PgStore, db, is_unique_violation};
use crate::codec::{
    DbState, json_from_db, json_to_db, opt_time_from_db, reason_from_db, time_from_db, time_to_db,
};
use crate::model::{
    Certificate, OrderId, OrderState, PendingCertificate, Revocation, RevokedEntry,
};
use crate::{Result, StoreError};

/// The columns of [`CertificateRow`], in its order.
macro_rules! certificate_columns {
    () => {
        concat!(
            "serial, order_id, account_id, issuer, names, not_before, not_after, der, ",
            "revoked_at, revocation_reason, created_at"
        )
    };
}

/// A `certificates` row as stored.
#[derive(sqlx::FromRow)]
struct CertificateRow {
    serial: String,
    order_id: Option<i64>,
    account_id: i64,
    issuer: String,
    names: String,
    not_before: i64,
    not_after: i64,
    der: Option<Vec<u8>>,
    revoked_at: Option<i64>,
    revocation_reason: Option<i16>,
    created_at: i64,
}

impl CertificateRow {
    fn into_certificate(self) -> Result<Certificate> {
        let revocation = match (opt_time_from_db(self.revoked_at)?, self.revocation_reason) {
            (Some(revoked_at), Some(reason)) => Some(Revocation {
                revoked_at,
                reason: reason_from_db(reason)?,
            }),
            _ => None,
        };
        Ok(Certificate {
            serial: self.serial,
            order_id: self.order_id,
            account_id: self.account_id,
            issuer: self.issuer,
            names: json_from_db(&self.names)?,
            not_before: time_from_db(self.not_before)?,
            not_after: time_from_db(self.not_after)?,
            der: self.der,
            revocation,
            created_at: time_from_db(self.created_at)?,
        })
    }
}

/// A CRL entry as selected.
#[derive(sqlx::FromRow)]
struct RevokedRow {
    serial: String,
    revoked_at: i64,
    revocation_reason: i16,
}

/// Open → processing for the order, and the certificate row reserved under
/// its serial, in one transaction: both or neither.
///
/// Of several calls for one order (from any node), the first to update the
/// order's row holds its lock until it commits; the others then re-check
/// `state = 'open'` on the committed row, update nothing and return false.
/// A serial already taken fails the insert, which rolls the order back to
/// open.
pub(super) async fn begin_finalize(store: &PgStore, pending: PendingCertificate) -> Result<bool> {
    let names = json_to_db(&pending.names)?;
    let not_before = time_to_db(pending.not_before)?;
    let not_after = time_to_db(pending.not_after)?;
    let created_at = time_to_db(pending.created_at)?;

    let mut tx = store.write().await?;
    let won = sqlx::query(
        "UPDATE orders SET state = $1, certificate_serial = $2 WHERE id = $3 AND state = $4",
    )
    .bind(OrderState::Processing.to_db())
    .bind(&pending.serial)
    .bind(pending.order_id)
    .bind(OrderState::Open.to_db())
    .execute(&mut *tx)
    .await
    .map_err(db)?
    .rows_affected()
        == 1;
    if !won {
        return if order_exists(&mut *tx, pending.order_id).await? {
            Ok(false)
        } else {
            Err(StoreError::NotFound("order"))
        };
    }
    sqlx::query(concat!(
        "INSERT INTO certificates ",
        "(serial, order_id, account_id, issuer, names, not_before, not_after, created_at, ",
        "spki_sha256) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    ))
    .bind(&pending.serial)
    .bind(pending.order_id)
    .bind(pending.account_id)
    .bind(&pending.issuer)
    .bind(names)
    .bind(not_before)
    .bind(not_after)
    .bind(created_at)
    .bind(&pending.spki_sha256)
    .execute(&mut *tx)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(format!(
                "certificate serial {} (or a certificate for order {}) already exists",
                pending.serial, pending.order_id
            ))
        } else {
            db(e)
        }
    })?;
    tx.commit().await.map_err(db)?;
    Ok(true)
}

/// Stores the signed certificate and moves its order processing → valid.
pub(super) async fn complete_finalize(
    store: &PgStore,
    order: OrderId,
    serial: &str,
    der: &[u8],
) -> Result<()> {
    let mut tx = store.write().await?;
    move_processing_order(&mut tx, order, Some(serial), OrderState::Valid, None).await?;
    let stored = sqlx::query(
        "UPDATE certificates SET der = $1 WHERE serial = $2 AND order_id = $3 AND der IS NULL",
    )
    .bind(der)
    .bind(serial)
    .bind(order)
    .execute(&mut *tx)
    .await
    .map_err(db)?
    .rows_affected()
        == 1;
    if !stored {
        return Err(StoreError::Conflict(format!(
            "certificate {serial} of order {order} is missing or already stored"
        )));
    }
    tx.commit().await.map_err(db)?;
    Ok(())
}

/// Moves a processing order to invalid with `problem`. Its certificate
/// row stays, without a certificate, so the reserved serial stays taken.
pub(super) async fn fail_finalize(
    store: &PgStore,
    order: OrderId,
    problem: &Problem,
) -> Result<()> {
    let mut tx = store.write().await?;
    move_processing_order(&mut tx, order, None, OrderState::Invalid, Some(problem)).await?;
    tx.commit().await.map_err(db)?;
    Ok(())
}

pub(super) async fn by_serial(store: &PgStore, serial: &str) -> Result<Option<Certificate>> {
    let row: Option<CertificateRow> = sqlx::query_as(concat!(
        "SELECT ",
        certificate_columns!(),
        " FROM certificates WHERE serial = $1"
    ))
    .bind(serial)
    .fetch_optional(&store.pool)
    .await
    .map_err(db)?;
    row.map(CertificateRow::into_certificate).transpose()
}

/// Records the revocation unless the certificate is already revoked.
pub(super) async fn revoke(store: &PgStore, serial: &str, revocation: Revocation) -> Result<bool> {
    let mut tx = store.write().await?;
    let revoked = sqlx::query(concat!(
        "UPDATE certificates SET revoked_at = $1, revocation_reason = $2 ",
        "WHERE serial = $3 AND revoked_at IS NULL"
    ))
    .bind(time_to_db(revocation.revoked_at)?)
    .bind(i16::from(revocation.reason))
    .bind(serial)
    .execute(&mut *tx)
    .await
    .map_err(db)?
    .rows_affected()
        == 1;
    if !revoked {
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM certificates WHERE serial = $1")
                .bind(serial)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        if exists.is_none() {
            return Err(StoreError::NotFound("certificate"));
        }
    }
    tx.commit().await.map_err(db)?;
    Ok(revoked)
}

/// The revoked certificates of `issuer` still unexpired at `now`, by serial.
pub(super) async fn revoked(
    store: &PgStore,
    issuer: &str,
    now: OffsetDateTime,
) -> Result<Vec<RevokedEntry>> {
    let rows: Vec<RevokedRow> = sqlx::query_as(concat!(
        "SELECT serial, revoked_at, revocation_reason FROM certificates ",
        "WHERE issuer = $1 AND revoked_at IS NOT NULL AND not_after > $2 ORDER BY serial"
    ))
    .bind(issuer)
    .bind(time_to_db(now)?)
    .fetch_all(&store.pool)
    .await
    .map_err(db)?;
    rows.into_iter()
        .map(|row| {
            Ok(RevokedEntry {
                serial: row.serial,
                revoked_at: time_from_db(row.revoked_at)?,
                reason: reason_from_db(row.revocation_reason)?,
            })
        })
        .collect()
}

/// Processing orders whose certificate row was made before `before`,
/// oldest first: the few rows of `orders_processing`, each joined to its
/// certificate by the primary key. The state is written in the query, not
/// bound, so that every plan may use that partial index.
pub(super) async fn stalled(store: &PgStore, before: OffsetDateTime) -> Result<Vec<OrderId>> {
    sqlx::query_scalar(concat!(
        "SELECT o.id FROM orders o JOIN certificates c ON c.serial = o.certificate_serial ",
        "WHERE o.state = 'processing' AND c.created_at < $1 ORDER BY c.created_at, o.id"
    ))
    .bind(time_to_db(before)?)
    .fetch_all(&store.pool)
    .await
    .map_err(db)
}

/// The newest `revoked_at` among `issuer`'s certificates: the last entry
/// of `certificates_revoked_at_by_issuer` for the issuer.
pub(super) async fn last_revocation(
    store: &PgStore,
    issuer: &str,
) -> Result<Option<OffsetDateTime>> {
    let newest: Option<i64> = sqlx::query_scalar(concat!(
        "SELECT revoked_at FROM certificates WHERE issuer = $1 AND revoked_at IS NOT NULL ",
        "ORDER BY revoked_at DESC LIMIT 1"
    ))
    .bind(issuer)
    .fetch_optional(&store.pool)
    .await
    .map_err(db)?;
    newest.map(time_from_db).transpose()
}

/// Processing → `to` for an order (whose finalize reserved `serial`, if
/// given), recording `problem` as its error.
async fn move_processing_order(
    conn: &mut PgConnection,
    order: OrderId,
    serial: Option<&str>,
    to: OrderState,
    problem: Option<&Problem>,
) -> Result<()> {
    let error = problem.map(json_to_db).transpose()?;
    let moved = sqlx::query(concat!(
        "UPDATE orders SET state = $1, error = $2 ",
        "WHERE id = $3 AND state = $4 AND ($5::TEXT IS NULL OR certificate_serial = $5)"
    ))
    .bind(to.to_db())
    .bind(error)
    .bind(order)
    .bind(OrderState::Processing.to_db())
    .bind(serial)
    .execute(&mut *conn)
    .await
    .map_err(db)?
    .rows_affected()
        == 1;
    if moved {
        Ok(())
    } else if order_exists(conn, order).await? {
        Err(StoreError::Conflict(match serial {
            Some(serial) => format!("order {order} is not processing certificate {serial}"),
            None => format!("order {order} is not processing"),
        }))
    } else {
        Err(StoreError::NotFound("order"))
    }
}

async fn order_exists<'c>(conn: impl PgExecutor<'c>, id: OrderId) -> Result<bool> {
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM orders WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(db)?;
    Ok(found.is_some())
}
