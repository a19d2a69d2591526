//! Accounts (RFC 8555 §7.3).

use sqlx::PgExecutor;

use super::{PgStore, db, is_unique_violation};
use crate::codec::{DbState, json_from_db, json_to_db, time_from_db, time_to_db};
use crate::model::{Account, AccountId, AccountState, NewAccount};
use crate::{Result, StoreError};

/// The columns of [`AccountRow`], in its order.
macro_rules! account_columns {
    () => {
        "id, jwk, thumbprint, contact, status, terms_agreed, created_at"
    };
}

/// How often `create` tries again when the account that refused its insert
/// moved to another key before it could be read.
const CREATE_ATTEMPTS: usize = 3;

/// An `accounts` row as stored.
#[derive(sqlx::FromRow)]
struct AccountRow {
    id: i64,
    jwk: String,
    thumbprint: String,
    contact: String,
    status: String,
    terms_agreed: bool,
    created_at: i64,
}

impl AccountRow {
    fn into_account(self) -> Result<Account> {
        Ok(Account {
            id: self.id,
            jwk: self.jwk,
            thumbprint: self.thumbprint,
            contact: json_from_db(&self.contact)?,
            status: AccountState::from_db(&self.status)?,
            terms_agreed: self.terms_agreed,
            created_at: time_from_db(self.created_at)?,
        })
    }
}

/// Inserts the account unless its thumbprint is taken; either way returns
/// the account holding the thumbprint.
///
/// Against a concurrent insert of the same key (from any node) the unique
/// index decides: the second `INSERT … ON CONFLICT DO NOTHING` waits for
/// the first transaction, then inserts nothing, and the `SELECT` that
/// follows (a statement of its own, so a fresh snapshot under `READ
/// COMMITTED`) sees the winner's row.
pub(super) async fn create(store: &PgStore, new: NewAccount) -> Result<(Account, bool)> {
    let contact = json_to_db(&new.contact)?;
    let created_at = time_to_db(new.created_at)?;
    for _ in 0..CREATE_ATTEMPTS {
        let mut tx = store.write().await?;
        let inserted: Option<AccountRow> = sqlx::query_as(concat!(
            "INSERT INTO accounts (jwk, thumbprint, contact, status, terms_agreed, created_at) ",
            "VALUES ($1, $2, $3, $4, $5, $6) ",
            "ON CONFLICT (thumbprint) DO NOTHING ",
            "RETURNING ",
            account_columns!()
        ))
        .bind(&new.jwk)
        .bind(&new.thumbprint)
        .bind(&contact)
        .bind(AccountState::Valid.to_db())
        .bind(new.terms_agreed)
        .bind(created_at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let found = match inserted {
            Some(row) => Some((row, true)),
            None => select_by_thumbprint(&mut *tx, &new.thumbprint)
                .await?
                .map(|row| (row, false)),
        };
        // Nothing was found only if the conflicting account changed its key
        // in between; the thumbprint may be free now, so try again.
        if let Some((row, created)) = found {
            tx.commit().await.map_err(db)?;
            return Ok((row.into_account()?, created));
        }
    }
    Err(StoreError::Backend(format!(
        "the account key {} kept conflicting, then was not found",
        new.thumbprint
    )))
}

pub(super) async fn by_id(store: &PgStore, id: AccountId) -> Result<Option<Account>> {
    let row = select_by_id(&store.pool, id).await?;
    row.map(AccountRow::into_account).transpose()
}

pub(super) async fn by_thumbprint(store: &PgStore, thumbprint: &str) -> Result<Option<Account>> {
    let row = select_by_thumbprint(&store.pool, thumbprint).await?;
    row.map(AccountRow::into_account).transpose()
}

pub(super) async fn update_contact(
    store: &PgStore,
    id: AccountId,
    contact: &[String],
) -> Result<Account> {
    let row: Option<AccountRow> = sqlx::query_as(concat!(
        "UPDATE accounts SET contact = $1 WHERE id = $2 RETURNING ",
        account_columns!()
    ))
    .bind(json_to_db(contact)?)
    .bind(id)
    .fetch_optional(&store.pool)
    .await
    .map_err(db)?;
    row.ok_or(StoreError::NotFound("account"))?.into_account()
}

/// Deactivates a valid account. A deactivated account stays as it is; so
/// does a revoked one, which the caller sees in the returned status.
pub(super) async fn deactivate(store: &PgStore, id: AccountId) -> Result<Account> {
    let mut tx = store.write().await?;
    sqlx::query("UPDATE accounts SET status = $1 WHERE id = $2 AND status = $3")
        .bind(AccountState::Deactivated.to_db())
        .bind(id)
        .bind(AccountState::Valid.to_db())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let row = select_by_id(&mut *tx, id)
        .await?
        .ok_or(StoreError::NotFound("account"))?;
    tx.commit().await.map_err(db)?;
    row.into_account()
}

pub(super) async fn change_key(
    store: &PgStore,
    id: AccountId,
    new_jwk: &str,
    new_thumbprint: &str,
) -> Result<Account> {
    let row: Option<AccountRow> = sqlx::query_as(concat!(
        "UPDATE accounts SET jwk = $1, thumbprint = $2 WHERE id = $3 RETURNING ",
        account_columns!()
    ))
    .bind(new_jwk)
    .bind(new_thumbprint)
    .bind(id)
    .fetch_optional(&store.pool)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict("another account already uses this key".into())
        } else {
            db(e)
        }
    })?;
    row.ok_or(StoreError::NotFound("account"))?.into_account()
}

async fn select_by_id<'c>(conn: impl PgExecutor<'c>, id: AccountId) -> Result<Option<AccountRow>> {
    sqlx::query_as(concat!(
        "SELECT ",
        account_columns!(),
        " FROM accounts WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
    .map_err(db)
}

async fn select_by_thumbprint<'c>(
    conn: impl PgExecutor<'c>,
    thumbprint: &str,
) -> Result<Option<AccountRow>> {
    sqlx::query_as(concat!(
        "SELECT ",
        account_columns!(),
        " FROM accounts WHERE thumbprint = $1"
    ))
    .bind(thumbprint)
    .fetch_optional(conn)
    .await
    .map_err(db)
}
