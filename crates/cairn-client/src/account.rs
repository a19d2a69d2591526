//! Accounts (RFC 8555 §7.3): creation, lookup, update, key rollover,
//! deactivation, and the requests an account signs: orders, challenge
//! responses and revocation.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use cairn_proto::challenge::Token;
use cairn_proto::jws::{FlattenedJws, SigningHeader};
use cairn_proto::objects::{self, AccountUpdate, AuthorizationStatus, KeyChange, NewAccount};
use cairn_proto::{KeyPair, ProblemType, base64url, eab};
use serde::{Deserialize, Serialize};

use crate::authorization::Authorization;
use crate::client::{AcmeClient, Signer};
use crate::error::{Error, Result};
use crate::order::Order;
use crate::poll::Poller;
use crate::response::Received;

/// Most pages of an orders list followed before giving up (RFC 8555
/// §7.1.2.1); a server that links pages in a circle is caught sooner.
const MAX_ORDER_PAGES: usize = 1000;

/// An ACME account: the client, the account key and the account URL
/// (RFC 8555 §7.3). Requests made through it are signed with the key and
/// name the account by its URL (`kid`, §6.2).
///
/// Cheap to clone; clones share the key until [`Account::change_key`]
/// gives one of them a new key.
#[derive(Clone, Debug)]
pub struct Account {
    client: AcmeClient,
    key: Arc<AccountKey>,
    url: Arc<str>,
}

/// What it takes to use an account again later: the directory URL, the
/// account URL and the account's private key (PKCS#8, base64url). Save it
/// with serde, e.g. as JSON in a file only its owner can read; load it
/// with [`Account::from_credentials`]. Its `Debug` output hides the key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountCredentials {
    directory_url: String,
    account_url: String,
    key_pkcs8: String,
}

impl AccountCredentials {
    /// The directory URL of the CA the account lives at.
    pub fn directory_url(&self) -> &str {
        &self.directory_url
    }

    /// The account URL.
    pub fn account_url(&self) -> &str {
        &self.account_url
    }
}

impl fmt::Debug for AccountCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountCredentials")
            .field("directory_url", &self.directory_url)
            .field("account_url", &self.account_url)
            .finish_non_exhaustive()
    }
}

/// The account key with its PKCS#8 encoding kept ready, so that
/// [`Account::credentials`] cannot fail.
struct AccountKey {
    pair: KeyPair,
    pkcs8: String,
}

impl AccountKey {
    fn new(pair: KeyPair) -> Result<Arc<Self>> {
        let pkcs8 = base64url::encode(pair.to_pkcs8_der()?);
        Ok(Arc::new(Self { pair, pkcs8 }))
    }
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.pair.fmt(f)
    }
}

impl Account {
    /// Creates an account for `key`, or finds the one that already exists
    /// for it (RFC 8555 §7.3). With `eab = Some((key_id, mac_key))`, binds
    /// it to an account at the CA (external account binding, §7.3.4).
    ///
    /// Returns the handle and the account object as the server sent it.
    pub async fn create(
        client: &AcmeClient,
        key: KeyPair,
        new: &NewAccount,
        eab: Option<(&str, &[u8])>,
    ) -> Result<(Account, objects::Account)> {
        let url = &client.directory().new_account;
        let mut payload = new.clone();
        if let Some((key_id, mac_key)) = eab {
            let binding = eab::sign(key_id, mac_key, key.public_jwk(), url);
            payload.external_account_binding =
                Some(serde_json::to_value(binding).expect("a flattened JWS always serializes"));
        }
        let received = client
            .post(url, Signer::Jwk(&key), &to_json(&payload), None)
            .await?;
        let account_url = received.location()?;
        let object = received.json()?;
        let account = Account {
            client: client.clone(),
            key: AccountKey::new(key)?,
            url: account_url.into(),
        };
        Ok((account, object))
    }

