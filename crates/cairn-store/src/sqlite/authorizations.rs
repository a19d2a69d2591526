//! Authorizations and their challenges (RFC 8555 §7.1.4, §7.5, §8).

use std::collections::HashMap;

use cairn_proto::objects::ChallengeType;
use cairn_proto::{Identifier, IdentifierType, Problem};
use rusqlite::{Connection, OptionalExtension, Row, params};
use time::OffsetDateTime;

use super::{SqliteStore, db};
use crate::codec::{
    DbState, json_to_db, opt_json_from_db, opt_time_from_db, time_from_db, time_to_db,
};
use crate::model::{
    AccountId, Authorization, AuthzId, AuthzState, Challenge, ChallengeId, ChallengeState,
    NewAuthorization, ValidationOutcome,
};
use crate::{Result, StoreError};

/// The columns of [`AuthzRow`], in its order.
macro_rules! authz_columns {
    () => {
        "id, account_id, identifier_type, identifier_value, wildcard, state, expires, created_at"
    };
}

/// The columns of [`ChallengeRow`], in its order.
macro_rules! challenge_columns {
    () => {
        "id, authz_id, kind, token, state, validated_at, error"
    };
}

/// An `authorizations` row as stored.
struct AuthzRow {
    id: i64,
    account_id: i64,
    identifier_type: String,
    identifier_value: String,
    wildcard: bool,
    state: String,
    expires: i64,
    created_at: i64,
}

impl AuthzRow {
    /// Reads the columns of [`authz_columns!`], in its order.
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            account_id: row.get(1)?,
            identifier_type: row.get(2)?,
            identifier_value: row.get(3)?,
            wildcard: row.get(4)?,
            state: row.get(5)?,
            expires: row.get(6)?,
            created_at: row.get(7)?,
        })
    }

    fn into_authorization(self, challenges: Vec<Challenge>) -> Result<Authorization> {
        Ok(Authorization {
            id: self.id,
            account_id: self.account_id,
            identifier: Identifier {
                kind: IdentifierType::from(self.identifier_type.as_str()),
                value: self.identifier_value,
            },
            wildcard: self.wildcard,
            state: AuthzState::from_db(&self.state)?,
            expires: time_from_db(self.expires)?,
            challenges,
            created_at: time_from_db(self.created_at)?,
        })
    }
}

/// A `challenges` row as stored.
struct ChallengeRow {
    id: i64,
    authz_id: i64,
    kind: String,
    token: String,
    state: String,
    validated_at: Option<i64>,
    error: Option<String>,
}

impl ChallengeRow {
    /// Reads the columns of [`challenge_columns!`], in its order.
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            authz_id: row.get(1)?,
            kind: row.get(2)?,
            token: row.get(3)?,
            state: row.get(4)?,
            validated_at: row.get(5)?,
            error: row.get(6)?,
        })
    }

    fn into_challenge(self) -> Result<Challenge> {
        Ok(Challenge {
            id: self.id,
            authz_id: self.authz_id,
            kind: ChallengeType::from(self.kind.as_str()),
            token: self.token,
            state: ChallengeState::from_db(&self.state)?,
            validated_at: opt_time_from_db(self.validated_at)?,
            error: opt_json_from_db::<Problem>(self.error.as_deref())?,
        })
    }
}

pub(super) async fn by_id(store: &SqliteStore, id: AuthzId) -> Result<Option<Authorization>> {
    store.read(|conn| load(conn, id)).await
}

pub(super) async fn by_ids(store: &SqliteStore, ids: &[AuthzId]) -> Result<Vec<Authorization>> {
    store.read(|conn| load_many(conn, ids)).await
}

/// The newest (highest id) authorization of `account` for `identifier` in
/// `state` that expires after `now`.
pub(super) async fn newest(
    store: &SqliteStore,
    state: AuthzState,
    account: AccountId,
    identifier: &Identifier,
    wildcard: bool,
    now: OffsetDateTime,
) -> Result<Option<AuthzId>> {
    store
        .read(|conn| {
            conn.prepare_cached(concat!(
                "SELECT id FROM authorizations ",
                "WHERE account_id = ? AND identifier_type = ? AND identifier_value = ? AND wildcard = ? ",
                "AND state = ? AND expires > ? ",
                "ORDER BY id DESC LIMIT 1"
            ))
            .map_err(db)?
            .query_row(
                params![
                    account,
                    identifier.kind.as_str(),
                    identifier.value,
                    wildcard,
                    state.to_db(),
                    time_to_db(now)?,
                ],
                |row| row.get(0),
            )
            .optional()
            .map_err(db)
        })
        .await
}

