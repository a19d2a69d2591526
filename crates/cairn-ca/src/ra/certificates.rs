//! Finalize, certificate download, revocation and CRLs (RFC 8555 §7.4,
//! §7.4.2, §7.6).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cairn_proto::ari::CertId;
use cairn_proto::objects::{Finalize, OrderStatus, Revocation as RevocationPayload};
use cairn_proto::problem::ProblemType;
use cairn_proto::{Identifier, Jwk, Problem, base64url};
use cairn_store::{
    Account, Authorization, Certificate, ChallengeState, OrderId, PendingCertificate, Revocation,
    StoreError,
};
use time::{Duration, OffsetDateTime};

use super::{OrderView, Ra, order_identifier};
use crate::error::{CaError, CaResult};
use crate::policy::keys;
use crate::signer::{self, CrlEntry, LeafRequest};
use crate::va::CaaRequest;

/// How far before "now" a certificate's validity starts, for clients whose
/// clocks run a little behind.
const BACKDATE: Duration = Duration::minutes(5);
/// How long a CRL is served before it is made again, revocations aside.
const CRL_MAX_AGE: Duration = Duration::hours(1);
/// A CRL's nextUpdate after its thisUpdate (BR 4.9.7: at most ten days).
const CRL_VALIDITY: Duration = Duration::days(1);
// Kept within 7 days, tighter than the BR, so that relying software
// caching a CRL to its nextUpdate never holds one older than a week.
const _: () = assert!(CRL_VALIDITY.whole_days() <= 7);
/// Revocation reasons a subscriber may give (RFC 5280 §5.3.1; BR 4.9.1.1).
const ALLOWED_REASONS: [u8; 5] = [0, 1, 3, 4, 5];

/// RFC 8555 §7.4 `notBefore`/`notAfter`, where the CA accepts them: the
/// start no earlier than [`BACKDATE`] before now and no later than the
/// order could still be finalized, the end after both the start and now
/// and within `lifetime` of the start (what the CA would issue unasked).
pub(super) fn check_requested_validity(
    not_before: Option<OffsetDateTime>,
    not_after: Option<OffsetDateTime>,
    now: OffsetDateTime,
    lifetime: Duration,
    order_lifetime: Duration,
) -> CaResult<()> {
    let show = |t: OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| t.to_string())
    };
    let earliest = now - BACKDATE;
    let start = not_before.unwrap_or(earliest);
    if start < earliest {
        return Err(CaError::malformed(format!(
            "notBefore {} is more than {} minutes in the past; the earliest this CA accepts is {}",
            show(start),
            BACKDATE.whole_minutes(),
            show(earliest)
        )));
    }
    if start > now + order_lifetime {
        return Err(CaError::malformed(format!(
            "notBefore {} is later than this order can be finalized; the latest is {}",
            show(start),
            show(now + order_lifetime)
        )));
    }
    if let Some(end) = not_after {
        if end <= start.max(now) {
            return Err(CaError::malformed(format!(
                "notAfter {} must be later than notBefore and than now",
                show(end)
            )));
        }
        let latest = start + lifetime - Duration::SECOND;
        if end > latest {
            return Err(CaError::malformed(format!(
                "notAfter {} is beyond this CA's certificate lifetime of {} days from \
                 notBefore; the latest is {}",
                show(end),
                lifetime.whole_days(),
                show(latest)
            )));
        }
    }
    Ok(())
}

