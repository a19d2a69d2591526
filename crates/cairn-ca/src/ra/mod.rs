//! The registration authority: accounts, orders, authorizations and their
//! reuse, challenges, finalize, revocation and CRLs. It enforces the CA's
//! rules; the `wfe` in front of it only speaks HTTP.

mod certificates;
mod queue;
pub mod status;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use cairn_proto::challenge::{Token, key_authorization};
use cairn_proto::objects::{
    AccountUpdate, NewAccount as NewAccountPayload, NewOrder as NewOrderPayload,
};
use cairn_proto::problem::ProblemType;
use cairn_proto::{Identifier, IdentifierType, Jwk};
use cairn_store::{
    Account, AccountId, AccountState, Authorization, AuthzId, AuthzSource, Challenge, ChallengeId,
    ChallengeState, NewAccount, NewAuthorization, NewOrder, Order, OrderId, Storage, StoreError,
    ValidationOutcome,
};
use time::{Duration, OffsetDateTime};

pub use self::certificates::{CrlCache, Revoker};
use crate::clock::Clock;
use crate::error::{CaError, CaResult};
use crate::policy::Policy;
use crate::policy::keys::{self, check_key_strength};
use crate::signer::Pki;
use crate::va::{ValidationRequest, Validator};

/// The RA's settings, from the config file.
#[derive(Clone, Debug)]
pub struct RaConfig {
    pub certificate_lifetime: Duration,
    pub authorization_reuse: Duration,
    pub pending_authorization_lifetime: Duration,
    pub order_lifetime: Duration,
    pub orders_page_size: u32,
    pub allow_validity_request: bool,
    pub terms_of_service: Option<String>,
    pub always_valid: bool,
    pub validation_delay: StdDuration,
    /// How old a validation may be before finalize checks CAA again.
    pub caa_recheck: Duration,
    /// Account URLs are this followed by the id (`https://ca/acme/acct/`),
    /// what CAA `accounturi` names.
    pub account_url_prefix: String,
    pub validation_queue: crate::va::QueueLimits,
}

/// The registration authority.
pub struct Ra {
    store: Arc<dyn Storage>,
    va: Arc<dyn Validator>,
    pki: Arc<Pki>,
    clock: Arc<dyn Clock>,
    policy: Policy,
    config: RaConfig,
    crls: CrlCache,
    validations: Arc<queue::ValidationQueue>,
}