pub(super) async fn challenge(
    store: &SqliteStore,
    id: ChallengeId,
) -> Result<Option<(Challenge, Authorization)>> {
    let authz = store
        .read(|conn| {
            let authz_id: Option<AuthzId> = conn
                .prepare_cached("SELECT authz_id FROM challenges WHERE id = ?")
                .map_err(db)?
                .query_row(params![id], |row| row.get(0))
                .optional()
                .map_err(db)?;
            match authz_id {
                Some(authz_id) => load(conn, authz_id),
                None => Ok(None),
            }
        })
        .await?;
    let Some(authz) = authz else {
        return Ok(None);
    };
    let challenge = authz
        .challenges
        .iter()
        .find(|c| c.id == id)
        .cloned()
        .ok_or_else(|| {
            StoreError::Backend(format!("challenge {id} vanished from its authorization"))
        })?;
    Ok(Some((challenge, authz)))
}

/// Pending → processing, for the challenge and only while its
/// authorization is pending too.
pub(super) async fn start_challenge(store: &SqliteStore, id: ChallengeId) -> Result<bool> {
    store
        .write(move |conn| {
            let started = conn
                .prepare_cached(concat!(
                    "UPDATE challenges SET state = ? WHERE id = ? AND state = ? AND EXISTS (",
                    "SELECT 1 FROM authorizations a WHERE a.id = challenges.authz_id AND a.state = ?)"
                ))
                .map_err(db)?
                .execute(params![
                    ChallengeState::Processing.to_db(),
                    id,
                    ChallengeState::Pending.to_db(),
                    AuthzState::Pending.to_db(),
                ])
                .map_err(db)?
                == 1;
            if !started && !challenge_exists(conn, id)? {
                return Err(StoreError::NotFound("challenge"));
            }
            Ok(started)
        })
        .await
}

/// Challenges left in processing, oldest first.
pub(super) async fn processing_challenges(store: &SqliteStore) -> Result<Vec<ChallengeId>> {
    store
        .read(|conn| {
            // The state is written, not bound, so the partial index applies.
            conn.prepare_cached("SELECT id FROM challenges WHERE state = 'processing' ORDER BY id")
                .map_err(db)?
                .query_map([], |row| row.get(0))
                .map_err(db)?
                .collect::<rusqlite::Result<_>>()
                .map_err(db)
        })
        .await
}

/// Ends a processing challenge and, if it is still pending, its
/// authorization. An authorization deactivated while its challenge was
/// processing stays deactivated.
pub(super) async fn finish_challenge(
    store: &SqliteStore,
    id: ChallengeId,
    outcome: ValidationOutcome,
) -> Result<()> {
    let (authz_id, authz_changed) = store
        .write(move |conn| {
            let authz_id: Option<AuthzId> = conn
                .prepare_cached("SELECT authz_id FROM challenges WHERE id = ? AND state = ?")
                .map_err(db)?
                .query_row(params![id, ChallengeState::Processing.to_db()], |row| {
                    row.get(0)
                })
                .optional()
                .map_err(db)?;
            let Some(authz_id) = authz_id else {
                return Err(if challenge_exists(conn, id)? {
                    StoreError::Conflict(format!("challenge {id} is not processing"))
                } else {
                    StoreError::NotFound("challenge")
                });
            };

            let authz_updated = match outcome {
                ValidationOutcome::Valid {
                    validated_at,
                    authz_expires,
                } => {
                    conn.prepare_cached(
                        "UPDATE challenges SET state = ?, validated_at = ?, error = NULL WHERE id = ?",
                    )
                    .map_err(db)?
                    .execute(params![
                        ChallengeState::Valid.to_db(),
                        time_to_db(validated_at)?,
                        id,
                    ])
                    .map_err(db)?;
                    conn.prepare_cached(
                        "UPDATE authorizations SET state = ?, expires = ? WHERE id = ? AND state = ?",
                    )
                    .map_err(db)?
                    .execute(params![
                        AuthzState::Valid.to_db(),
                        time_to_db(authz_expires)?,
                        authz_id,
                        AuthzState::Pending.to_db(),
                    ])
                    .map_err(db)?
                }
                ValidationOutcome::Invalid { problem } => {
                    conn.prepare_cached("UPDATE challenges SET state = ?, error = ? WHERE id = ?")
                        .map_err(db)?
                        .execute(params![
                            ChallengeState::Invalid.to_db(),
                            json_to_db(&problem)?,
                            id,
                        ])
                        .map_err(db)?;
                    conn.prepare_cached(
                        "UPDATE authorizations SET state = ? WHERE id = ? AND state = ?",
                    )
                    .map_err(db)?
                    .execute(params![
                        AuthzState::Invalid.to_db(),
                        authz_id,
                        AuthzState::Pending.to_db(),
                    ])
                    .map_err(db)?
                }
            };
            Ok((authz_id, authz_updated == 1))
        })
        .await?;
    if !authz_changed {
        tracing::debug!(
            challenge = id,
            authz = authz_id,
            "validation ended after its authorization left pending"
        );
    }
    Ok(())
}

