//! Orders (RFC 8555 §7.4): their authorizations, finalization, polling
//! and the certificate download.

use std::time::Duration;

use cairn_proto::base64url;
use cairn_proto::objects::{self, Finalize, OrderStatus};

use crate::account::Account;
use crate::authorization::Authorization;
use crate::certificate::CertificateChain;
use crate::error::{Error, Result};
use crate::poll::Poller;

/// The media type of a certificate chain download (RFC 8555 §7.4.2, §9.1).
const PEM_CHAIN: &str = "application/pem-certificate-chain";

/// Most alternate chains downloaded (RFC 8555 §7.4.2).
const MAX_ALTERNATES: usize = 8;

/// An order: its URL and latest state (RFC 8555 §7.1.3), and the account
/// that placed it, which signs every request about it.
#[derive(Clone, Debug)]
pub struct Order {
    account: Account,
    url: String,
    state: objects::Order,
    retry_after: Option<Duration>,
    finalized: bool,
}

impl Order {
    pub(crate) fn new(
        account: Account,
        url: String,
        state: objects::Order,
        retry_after: Option<Duration>,
    ) -> Self {
        Self {
            account,
            url,
            state,
            retry_after,
            finalized: false,
        }
    }

    /// The order URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The order object as last fetched.
    pub fn state(&self) -> &objects::Order {
        &self.state
    }

    /// The account this order belongs to.
    pub fn account(&self) -> &Account {
        &self.account
    }

    /// Fetches the order again (RFC 8555 §7.4, POST-as-GET).
    pub async fn refresh(&mut self) -> Result<&objects::Order> {
        let received = self.account.post_as_get(&self.url).await?;
        self.state = received.json()?;
        self.retry_after = received.retry_after();
        Ok(&self.state)
    }

    /// Fetches every authorization of the order (RFC 8555 §7.5), in the
    /// order the server lists them — which need not be the order of the
    /// identifiers: find each one with [`Authorization::is_for`].
    pub async fn authorizations(&self) -> Result<Vec<Authorization>> {
        let mut authorizations = Vec::with_capacity(self.state.authorizations.len());
        for url in &self.state.authorizations {
            authorizations.push(self.account.authorization(url).await?);
        }
        Ok(authorizations)
    }

    /// Sends the CSR (DER, signed by the certificate key) to the order's
    /// `finalize` URL (RFC 8555 §7.4). The server answers with the order,
    /// now `processing` or `valid`; [`Order::poll_valid`] waits for the
    /// latter. Build the CSR with [`crate::csr`].
    pub async fn finalize(&mut self, csr_der: &[u8]) -> Result<()> {
        let payload = Finalize {
            csr: base64url::encode(csr_der),
        };
        let received = self.account.post(&self.state.finalize, &payload).await?;
        self.state = received.json()?;
        self.retry_after = received.retry_after();
        self.finalized = true;
        Ok(())
    }

    /// Polls until the order is no longer `pending` (RFC 8555 §7.4,
    /// §7.1.6) and returns its status: `ready` when every authorization is
    /// valid (or `processing`/`valid` if it was finalized meanwhile). An
    /// `invalid` order is [`Error::OrderInvalid`] with the order's `error`;
    /// the client's poll deadline is [`Error::Timeout`].
    ///
    /// A `pending` order is fetched once straight away: it is usually
    /// polled right after its authorizations became valid, and its state
    /// here is from before that.
    pub async fn poll_ready(&mut self) -> Result<OrderStatus> {
        let mut poller = Poller::new(self.account.client().options());
        if self.state.status == OrderStatus::Pending {
            self.refresh().await?;
        }
        loop {
            match self.state.status {
                OrderStatus::Pending => {}
                OrderStatus::Invalid => return Err(self.invalid()),
                status => return Ok(status),
            }
            poller
                .wait(&self.url, self.retry_after, || {
                    "the order is still pending; are all its authorizations valid?".into()
                })
                .await?;
            self.refresh().await?;
        }
    }

    /// Polls until the order is `valid`, its certificate issued (RFC 8555
    /// §7.4). `processing` is waited out; `invalid` is
    /// [`Error::OrderInvalid`] with the order's `error`. A `pending` order,
    /// or a `ready` one this handle has not finalized, cannot become valid
    /// and is [`Error::UnexpectedStatus`].
    pub async fn poll_valid(&mut self) -> Result<()> {
        let mut poller = Poller::new(self.account.client().options());
        loop {
            match self.state.status {
                OrderStatus::Valid => return Ok(()),
                OrderStatus::Invalid => return Err(self.invalid()),
                OrderStatus::Processing => {}
                OrderStatus::Ready if self.finalized => {}
                status @ (OrderStatus::Pending | OrderStatus::Ready) => {
                    return Err(Error::UnexpectedStatus {
                        url: self.url.clone(),
                        status: status.to_string(),
                        expected: "finalize a ready order before waiting for it to be valid",
                    });
                }
            }
            poller
                .wait(&self.url, self.retry_after, || {
                    "the certificate is still being issued".into()
                })
                .await?;
            self.refresh().await?;
        }
    }

    /// Downloads the certificate chain of a `valid` order (RFC 8555
    /// §7.4.2), and every alternate chain the server links with
    /// `Link: rel="alternate"`. Check it with [`crate::check_certificate`]
    /// before installing it.
    pub async fn certificate(&self) -> Result<CertificateChain> {
        let url = self
            .state
            .certificate
            .as_deref()
            .ok_or_else(|| Error::UnexpectedStatus {
                url: self.url.clone(),
                status: self.state.status.to_string(),
                expected: "an order has a certificate only once it is valid",
            })?;
        let received = self.account.post_as_get_accepting(url, PEM_CHAIN).await?;
        let mut chain = parse_chain(url, received.text()?)?;
        for alternate in received.links("alternate").into_iter().take(MAX_ALTERNATES) {
            let alt = self
                .account
                .post_as_get_accepting(&alternate, PEM_CHAIN)
                .await?;
            let pem = parse_chain(&alternate, alt.text()?)?.pem;
            chain.alternates.push(pem);
        }
        Ok(chain)
    }

    fn invalid(&self) -> Error {
        Error::OrderInvalid {
            url: self.url.clone(),
            problem: self.state.error.clone().map(Box::new),
        }
    }
}

fn parse_chain(url: &str, pem: &str) -> Result<CertificateChain> {
    CertificateChain::from_pem(pem).map_err(|e| Error::invalid(url, e.to_string()))
}
