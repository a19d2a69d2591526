//! Orders (RFC 8555 §7.1.3, §7.4).

use cairn_proto::Problem;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::authorizations;
use super::{SqliteStore, db};
use crate::codec::{
    DbState, json_from_db, json_to_db, opt_json_from_db, opt_time_from_db, opt_time_to_db,
    time_from_db, time_to_db,
};
use crate::model::{AccountId, AuthzId, AuthzSource, NewOrder, Order, OrderId, OrderState};
use crate::{Result, StoreError};

/// The columns of [`OrderRow`], in its order.
macro_rules! order_columns {
    () => {
        concat!(
            "id, account_id, identifiers, expires, not_before, not_after, profile, replaces, ",
            "state, error, certificate_serial, created_at"
        )
    };
}

/// An `orders` row as stored.
struct OrderRow {
    id: i64,
    account_id: i64,
    identifiers: String,
    expires: i64,
    not_before: Option<i64>,
    not_after: Option<i64>,
    profile: Option<String>,
    replaces: Option<String>,
    state: String,
    error: Option<String>,
    certificate_serial: Option<String>,
    created_at: i64,
}

impl OrderRow {
    /// Reads the columns of `order_columns!`, in its order.
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            account_id: row.get(1)?,
            identifiers: row.get(2)?,
            expires: row.get(3)?,
            not_before: row.get(4)?,
            not_after: row.get(5)?,
            profile: row.get(6)?,
            replaces: row.get(7)?,
            state: row.get(8)?,
            error: row.get(9)?,
            certificate_serial: row.get(10)?,
            created_at: row.get(11)?,
        })
    }

    fn into_order(self, authz_ids: Vec<AuthzId>) -> Result<Order> {
        Ok(Order {
            id: self.id,
            account_id: self.account_id,
            identifiers: json_from_db(&self.identifiers)?,
            authz_ids,
            expires: time_from_db(self.expires)?,
            not_before: opt_time_from_db(self.not_before)?,
            not_after: opt_time_from_db(self.not_after)?,
            profile: self.profile,
            replaces: self.replaces,
            state: OrderState::from_db(&self.state)?,
            error: opt_json_from_db::<Problem>(self.error.as_deref())?,
            certificate_serial: self.certificate_serial,
            created_at: time_from_db(self.created_at)?,
        })
    }
}

/// Inserts the order, creates its new authorizations (with their
/// challenges) and links all of them in `new.authorizations` order, in one
/// write. An existing authorization must belong to the same account.
pub(super) async fn create(store: &SqliteStore, new: NewOrder) -> Result<Order> {
    // Encoded here, off the writer thread.
    let identifiers = json_to_db(&new.identifiers)?;
    let expires = time_to_db(new.expires)?;
    let not_before = opt_time_to_db(new.not_before)?;
    let not_after = opt_time_to_db(new.not_after)?;
    let created_at = time_to_db(new.created_at)?;
    let (row, authz_ids) = store
        .write(move |conn| {
            let account_exists = conn
                .prepare_cached("SELECT 1 FROM accounts WHERE id = ?")
                .map_err(db)?
                .exists(params![new.account_id])
                .map_err(db)?;
            if !account_exists {
                return Err(StoreError::NotFound("account"));
            }

            let row = conn
                .prepare_cached(concat!(
                    "INSERT INTO orders (account_id, identifiers, expires, not_before, not_after, profile, replaces, ",
                    "state, error, certificate_serial, created_at) ",
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?) RETURNING ",
                    order_columns!()
                ))
                .map_err(db)?
                .query_row(
                    params![
                        new.account_id,
                        identifiers,
                        expires,
                        not_before,
                        not_after,
                        new.profile,
                        new.replaces,
                        OrderState::Open.to_db(),
                        created_at,
                    ],
                    OrderRow::from_row,
                )
                .map_err(db)?;

            let mut link = conn
                .prepare_cached(
                    "INSERT INTO order_authorizations (order_id, position, authz_id) VALUES (?, ?, ?)",
                )
                .map_err(db)?;
            let mut authz_ids = Vec::with_capacity(new.authorizations.len());
            for (position, source) in new.authorizations.iter().enumerate() {
                let authz_id = match source {
                    AuthzSource::Existing(id) => match authorizations::owner(conn, *id)? {
                        Some(owner) if owner == new.account_id => *id,
                        Some(_) => {
                            return Err(StoreError::Conflict(format!(
                                "authorization {id} belongs to another account"
                            )));
                        }
                        None => return Err(StoreError::NotFound("authorization")),
                    },
                    AuthzSource::New(authz) => {
                        authorizations::insert_new(conn, new.account_id, authz, created_at)?
                    }
                };
                let position = i64::try_from(position)
                    .map_err(|_| StoreError::Backend("too many authorizations".into()))?;
                link.execute(params![row.id, position, authz_id])
                    .map_err(db)?;
                authz_ids.push(authz_id);
            }
            Ok((row, authz_ids))
        })
        .await?;
    row.into_order(authz_ids)
}

pub(super) async fn by_id(store: &SqliteStore, id: OrderId) -> Result<Option<Order>> {
    store.read(|conn| load(conn, id)).await
}

/// Order ids of `account`, newest first, below `before` if given.
pub(super) async fn of_account(
    store: &SqliteStore,
    account: AccountId,
    before: Option<OrderId>,
    limit: u32,
) -> Result<Vec<OrderId>> {
    store
        .read(|conn| {
            let mut stmt = conn
                .prepare_cached(concat!(
                    "SELECT id FROM orders WHERE account_id = ? AND id < ? ",
                    "ORDER BY id DESC LIMIT ?"
                ))
                .map_err(db)?;
            // A plain range on the index (account_id, id), deep pages
            // included; no cursor is the range below the largest id.
            let before = before.unwrap_or(i64::MAX);
            stmt.query_map(params![account, before, i64::from(limit)], |row| row.get(0))
                .map_err(db)?
                .collect::<rusqlite::Result<_>>()
                .map_err(db)
        })
        .await
}

/// An order with its authorization ids, by id.
pub(super) fn load(conn: &Connection, id: OrderId) -> Result<Option<Order>> {
    let row = conn
        .prepare_cached(concat!(
            "SELECT ",
            order_columns!(),
            " FROM orders WHERE id = ?"
        ))
        .map_err(db)?
        .query_row(params![id], OrderRow::from_row)
        .optional()
        .map_err(db)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let authz_ids = conn
        .prepare_cached(
            "SELECT authz_id FROM order_authorizations WHERE order_id = ? ORDER BY position",
        )
        .map_err(db)?
        .query_map(params![id], |row| row.get(0))
        .map_err(db)?
        .collect::<rusqlite::Result<Vec<AuthzId>>>()
        .map_err(db)?;
    row.into_order(authz_ids).map(Some)
}

/// True when a valid order names `replaces`.
pub(super) async fn certificate_replaced(store: &SqliteStore, replaces: &str) -> Result<bool> {
    store
        .read(|conn| {
            conn.prepare_cached("SELECT 1 FROM orders WHERE replaces = ? AND state = ? LIMIT 1")
                .map_err(db)?
                .exists(params![replaces, OrderState::Valid.to_db()])
                .map_err(db)
        })
        .await
}