    /// Looks up the account that `key` belongs to without creating one
    /// (`onlyReturnExisting`, RFC 8555 §7.3.1). `None` if the server
    /// answers `accountDoesNotExist`.
    pub async fn find_existing(client: &AcmeClient, key: KeyPair) -> Result<Option<Account>> {
        let new = NewAccount {
            only_return_existing: true,
            ..NewAccount::default()
        };
        match Self::create(client, key, &new, None).await {
            Ok((account, _)) => Ok(Some(account)),
            Err(e) if e.is_problem(&ProblemType::AccountDoesNotExist) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Restores an account from saved [`AccountCredentials`]. Refuses
    /// credentials made for a different directory URL than `client`'s, so
    /// that one CA's account key is never sent to another.
    pub fn from_credentials(client: &AcmeClient, credentials: AccountCredentials) -> Result<Self> {
        if credentials.directory_url != client.directory_url() {
            return Err(Error::Config(format!(
                "the account credentials are for {}, not {}",
                credentials.directory_url,
                client.directory_url()
            )));
        }
        let der = base64url::decode(&credentials.key_pkcs8)
            .map_err(|_| Error::Config("the account credentials' key is not base64url".into()))?;
        Ok(Self {
            client: client.clone(),
            key: AccountKey::new(KeyPair::from_pkcs8_der(&der)?)?,
            url: credentials.account_url.into(),
        })
    }

    /// The credentials to save to use this account again.
    pub fn credentials(&self) -> AccountCredentials {
        AccountCredentials {
            directory_url: self.client.directory_url().to_owned(),
            account_url: self.url.to_string(),
            key_pkcs8: self.key.pkcs8.clone(),
        }
    }

    /// The account URL (RFC 8555 §7.3).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The account key.
    pub fn key(&self) -> &KeyPair {
        &self.key.pair
    }

    /// The client this account talks through.
    pub fn client(&self) -> &AcmeClient {
        &self.client
    }

    /// Fetches the account object (RFC 8555 §7.3.3, POST-as-GET).
    pub async fn info(&self) -> Result<objects::Account> {
        self.post_as_get(&self.url).await?.json()
    }

    /// Replaces the account's contact URLs (RFC 8555 §7.3.2); an empty
    /// list removes them all.
    pub async fn update_contact(&self, contact: Vec<String>) -> Result<objects::Account> {
        let update = AccountUpdate {
            contact: Some(contact),
            ..AccountUpdate::default()
        };
        self.post(&self.url, &update).await?.json()
    }

    /// Deactivates the account for good (RFC 8555 §7.3.6). The server
    /// refuses every later request signed by it.
    pub async fn deactivate(&self) -> Result<objects::Account> {
        self.post(&self.url, &AccountUpdate::deactivate())
            .await?
            .json()
    }

    /// Rolls the account over to `new_key` (RFC 8555 §7.3.5): an inner JWS
    /// signed by the new key, carrying the account URL and the old key,
    /// inside an outer JWS signed by the old key. On success this handle
    /// signs with the new key; clones made earlier keep the old one, which
    /// the server no longer accepts.
    pub async fn change_key(&mut self, new_key: KeyPair) -> Result<()> {
        let url = self.client.directory().key_change.clone();
        let inner_payload = KeyChange {
            account: self.url.to_string(),
            old_key: self.key().public_jwk().to_json(),
        };
        let inner_header = SigningHeader {
            kid: None,
            nonce: None,
            url: &url,
        };
        let inner = FlattenedJws::sign(&new_key, inner_header, &to_json(&inner_payload))?;
        let new_key = AccountKey::new(new_key)?;
        self.client
            .post(&url, self.signer(), inner.to_json_string().as_bytes(), None)
            .await?;
        self.key = new_key;
        Ok(())
    }

    /// Asks for a certificate for `request.identifiers` (RFC 8555 §7.4).
    pub async fn new_order(&self, request: &objects::NewOrder) -> Result<Order> {
        let url = &self.client.directory().new_order;
        let received = self.post(url, request).await?;
        let order_url = received.location()?;
        let state = received.json()?;
        Ok(Order::new(
            self.clone(),
            order_url,
            state,
            received.retry_after(),
        ))
    }

    /// Fetches an existing order by URL (RFC 8555 §7.4, POST-as-GET).
    pub async fn order(&self, url: &str) -> Result<Order> {
        let received = self.post_as_get(url).await?;
        let state = received.json()?;
        Ok(Order::new(
            self.clone(),
            url.to_owned(),
            state,
            received.retry_after(),
        ))
    }

    /// Fetches an authorization by URL (RFC 8555 §7.5, POST-as-GET).
    pub async fn authorization(&self, url: &str) -> Result<Authorization> {
        let state = self.post_as_get(url).await?.json()?;
        Ok(Authorization {
            url: url.to_owned(),
            state,
        })
    }

    /// Tells the server a challenge is ready to be validated: POSTs `{}` to
    /// its URL (RFC 8555 §7.5.1). Provision the response first.
    pub async fn respond(&self, challenge_url: &str) -> Result<objects::Challenge> {
        self.client
            .post(challenge_url, self.signer(), b"{}", None)
            .await?
            .json()
    }

    /// Polls an authorization until it is no longer `pending` (RFC 8555
    /// §7.5.1), with backoff, `Retry-After` and the client's deadline.
    /// `valid` is returned; any other final status is
    /// [`Error::AuthorizationFailed`], naming the identifier and carrying
    /// the failed challenge's error.
    pub async fn poll_authorization(&self, authz_url: &str) -> Result<objects::Authorization> {
        let mut poller = Poller::new(self.client.options());
        loop {
            let received = self.post_as_get(authz_url).await?;
            let authz: objects::Authorization = received.json()?;
            match authz.status {
                AuthorizationStatus::Valid => return Ok(authz),
                AuthorizationStatus::Pending => {
                    let identifier = &authz.identifier;
                    poller
                        .wait(authz_url, received.retry_after(), || {
                            format!("the authorization for {identifier} is still pending")
                        })
                        .await?;
                }
                status => {
                    return Err(Error::AuthorizationFailed {
                        problem: authz
                            .challenges
                            .iter()
                            .find_map(|c| c.error.clone().map(Box::new)),
                        identifier: authz.identifier,
                        url: authz_url.to_owned(),
                        status,
                    });
                }
            }
        }
    }

    /// Revokes a certificate this account holds, or holds authorizations
    /// for (RFC 8555 §7.6). `reason` is a CRL reason code (RFC 5280
    /// §5.3.1); `None` leaves it unspecified.
    pub async fn revoke(&self, cert_der: &[u8], reason: Option<u8>) -> Result<()> {
        let url = &self.client.directory().revoke_cert;
        self.post(url, &revocation(cert_der, reason)).await?;
        Ok(())
    }

    /// Every order URL of this account, following the orders list's
    /// `Link: rel="next"` pages (RFC 8555 §7.1.2.1).
    pub async fn orders(&self) -> Result<Vec<String>> {
        let account = self.info().await?;
        let mut next = account
            .orders
            .ok_or_else(|| Error::invalid(&self.url, "the account object has no \"orders\" URL"))?;
        let mut seen = HashSet::new();
        let mut orders = Vec::new();
        loop {
            if !seen.insert(next.clone()) || seen.len() > MAX_ORDER_PAGES {
                return Err(Error::invalid(
                    &next,
                    "the orders list's pages link in a circle or never end",
                ));
            }
            let received = self.post_as_get(&next).await?;
            let page: objects::OrdersList = received.json()?;
            orders.extend(page.orders);
            match received.links("next").into_iter().next() {
                Some(url) => next = url,
                None => return Ok(orders),
            }
        }
    }

    pub(crate) fn signer(&self) -> Signer<'_> {
        Signer::Account {
            key: &self.key.pair,
            url: &self.url,
        }
    }

    /// POST-as-GET (RFC 8555 §6.3).
    pub(crate) async fn post_as_get(&self, url: &str) -> Result<Received> {
        self.client.post(url, self.signer(), b"", None).await
    }

    /// POST-as-GET with an `Accept` header.
    pub(crate) async fn post_as_get_accepting(
        &self,
        url: &str,
        accept: &'static str,
    ) -> Result<Received> {
        self.client
            .post(url, self.signer(), b"", Some(accept))
            .await
    }

    /// POST with a JSON payload.
    pub(crate) async fn post<T: Serialize>(&self, url: &str, payload: &T) -> Result<Received> {
        self.client
            .post(url, self.signer(), &to_json(payload), None)
            .await
    }
}

/// Revokes a certificate with a request signed by the certificate's own
/// key, embedded as `jwk` (RFC 8555 §7.6): no account needed.
pub async fn revoke_with_certificate_key(
    client: &AcmeClient,
    cert_der: &[u8],
    cert_key: &KeyPair,
    reason: Option<u8>,
) -> Result<()> {
    let url = &client.directory().revoke_cert;
    let payload = to_json(&revocation(cert_der, reason));
    client
        .post(url, Signer::Jwk(cert_key), &payload, None)
        .await?;
    Ok(())
}

/// The key authorization for `token` under `account`'s key:
/// `token || "." || base64url(JWK thumbprint)` (RFC 8555 §8.1).
pub fn key_authorization(account: &Account, token: &Token) -> String {
    cairn_proto::challenge::key_authorization(token, account.key().public_jwk())
}

fn revocation(cert_der: &[u8], reason: Option<u8>) -> objects::Revocation {
    objects::Revocation {
        certificate: base64url::encode(cert_der),
        reason,
    }
}

/// Serializes a request payload. The payload types are plain structs of
/// strings, numbers and JSON values, which always serialize.
fn to_json<T: Serialize>(payload: &T) -> Vec<u8> {
    serde_json::to_vec(payload).expect("ACME request payloads always serialize")
}
