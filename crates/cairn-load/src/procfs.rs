//! What a process costs, from Linux's `/proc`: CPU time from
//! `/proc/PID/stat` (utime + stime, in clock ticks) and resident memory
//! from `/proc/PID/status` (`VmRSS`, and the peak `VmHWM`).

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;

/// How often [`RssSampler`] reads `VmRSS`.
const RSS_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// The clock ticks per second that `/proc/PID/stat` counts CPU time in.
/// Assumed when `getconf CLK_TCK` cannot be run: the value on every
/// common Linux architecture.
const DEFAULT_CLOCK_TICKS: u64 = 100;

/// A process to measure: `None` is this process (`/proc/self`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Process(pub(crate) Option<u32>);

impl Process {
    fn path(self, file: &str) -> PathBuf {
        match self.0 {
            Some(pid) => PathBuf::from(format!("/proc/{pid}/{file}")),
            None => PathBuf::from(format!("/proc/self/{file}")),
        }
    }

    /// User plus system CPU time used so far, in clock ticks.
    pub(crate) fn cpu_ticks(self) -> io::Result<u64> {
        let path = self.path("stat");
        let text = std::fs::read_to_string(&path)?;
        parse_stat_cpu_ticks(&text).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} has no utime and stime fields", path.display()),
            )
        })
    }

    /// A `/proc/PID/status` memory field (`"VmRSS"`, `"VmHWM"`) in bytes;
    /// `None` if the process is gone or the field is missing.
    pub(crate) fn status_bytes(self, field: &str) -> Option<u64> {
        let text = std::fs::read_to_string(self.path("status")).ok()?;
        parse_status_kib(&text, field).map(|kib| kib * 1024)
    }
}

/// Clock ticks per second (`getconf CLK_TCK`, asked once), and whether
/// that is what `getconf` said (`false`: [`DEFAULT_CLOCK_TICKS`] assumed).
pub(crate) fn clock_ticks_per_second() -> (u64, bool) {
    let asked = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<u64>().ok())
        .filter(|&ticks| ticks > 0);
    match asked {
        Some(ticks) => (ticks, true),
        None => (DEFAULT_CLOCK_TICKS, false),
    }
}

/// Samples a process's `VmRSS` every [`RSS_SAMPLE_INTERVAL`] in the
/// background and keeps the largest value seen.
#[derive(Debug)]
pub(crate) struct RssSampler {
    peak: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl RssSampler {
    /// Starts sampling on the current Tokio runtime.
    pub(crate) fn start(process: Process) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&peak);
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(RSS_SAMPLE_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Some(rss) = process.status_bytes("VmRSS") {
                    seen.fetch_max(rss, Ordering::Relaxed);
                }
            }
        });
        Self { peak, task }
    }

    /// Stops sampling; the largest `VmRSS` seen, in bytes (0 if none was read).
    pub(crate) fn stop(self) -> u64 {
        self.task.abort();
        self.peak.load(Ordering::Relaxed)
    }
}

/// utime + stime from the text of `/proc/PID/stat` (proc(5): fields 14
/// and 15). The command name, field 2, is in parentheses and may itself
/// hold spaces and parentheses, so fields are counted after the last `)`.
fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name: state (field 3) is index 0, so utime is index 11.
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A `Name:   123 kB` line of `/proc/PID/status`, in KiB.
fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_ticks_count_fields_after_the_name() {
        // A command name with a space and a parenthesis, as proc(5) warns.
        let stat = "4242 (tokio (x) y) S 1 4242 4242 0 -1 4194560 7000 0 3 0 \
                    250 75 0 0 20 0 9 0 12345 1000000 2000 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(325));
        assert_eq!(parse_stat_cpu_ticks("4242 (short) S 1 2"), None);
    }

    #[test]
    fn status_fields_read_in_kib() {
        let status = "Name:\tcairn-ca\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n";
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(40960));
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(51200));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn this_process_is_readable() {
        Process(None).cpu_ticks().expect("/proc/self/stat");
        assert!(Process(None).status_bytes("VmRSS").expect("VmRSS") > 0);
        let (ticks, _) = clock_ticks_per_second();
        assert!(ticks > 0);
    }
}
