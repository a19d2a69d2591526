//! Accounts (RFC 8555 §7.3).

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{SqliteStore, db, is_unique_violation};
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
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            jwk: row.get(1)?,
            thumbprint: row.get(2)?,
            contact: row.get(3)?,
            status: row.get(4)?,
            terms_agreed: row.get(5)?,
            created_at: row.get(6)?,
        })
    }

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
/// write, so concurrent calls create one account.
pub(super) async fn create(store: &SqliteStore, new: NewAccount) -> Result<(Account, bool)> {
    let contact = json_to_db(&new.contact)?;
    let created_at = time_to_db(new.created_at)?;
    store
        .write(move |conn| {
            let inserted = conn
                .prepare_cached(concat!(
                    "INSERT INTO accounts (jwk, thumbprint, contact, status, terms_agreed, created_at) ",
                    "VALUES (?, ?, ?, ?, ?, ?) ",
                    "ON CONFLICT (thumbprint) DO NOTHING ",
                    "RETURNING ",
                    account_columns!()
                ))
                .and_then(|mut insert| {
                    insert
                        .query_row(
                            params![
                                new.jwk,
                                new.thumbprint,
                                contact,
                                AccountState::Valid.to_db(),
                                new.terms_agreed,
                                created_at
                            ],
                            AccountRow::from_row,
                        )
                        .optional()
                })
                .map_err(db)?;
            let (row, created) = match inserted {
                Some(row) => (row, true),
                None => {
                    let existing = select_by_thumbprint(conn, &new.thumbprint)?.ok_or_else(|| {
                        StoreError::Backend(
                            "an account thumbprint conflicted, then was not found".into(),
                        )
                    })?;
                    (existing, false)
                }
            };
            Ok((row.into_account()?, created))
        })
        .await
}

pub(super) async fn by_id(store: &SqliteStore, id: AccountId) -> Result<Option<Account>> {
    store
        .read(|conn| {
            select_by_id(conn, id)?
                .map(AccountRow::into_account)
                .transpose()
        })
        .await
}

pub(super) async fn by_thumbprint(
    store: &SqliteStore,
    thumbprint: &str,
) -> Result<Option<Account>> {
    store
        .read(|conn| {
            select_by_thumbprint(conn, thumbprint)?
                .map(AccountRow::into_account)
                .transpose()
        })
        .await
}

pub(super) async fn update_contact(
    store: &SqliteStore,
    id: AccountId,
    contact: &[String],
) -> Result<Account> {
    let contact = json_to_db(contact)?;
    store
        .write(move |conn| {
            conn.prepare_cached(concat!(
                "UPDATE accounts SET contact = ? WHERE id = ? RETURNING ",
                account_columns!()
            ))
            .and_then(|mut update| {
                update
                    .query_row(params![contact, id], AccountRow::from_row)
                    .optional()
            })
            .map_err(db)?
            .ok_or(StoreError::NotFound("account"))?
            .into_account()
        })
        .await
}

/// Deactivates a valid account. A deactivated account stays as it is; so
/// does a revoked one, which the caller sees in the returned status.
pub(super) async fn deactivate(store: &SqliteStore, id: AccountId) -> Result<Account> {
    store
        .write(move |conn| {
            conn.prepare_cached("UPDATE accounts SET status = ? WHERE id = ? AND status = ?")
                .and_then(|mut update| {
                    update.execute(params![
                        AccountState::Deactivated.to_db(),
                        id,
                        AccountState::Valid.to_db()
                    ])
                })
                .map_err(db)?;
            select_by_id(conn, id)?
                .ok_or(StoreError::NotFound("account"))?
                .into_account()
        })
        .await
}

pub(super) async fn change_key(
    store: &SqliteStore,
    id: AccountId,
    new_jwk: &str,
    new_thumbprint: &str,
) -> Result<Account> {
    let new_jwk = new_jwk.to_owned();
    let new_thumbprint = new_thumbprint.to_owned();
    store
        .write(move |conn| {
            conn.prepare_cached(concat!(
                "UPDATE accounts SET jwk = ?, thumbprint = ? WHERE id = ? RETURNING ",
                account_columns!()
            ))
            .and_then(|mut update| {
                update
                    .query_row(params![new_jwk, new_thumbprint, id], AccountRow::from_row)
                    .optional()
            })
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict("another account already uses this key".into())
                } else {
                    db(e)
                }
            })?
            .ok_or(StoreError::NotFound("account"))?
            .into_account()
        })
        .await
}

fn select_by_id(conn: &Connection, id: AccountId) -> Result<Option<AccountRow>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        account_columns!(),
        " FROM accounts WHERE id = ?"
    ))
    .and_then(|mut select| select.query_row([id], AccountRow::from_row).optional())
    .map_err(db)
}

fn select_by_thumbprint(conn: &Connection, thumbprint: &str) -> Result<Option<AccountRow>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        account_columns!(),
        " FROM accounts WHERE thumbprint = ?"
    ))
    .and_then(|mut select| {
        select
            .query_row([thumbprint], AccountRow::from_row)
            .optional()
    })
    .map_err(db)
}
