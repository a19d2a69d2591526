//! What the issuance workers record: one latency sample per request, by
//! endpoint, and the outcome of every order. Each worker keeps its own
//! [`Tally`], merged once at the end, so recording takes no lock.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

/// The requests timed, one histogram each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// POST newOrder (RFC 8555 §7.4).
    NewOrder,
    /// POST-as-GET of an authorization: the first fetch and every poll (§7.5).
    Authorization,
    /// POST `{}` to the challenge URL, asking for validation (§7.5.1).
    Challenge,
    /// POST-as-GET of the order, waiting for `ready` or `valid` (§7.4).
    Order,
    /// POST of the CSR to the order's finalize URL (§7.4).
    Finalize,
    /// POST-as-GET of the certificate chain and any alternates (§7.4.2).
    Certificate,
    /// One whole issuance, newOrder to certificate, waits included.
    Issuance,
}

impl Endpoint {
    /// Every endpoint, in the order of the flow.
    pub(crate) const ALL: [Endpoint; 7] = [
        Self::NewOrder,
        Self::Authorization,
        Self::Challenge,
        Self::Order,
        Self::Finalize,
        Self::Certificate,
        Self::Issuance,
    ];

    /// The name in the report.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::NewOrder => "new_order",
            Self::Authorization => "authorization",
            Self::Challenge => "challenge",
            Self::Order => "order",
            Self::Finalize => "finalize",
            Self::Certificate => "certificate",
            Self::Issuance => "issuance",
        }
    }
}

/// Why one order failed: a class to count it under and a message.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The ACME problem type URI, or `transport`, `timeout`, `responder`
    /// or `other`.
    pub(crate) kind: String,
    /// What went wrong, naming the URL or identifier.
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            message: message.into(),
        }
    }
}

impl From<cairn_client::Error> for Failure {
    fn from(error: cairn_client::Error) -> Self {
        use cairn_client::Error;
        let kind = match (&error, error.problem()) {
            (_, Some(problem)) => problem.kind.uri(),
            (Error::Http { .. }, None) => "transport".into(),
            (Error::Timeout { .. }, None) => "timeout".into(),
            _ => "other".into(),
        };
        Self::new(kind, error.to_string())
    }
}

/// One worker's record: latency samples in microseconds per endpoint,
/// orders issued and failed, failures by kind with the first message of
/// each kind.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    samples: [Vec<u32>; Endpoint::ALL.len()],
    pub(crate) issued: u64,
    pub(crate) failed: u64,
    pub(crate) errors: BTreeMap<String, u64>,
    pub(crate) error_examples: BTreeMap<String, String>,
}

impl Tally {
    /// Records the time since `started` for `endpoint`.
    pub(crate) fn record(&mut self, endpoint: Endpoint, started: Instant) {
        let micros = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
        self.samples[endpoint as usize].push(micros);
    }

    pub(crate) fn fail(&mut self, failure: Failure) {
        self.failed += 1;
        *self.errors.entry(failure.kind.clone()).or_default() += 1;
        self.error_examples
            .entry(failure.kind)
            .or_insert(failure.message);
    }

    pub(crate) fn merge(&mut self, other: Tally) {
        for (mine, theirs) in self.samples.iter_mut().zip(other.samples) {
            mine.extend(theirs);
        }
        self.issued += other.issued;
        self.failed += other.failed;
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
        for (kind, message) in other.error_examples {
            self.error_examples.entry(kind).or_insert(message);
        }
    }

    /// Percentiles of every endpoint with at least one sample, in flow order.
    pub(crate) fn latencies(&mut self) -> Vec<(Endpoint, Latency)> {
        Endpoint::ALL
            .iter()
            .filter_map(|&endpoint| {
                Latency::of(&mut self.samples[endpoint as usize]).map(|l| (endpoint, l))
            })
            .collect()
    }
}

/// Latency percentiles of one endpoint, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub(crate) struct Latency {
    /// Requests timed.
    pub(crate) count: usize,
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
}

impl Latency {
    /// Sorts `micros` and reads nearest-rank percentiles; `None` if empty.
    fn of(micros: &mut [u32]) -> Option<Self> {
        micros.sort_unstable();
        let max = *micros.last()?;
        let at = |p: f64| {
            // Nearest rank: the smallest sample with at least p% at or below it.
            let rank = (p / 100.0 * micros.len() as f64).ceil() as usize;
            millis(micros[rank.clamp(1, micros.len()) - 1])
        };
        Some(Self {
            count: micros.len(),
            p50: at(50.0),
            p90: at(90.0),
            p99: at(99.0),
            max: millis(max),
        })
    }
}

/// Microseconds as milliseconds, to the microsecond.
fn millis(micros: u32) -> f64 {
    f64::from(micros) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut micros: Vec<u32> = (1..=100).rev().map(|ms| ms * 1000).collect();
        let l = Latency::of(&mut micros).expect("samples");
        assert_eq!(l.count, 100);
        assert_eq!((l.p50, l.p90, l.p99, l.max), (50.0, 90.0, 99.0, 100.0));

        let l = Latency::of(&mut [1500]).expect("one sample");
        assert_eq!((l.p50, l.p99, l.max), (1.5, 1.5, 1.5));
        assert_eq!(Latency::of(&mut []), None);
    }

    #[test]
    fn tallies_merge_and_keep_the_first_message_per_kind() {
        let mut a = Tally::default();
        a.fail(Failure::new("transport", "first"));
        a.issued = 2;
        let mut b = Tally::default();
        b.fail(Failure::new("transport", "second"));
        b.fail(Failure::new("urn:ietf:params:acme:error:badNonce", "stale"));
        b.record(Endpoint::NewOrder, Instant::now());
        a.merge(b);
        assert_eq!((a.issued, a.failed), (2, 3));
        assert_eq!(a.errors["transport"], 2);
        assert_eq!(a.error_examples["transport"], "first");
        let latencies = a.latencies();
        assert_eq!(latencies.len(), 1);
        assert_eq!(latencies[0].0, Endpoint::NewOrder);
    }

    #[test]
    fn client_errors_are_classed_by_problem_type() {
        let problem = cairn_proto::Problem::new(cairn_proto::ProblemType::BadNonce, "stale");
        let error = cairn_client::Error::Problem {
            problem: Box::new(problem),
            url: "https://ca.test/acme/new-order".into(),
        };
        let failure = Failure::from(error);
        assert_eq!(failure.kind, "urn:ietf:params:acme:error:badNonce");
        assert!(failure.message.contains("new-order"), "{}", failure.message);
        let failure = Failure::from(cairn_client::Error::Config("x".into()));
        assert_eq!(failure.kind, "other");
    }
}
