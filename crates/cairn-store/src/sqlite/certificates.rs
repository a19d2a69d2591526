//! Finalize and certificates (RFC 8555 §7.4, §7.6).

use cairn_proto::Problem;
use rusqlite::{Connection, OptionalExtension, Row, params};
use time::OffsetDateTime;

use super::{SqliteStore, db, is_unique_violation};
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
    revocation_reason: Option<i64>,
    created_at: i64,
}

impl CertificateRow {
    /// Reads the columns of `certificate_columns!`, in its order.
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            serial: row.get(0)?,
            order_id: row.get(1)?,
            account_id: row.get(2)?,
            issuer: row.get(3)?,
            names: row.get(4)?,
            not_before: row.get(5)?,
            not_after: row.get(6)?,
            der: row.get(7)?,
            revoked_at: row.get(8)?,
            revocation_reason: row.get(9)?,
            created_at: row.get(10)?,
        })
    }

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
struct RevokedRow {
    serial: String,
    revoked_at: i64,
    revocation_reason: i64,
}

impl RevokedRow {
    /// Reads `serial, revoked_at, revocation_reason`, in that order.
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            serial: row.get(0)?,
            revoked_at: row.get(1)?,
            revocation_reason: row.get(2)?,
        })
    }

    fn into_entry(self) -> Result<RevokedEntry> {
        Ok(RevokedEntry {
            serial: self.serial,
            revoked_at: time_from_db(self.revoked_at)?,
            reason: reason_from_db(self.revocation_reason)?,
        })
    }
}