impl std::fmt::Debug for Ra {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ra")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// An order with its authorizations, as the wfe shows it.
#[derive(Clone, Debug)]
pub struct OrderView {
    pub order: Order,
    pub authorizations: Vec<Authorization>,
    pub status: cairn_proto::objects::OrderStatus,
}

/// Most contacts one account may list.
const MAX_CONTACTS: usize = 10;

/// How long the answer to a challenge waits for its validation. Most end
/// in milliseconds, and the answer then carries the outcome; a longer one
/// is answered `processing` with `Retry-After: 1`. As that header counts in
/// whole seconds, one second of waiting never makes a client later than
/// polling would have.
const ANSWER_WAIT: StdDuration = StdDuration::from_secs(1);

impl Ra {
    pub fn new(
        store: Arc<dyn Storage>,
        va: Arc<dyn Validator>,
        pki: Arc<Pki>,
        clock: Arc<dyn Clock>,
        policy: Policy,
        config: RaConfig,
    ) -> Self {
        Self {
            store,
            va,
            pki,
            clock,
            policy,
            validations: queue::ValidationQueue::new(config.validation_queue),
            config,
            crls: CrlCache::default(),
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub fn pki(&self) -> &Pki {
        &self.pki
    }

    pub fn store(&self) -> &Arc<dyn Storage> {
        &self.store
    }

    pub fn config(&self) -> &RaConfig {
        &self.config
    }

    /// The URL of an account, as CAA `accounturi` names it (RFC 8657 §3).
    fn account_url(&self, id: AccountId) -> String {
        format!("{}{id}", self.config.account_url_prefix)
    }

    // --- accounts (RFC 8555 §7.3) ---

    /// newAccount: creates the account for `key`, or finds the existing one.
    /// Returns `(account, created)`.
    pub async fn new_account(
        &self,
        key: &Jwk,
        request: &NewAccountPayload,
    ) -> CaResult<(Account, bool)> {
        let thumbprint = key.thumbprint();
        if let Some(existing) = self.store.account_by_thumbprint(&thumbprint).await? {
            if existing.status != AccountState::Valid {
                // §7.3.6: no request by this key is accepted, not even
                // newAccount; 401 as for any other.
                return Err(CaError::unauthorized(format!(
                    "the account for this key is {}",
                    state_name(existing.status)
                ))
                .with_status(401));
            }
            return Ok((existing, false));
        }
        if request.only_return_existing {
            return Err(CaError::new(
                ProblemType::AccountDoesNotExist,
                "no account exists for this key",
            ));
        }
        if self.config.terms_of_service.is_some() && request.terms_of_service_agreed != Some(true) {
            return Err(CaError::malformed(
                "you must agree to the terms of service (termsOfServiceAgreed: true)",
            ));
        }
        check_contacts(&request.contact)?;
        check_key_strength(key)?;
        keys::check_not_blocked(self.store.as_ref(), &keys::spki_der(key)).await?;
        let (account, created) = self
            .store
            .create_account(NewAccount {
                jwk: key.canonical_json(),
                thumbprint,
                contact: request.contact.clone(),
                terms_agreed: request.terms_of_service_agreed == Some(true),
                created_at: self.now(),
            })
            .await?;
        if created {
            tracing::info!(target: "cairn::audit", event = "account.created", account = account.id);
        }
        Ok((account, created))
    }

    /// The account behind a `kid`, which must be valid to sign requests.
    pub async fn signing_account(&self, id: AccountId) -> CaResult<Account> {
        let account = self.store.account(id).await?.ok_or_else(|| {
            CaError::new(
                ProblemType::AccountDoesNotExist,
                format!("account {id} does not exist"),
            )
        })?;
        if account.status != AccountState::Valid {
            // RFC 8555 §7.3.6: 401 for requests by a deactivated account.
            return Err(CaError::unauthorized(format!(
                "account {id} is {}",
                state_name(account.status)
            ))
            .with_status(401));
        }
        Ok(account)
    }

    /// POST to an account URL: update contacts or deactivate (RFC 8555 §7.3.2, §7.3.6).
    pub async fn update_account(
        &self,
        account: &Account,
        update: &AccountUpdate,
    ) -> CaResult<Account> {
        let mut account = account.clone();
        if let Some(contact) = &update.contact {
            check_contacts(contact)?;
            account = self
                .store
                .update_account_contact(account.id, contact)
                .await?;
        }
        match update.status {
            None => {}
            Some(cairn_proto::objects::AccountStatus::Deactivated) => {
                account = self.store.deactivate_account(account.id).await?;
                tracing::info!(target: "cairn::audit", event = "account.deactivated", account = account.id);
            }
            Some(other) => {
                return Err(CaError::malformed(format!(
                    "an account's status can only be set to \"deactivated\", not {:?}",
                    other.as_str()
                )));
            }
        }
        Ok(account)
    }

    /// keyChange (RFC 8555 §7.3.5), after the wfe checked the inner JWS: swap
    /// `account`'s key for `new_key`.
    pub async fn change_key(&self, account: &Account, new_key: &Jwk) -> CaResult<Account> {
        let thumbprint = new_key.thumbprint();
        if thumbprint == account.thumbprint {
            return Err(CaError::malformed("the new key is the same as the old key"));
        }
        check_key_strength(new_key)?;
        keys::check_not_blocked(self.store.as_ref(), &keys::spki_der(new_key)).await?;
        match self
            .store
            .change_account_key(account.id, &new_key.canonical_json(), &thumbprint)
            .await
        {
            Ok(updated) => {
                tracing::info!(target: "cairn::audit", event = "account.key_changed", account = account.id);
                Ok(updated)
            }
            Err(StoreError::Conflict(_)) => {
                let holder = self.store.account_by_thumbprint(&thumbprint).await?;
                let mut err = CaError::new(
                    ProblemType::Malformed,
                    "the new key is already in use by another account",
                )
                .with_status(409);
                if let Some(holder) = holder {
                    err.detail = format!("the new key is already in use by account {}", holder.id);
                }
                Err(err)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// One page of an account's orders, newest first, and the cursor of the next page.
    pub async fn account_orders(
        &self,
        account: AccountId,
        before: Option<OrderId>,
    ) -> CaResult<(Vec<OrderId>, Option<OrderId>)> {
        let page = self.config.orders_page_size;
        let mut ids = self.store.account_orders(account, before, page + 1).await?;
        let next = if ids.len() > page as usize {
            ids.truncate(page as usize);
            ids.last().copied()
        } else {
            None
        };
        Ok((ids, next))
    }

    // --- orders (RFC 8555 §7.4) ---

    /// newOrder: checks the identifiers, reuses valid (or pending)
    /// authorizations of this account, and creates the rest.
    pub async fn new_order(
        &self,
        account: &Account,
        request: &NewOrderPayload,
    ) -> CaResult<OrderView> {
        let identifiers = self.policy.check_order_identifiers(&request.identifiers)?;
        let now = self.now();
        if (request.not_before.is_some() || request.not_after.is_some())
            && !self.config.allow_validity_request
        {
            return Err(CaError::malformed(
                "this CA does not accept notBefore/notAfter in orders; leave them out",
            ));
        }
        if self.config.allow_validity_request {
            certificates::check_requested_validity(
                request.not_before,
                request.not_after,
                now,
                self.config.certificate_lifetime,
                self.config.order_lifetime,
            )?;
        }
        if let Some(profile) = &request.profile {
            return Err(CaError::malformed(format!(
                "this CA offers no profile {profile:?}"
            )));
        }
        if let Some(replaces) = &request.replaces {
            self.check_replaces(account, replaces).await?;
        }
        let mut sources = Vec::with_capacity(identifiers.len());
        let mut expires = now + self.config.order_lifetime;
        for id in &identifiers {
            let (base, wildcard) = authz_identifier(id);
            let reused = match self
                .store
                .reusable_authorization(account.id, &base, wildcard, now)
                .await?
            {
                Some(found) => Some(found),
                None => {
                    self.store
                        .pending_authorization(account.id, &base, wildcard, now)
                        .await?
                }
            };
            match reused {
                Some(authz_id) => {
                    if let Some(authz) = self.store.authorization(authz_id).await? {
                        expires = expires.min(authz.expires);
                    }
                    sources.push(AuthzSource::Existing(authz_id));
                }
                None => {
                    let authz_expires = now + self.config.pending_authorization_lifetime;
                    expires = expires.min(authz_expires);
                    let challenges = self
                        .policy
                        .challenge_types(&base, wildcard)
                        .into_iter()
                        .map(|kind| Ok((kind, Token::generate()?.to_string())))
                        .collect::<Result<Vec<_>, cairn_proto::Error>>()
                        .map_err(|e| CaError::internal("making challenge tokens", e))?;
                    sources.push(AuthzSource::New(NewAuthorization {
                        identifier: base,
                        wildcard,
                        expires: authz_expires,
                        challenges,
                    }));
                }
            }
        }
        let order = self
            .store
            .create_order(NewOrder {
                account_id: account.id,
                identifiers,
                authorizations: sources,
                expires,
                not_before: request.not_before,
                not_after: request.not_after,
                profile: None,
                replaces: request.replaces.clone(),
                created_at: now,
            })
            .await?;
        tracing::info!(target: "cairn::audit", event = "order.created", account = account.id, order = order.id);
        self.view(order).await
    }

    /// An order of `account`.
    pub async fn order(&self, account: &Account, id: OrderId) -> CaResult<OrderView> {
        let order = self
            .store
            .order(id)
            .await?
            .ok_or_else(|| CaError::not_found(format!("order {id}")))?;
        if order.account_id != account.id {
            return Err(CaError::unauthorized(format!(
                "order {id} belongs to another account"
            )));
        }
        self.view(order).await
    }

    pub(crate) async fn view(&self, order: Order) -> CaResult<OrderView> {
        let authorizations = self.store.authorizations(&order.authz_ids).await?;
        let status = status::order_status(&order, &authorizations, self.now());
        Ok(OrderView {
            order,
            authorizations,
            status,
        })
    }

    // --- authorizations and challenges (RFC 8555 §7.5) ---

    /// An authorization of `account`.
    pub async fn authorization(&self, account: &Account, id: AuthzId) -> CaResult<Authorization> {
        let authz = self
            .store
            .authorization(id)
            .await?
            .ok_or_else(|| CaError::not_found(format!("authorization {id}")))?;
        if authz.account_id != account.id {
            return Err(CaError::unauthorized(format!(
                "authorization {id} belongs to another account"
            )));
        }
        Ok(authz)
    }

    /// Deactivates an authorization (RFC 8555 §7.5.2).
    pub async fn deactivate_authorization(
        &self,
        account: &Account,
        id: AuthzId,
    ) -> CaResult<Authorization> {
        let authz = self.authorization(account, id).await?;
        match status::authorization_status(&authz, self.now()) {
            cairn_proto::objects::AuthorizationStatus::Pending
            | cairn_proto::objects::AuthorizationStatus::Valid => {}
            other => {
                return Err(CaError::malformed(format!(
                    "authorization {id} is {} and cannot be deactivated",
                    other.as_str()
                )));
            }
        }
        let authz = self.store.deactivate_authorization(id).await?;
        tracing::info!(target: "cairn::audit", event = "authorization.deactivated", account = account.id, authz = id);
        Ok(authz)
    }

    /// A challenge of `account`, with its authorization.
    pub async fn challenge(
        &self,
        account: &Account,
        id: ChallengeId,
    ) -> CaResult<(Challenge, Authorization)> {
        let (challenge, authz) = self
            .store
            .challenge(id)
            .await?
            .ok_or_else(|| CaError::not_found(format!("challenge {id}")))?;
        if authz.account_id != account.id {
            return Err(CaError::unauthorized(format!(
                "challenge {id} belongs to another account"
            )));
        }
        Ok((challenge, authz))
    }

    /// The client says it is ready (RFC 8555 §7.5.1): the challenge moves to
    /// processing (durably) and validation runs in the background; the
    /// answer waits up to [`ANSWER_WAIT`] for it.
    pub async fn respond_to_challenge(
        self: &Arc<Self>,
        account: &Account,
        id: ChallengeId,
    ) -> CaResult<(Challenge, Authorization)> {
        let (challenge, authz) = self.challenge(account, id).await?;
        if challenge.state != ChallengeState::Pending {
            return Ok((challenge, authz));
        }
        let now = self.now();
        if status::authorization_status(&authz, now)
            != cairn_proto::objects::AuthorizationStatus::Pending
        {
            return Err(CaError::malformed(format!(
                "authorization {} is {} and its challenges can no longer be answered",
                authz.id,
                status::authorization_status(&authz, now).as_str()
            )));
        }
        // A place in the queue before the challenge turns processing: a
        // refusal leaves it pending, to be answered again later.
        let ticket = self.validations.admit(account.id, false)?;
        if self.store.start_challenge(id).await? {
            let ra = Arc::clone(self);
            let request =
                validation_request(account, &challenge, &authz, self.account_url(account.id))?;
            let validation = ticket.run(async move { ra.validate(id, request).await });
            // A validation that ends within ANSWER_WAIT is answered with its
            // outcome, saving the client a poll; a longer one goes on alone.
            let _ = tokio::time::timeout(ANSWER_WAIT, validation).await;
        }
        self.challenge(account, id).await
    }

    /// Runs again the validations a crash (or kill -9) interrupted: the
    /// challenges stored as processing. Called once at start.
    pub async fn resume_validations(self: &Arc<Self>) -> CaResult<usize> {
        let ids = self.store.processing_challenges().await?;
        for id in &ids {
            let Some((challenge, authz)) = self.store.challenge(*id).await? else {
                continue;
            };
            let Some(account) = self.store.account(authz.account_id).await? else {
                continue;
            };
            let request =
                validation_request(&account, &challenge, &authz, self.account_url(account.id))?;
            tracing::info!(challenge = id, identifier = %authz.identifier, "resuming an interrupted validation");
            let ra = Arc::clone(self);
            let id = *id;
            let ticket = self.validations.admit(account.id, true)?;
            ticket.run(async move { ra.validate(id, request).await });
        }
        Ok(ids.len())
    }

    async fn validate(&self, id: ChallengeId, request: ValidationRequest) {
        if !self.config.validation_delay.is_zero() {
            tokio::time::sleep(self.config.validation_delay).await;
        }
        let result = if self.config.always_valid {
            Ok(None)
        } else {
            self.va.validate(&request).await.map(Some)
        };
        let now = self.now();
        let outcome = match &result {
            Ok(_) => ValidationOutcome::Valid {
                validated_at: now,
                authz_expires: now + self.config.authorization_reuse,
            },
            Err(e) => ValidationOutcome::Invalid {
                problem: e.to_problem(),
            },
        };
        match &result {
            Ok(record) => tracing::info!(
                target: "cairn::audit", event = "validation", challenge = id,
                identifier = %request.identifier, kind = %request.challenge, result = "valid",
                always_valid = self.config.always_valid, record = ?record
            ),
            Err(e) => tracing::info!(
                target: "cairn::audit", event = "validation", challenge = id,
                identifier = %request.identifier, kind = %request.challenge, result = "invalid", problem = %e
            ),
        }
        if let Err(e) = self.store.finish_challenge(id, outcome).await {
            tracing::error!(challenge = id, error = %e, "could not record a validation result");
        }
    }
}

/// What the VA needs to check `challenge` for `account`.
fn validation_request(
    account: &Account,
    challenge: &Challenge,
    authz: &Authorization,
    account_uri: String,
) -> CaResult<ValidationRequest> {
    let account_key = Jwk::from_json(
        &serde_json::from_str(&account.jwk)
            .map_err(|e| CaError::internal("reading the account key", e))?,
    )?;
    let token = Token::parse(&challenge.token)?;
    Ok(ValidationRequest {
        identifier: authz.identifier.clone(),
        wildcard: authz.wildcard,
        challenge: challenge.kind.clone(),
        key_authorization: key_authorization(&token, &account_key),
        token,
        account_uri,
    })
}

/// The identifier an authorization is for: a wildcard's base domain, with
/// the wildcard flag (RFC 8555 §7.1.4).
fn authz_identifier(id: &Identifier) -> (Identifier, bool) {
    match (&id.kind, id.value.strip_prefix("*.")) {
        (IdentifierType::Dns, Some(base)) => (Identifier::dns(base), true),
        _ => (id.clone(), false),
    }
}

/// The identifier an authorization proves, as the order names it.
pub fn order_identifier(authz: &Authorization) -> Identifier {
    if authz.wildcard {
        Identifier::dns(format!("*.{}", authz.identifier.value))
    } else {
        authz.identifier.clone()
    }
}

/// Contacts must be `mailto:` URLs with one plain address (RFC 8555 §7.3).
fn check_contacts(contacts: &[String]) -> CaResult<()> {
    if contacts.len() > MAX_CONTACTS {
        return Err(CaError::new(
            ProblemType::InvalidContact,
            format!("at most {MAX_CONTACTS} contacts are accepted"),
        ));
    }
    for contact in contacts {
        // URI schemes are case-insensitive (RFC 3986 §3.1).
        let address = contact
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case("mailto:"))
            .map(|_| &contact[7..]);
        let Some(address) = address else {
            return Err(CaError::new(
                ProblemType::UnsupportedContact,
                format!("contact {contact:?} is not supported; only mailto: addresses are"),
            ));
        };
        let valid = address.len() <= 254
            && !address.contains(['?', ',', ' ', '<', '>', '"', '\n', '\r'])
            && address.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && domain.contains('.') && !domain.contains('@')
            });
        if !valid {
            return Err(CaError::new(
                ProblemType::InvalidContact,
                format!("contact {contact:?} is not a single plain email address"),
            ));
        }
    }
    Ok(())
}

fn state_name(state: AccountState) -> &'static str {
    match state {
        AccountState::Valid => "valid",
        AccountState::Deactivated => "deactivated",
        AccountState::Revoked => "revoked",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts() {
        assert!(check_contacts(&["mailto:admin@example.com".into()]).is_ok());
        assert!(check_contacts(&["MAILTO:admin@example.com".into()]).is_ok());
        assert_eq!(
            check_contacts(&["tel:+1555".into()]).unwrap_err().kind,
            ProblemType::UnsupportedContact
        );
        for bad in [
            "mailto:",
            "mailto:admin",
            "mailto:a@b",
            "mailto:a@b.c?subject=x",
            "mailto:a@b.c,d@e.f",
        ] {
            assert_eq!(
                check_contacts(&[bad.into()]).unwrap_err().kind,
                ProblemType::InvalidContact,
                "{bad}"
            );
        }
    }

    #[test]
    fn wildcard_authorizations_are_for_the_base_domain() {
        let (base, wildcard) = authz_identifier(&Identifier::dns("*.example.com"));
        assert_eq!((base, wildcard), (Identifier::dns("example.com"), true));
    }
}
