//! Orders (RFC 8555 §7.1.3, §7.4).

use cairn_proto::Problem;
use sqlx::PgConnection;

use super::authorizations;
use super::{PgStore, db, end_read};
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
#[derive(sqlx::FromRow)]
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
/// transaction. An existing authorization must belong to the same account.
pub(super) async fn create(store: &PgStore, new: NewOrder) -> Result<Order> {
    let created_at = time_to_db(new.created_at)?;
    let mut tx = store.write().await?;
    let account_exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM accounts WHERE id = $1")
        .bind(new.account_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
    if account_exists.is_none() {
        return Err(StoreError::NotFound("account"));
    }

    let row: OrderRow = sqlx::query_as(concat!(
        "INSERT INTO orders (account_id, identifiers, expires, not_before, not_after, profile, ",
        "replaces, state, error, certificate_serial, created_at) ",
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, $9) RETURNING ",
        order_columns!()
    ))
    .bind(new.account_id)
    .bind(json_to_db(&new.identifiers)?)
    .bind(time_to_db(new.expires)?)
    .bind(opt_time_to_db(new.not_before)?)
    .bind(opt_time_to_db(new.not_after)?)
    .bind(&new.profile)
    .bind(&new.replaces)
    .bind(OrderState::Open.to_db())
    .bind(created_at)
    .fetch_one(&mut *tx)
    .await
    .map_err(db)?;

    let mut authz_ids = Vec::with_capacity(new.authorizations.len());
    for (position, source) in new.authorizations.iter().enumerate() {
        let authz_id = match source {
            AuthzSource::Existing(id) => match authorizations::owner(&mut tx, *id).await? {
                Some(owner) if owner == new.account_id => *id,
                Some(_) => {
                    return Err(StoreError::Conflict(format!(
                        "authorization {id} belongs to another account"
                    )));
                }
                None => return Err(StoreError::NotFound("authorization")),
            },
            AuthzSource::New(authz) => {
                authorizations::insert_new(&mut tx, new.account_id, authz, created_at).await?
            }
        };
        sqlx::query(
            "INSERT INTO order_authorizations (order_id, position, authz_id) VALUES ($1, $2, $3)",
        )
        .bind(row.id)
        .bind(
            i32::try_from(position)
                .map_err(|_| StoreError::Backend("too many authorizations".into()))?,
        )
        .bind(authz_id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        authz_ids.push(authz_id);
    }
    tx.commit().await.map_err(db)?;
    row.into_order(authz_ids)
}

pub(super) async fn by_id(store: &PgStore, id: OrderId) -> Result<Option<Order>> {
    let mut tx = store.read().await?;
    let order = load(&mut tx, id).await?;
    end_read(tx).await?;
    Ok(order)
}

/// Order ids of `account`, newest first, below `before` if given. Without
/// a cursor the bound is the largest id, so that the query is always one
/// range of `orders_by_account`, read backwards.
pub(super) async fn of_account(
    store: &PgStore,
    account: AccountId,
    before: Option<OrderId>,
    limit: u32,
) -> Result<Vec<OrderId>> {
    sqlx::query_scalar(
        "SELECT id FROM orders WHERE account_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
    )
    .bind(account)
    .bind(before.unwrap_or(OrderId::MAX))
    .bind(i64::from(limit))
    .fetch_all(&store.pool)
    .await
    .map_err(db)
}

/// An order with its authorization ids, by id.
async fn load(conn: &mut PgConnection, id: OrderId) -> Result<Option<Order>> {
    let row: Option<OrderRow> = sqlx::query_as(concat!(
        "SELECT ",
        order_columns!(),
        " FROM orders WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let authz_ids: Vec<AuthzId> = sqlx::query_scalar(
        "SELECT authz_id FROM order_authorizations WHERE order_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    row.into_order(authz_ids).map(Some)
}

/// True when a valid order names `replaces`.
pub(super) async fn certificate_replaced(store: &PgStore, replaces: &str) -> Result<bool> {
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM orders WHERE replaces = $1 AND state = $2 LIMIT 1")
            .bind(replaces)
            .bind(OrderState::Valid.to_db())
            .fetch_optional(&store.pool)
            .await
            .map_err(db)?;
    Ok(found.is_some())
}
