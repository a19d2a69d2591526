//! The result of a run, as one JSON object (`--json`) or a text table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::stats::{Endpoint, Latency};

/// Everything a run measured. Field names are the JSON keys.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) directory: String,
    pub(crate) challenge: &'static str,
    pub(crate) key_type: &'static str,
    pub(crate) accounts: u32,
    pub(crate) orders: u32,
    pub(crate) concurrency: u32,
    pub(crate) names_per_order: u32,
    /// Orders that ended with a certificate downloaded.
    pub(crate) issued: u64,
    /// Orders that failed at any step.
    pub(crate) failed: u64,
    /// Orders never started because the run stalled.
    pub(crate) not_started: u64,
    /// Set when no order finished for this many seconds (`--stall-seconds`)
    /// and the run stopped taking new orders: the server stopped answering.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) stalled_for_seconds: Option<u64>,
    /// Wall time of the issuance phase (account creation excluded).
    pub(crate) seconds: f64,
    /// `issued / seconds`.
    pub(crate) per_second: f64,
    /// Wall time of creating the accounts, before the issuance phase.
    pub(crate) account_seconds: f64,
    /// Per endpoint in flow order, for the text table.
    #[serde(skip)]
    pub(crate) latencies: Vec<(Endpoint, Latency)>,
    /// Per endpoint, milliseconds.
    pub(crate) latency_ms: BTreeMap<&'static str, Latency>,
    /// Failed orders by ACME problem type URI, or `transport`, `timeout`,
    /// `responder`, `other`.
    pub(crate) errors: BTreeMap<String, u64>,
    /// The first message seen for each key of `errors`.
    pub(crate) error_examples: BTreeMap<String, String>,
    /// This process's CPU time (user + system) over the issuance phase.
    pub(crate) client_cpu_seconds: f64,
    /// Clock ticks per second `/proc/PID/stat` counts in.
    pub(crate) clock_ticks_per_second: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) server: Option<ServerCost>,
}

/// What the server process cost over the issuance phase (`--server-pid`).
#[derive(Debug, Serialize)]
pub(crate) struct ServerCost {
    pub(crate) server_pid: u32,
    /// CPU time (user + system) over the issuance phase.
    pub(crate) server_cpu_seconds: f64,
    /// `server_cpu_seconds` per issued certificate, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) server_cpu_ms_per_issuance: Option<f64>,
    /// The larger of the process's lifetime peak (`VmHWM` at the end)
    /// and the largest `VmRSS` sampled every 100 ms during the run.
    pub(crate) server_peak_rss_bytes: u64,
    /// The largest `VmRSS` sampled during the issuance phase alone.
    pub(crate) server_run_max_rss_bytes: u64,
}

impl Report {
    /// Flattens `server` into the top-level object.
    pub(crate) fn to_json(&self) -> String {
        let mut value = serde_json::to_value(self).expect("a report always serializes");
        if let Some(object) = value.as_object_mut()
            && let Some(serde_json::Value::Object(server)) = object.remove("server")
        {
            object.extend(server);
        }
        value.to_string()
    }

    /// The text table.
    pub(crate) fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} issued, {} failed in {:.3} s: {:.2} certificates per second",
            self.issued, self.failed, self.seconds, self.per_second
        );
        if let Some(stall) = self.stalled_for_seconds {
            let _ = writeln!(
                out,
                "STALLED: no order finished for {stall} s; {} orders were not started",
                self.not_started
            );
        }
        let _ = writeln!(
            out,
            "{} orders of {} over {}, at most {} in flight, challenge {}, {} certificate keys",
            self.orders,
            plural(self.names_per_order, "name"),
            plural(self.accounts, "account"),
            self.concurrency,
            self.challenge,
            self.key_type
        );
        let _ = writeln!(
            out,
            "server {} ({} made beforehand in {:.3} s, not counted)",
            self.directory,
            plural(self.accounts, "account"),
            self.account_seconds
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<14} {:>8} {:>10} {:>10} {:>10} {:>10}",
            "latency (ms)", "requests", "p50", "p90", "p99", "max"
        );
        for (endpoint, l) in &self.latencies {
            let _ = writeln!(
                out,
                "{:<14} {:>8} {:>10.3} {:>10.3} {:>10.3} {:>10.3}",
                endpoint.name(),
                l.count,
                l.p50,
                l.p90,
                l.p99,
                l.max
            );
        }
        if !self.errors.is_empty() {
            let _ = writeln!(out, "\nfailed orders by error:");
            for (kind, count) in &self.errors {
                let _ = writeln!(out, "{count:>8}  {kind}");
                if let Some(example) = self.error_examples.get(kind) {
                    let _ = writeln!(out, "          e.g. {example}");
                }
            }
        }
        let _ = writeln!(out);
        let per_issuance = |cpu_seconds: f64| {
            if self.issued == 0 {
                String::new()
            } else {
                format!(
                    ", {:.2} ms per issuance",
                    cpu_seconds * 1000.0 / self.issued as f64
                )
            }
        };
        let _ = writeln!(
            out,
            "cpu            load generator {:.2} s{} (counted in 1/{} s ticks)",
            self.client_cpu_seconds,
            per_issuance(self.client_cpu_seconds),
            self.clock_ticks_per_second
        );
        if let Some(server) = &self.server {
            let _ = writeln!(
                out,
                "               server (pid {}) {:.2} s{}",
                server.server_pid,
                server.server_cpu_seconds,
                per_issuance(server.server_cpu_seconds)
            );
            let _ = writeln!(
                out,
                "memory         server peak RSS {:.1} MiB (largest sampled during the run {:.1} MiB)",
                mib(server.server_peak_rss_bytes),
                mib(server.server_run_max_rss_bytes)
            );
        }
        out
    }
}

/// `1 name`, `2 names`.
fn plural(count: u32, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Rounds to the microsecond (or millionth), for a readable JSON report.
pub(crate) fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