/// Pending or valid → deactivated (RFC 8555 §7.5.2).
pub(super) async fn deactivate(store: &SqliteStore, id: AuthzId) -> Result<Authorization> {
    store
        .write(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE authorizations SET state = ? WHERE id = ? AND state IN (?, ?)",
                )
                .map_err(db)?
                .execute(params![
                    AuthzState::Deactivated.to_db(),
                    id,
                    AuthzState::Pending.to_db(),
                    AuthzState::Valid.to_db(),
                ])
                .map_err(db)?
                == 1;
            let authz = load(conn, id)?.ok_or(StoreError::NotFound("authorization"))?;
            if !changed {
                return Err(StoreError::Conflict(format!(
                    "authorization {id} is {} and cannot be deactivated",
                    authz.state.to_db()
                )));
            }
            Ok(authz)
        })
        .await
}

/// Inserts a pending authorization and its pending challenges.
pub(super) fn insert_new(
    conn: &Connection,
    account: AccountId,
    new: &NewAuthorization,
    created_at: i64,
) -> Result<AuthzId> {
    let id: AuthzId = conn
        .prepare_cached(concat!(
            "INSERT INTO authorizations ",
            "(account_id, identifier_type, identifier_value, wildcard, state, expires, created_at) ",
            "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id"
        ))
        .map_err(db)?
        .query_row(
            params![
                account,
                new.identifier.kind.as_str(),
                new.identifier.value,
                new.wildcard,
                AuthzState::Pending.to_db(),
                time_to_db(new.expires)?,
                created_at,
            ],
            |row| row.get(0),
        )
        .map_err(db)?;
    let mut insert_challenge = conn
        .prepare_cached("INSERT INTO challenges (authz_id, kind, token, state) VALUES (?, ?, ?, ?)")
        .map_err(db)?;
    for (kind, token) in &new.challenges {
        insert_challenge
            .execute(params![
                id,
                kind.as_str(),
                token,
                ChallengeState::Pending.to_db(),
            ])
            .map_err(db)?;
    }
    Ok(id)
}

/// The owner of an authorization, if it exists.
pub(super) fn owner(conn: &Connection, id: AuthzId) -> Result<Option<AccountId>> {
    conn.prepare_cached("SELECT account_id FROM authorizations WHERE id = ?")
        .map_err(db)?
        .query_row(params![id], |row| row.get(0))
        .optional()
        .map_err(db)
}

/// One authorization with its challenges (by id).
fn load(conn: &Connection, id: AuthzId) -> Result<Option<Authorization>> {
    let row = conn
        .prepare_cached(concat!(
            "SELECT ",
            authz_columns!(),
            " FROM authorizations WHERE id = ?"
        ))
        .map_err(db)?
        .query_row(params![id], AuthzRow::from_row)
        .optional()
        .map_err(db)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let challenges = conn
        .prepare_cached(concat!(
            "SELECT ",
            challenge_columns!(),
            " FROM challenges WHERE authz_id = ? ORDER BY id"
        ))
        .map_err(db)?
        .query_map(params![id], ChallengeRow::from_row)
        .map_err(db)?
        .map(|row| row.map_err(db)?.into_challenge())
        .collect::<Result<_>>()?;
    row.into_authorization(challenges).map(Some)
}

/// The authorizations with `ids`, in that order; `NotFound` if one is missing.
fn load_many(conn: &Connection, ids: &[AuthzId]) -> Result<Vec<Authorization>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids_json = json_to_db(ids)?;
    let rows: Vec<AuthzRow> = conn
        .prepare_cached(concat!(
            "SELECT ",
            authz_columns!(),
            " FROM authorizations WHERE id IN (SELECT value FROM json_each(?))"
        ))
        .map_err(db)?
        .query_map(params![ids_json], AuthzRow::from_row)
        .map_err(db)?
        .collect::<rusqlite::Result<_>>()
        .map_err(db)?;
    let challenge_rows: Vec<ChallengeRow> = conn
        .prepare_cached(concat!(
            "SELECT ",
            challenge_columns!(),
            " FROM challenges WHERE authz_id IN (SELECT value FROM json_each(?)) ORDER BY id"
        ))
        .map_err(db)?
        .query_map(params![ids_json], ChallengeRow::from_row)
        .map_err(db)?
        .collect::<rusqlite::Result<_>>()
        .map_err(db)?;

    let mut challenges: HashMap<AuthzId, Vec<Challenge>> = HashMap::new();
    for row in challenge_rows {
        challenges
            .entry(row.authz_id)
            .or_default()
            .push(row.into_challenge()?);
    }
    let mut by_id = HashMap::with_capacity(rows.len());
    for row in rows {
        let id = row.id;
        let authz = row.into_authorization(challenges.remove(&id).unwrap_or_default())?;
        by_id.insert(id, authz);
    }
    ids.iter()
        .map(|id| {
            by_id
                .get(id)
                .cloned()
                .ok_or(StoreError::NotFound("authorization"))
        })
        .collect()
}

fn challenge_exists(conn: &Connection, id: ChallengeId) -> Result<bool> {
    let found: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM challenges WHERE id = ?")
        .map_err(db)?
        .query_row(params![id], |row| row.get(0))
        .optional()
        .map_err(db)?;
    Ok(found.is_some())
}
