//! One complete issuance (RFC 8555 §7.1): newOrder, every authorization
//! answered and polled, the order polled to `ready`, finalized with a
//! fresh CSR, polled to `valid`, and the certificate downloaded — each
//! request timed.
//!
//! Polling is done here, not with cairn-client's `poll_*` helpers: those
//! sleep at least 250 ms (or the server's `Retry-After`) before asking
//! again, which would measure the client's patience rather than the
//! server. Here the state is fetched at once and, while unfinished, again
//! after [`FIRST_POLL_WAIT`], doubling up to [`MAX_POLL_WAIT`].

use std::time::{Duration, Instant};

use cairn_client::{Account, Order, PreparedChallenge, csr};
use cairn_proto::objects::{AuthorizationStatus, ChallengeStatus, NewOrder, OrderStatus};
use cairn_proto::{Identifier, KeyPair, KeyType, Problem};

use crate::responder::Responder;
use crate::stats::{Endpoint, Failure, Tally};

/// The first pause before polling an unfinished order or authorization again.
pub(crate) const FIRST_POLL_WAIT: Duration = Duration::from_millis(10);
/// The pause doubles up to this.
pub(crate) const MAX_POLL_WAIT: Duration = Duration::from_secs(1);

/// What every issuance has in common.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Names per order, each a random label under `domain`.
    pub(crate) names_per_order: usize,
    pub(crate) domain: String,
    /// The certificate key type (a fresh key per order).
    pub(crate) key_type: KeyType,
    /// How long one order may spend waiting on the server in all.
    pub(crate) poll_deadline: Duration,
    pub(crate) responder: Responder,
}

/// Runs one issuance for `account`, recording request latencies in `tally`.
pub(crate) async fn issue(
    plan: &Plan,
    account: &Account,
    tally: &mut Tally,
) -> Result<(), Failure> {
    let names: Vec<Identifier> = (0..plan.names_per_order)
        .map(|_| Identifier::dns(random_name(&plan.domain)))
        .collect();
    let deadline = Instant::now() + plan.poll_deadline;

    let started = Instant::now();
    let mut order = account.new_order(&NewOrder::new(names.clone())).await?;
    tally.record(Endpoint::NewOrder, started);

    for url in &order.state().authorizations {
        authorize(plan, account, url, deadline, tally).await?;
    }

    let mut poll = Poll::new(deadline);
    loop {
        refresh(&mut order, tally).await?;
        match order.state().status {
            OrderStatus::Pending => poll.pause(&order, "ready").await?,
            OrderStatus::Invalid => return Err(order_invalid(&order)),
            OrderStatus::Ready | OrderStatus::Processing | OrderStatus::Valid => break,
        }
    }

    if order.state().status == OrderStatus::Ready {
        let key_type = plan.key_type;
        let csr_names = names.clone();
        let csr_der = tokio::task::spawn_blocking(move || -> cairn_client::Result<Vec<u8>> {
            let key = KeyPair::generate(key_type)?;
            csr(&csr_names, &key)
        })
        .await
        .map_err(|e| Failure::new("other", format!("building the CSR: {e}")))??;
        let started = Instant::now();
        order.finalize(&csr_der).await?;
        tally.record(Endpoint::Finalize, started);
    }

    let mut poll = Poll::new(deadline);
    loop {
        match order.state().status {
            OrderStatus::Valid => break,
            OrderStatus::Invalid => return Err(order_invalid(&order)),
            OrderStatus::Processing | OrderStatus::Ready => {
                poll.pause(&order, "valid").await?;
                refresh(&mut order, tally).await?;
            }
            OrderStatus::Pending => {
                return Err(Failure::new(
                    "other",
                    format!(
                        "order {} went back to pending after it was finalized",
                        order.url()
                    ),
                ));
            }
        }
    }

    let started = Instant::now();
    order.certificate().await?;
    tally.record(Endpoint::Certificate, started);
    Ok(())
}

