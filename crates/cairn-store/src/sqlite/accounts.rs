//! Accounts (RFC 8555 §7.3).

use sqlx::SqliteConnection;

use super::{SqliteStore, db, end_read, is_unique_violation};
use crate::codec::{DbState, json_from_db, json_to_db, time_from_db, time_to_db};
use crate::model::{Account, AccountId, AccountState, NewAccount};
use crate::{Result, StoreError};

/// The columns of [`AccountRow`], in its order.
macro_rules! account_columns {
    () => {
        "id, jwk, thumbprint, contact, status, terms_agreed, created_at"
    };
}

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
/// the account holding the thumbprint. The insert and the lookup share one
/// write transaction, so concurrent calls create one account.
pub(super) async fn create(store: &SqliteStore, new: NewAccount) -> Result<(Account, bool)> {
    let mut tx = store.write().await?;
    let inserted: Option<AccountRow> = sqlx::query_as(concat!(
        "INSERT INTO accounts (jwk, thumbprint, contact, status, terms_agreed, created_at) ",
        "VALUES (?, ?, ?, ?, ?, ?) ",
        "ON CONFLICT (thumbprint) DO NOTHING ",
        "RETURNING ",
        account_columns!()
    ))
    .bind(&new.jwk)
    .bind(&new.thumbprint)
    .bind(json_to_db(&new.contact)?)
    .bind(AccountState::Valid.to_db())
    .bind(new.terms_agreed)
    .bind(time_to_db(new.created_at)?)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    let (row, created) = match inserted {
        Some(row) => (row, true),
        None => {
            let existing = select_by_thumbprint(&mut tx, &new.thumbprint)
                .await?
                .ok_or_else(|| {
                    StoreError::Backend(
                        "an account thumbprint conflicted, then was not found".into(),
                    )
                })?;
            (existing, false)
        }
    };
    tx.commit().await.map_err(db)?;
    Ok((row.into_account()?, created))
}

pub(super) async fn by_id(store: &SqliteStore, id: AccountId) -> Result<Option<Account>> {
    let mut tx = store.read().await?;
    let row = select_by_id(&mut tx, id).await?;
    end_read(tx).await?;
    row.map(AccountRow::into_account).transpose()
}

pub(super) async fn by_thumbprint(
    store: &SqliteStore,
    thumbprint: &str,
) -> Result<Option<Account>> {
    let mut tx = store.read().await?;
    let row = select_by_thumbprint(&mut tx, thumbprint).await?;
    end_read(tx).await?;
    row.map(AccountRow::into_account).transpose()
}

pub(super) async fn update_contact(
    store: &SqliteStore,
    id: AccountId,
    contact: &[String],
) -> Result<Account> {
    let mut tx = store.write().await?;
    let row: Option<AccountRow> = sqlx::query_as(concat!(
        "UPDATE accounts SET contact = ? WHERE id = ? RETURNING ",
        account_columns!()
    ))
    .bind(json_to_db(contact)?)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    let row = row.ok_or(StoreError::NotFound("account"))?;
    tx.commit().await.map_err(db)?;
    row.into_account()
}

/// Deactivates a valid account. A deactivated account stays as it is; so
/// does a revoked one, which the caller sees in the returned status.
pub(super) async fn deactivate(store: &SqliteStore, id: AccountId) -> Result<Account> {
    let mut tx = store.write().await?;
    sqlx::query("UPDATE accounts SET status = ? WHERE id = ? AND status = ?")
        .bind(AccountState::Deactivated.to_db())
        .bind(id)
        .bind(AccountState::Valid.to_db())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let row = select_by_id(&mut tx, id)
        .await?
        .ok_or(StoreError::NotFound("account"))?;
    tx.commit().await.map_err(db)?;
    row.into_account()
}

pub(super) async fn change_key(
    store: &SqliteStore,
    id: AccountId,
    new_jwk: &str,
    new_thumbprint: &str,
) -> Result<Account> {
    let mut tx = store.write().await?;
    let row: Option<AccountRow> = sqlx::query_as(concat!(
        "UPDATE accounts SET jwk = ?, thumbprint = ? WHERE id = ? RETURNING ",
        account_columns!()
    ))
    .bind(new_jwk)
    .bind(new_thumbprint)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict("another account already uses this key".into())
        } else {
            db(e)
        }
    })?;
    let row = row.ok_or(StoreError::NotFound("account"))?;
    tx.commit().await.map_err(db)?;
    row.into_account()
}

async fn select_by_id(conn: &mut SqliteConnection, id: AccountId) -> Result<Option<AccountRow>> {
    sqlx::query_as(concat!(
        "SELECT ",
        account_columns!(),
        " FROM accounts WHERE id = ?"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
    .map_err(db)
}

async fn select_by_thumbprint(
    conn: &mut SqliteConnection,
    thumbprint: &str,
) -> Result<Option<AccountRow>> {
    sqlx::query_as(concat!(
        "SELECT ",
        account_columns!(),
        " FROM accounts WHERE thumbprint = ?"
    ))
    .bind(thumbprint)
    .fetch_optional(conn)
    .await
    .map_err(db)
}
