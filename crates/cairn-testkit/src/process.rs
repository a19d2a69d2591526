//! Running peer programs in tests: a child that dies with its handle, the
//! program a `CAIRN_*` variable names, and polling for readiness with a
//! deadline (never a fixed sleep).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long launchers wait for a peer to start listening.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A child process that is killed and reaped when this handle is dropped.
#[derive(Debug)]
pub struct KillOnDrop {
    child: Child,
    name: String,
}

impl KillOnDrop {
    /// Takes ownership of `child`; `name` appears in error messages.
    pub fn new(name: impl Into<String>, child: Child) -> KillOnDrop {
        KillOnDrop {
            child,
            name: name.into(),
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child, e.g. to take its stdout.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// An error if the process has already exited (it was expected to run).
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => bail!("{} exited early: {status}", self.name),
            Err(error) => bail!("cannot check on {}: {error}", self.name),
        }
    }

    /// Stops the process: SIGTERM, up to 5 s to exit (so a server can stop
    /// its own workers), then SIGKILL; reaps it.
    pub fn kill(&mut self) -> std::io::Result<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Ok(status);
        }
        let terminated = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|status| status.success());
        if terminated {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(status)) = self.child.try_wait() {
                    return Ok(status);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // It may exit between the check and the kill: that error is harmless.
        let _ = self.child.kill();
        self.child.wait()
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// The program the environment variable `variable` names, for a test that is
/// not ignored: panics with what to do when it is unset or does not exist
/// (a peer test must fail, never pass, without its peer).
pub fn peer_program(variable: &str) -> PathBuf {
    let Some(path) = std::env::var_os(variable) else {
        panic!(
            "{variable} is not set: this test needs the peer; run \
             `eval \"$(scripts/install-peers)\"` or leave the test ignored"
        );
    };
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "{variable}={} does not exist; run scripts/install-peers",
        path.display()
    );
    path
}

/// Polls `condition` (at most every 50 ms) until it holds or `timeout`
/// passes; the error names `what` was awaited.
pub fn wait_for(
    what: &str,
    timeout: Duration,
    mut condition: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    wait_for_result(what, timeout, || Ok(condition()))
}

/// Like [`wait_for`], but `condition` can also give up early with an error
/// (e.g. the peer exited).
pub fn wait_for_result(
    what: &str,
    timeout: Duration,
    mut condition: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        if condition().with_context(|| format!("while waiting for {what}"))? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Waits until something accepts TCP connections on `addr`.
pub fn wait_for_tcp(addr: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
    wait_for(&format!("a listener on {addr}"), timeout, || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    })
}

/// A free TCP port on 127.0.0.1, for a peer that cannot bind port 0 and
/// report it. The port is held until [`ReservedPort::release`]; another
/// process may still take it between the release and the peer's bind, so
/// release it just before starting the peer.
#[derive(Debug)]
pub struct ReservedPort {
    listener: TcpListener,
    port: u16,
}

impl ReservedPort {
    /// Reserves a fresh port on 127.0.0.1.
    pub fn new() -> anyhow::Result<ReservedPort> {
        let listener =
            TcpListener::bind("127.0.0.1:0").context("cannot bind a port on 127.0.0.1")?;
        let port = listener.local_addr()?.port();
        Ok(ReservedPort { listener, port })
    }

    /// The port number.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Frees the port for the peer and returns its number.
    pub fn release(self) -> u16 {
        drop(self.listener);
        self.port
    }
}

/// The last `lines` lines of a log file, for error messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Whether this process runs as root (peers then need `user root` or to
/// drop privileges to a user that can read the temp dir).
pub fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .and_then(|line| line.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// The ids of the live processes whose parent is `parent` (from /proc).
pub fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // "pid (comm) state ppid ...": comm may hold spaces.
                    let after = &stat[stat.rfind(')')? + 1..];
                    after.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect()
}

/// One plain HTTP/1.1 GET to `addr` with `Host: host`; returns the status
/// code and the body. For checking what a web server serves.
pub fn http_get(addr: SocketAddr, host: &str, path: &str) -> anyhow::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .with_context(|| format!("no HTTP response from {addr}: {response:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("bad status line from {addr}: {head:?}"))?;
    Ok((status, body.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_for_returns_once_the_condition_holds_and_fails_after_the_deadline() {
        let mut calls = 0;
        wait_for("three calls", Duration::from_secs(5), || {
            calls += 1;
            calls == 3
        })
        .expect("holds on the third call");
        assert_eq!(calls, 3);
        let error =
            wait_for("never", Duration::from_millis(30), || false).expect_err("never holds");
        assert!(error.to_string().contains("waiting for never"), "{error}");
    }

    #[test]
    fn a_reserved_port_is_taken_until_released_and_tcp_waits_see_a_listener() {
        let reserved = ReservedPort::new().expect("a port");
        let addr = SocketAddr::from(([127, 0, 0, 1], reserved.port()));
        wait_for_tcp(addr, Duration::from_secs(1)).expect("the reservation listens");
        let port = reserved.release();
        assert!(wait_for_tcp(addr, Duration::from_millis(100)).is_err());
        TcpListener::bind(("127.0.0.1", port)).expect("the released port is free");
    }

    #[test]
    fn kill_on_drop_reaps_the_child_and_children_are_listed() {
        let child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep starts");
        let pid = child.id();
        assert!(children_of(std::process::id()).contains(&pid));
        let mut guard = KillOnDrop::new("sleep", child);
        guard.check_running().expect("still running");
        drop(guard);
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }
}
