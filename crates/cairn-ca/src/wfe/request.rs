//! Reading a signed ACME request (RFC 8555 §6.2–§6.5): content type, size,
//! JWS, `url`, nonce, and the key that must have signed it.

use axum::body::to_bytes;
use axum::extract::Request;
use axum::http::header;
use cairn_proto::Jwk;
use cairn_proto::jws::{JwsKind, KeyRef, UnverifiedJws, VerifiedJws};
use cairn_proto::problem::ProblemType;
use cairn_store::Account;
use serde::de::DeserializeOwned;

use super::Wfe;
use crate::error::{CaError, CaResult};

/// Which key forms an endpoint takes (RFC 8555 §6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum KeyForm {
    /// newAccount: the key itself.
    Jwk,
    /// Everything done as an account.
    Kid,
    /// revokeCert: the account, or the certificate's key.
    Either,
}

/// A request whose JWS verified, with the account that signed it (for `kid`).
#[derive(Debug)]
pub(super) struct Signed {
    pub(super) jws: VerifiedJws,
    pub(super) account: Option<Account>,
}

impl Signed {
    /// The signing account; only `KeyForm::Kid` guarantees one.
    pub(super) fn account(&self) -> CaResult<&Account> {
        self.account.as_ref().ok_or_else(|| {
            CaError::malformed("this request must be signed with an account key (kid)")
        })
    }

    /// The payload as `T`; `{}`-only endpoints use [`Signed::empty_object`].
    pub(super) fn payload<T: DeserializeOwned>(&self) -> CaResult<T> {
        if self.jws.is_post_as_get() {
            return Err(CaError::malformed(
                "this request needs a JSON payload, not POST-as-GET",
            ));
        }
        self.jws.payload_json().map_err(|e| match e {
            cairn_proto::Error::InvalidJson { reason, .. } => {
                CaError::malformed(format!("payload: {reason}"))
            }
            other => other.into(),
        })
    }

    /// True for POST-as-GET; an error for anything but an empty payload.
    pub(super) fn require_post_as_get(&self) -> CaResult<()> {
        if self.jws.is_post_as_get() {
            Ok(())
        } else {
            Err(CaError::malformed(
                "this resource is read with POST-as-GET: an empty payload (RFC 8555 §6.3)",
            ))
        }
    }

    /// For challenges: the payload must be a JSON object (`{}`), or empty for
    /// POST-as-GET. Returns true when it is a response (`{}`).
    pub(super) fn empty_object_or_post_as_get(&self) -> CaResult<bool> {
        if self.jws.is_post_as_get() {
            return Ok(false);
        }
        let value: serde_json::Value = self.payload()?;
        if value.is_object() {
            Ok(true)
        } else {
            Err(CaError::malformed("the payload must be a JSON object ({})"))
        }
    }
}

impl Wfe {
    /// Reads and checks a POST: everything but what the payload means.
    pub(super) async fn read_signed(&self, request: Request, form: KeyForm) -> CaResult<Signed> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        if content_type.as_deref() != Some("application/jose+json") {
            return Err(CaError::malformed(
                "the Content-Type of a request must be application/jose+json",
            )
            .with_status(415));
        }
        let url = format!(
            "{}{}",
            self.urls.base(),
            request.uri().path_and_query().map_or("/", |p| p.as_str())
        );
        let body = tokio::time::timeout(
            self.body_timeout,
            to_bytes(request.into_body(), self.max_body_bytes),
        )
        .await
        .map_err(|_| {
            CaError::malformed(format!(
                "the request body did not arrive within {} s",
                self.body_timeout.as_secs()
            ))
            .with_status(408)
        })?
        .map_err(|_| {
            CaError::malformed(format!(
                "the request body is larger than {} bytes",
                self.max_body_bytes
            ))
            .with_status(413)
        })?;
        let unverified = UnverifiedJws::parse(&body, JwsKind::Request)?;
        let header = unverified.header();
        if header.url != url {
            return Err(CaError::unauthorized(format!(
                "the JWS url {:?} is not this request's URL {url:?}",
                header.url
            )));
        }
        // The signature is checked before the nonce is spent: a forged
        // request carrying a client's nonce must not burn it.
        let nonce = header.nonce.clone().unwrap_or_default();
        let signed = match (&header.key, form) {
            (KeyRef::Jwk(_), KeyForm::Jwk | KeyForm::Either) => Ok(Signed {
                jws: unverified.verify_with_embedded_jwk()?,
                account: None,
            }),
            (KeyRef::Kid(kid), KeyForm::Kid | KeyForm::Either) => {
                let id = self.urls.parse_account(kid).ok_or_else(|| {
                    CaError::new(
                        ProblemType::AccountDoesNotExist,
                        format!("kid {kid:?} is not an account URL of this CA"),
                    )
                })?;
                let account = self.ra.signing_account(id).await?;
                let key = stored_key(&account)?;
                Ok(Signed {
                    jws: unverified.verify_with(&key)?,
                    account: Some(account),
                })
            }
            (KeyRef::Jwk(_), KeyForm::Kid) => Err(CaError::malformed(
                "this request must name its account with kid, not embed a jwk",
            )),
            (KeyRef::Kid(_), KeyForm::Jwk) => Err(CaError::malformed(
                "newAccount must be signed with the new key embedded as jwk, not kid",
            )),
        }?;
        if !self.nonces.redeem(&nonce).await? {
            return Err(CaError::new(
                ProblemType::BadNonce,
                "the nonce was already used, is too old or not ours; retry with the fresh one in this response",
            ));
        }
        Ok(signed)
    }
}

/// The account's key as stored.
pub(super) fn stored_key(account: &Account) -> CaResult<Jwk> {
    let value = serde_json::from_str(&account.jwk)
        .map_err(|e| CaError::internal("reading an account key", e))?;
    Ok(Jwk::from_json(&value)?)
}
