//! Waiting between polls of an order or authorization (RFC 8555 §7.5.1,
//! §7.4): exponential backoff, overridden by the server's `Retry-After`
//! within a cap, under one overall deadline.

use std::time::Duration;

use tokio::time::Instant;

use crate::client::ClientOptions;
use crate::error::{Error, Result};

/// The first wait when the server gives no `Retry-After`.
pub(crate) const INITIAL_BACKOFF: Duration = Duration::from_millis(250);
/// The backoff doubles up to this.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The shortest wait, even if the server says `Retry-After: 0`, so that a
/// server that always says so is not hammered.
pub(crate) const MIN_WAIT: Duration = Duration::from_millis(50);

/// One polling session.
#[derive(Debug)]
pub(crate) struct Poller {
    started: Instant,
    deadline: Duration,
    backoff: Duration,
    max_retry_after: Duration,
}

impl Poller {
    pub(crate) fn new(options: &ClientOptions) -> Self {
        Self {
            started: Instant::now(),
            deadline: options.poll_deadline,
            backoff: INITIAL_BACKOFF,
            max_retry_after: options.max_retry_after,
        }
    }

    /// Sleeps before the next poll of `url`, or fails with
    /// [`Error::Timeout`] once the deadline has passed. The last sleep is
    /// cut short at the deadline, so one poll happens at the deadline.
    pub(crate) async fn wait(
        &mut self,
        url: &str,
        retry_after: Option<Duration>,
        waiting_for: impl FnOnce() -> String,
    ) -> Result<()> {
        let elapsed = self.started.elapsed();
        if elapsed >= self.deadline {
            return Err(Error::Timeout {
                url: url.to_owned(),
                waited: elapsed,
                detail: waiting_for(),
            });
        }
        let delay = next_delay(self.backoff, retry_after, self.max_retry_after)
            .min(self.deadline - elapsed);
        tracing::trace!(%url, ?delay, "polling again after a pause");
        tokio::time::sleep(delay).await;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        Ok(())
    }
}

/// The pause before the next poll: the server's `Retry-After` if it gave
/// one, capped at `max_retry_after` and at least [`MIN_WAIT`]; otherwise
/// the current backoff.
pub(crate) fn next_delay(
    backoff: Duration,
    retry_after: Option<Duration>,
    max_retry_after: Duration,
) -> Duration {
    match retry_after {
        Some(wait) => wait.min(max_retry_after).max(MIN_WAIT),
        None => backoff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_wins_within_the_cap() {
        let cap = Duration::from_secs(60);
        let backoff = Duration::from_secs(2);
        assert_eq!(next_delay(backoff, None, cap), backoff);
        assert_eq!(
            next_delay(backoff, Some(Duration::from_secs(7)), cap),
            Duration::from_secs(7)
        );
        assert_eq!(
            next_delay(backoff, Some(Duration::from_secs(86_400)), cap),
            cap
        );
        assert_eq!(
            next_delay(backoff, Some(Duration::from_secs(u64::MAX)), cap),
            cap
        );
        assert_eq!(next_delay(backoff, Some(Duration::ZERO), cap), MIN_WAIT);
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_to_the_maximum_and_the_deadline_holds() {
        let options = ClientOptions {
            poll_deadline: Duration::from_secs(20),
            ..ClientOptions::default()
        };
        let mut poller = Poller::new(&options);
        let mut pauses = Vec::new();
        let result = loop {
            let before = Instant::now();
            match poller
                .wait("http://ca.test/x", None, || "ready".into())
                .await
            {
                Ok(()) => pauses.push(before.elapsed()),
                Err(e) => break e,
            }
        };
        let ms = |ms| Duration::from_millis(ms);
        assert_eq!(
            pauses,
            [
                ms(250),
                ms(500),
                ms(1000),
                ms(2000),
                ms(4000),
                ms(5000),
                ms(5000),
                // 17.75 s gone: the last pause stops at the deadline.
                ms(2250),
            ]
        );
        assert!(
            matches!(&result, Error::Timeout { waited, .. } if *waited == Duration::from_secs(20)),
            "{result:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_huge_retry_after_is_capped() {
        let options = ClientOptions {
            max_retry_after: Duration::from_secs(60),
            ..ClientOptions::default()
        };
        let mut poller = Poller::new(&options);
        let before = Instant::now();
        poller
            .wait(
                "http://ca.test/x",
                Some(Duration::from_secs(1 << 40)),
                || "valid".into(),
            )
            .await
            .expect("within the deadline");
        assert_eq!(before.elapsed(), Duration::from_secs(60));
    }
}