/// Who asks for a revocation.
#[derive(Debug)]
pub enum Revoker<'a> {
    /// An account (`kid`): the issuing account, or one that holds valid
    /// authorizations for every name in the certificate.
    Account(&'a Account),
    /// The certificate's own key (`jwk`).
    CertificateKey(&'a Jwk),
}

/// The CRLs last made, per issuer, with the newest revocation each saw,
/// and one build lock per issuer: a burst of CRL requests after a
/// revocation makes one CRL, the others waiting for it (single flight).
#[derive(Debug, Default)]
pub struct CrlCache {
    made: Mutex<HashMap<String, CachedCrl>>,
    builds: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

#[derive(Debug)]
struct CachedCrl {
    made: OffsetDateTime,
    last_revocation: Option<OffsetDateTime>,
    der: Vec<u8>,
}

impl CrlCache {
    /// The cached CRL if it is young and no revocation (on any node
    /// sharing the database) happened since it was made.
    fn get(
        &self,
        issuer: &str,
        now: OffsetDateTime,
        last_revocation: Option<OffsetDateTime>,
    ) -> Option<Vec<u8>> {
        let cache = self.made.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(issuer)
            .filter(|c| now - c.made < CRL_MAX_AGE && c.last_revocation == last_revocation)
            .map(|c| c.der.clone())
    }

    fn put(
        &self,
        issuer: &str,
        made: OffsetDateTime,
        last_revocation: Option<OffsetDateTime>,
        der: Vec<u8>,
    ) {
        self.made.lock().unwrap_or_else(|p| p.into_inner()).insert(
            issuer.to_owned(),
            CachedCrl {
                made,
                last_revocation,
                der,
            },
        );
    }

    fn invalidate(&self, issuer: &str) {
        self.made
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(issuer);
    }

    fn invalidate_all(&self) {
        self.made.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// The lock that one build of `issuer`'s CRL holds.
    fn build_lock(&self, issuer: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut builds = self.builds.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(builds.entry(issuer.to_owned()).or_default())
    }
}

impl Ra {
    /// finalize: checks the CSR against the order, reserves a serial, signs,
    /// stores. Idempotent: only the request that moves the order from ready
    /// to processing signs; every other gets `orderNotReady`.
    pub async fn finalize(
        &self,
        account: &Account,
        order_id: OrderId,
        request: &Finalize,
    ) -> CaResult<OrderView> {
        let view = self.order(account, order_id).await?;
        if view.status != OrderStatus::Ready {
            return Err(CaError::new(
                ProblemType::OrderNotReady,
                format!(
                    "order {order_id} is {}, not ready; it can only be finalized once, when every authorization is valid",
                    view.status.as_str()
                ),
            ));
        }
        let csr_der = base64url::decode(&request.csr)
            .map_err(|_| CaError::new(ProblemType::BadCsr, "the csr field is not base64url"))?;
        let account_key = account_jwk(account)?;
        let csr = signer::check_csr(&csr_der, &account_key)?;
        keys::check_key_strength(&csr.public_key)?;
        keys::check_not_blocked(self.store.as_ref(), &csr.public_key_spki_der).await?;
        let spki_sha256 = keys::spki_sha256(&csr.public_key_spki_der);
        let wanted: Vec<Identifier> = view.authorizations.iter().map(order_identifier).collect();
        if !same_names(&csr.names, &view.order.identifiers)
            || !same_names(&wanted, &view.order.identifiers)
        {
            return Err(CaError::new(
                ProblemType::BadCsr,
                format!(
                    "the CSR names {} but the order is for {}",
                    list(&csr.names),
                    list(&view.order.identifiers)
                ),
            ));
        }

        let now = self.now();
        let not_before = view.order.not_before.unwrap_or(now - BACKDATE);
        let not_after = view
            .order
            .not_after
            .unwrap_or(not_before + self.config.certificate_lifetime - Duration::SECOND);
        let issuer = self.pki.issuer_for_key(&csr.key);
        let mut serial = signer::new_serial();
        let mut attempts = 0;
        loop {
            let pending = PendingCertificate {
                serial: signer::serial_hex(&serial),
                order_id,
                account_id: account.id,
                issuer: issuer.clone(),
                names: view.order.identifiers.clone(),
                not_before,
                not_after,
                created_at: now,
                spki_sha256: spki_sha256.clone(),
            };
            match self.store.begin_finalize(pending).await {
                Ok(true) => break,
                Ok(false) => {
                    return Err(CaError::new(
                        ProblemType::OrderNotReady,
                        format!("order {order_id} is already being finalized"),
                    )
                    .with_retry_after(std::time::Duration::from_secs(1)));
                }
                Err(StoreError::Conflict(_)) if attempts < 3 => {
                    attempts += 1;
                    serial = signer::new_serial();
                }
                Err(e) => return Err(e.into()),
            }
        }
        if let Err(e) = self.recheck_caa(account, &view.authorizations, now).await {
            self.fail_order(order_id, &e).await;
            return Err(e);
        }
        let serial_hex = signer::serial_hex(&serial);
        let signed = self.pki.issue_leaf(&LeafRequest {
            serial,
            issuer: issuer.clone(),
            names: view.order.identifiers.clone(),
            public_key_spki_der: csr.public_key_spki_der,
            not_before,
            not_after,
        });
        let der = match signed {
            Ok(der) => der,
            Err(e) => {
                self.fail_order(order_id, &e).await;
                return Err(e);
            }
        };
        self.store
            .complete_finalize(order_id, &serial_hex, &der)
            .await?;
        tracing::info!(
            target: "cairn::audit", event = "certificate.issued", account = account.id, order = order_id,
            serial = %serial_hex, issuer = %issuer, names = %list(&view.order.identifiers),
            not_before = %not_before, not_after = %not_after
        );
        self.order(account, order_id).await
    }

    /// BR 3.2.2.8: CAA is checked within 8 hours before issuance. Each
    /// authorization validated longer than `caa_recheck` ago has its name
    /// checked again, with the method that validated it and this account.
    async fn recheck_caa(
        &self,
        account: &Account,
        authorizations: &[Authorization],
        now: OffsetDateTime,
    ) -> CaResult<()> {
        if self.config.always_valid {
            return Ok(());
        }
        for authz in authorizations {
            let validated = authz
                .challenges
                .iter()
                .filter(|c| c.state == ChallengeState::Valid)
                .find_map(|c| Some((c.kind.clone(), c.validated_at?)));
            let Some((method, validated_at)) = validated else {
                return Err(CaError::internal(
                    "rechecking CAA",
                    format!("authorization {} has no validated challenge", authz.id),
                ));
            };
            if now - validated_at <= self.config.caa_recheck && !self.config.caa_recheck.is_zero() {
                continue;
            }
            self.va
                .check_caa(&CaaRequest {
                    identifier: authz.identifier.clone(),
                    wildcard: authz.wildcard,
                    method,
                    account_uri: self.account_url(account.id),
                })
                .await?;
        }
        Ok(())
    }

    /// Marks an order whose finalize failed invalid, with the reason.
    async fn fail_order(&self, order_id: OrderId, error: &CaError) {
        if let Err(store_err) = self
            .store
            .fail_finalize(order_id, &error.to_problem())
            .await
        {
            tracing::error!(order = order_id, error = %store_err, "could not mark a failed order invalid");
        }
    }

    /// The issued certificate an ARI certificate ID names (RFC 9773 §4.1):
    /// the serial must be ours and the key identifier its issuer's.
    async fn certificate_by_ari_id(&self, id: &CertId) -> CaResult<Certificate> {
        let serial = signer::serial_hex(id.serial_unsigned());
        let cert = self.store.certificate(&serial).await?;
        let matches = match cert.as_ref().and_then(|c| c.der.as_deref()) {
            Some(der) => signer::leaf_ari_cert_id(der)? == *id,
            None => false,
        };
        match cert {
            Some(cert) if matches => Ok(cert),
            _ => Err(CaError::not_found(format!(
                "a certificate with ARI identifier {id}"
            ))),
        }
    }

    /// The suggested renewal window (RFC 9773 §4.2): the last third of the
    /// lifetime begins it, as agents without ARI would renew; a revoked
    /// certificate gets a window in the past, so it is replaced now.
    pub async fn renewal_info(&self, id: &CertId) -> CaResult<(OffsetDateTime, OffsetDateTime)> {
        let cert = self.certificate_by_ari_id(id).await?;
        if cert.revocation.is_some() {
            let now = self.now();
            return Ok((now - Duration::hours(2), now - Duration::hours(1)));
        }
        let lifetime = cert.not_after - cert.not_before;
        Ok((
            cert.not_before + lifetime * 2 / 3,
            cert.not_before + lifetime * 3 / 4,
        ))
    }

    /// newOrder's `replaces` (RFC 9773 §5): a certificate of this account,
    /// not yet replaced by another finalized order.
    pub(super) async fn check_replaces(&self, account: &Account, replaces: &str) -> CaResult<()> {
        let id: CertId = replaces.parse().map_err(|_| {
            CaError::malformed(format!(
                "replaces {replaces:?} is not an ARI certificate identifier"
            ))
        })?;
        let cert = self.certificate_by_ari_id(&id).await.map_err(|_| {
            CaError::malformed(format!(
                "replaces {replaces:?} names no certificate of this CA"
            ))
        })?;
        if cert.account_id != account.id {
            return Err(CaError::unauthorized(format!(
                "the certificate {replaces:?} replaces was issued to another account"
            )));
        }
        if self.store.certificate_replaced(replaces).await? {
            return Err(CaError::new(
                ProblemType::AlreadyReplaced,
                format!("the certificate {replaces:?} was already replaced by another order"),
            ));
        }
        Ok(())
    }

    /// A certificate and the chains above it (default first, then alternates).
    pub async fn certificate(&self, serial: &str) -> CaResult<(Certificate, Vec<Vec<Vec<u8>>>)> {
        let cert = self
            .store
            .certificate(serial)
            .await?
            .filter(|c| c.der.is_some())
            .ok_or_else(|| CaError::not_found(format!("certificate {serial}")))?;
        let chains = self.pki.chains(&cert.issuer);
        Ok((cert, chains))
    }

    /// revokeCert (RFC 8555 §7.6).
    pub async fn revoke(&self, revoker: Revoker<'_>, request: &RevocationPayload) -> CaResult<()> {
        let reason = request.reason.unwrap_or(0);
        if !ALLOWED_REASONS.contains(&reason) {
            return Err(CaError::new(
                ProblemType::BadRevocationReason,
                format!(
                    "revocation reason {reason} is not allowed; use 0, 1, 3, 4 or 5 (RFC 5280 §5.3.1)"
                ),
            ));
        }
        let der = base64url::decode(&request.certificate)
            .map_err(|_| CaError::malformed("the certificate field is not base64url"))?;
        let serial = signer::serial_hex(&signer::certificate_serial(&der)?);
        let cert = self
            .store
            .certificate(&serial)
            .await?
            .filter(|c| c.der.as_deref() == Some(&der[..]))
            .ok_or_else(|| {
                CaError::not_found("a certificate issued by this CA with that content")
            })?;
        match revoker {
            Revoker::Account(account) => {
                if cert.account_id != account.id
                    && !self.holds_authorizations(account, &cert.names).await?
                {
                    return Err(CaError::unauthorized(
                        "this account neither ordered the certificate nor holds valid authorizations for all its names",
                    ));
                }
            }
            Revoker::CertificateKey(key) => {
                if !signer::certificate_key_matches(&der, key)? {
                    return Err(CaError::unauthorized(
                        "the JWS key is not the certificate's key",
                    ));
                }
            }
        }
        if reason == 1 && matches!(revoker, Revoker::Account(a) if a.id != cert.account_id) {
            // Only the subscriber or the key holder can claim key compromise.
            return Err(CaError::new(
                ProblemType::BadRevocationReason,
                "only the issuing account or the certificate key can give keyCompromise",
            ));
        }
        let now = self.now();
        if !self
            .store
            .revoke_certificate(
                &serial,
                Revocation {
                    revoked_at: now,
                    reason,
                },
            )
            .await?
        {
            return Err(CaError::new(
                ProblemType::AlreadyRevoked,
                format!("certificate {serial} is already revoked"),
            ));
        }
        self.crls.invalidate(&cert.issuer);
        tracing::info!(
            target: "cairn::audit", event = "certificate.revoked", serial = %serial, reason,
            by = match revoker { Revoker::Account(a) => format!("account {}", a.id), Revoker::CertificateKey(_) => "certificate key".into() }
        );
        if reason == keys::KEY_COMPROMISE {
            // The key is known bad: refuse it from now on, and revoke the
            // other certificates that carry it.
            let spki = keys::spki_sha256(&signer::certificate_spki(&der)?);
            let others = keys::block_and_revoke(
                self.store.as_ref(),
                &spki,
                &format!("keyCompromise revocation of certificate {serial}"),
                now,
            )
            .await?;
            if !others.is_empty() {
                self.crls.invalidate_all();
            }
        }
        Ok(())
    }

    async fn holds_authorizations(
        &self,
        account: &Account,
        names: &[Identifier],
    ) -> CaResult<bool> {
        let now = self.now();
        for name in names {
            let (base, wildcard) = super::authz_identifier(name);
            if self
                .store
                .reusable_authorization(account.id, &base, wildcard, now)
                .await?
                .is_none()
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Fails the orders whose finalize began more than `timeout` ago and
    /// never stored a certificate: the node signing them died (`kill -9`,
    /// power loss) between reserving the serial and storing the result.
    /// Their clients then see `invalid` with a reason instead of
    /// `processing` until the order expires. The reserved serial is never
    /// used again. Returns how many orders were failed.
    pub async fn fail_stalled_finalizes(&self, timeout: Duration) -> CaResult<usize> {
        let stalled = self.store.stalled_finalizes(self.now() - timeout).await?;
        let problem = Problem::new(
            ProblemType::ServerInternal,
            "issuance was interrupted before the certificate was stored; create a new order",
        );
        let mut failed = 0;
        for order in stalled {
            match self.store.fail_finalize(order, &problem).await {
                Ok(()) => failed += 1,
                // Finished (or failed by another node) meanwhile.
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(failed)
    }

    /// The current CRL of `issuer` (DER), made again when a revocation
    /// happened or the last one is an hour old.
    pub async fn crl(&self, issuer: &str) -> CaResult<Vec<u8>> {
        let now = self.now();
        // Read before the entries: a revocation landing in between makes
        // the next request build again rather than serve a stale CRL.
        let last_revocation = self.store.last_revocation(issuer).await?;
        if let Some(der) = self.crls.get(issuer, now, last_revocation) {
            return Ok(der);
        }
        if self.pki.issuer_der(issuer).is_none() {
            return Err(CaError::not_found(format!("issuer {issuer}")));
        }
        // One build at a time per issuer; whoever waited finds it made.
        let build = self.crls.build_lock(issuer);
        let _building = build.lock().await;
        if let Some(der) = self.crls.get(issuer, now, last_revocation) {
            return Ok(der);
        }
        let entries = self
            .store
            .revoked_certificates(issuer, now)
            .await?
            .into_iter()
            .map(|e| {
                Ok(CrlEntry {
                    serial: hex_decode(&e.serial)
                        .ok_or_else(|| CaError::internal("reading revoked serials", &e.serial))?,
                    revoked_at: e.revoked_at,
                    reason: e.reason,
                })
            })
            .collect::<CaResult<Vec<_>>>()?;
        let number = u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let der = self
            .pki
            .crl(issuer, &entries, now, now + CRL_VALIDITY, number)?;
        self.crls.put(issuer, now, last_revocation, der.clone());
        Ok(der)
    }
}

fn account_jwk(account: &Account) -> CaResult<Jwk> {
    let value = serde_json::from_str(&account.jwk)
        .map_err(|e| CaError::internal("reading the account key", e))?;
    Ok(Jwk::from_json(&value)?)
}

fn same_names(a: &[Identifier], b: &[Identifier]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    a.dedup();
    b.sort();
    b.dedup();
    a == b
}

fn list(ids: &[Identifier]) -> String {
    let names: Vec<&str> = ids.iter().map(|i| i.value.as_str()).collect();
    names.join(", ")
}

fn hex_decode(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}