/// Fetches one authorization and, if pending, answers its challenge and
/// polls it until it is no longer pending.
async fn authorize(
    plan: &Plan,
    account: &Account,
    url: &str,
    deadline: Instant,
    tally: &mut Tally,
) -> Result<(), Failure> {
    let started = Instant::now();
    let mut authz = account.authorization(url).await?;
    tally.record(Endpoint::Authorization, started);
    match authz.state.status {
        AuthorizationStatus::Valid => return Ok(()),
        AuthorizationStatus::Pending => {}
        _ => return Err(authorization_failed(&authz)),
    }
    let challenge = authz.prepare(account, &plan.responder.challenge_type())?;
    plan.responder.provision(&challenge).await?;
    let result = answer(account, &mut authz, &challenge, deadline, tally).await;
    plan.responder.remove(&challenge).await;
    result
}

async fn answer(
    account: &Account,
    authz: &mut cairn_client::Authorization,
    challenge: &PreparedChallenge,
    deadline: Instant,
    tally: &mut Tally,
) -> Result<(), Failure> {
    let started = Instant::now();
    let answered = account.respond(&challenge.url).await?;
    tally.record(Endpoint::Challenge, started);
    // One valid challenge makes the authorization valid (RFC 8555 §7.1.6).
    if answered.status == ChallengeStatus::Valid {
        return Ok(());
    }
    let mut poll = Poll::new(deadline);
    loop {
        poll.pause_for(&authz.url, "its authorization to be validated")
            .await?;
        let started = Instant::now();
        authz.refresh(account).await?;
        tally.record(Endpoint::Authorization, started);
        match authz.state.status {
            AuthorizationStatus::Valid => return Ok(()),
            AuthorizationStatus::Pending => {}
            _ => return Err(authorization_failed(authz)),
        }
    }
}

async fn refresh(order: &mut Order, tally: &mut Tally) -> Result<(), Failure> {
    let started = Instant::now();
    order.refresh().await?;
    tally.record(Endpoint::Order, started);
    Ok(())
}

/// Waits between polls: [`FIRST_POLL_WAIT`], doubling to
/// [`MAX_POLL_WAIT`], never past the order's deadline.
struct Poll {
    wait: Duration,
    deadline: Instant,
}

impl Poll {
    fn new(deadline: Instant) -> Self {
        Self {
            wait: FIRST_POLL_WAIT,
            deadline,
        }
    }

    async fn pause(&mut self, order: &Order, waiting_for: &str) -> Result<(), Failure> {
        self.pause_for(order.url(), &format!("the order to be {waiting_for}"))
            .await
    }

    async fn pause_for(&mut self, url: &str, waiting_for: &str) -> Result<(), Failure> {
        let now = Instant::now();
        if now >= self.deadline {
            return Err(Failure::new(
                "timeout",
                format!("gave up on {url}: still waiting for {waiting_for}"),
            ));
        }
        tokio::time::sleep(self.wait.min(self.deadline - now)).await;
        self.wait = (self.wait * 2).min(MAX_POLL_WAIT);
        Ok(())
    }
}

/// A failed authorization, classed by the failed challenge's problem type.
fn authorization_failed(authz: &cairn_client::Authorization) -> Failure {
    let problem = authz.state.challenges.iter().find_map(|c| c.error.as_ref());
    failure_with_problem(
        problem,
        format!(
            "authorization {} for {} is {}",
            authz.url, authz.state.identifier, authz.state.status
        ),
    )
}

fn order_invalid(order: &Order) -> Failure {
    failure_with_problem(
        order.state().error.as_ref(),
        format!("order {} is invalid", order.url()),
    )
}

fn failure_with_problem(problem: Option<&Problem>, message: String) -> Failure {
    match problem {
        Some(problem) => Failure::new(problem.kind.uri(), format!("{message}: {problem}")),
        None => Failure::new("other", message),
    }
}

/// A random 16-hex-digit label under `domain`, so that no order reuses
/// an authorization another order made.
fn random_name(domain: &str) -> String {
    use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
    let mut bytes = [0u8; 8];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random number generator works");
    let label: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{label}.{domain}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_random_labels_under_the_domain() {
        let a = random_name("load.test");
        let b = random_name("load.test");
        assert_ne!(a, b);
        let label = a.strip_suffix(".load.test").expect("under the domain");
        assert_eq!(label.len(), 16);
        assert!(label.bytes().all(|c| c.is_ascii_hexdigit()), "{a}");
    }
}