/// Open → processing for the order, and the certificate row reserved under
/// its serial, in one write: both or neither.
pub(super) async fn begin_finalize(
    store: &SqliteStore,
    pending: PendingCertificate,
) -> Result<bool> {
    let names = json_to_db(&pending.names)?;
    let not_before = time_to_db(pending.not_before)?;
    let not_after = time_to_db(pending.not_after)?;
    let created_at = time_to_db(pending.created_at)?;

    store
        .write(move |conn| {
            let won = conn
                .prepare_cached(
                    "UPDATE orders SET state = ?, certificate_serial = ? WHERE id = ? AND state = ?",
                )
                .map_err(db)?
                .execute(params![
                    OrderState::Processing.to_db(),
                    pending.serial,
                    pending.order_id,
                    OrderState::Open.to_db(),
                ])
                .map_err(db)?
                == 1;
            if !won {
                return if order_exists(conn, pending.order_id)? {
                    Ok(false)
                } else {
                    Err(StoreError::NotFound("order"))
                };
            }
            conn.prepare_cached(concat!(
                "INSERT INTO certificates ",
                "(serial, order_id, account_id, issuer, names, not_before, not_after, created_at, ",
                "spki_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .map_err(db)?
            .execute(params![
                pending.serial,
                pending.order_id,
                pending.account_id,
                pending.issuer,
                names,
                not_before,
                not_after,
                created_at,
                pending.spki_sha256,
            ])
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
            Ok(true)
        })
        .await
}

/// Stores the signed certificate and moves its order processing → valid.
pub(super) async fn complete_finalize(
    store: &SqliteStore,
    order: OrderId,
    serial: &str,
    der: &[u8],
) -> Result<()> {
    let serial = serial.to_owned();
    let der = der.to_vec();
    store
        .write(move |conn| {
            move_processing_order(conn, order, Some(&serial), OrderState::Valid, None)?;
            let stored = conn
                .prepare_cached(
                    "UPDATE certificates SET der = ? WHERE serial = ? AND order_id = ? AND der IS NULL",
                )
                .map_err(db)?
                .execute(params![der, serial, order])
                .map_err(db)?
                == 1;
            if !stored {
                return Err(StoreError::Conflict(format!(
                    "certificate {serial} of order {order} is missing or already stored"
                )));
            }
            Ok(())
        })
        .await
}

/// Moves a processing order to invalid with `problem`. Its certificate
/// row stays, without a certificate, so the reserved serial stays taken.
pub(super) async fn fail_finalize(
    store: &SqliteStore,
    order: OrderId,
    problem: &Problem,
) -> Result<()> {
    let error = json_to_db(problem)?;
    store
        .write(move |conn| {
            move_processing_order(conn, order, None, OrderState::Invalid, Some(&error))
        })
        .await
}

pub(super) async fn by_serial(store: &SqliteStore, serial: &str) -> Result<Option<Certificate>> {
    let row = store
        .read(|conn| {
            conn.prepare_cached(concat!(
                "SELECT ",
                certificate_columns!(),
                " FROM certificates WHERE serial = ?"
            ))
            .map_err(db)?
            .query_row(params![serial], CertificateRow::from_row)
            .optional()
            .map_err(db)
        })
        .await?;
    row.map(CertificateRow::into_certificate).transpose()
}

/// Records the revocation unless the certificate is already revoked.
pub(super) async fn revoke(
    store: &SqliteStore,
    serial: &str,
    revocation: Revocation,
) -> Result<bool> {
    let serial = serial.to_owned();
    let revoked_at = time_to_db(revocation.revoked_at)?;
    let reason = i64::from(revocation.reason);
    store
        .write(move |conn| {
            let revoked = conn
                .prepare_cached(
                    "UPDATE certificates SET revoked_at = ?, revocation_reason = ? WHERE serial = ? AND revoked_at IS NULL",
                )
                .map_err(db)?
                .execute(params![revoked_at, reason, serial])
                .map_err(db)?
                == 1;
            if !revoked {
                let exists = conn
                    .prepare_cached("SELECT 1 FROM certificates WHERE serial = ?")
                    .map_err(db)?
                    .exists(params![serial])
                    .map_err(db)?;
                if !exists {
                    return Err(StoreError::NotFound("certificate"));
                }
            }
            Ok(revoked)
        })
        .await
}

/// The revoked certificates of `issuer` still unexpired at `now`, by serial.
pub(super) async fn revoked(
    store: &SqliteStore,
    issuer: &str,
    now: OffsetDateTime,
) -> Result<Vec<RevokedEntry>> {
    let now = time_to_db(now)?;
    let issuer = issuer.to_owned();
    let rows = store
        .read_elsewhere(move |conn| {
            conn.prepare_cached(concat!(
                "SELECT serial, revoked_at, revocation_reason FROM certificates ",
                "WHERE issuer = ? AND revoked_at IS NOT NULL AND not_after > ? ORDER BY serial"
            ))
            .map_err(db)?
            .query_map(params![issuer, now], RevokedRow::from_row)
            .map_err(db)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db)
        })
        .await?;
    rows.into_iter().map(RevokedRow::into_entry).collect()
}

/// Processing orders whose certificate row was made before `before`. The
/// state is written in the query, not bound, so SQLite can use the partial
/// index `orders_processing`, which holds only the few such orders.
pub(super) async fn stalled(store: &SqliteStore, before: OffsetDateTime) -> Result<Vec<OrderId>> {
    let before = time_to_db(before)?;
    store
        .read(|conn| {
            conn.prepare_cached(concat!(
                "SELECT o.id FROM orders o JOIN certificates c ON c.serial = o.certificate_serial ",
                "WHERE o.state = 'processing' AND c.created_at < ? ORDER BY c.created_at, o.id"
            ))
            .map_err(db)?
            .query_map(params![before], |row| row.get(0))
            .map_err(db)?
            .collect::<rusqlite::Result<_>>()
            .map_err(db)
        })
        .await
}

/// The newest `revoked_at` among `issuer`'s certificates.
pub(super) async fn last_revocation(
    store: &SqliteStore,
    issuer: &str,
) -> Result<Option<OffsetDateTime>> {
    let newest: Option<i64> = store
        .read(|conn| {
            conn.prepare_cached(
                "SELECT max(revoked_at) FROM certificates WHERE issuer = ? AND revoked_at IS NOT NULL",
            )
            .map_err(db)?
            .query_row(params![issuer], |row| row.get(0))
            .map_err(db)
        })
        .await?;
    newest.map(time_from_db).transpose()
}

/// Processing → `to` for an order (whose finalize reserved `serial`, if
/// given), recording `error` (a problem document as JSON) as its error.
fn move_processing_order(
    conn: &Connection,
    order: OrderId,
    serial: Option<&str>,
    to: OrderState,
    error: Option<&str>,
) -> Result<()> {
    let moved = conn
        .prepare_cached(concat!(
            "UPDATE orders SET state = ?, error = ? ",
            "WHERE id = ? AND state = ? AND (? IS NULL OR certificate_serial = ?)"
        ))
        .map_err(db)?
        .execute(params![
            to.to_db(),
            error,
            order,
            OrderState::Processing.to_db(),
            serial,
            serial,
        ])
        .map_err(db)?
        == 1;
    if moved {
        Ok(())
    } else if order_exists(conn, order)? {
        Err(StoreError::Conflict(match serial {
            Some(serial) => format!("order {order} is not processing certificate {serial}"),
            None => format!("order {order} is not processing"),
        }))
    } else {
        Err(StoreError::NotFound("order"))
    }
}

fn order_exists(conn: &Connection, id: OrderId) -> Result<bool> {
    conn.prepare_cached("SELECT 1 FROM orders WHERE id = ?")
        .map_err(db)?
        .exists(params![id])
        .map_err(db)
}
