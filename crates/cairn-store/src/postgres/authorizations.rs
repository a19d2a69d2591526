//! Authorizations and their challenges (RFC 8555 §7.1.4, §7.5, §8).

use std::collections::HashMap;

use cairn_proto::objects::ChallengeType;
use cairn_proto::{Identifier, IdentifierType, Problem};
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;

use super::{PgStore, db, end_read};
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
#[derive(sqlx::FromRow)]
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
#[derive(sqlx::FromRow)]
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

pub(super) async fn by_id(store: &PgStore, id: AuthzId) -> Result<Option<Authorization>> {
    let mut tx = store.read().await?;
    let authz = load(&mut tx, id).await?;
    end_read(tx).await?;
    Ok(authz)
}

pub(super) async fn by_ids(store: &PgStore, ids: &[AuthzId]) -> Result<Vec<Authorization>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = store.read().await?;
    let authzs = load_many(&mut tx, ids).await?;
    end_read(tx).await?;
    Ok(authzs)
}

/// The newest (highest id) authorization of `account` for `identifier` in
/// `state` that expires after `now`.
pub(super) async fn newest(
    store: &PgStore,
    state: AuthzState,
    account: AccountId,
    identifier: &Identifier,
    wildcard: bool,
    now: OffsetDateTime,
) -> Result<Option<AuthzId>> {
    sqlx::query_scalar(concat!(
        "SELECT id FROM authorizations ",
        "WHERE account_id = $1 AND identifier_type = $2 AND identifier_value = $3 ",
        "AND wildcard = $4 AND state = $5 AND expires > $6 ",
        "ORDER BY id DESC LIMIT 1"
    ))
    .bind(account)
    .bind(identifier.kind.as_str())
    .bind(&identifier.value)
    .bind(wildcard)
    .bind(state.to_db())
    .bind(time_to_db(now)?)
    .fetch_optional(&store.pool)
    .await
    .map_err(db)
}

