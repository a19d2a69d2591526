//! An async ACME (RFC 8555) client on [`cairn_proto`]: the library the
//! `cairn` agent and the CA's integration tests get certificates with.
//!
//! Handles follow the RFC: an [`AcmeClient`] for a server's directory
//! (§7.1.1), an [`Account`] (§7.3) that places an [`Order`] (§7.4), whose
//! [`Authorization`]s (§7.5) carry the challenges (§8) that prove control
//! of each identifier, after which the order is finalized with a [`csr`]
//! and the [`CertificateChain`] downloaded and [`check_certificate`]d.
//!
//! What the client does for you, so the flow above can be written plainly:
//!
//! - Nonces (§6.5) come from every response's `Replay-Nonce` and are pooled;
//!   `newNonce` is asked only when the pool is empty. A `badNonce` refusal
//!   is retried with a fresh nonce, a bounded number of times.
//! - Polling (§7.5.1) backs off from 250 ms to 5 s, honours `Retry-After`
//!   (seconds or HTTP-date) up to a cap, and stops at a deadline.
//! - Response bodies are capped in size; problem documents (§6.7) become
//!   [`Error::Problem`] with the URL; HTML error pages and bad JSON become
//!   [`Error::InvalidResponse`] quoting the start of the body.
//! - A challenge token outside base64url is [`Error::BadToken`] before any
//!   file or record could be written for it.
//! - No URL is built by hand: all come from the directory and the server's
//!   `Location` and `Link` headers.
//!
//! ```no_run
//! use cairn_client::{Account, AcmeClient, ClientOptions, check_certificate, csr};
//! use cairn_proto::objects::{ChallengeType, NewAccount, NewOrder};
//! use cairn_proto::{Identifier, KeyPair, KeyType};
//!
//! # async fn run() -> Result<(), cairn_client::Error> {
//! let client = AcmeClient::new("https://ca.test/dir", ClientOptions::default()).await?;
//! let new = NewAccount {
//!     contact: vec!["mailto:admin@example.org".into()],
//!     terms_of_service_agreed: Some(true),
//!     ..NewAccount::default()
//! };
//! let key = KeyPair::generate(KeyType::EcdsaP256)?;
//! let (account, _) = Account::create(&client, key, &new, None).await?;
//!
//! let names = vec![Identifier::dns("www.example.org")];
//! let mut order = account.new_order(&NewOrder::new(names.clone())).await?;
//! for authz in order.authorizations().await? {
//!     if authz.state.status != cairn_proto::objects::AuthorizationStatus::Pending {
//!         continue;
//!     }
//!     let challenge = authz.prepare(&account, &ChallengeType::Http01)?;
//!     // Serve challenge.key_authorization at challenge.http01_path(), then:
//!     account.respond(&challenge.url).await?;
//!     account.poll_authorization(&authz.url).await?;
//! }
//! order.poll_ready().await?;
//! let cert_key = KeyPair::generate(KeyType::EcdsaP256)?;
//! order.finalize(&csr(&names, &cert_key)?).await?;
//! order.poll_valid().await?;
//! let chain = order.certificate().await?;
//! check_certificate(&chain, &names, &cert_key, None)?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod account;
mod authorization;
mod certificate;
mod client;
mod error;
mod headers;
pub mod lineage;
mod nonce;
mod order;
mod poll;
mod response;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

pub use account::{Account, AccountCredentials, key_authorization, revoke_with_certificate_key};
pub use authorization::{Authorization, PreparedChallenge, challenge_token};
pub use certificate::{CertificateChain, check_certificate, csr};
pub use client::{AcmeClient, ClientOptions};
pub use error::{Error, Result};
pub use order::Order;
