//! The validation queue: how many validations run at once, in all and per
//! account, and how many an account may have waiting. Validations are
//! network work on behalf of an applicant; unbounded, one account
//! answering thousands of challenges would hold every connection and
//! timer of the CA and delay everyone else's.
//!
//! Fairness: a validation first takes a place among its account's running
//! validations (at most `per_account`), then one of the CA's (`running`),
//! each semaphore serving waiters in order. An account with a thousand
//! validations waiting thus has at most `per_account` of them in the CA's
//! line, and another account's validation is next after those.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_proto::ProblemType;
use cairn_store::AccountId;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::error::CaError;
use crate::va::QueueLimits;

/// When a client refused for a full queue should come back.
const RETRY_AFTER: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub(super) struct ValidationQueue {
    limits: QueueLimits,
    running: Arc<Semaphore>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    total: usize,
    accounts: HashMap<AccountId, Lane>,
}

/// One account's place in the queue.
#[derive(Debug)]
struct Lane {
    running: Arc<Semaphore>,
    waiting: usize,
}

impl ValidationQueue {
    pub(super) fn new(limits: QueueLimits) -> Arc<Self> {
        Arc::new(Self {
            running: Arc::new(Semaphore::new(limits.running.max(1))),
            limits,
            state: Mutex::default(),
        })
    }

    /// Reserves a place for one validation of `account`, or says why not.
    /// `force` (validations resumed at start) skips the bounds.
    pub(super) fn admit(
        self: &Arc<Self>,
        account: AccountId,
        force: bool,
    ) -> Result<Ticket, CaError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !force && state.total >= self.limits.waiting {
            return Err(CaError::new(
                ProblemType::ServerInternal,
                "the CA has too many validations waiting; try again shortly",
            )
            .with_status(503)
            .with_retry_after(RETRY_AFTER));
        }
        let per_account = self.limits.per_account.max(1);
        let lane = state.accounts.entry(account).or_insert_with(|| Lane {
            running: Arc::new(Semaphore::new(per_account)),
            waiting: 0,
        });
        if !force && lane.waiting >= self.limits.waiting_per_account {
            return Err(CaError::new(
                ProblemType::RateLimited,
                format!(
                    "this account already has {} validations running or waiting, the most \
                     this CA allows; answer more challenges once some have finished",
                    self.limits.waiting_per_account
                ),
            )
            .with_retry_after(RETRY_AFTER));
        }
        lane.waiting += 1;
        let lane_running = Arc::clone(&lane.running);
        state.total += 1;
        Ok(Ticket {
            queue: Arc::clone(self),
            account,
            lane_running,
        })
    }
}

/// A reserved place; [`Ticket::run`] spends it.
#[derive(Debug)]
pub(super) struct Ticket {
    queue: Arc<ValidationQueue>,
    account: AccountId,
    lane_running: Arc<Semaphore>,
}

impl Ticket {
    /// Runs `validation` in its own task once its account and the CA have
    /// a free place.
    pub(super) fn run(
        self,
        validation: impl Future<Output = ()> + Send + 'static,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            let ticket = self;
            let lane = Arc::clone(&ticket.lane_running).acquire_owned().await;
            let ca = Arc::clone(&ticket.queue.running).acquire_owned().await;
            validation.await;
            drop(ca);
            drop(lane);
        })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = self.queue.state.lock().unwrap_or_else(|p| p.into_inner());
        state.total -= 1;
        if let Some(lane) = state.accounts.get_mut(&self.account) {
            lane.waiting -= 1;
            if lane.waiting == 0 {
                state.accounts.remove(&self.account);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> QueueLimits {
        QueueLimits {
            running: 1,
            per_account: 1,
            waiting_per_account: 3,
            waiting: 5,
        }
    }

    #[tokio::test]
    async fn bounds_per_account_and_in_all() {
        let queue = ValidationQueue::new(limits());
        let a: Vec<_> = (0..3).map(|_| queue.admit(1, false).unwrap()).collect();
        let err = queue.admit(1, false).unwrap_err();
        assert_eq!(err.kind, ProblemType::RateLimited);
        let b: Vec<_> = (0..2).map(|_| queue.admit(2, false).unwrap()).collect();
        let err = queue.admit(3, false).unwrap_err();
        assert_eq!(err.status, Some(503));
        assert!(queue.admit(3, true).is_ok(), "resumed validations pass");
        drop(a);
        let _again = queue.admit(1, false).expect("room again");
        drop(b);
        let state = queue.state.lock().unwrap();
        assert_eq!(state.total, 1);
        assert_eq!(state.accounts.len(), 1, "empty lanes are removed");
    }

    /// One account with many validations waiting does not hold back
    /// another's: the other's runs second.
    #[tokio::test]
    async fn a_busy_account_does_not_starve_another() {
        let queue = ValidationQueue::new(QueueLimits {
            waiting_per_account: 100,
            waiting: 100,
            ..limits()
        });
        let order = Arc::new(Mutex::new(Vec::new()));
        let job = |name: &'static str| {
            let order = Arc::clone(&order);
            async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                order.lock().unwrap().push(name);
            }
        };
        let mut handles = Vec::new();
        for _ in 0..5 {
            handles.push(queue.admit(1, false).unwrap().run(job("a")));
        }
        tokio::task::yield_now().await;
        handles.push(queue.admit(2, false).unwrap().run(job("b")));
        for handle in handles {
            handle.await.unwrap();
        }
        let order = order.lock().unwrap();
        let b = order.iter().position(|n| *n == "b").unwrap();
        assert!(b <= 2, "{order:?}");
    }
}