pub(super) async fn challenge(
    store: &PgStore,
    id: ChallengeId,
) -> Result<Option<(Challenge, Authorization)>> {
    let mut tx = store.read().await?;
    let authz_id: Option<AuthzId> =
        sqlx::query_scalar("SELECT authz_id FROM challenges WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
    let authz = match authz_id {
        Some(authz_id) => load(&mut tx, authz_id).await?,
        None => None,
    };
    end_read(tx).await?;
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
///
/// The authorization's row is read `FOR SHARE`: a transaction changing its
/// state (a validation ending, a deactivation) holds a conflicting lock
/// until it commits, and then the condition is checked again on the
/// committed row. So a challenge never starts on an authorization that has
/// already left pending.
pub(super) async fn start_challenge(store: &PgStore, id: ChallengeId) -> Result<bool> {
    let mut tx = store.write().await?;
    let started = sqlx::query(concat!(
        "UPDATE challenges SET state = $1 WHERE id = $2 AND state = $3 AND EXISTS (",
        "SELECT 1 FROM authorizations a WHERE a.id = challenges.authz_id AND a.state = $4 ",
        "FOR SHARE)"
    ))
    .bind(ChallengeState::Processing.to_db())
    .bind(id)
    .bind(ChallengeState::Pending.to_db())
    .bind(AuthzState::Pending.to_db())
    .execute(&mut *tx)
    .await
    .map_err(db)?
    .rows_affected()
        == 1;
    if !started && !challenge_exists(&mut *tx, id).await? {
        return Err(StoreError::NotFound("challenge"));
    }
    tx.commit().await.map_err(db)?;
    Ok(started)
}

/// Challenges left in processing, oldest first. The state is written in
/// the query, not bound: only then may a generic plan (the one PostgreSQL
/// caches for a prepared statement) read the partial index
/// `challenges_processing`, whose condition it must prove.
pub(super) async fn processing_challenges(store: &PgStore) -> Result<Vec<ChallengeId>> {
    sqlx::query_scalar("SELECT id FROM challenges WHERE state = 'processing' ORDER BY id")
        .fetch_all(&store.pool)
        .await
        .map_err(db)
}

/// Ends a processing challenge and, if it is still pending, its
/// authorization. An authorization deactivated while its challenge was
/// processing stays deactivated.
///
/// The challenge's update is the condition: of two calls racing, the
/// second waits for the first's row lock and then finds the challenge no
/// longer processing.
pub(super) async fn finish_challenge(
    store: &PgStore,
    id: ChallengeId,
    outcome: ValidationOutcome,
) -> Result<()> {
    let mut tx = store.write().await?;
    let (state, validated_at, error) = match &outcome {
        ValidationOutcome::Valid { validated_at, .. } => (
            ChallengeState::Valid,
            Some(time_to_db(*validated_at)?),
            None,
        ),
        ValidationOutcome::Invalid { problem } => {
            (ChallengeState::Invalid, None, Some(json_to_db(problem)?))
        }
    };
    let authz_id: Option<AuthzId> = sqlx::query_scalar(concat!(
        "UPDATE challenges SET state = $1, validated_at = $2, error = $3 ",
        "WHERE id = $4 AND state = $5 RETURNING authz_id"
    ))
    .bind(state.to_db())
    .bind(validated_at)
    .bind(error)
    .bind(id)
    .bind(ChallengeState::Processing.to_db())
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    let Some(authz_id) = authz_id else {
        return Err(if challenge_exists(&mut *tx, id).await? {
            StoreError::Conflict(format!("challenge {id} is not processing"))
        } else {
            StoreError::NotFound("challenge")
        });
    };

    let authz_update =
        match outcome {
            ValidationOutcome::Valid { authz_expires, .. } => sqlx::query(
                "UPDATE authorizations SET state = $1, expires = $2 WHERE id = $3 AND state = $4",
            )
            .bind(AuthzState::Valid.to_db())
            .bind(time_to_db(authz_expires)?)
            .bind(authz_id)
            .bind(AuthzState::Pending.to_db())
            .execute(&mut *tx)
            .await,
            ValidationOutcome::Invalid { .. } => {
                sqlx::query("UPDATE authorizations SET state = $1 WHERE id = $2 AND state = $3")
                    .bind(AuthzState::Invalid.to_db())
                    .bind(authz_id)
                    .bind(AuthzState::Pending.to_db())
                    .execute(&mut *tx)
                    .await
            }
        };
    let authz_changed = authz_update.map_err(db)?.rows_affected() == 1;
    tx.commit().await.map_err(db)?;
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
pub(super) async fn deactivate(store: &PgStore, id: AuthzId) -> Result<Authorization> {
    let mut tx = store.write().await?;
    let changed =
        sqlx::query("UPDATE authorizations SET state = $1 WHERE id = $2 AND state IN ($3, $4)")
            .bind(AuthzState::Deactivated.to_db())
            .bind(id)
            .bind(AuthzState::Pending.to_db())
            .bind(AuthzState::Valid.to_db())
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected()
            == 1;
    let authz = load(&mut tx, id)
        .await?
        .ok_or(StoreError::NotFound("authorization"))?;
    if !changed {
        return Err(StoreError::Conflict(format!(
            "authorization {id} is {} and cannot be deactivated",
            authz.state.to_db()
        )));
    }
    tx.commit().await.map_err(db)?;
    Ok(authz)
}

/// Inserts a pending authorization and its pending challenges.
pub(super) async fn insert_new(
    conn: &mut PgConnection,
    account: AccountId,
    new: &NewAuthorization,
    created_at: i64,
) -> Result<AuthzId> {
    let id: AuthzId = sqlx::query_scalar(concat!(
        "INSERT INTO authorizations ",
        "(account_id, identifier_type, identifier_value, wildcard, state, expires, created_at) ",
        "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id"
    ))
    .bind(account)
    .bind(new.identifier.kind.as_str())
    .bind(&new.identifier.value)
    .bind(new.wildcard)
    .bind(AuthzState::Pending.to_db())
    .bind(time_to_db(new.expires)?)
    .bind(created_at)
    .fetch_one(&mut *conn)
    .await
    .map_err(db)?;
    for (kind, token) in &new.challenges {
        sqlx::query(
            "INSERT INTO challenges (authz_id, kind, token, state) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(kind.as_str())
        .bind(token)
        .bind(ChallengeState::Pending.to_db())
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    Ok(id)
}

/// The owner of an authorization, if it exists.
pub(super) async fn owner(conn: &mut PgConnection, id: AuthzId) -> Result<Option<AccountId>> {
    sqlx::query_scalar("SELECT account_id FROM authorizations WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(db)
}

/// One authorization with its challenges (by id).
async fn load(conn: &mut PgConnection, id: AuthzId) -> Result<Option<Authorization>> {
    let row: Option<AuthzRow> = sqlx::query_as(concat!(
        "SELECT ",
        authz_columns!(),
        " FROM authorizations WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let challenges: Vec<ChallengeRow> = sqlx::query_as(concat!(
        "SELECT ",
        challenge_columns!(),
        " FROM challenges WHERE authz_id = $1 ORDER BY id"
    ))
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let challenges = challenges
        .into_iter()
        .map(ChallengeRow::into_challenge)
        .collect::<Result<_>>()?;
    row.into_authorization(challenges).map(Some)
}

/// The authorizations with `ids`, in that order; `NotFound` if one is missing.
async fn load_many(conn: &mut PgConnection, ids: &[AuthzId]) -> Result<Vec<Authorization>> {
    let rows: Vec<AuthzRow> = sqlx::query_as(concat!(
        "SELECT ",
        authz_columns!(),
        " FROM authorizations WHERE id = ANY($1)"
    ))
    .bind(ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let challenge_rows: Vec<ChallengeRow> = sqlx::query_as(concat!(
        "SELECT ",
        challenge_columns!(),
        " FROM challenges WHERE authz_id = ANY($1) ORDER BY id"
    ))
    .bind(ids)
    .fetch_all(&mut *conn)
    .await
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

async fn challenge_exists<'c>(conn: impl PgExecutor<'c>, id: ChallengeId) -> Result<bool> {
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM challenges WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(db)?;
    Ok(found.is_some())
}
