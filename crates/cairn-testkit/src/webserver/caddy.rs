//! A private Caddy (`$CAIRN_CADDY`) with its config, storage, HOME and
//! XDG dirs in a test's temp dir, on loopback ports, stopped on drop.
//!
//! The launcher writes `dir/Caddyfile`: a global options block
//! (`admin 127.0.0.1:{admin_port}`, `http_port`, `https_port`,
//! `storage file_system dir/storage`, then the test's `globals`, e.g.
//! `acme_ca URL`, `acme_ca_root FILE`, `email ...`) and the test's `body`
//! (site blocks). In both, `{http_port}`, `{https_port}` and `{dir}` are
//! replaced (Caddy's own `{placeholders}` are left alone). It runs
//! `caddy run --config dir/Caddyfile --adapter caddyfile` with `HOME`,
//! `XDG_DATA_HOME` and `XDG_CONFIG_HOME` inside `dir`. Remember that in a
//! Caddyfile each `{` must end its line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::process::{
    KillOnDrop, ReservedPort, START_TIMEOUT, log_tail, peer_program, wait_for_result, wait_for_tcp,
};

/// A site answering plain HTTP on `{http_port}` with a fixed body.
pub const PLAIN_HTTP_SITE: &str = "http://:{http_port} {
    respond \"hello from caddy\"
}
";

/// A running private Caddy.
#[derive(Debug)]
pub struct Caddy {
    program: PathBuf,
    dir: PathBuf,
    http_port: u16,
    https_port: u16,
    admin_port: u16,
    process: KillOnDrop,
}

impl Caddy {
    /// Writes `dir/Caddyfile` (`dir` must exist), starts `$CAIRN_CADDY`
    /// on fresh loopback ports and waits until its admin endpoint and the
    /// ports the `body` names accept connections. Panics when `CAIRN_CADDY`
    /// is unset.
    pub fn start(dir: &Path, globals: &str, body: &str) -> anyhow::Result<Caddy> {
        let (http, https) = (ReservedPort::new()?, ReservedPort::new()?);
        Caddy::start_on(dir, http.release(), https.release(), globals, body)
    }

    /// [`Caddy::start`] with given `http_port` and `https_port` (e.g. the
    /// ports a CA validates http-01 and tls-alpn-01 on).
    pub fn start_on(
        dir: &Path,
        http_port: u16,
        https_port: u16,
        globals: &str,
        body: &str,
    ) -> anyhow::Result<Caddy> {
        Caddy::start_with(
            &peer_program("CAIRN_CADDY"),
            dir,
            (http_port, https_port),
            globals,
            body,
        )
    }

    /// [`Caddy::start_on`] with an explicit program.
    pub fn start_with(
        program: &Path,
        dir: &Path,
        (http_port, https_port): (u16, u16),
        globals: &str,
        body: &str,
    ) -> anyhow::Result<Caddy> {
        let dir = dir
            .canonicalize()
            .with_context(|| format!("Caddy dir {} does not exist", dir.display()))?;
        let admin = ReservedPort::new()?;
        let admin_port = admin.port();
        for sub in ["home", "data", "config", "storage"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let d = dir.display().to_string();
        let substitute = |text: &str| {
            text.replace("{http_port}", &http_port.to_string())
                .replace("{https_port}", &https_port.to_string())
                .replace("{dir}", &d)
        };
        let caddyfile = format!(
            "# Written by cairn-testkit: a private Caddy for one test.
{{
    admin 127.0.0.1:{admin_port}
    http_port {http_port}
    https_port {https_port}
    storage file_system {d}/storage
{}}}

{}",
            substitute(globals),
            substitute(body)
        );
        std::fs::write(dir.join("Caddyfile"), caddyfile)?;
        drop(admin);
        let log = dir.join("caddy.log");
        let log_file = std::fs::File::create(&log)?;
        let child = Command::new(program)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(dir.join("Caddyfile"))
            .env("HOME", dir.join("home"))
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot run {}", program.display()))?;
        let mut caddy = Caddy {
            program: program.to_owned(),
            dir,
            http_port,
            https_port,
            admin_port,
            process: KillOnDrop::new("caddy", child),
        };
        let mut wanted = vec![admin_port];
        for (placeholder, port) in [("{http_port}", http_port), ("{https_port}", https_port)] {
            if body.contains(placeholder) {
                wanted.push(port);
            }
        }
        let process = &mut caddy.process;
        let started = wait_for_result("Caddy to listen", START_TIMEOUT, || {
            process.check_running()?;
            Ok(wanted.iter().all(|port| {
                std::net::TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], *port))).is_ok()
            }))
        });
        if let Err(error) = started {
            bail!("Caddy did not start: {error:#}\n{}", log_tail(&log, 30));
        }
        Ok(caddy)
    }

    /// The temp dir holding everything.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The Caddyfile.
    pub fn caddyfile(&self) -> PathBuf {
        self.dir.join("Caddyfile")
    }

    /// Caddy's stdout and stderr (its JSON log).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("caddy.log")
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log_path(), lines)
    }

    /// Where Caddy keeps certificates and ACME accounts.
    pub fn storage(&self) -> PathBuf {
        self.dir.join("storage")
    }

    /// The port `{http_port}` stood for (Caddy's `http_port`).
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The port `{https_port}` stood for (Caddy's `https_port`).
    pub fn https_port(&self) -> u16 {
        self.https_port
    }

    /// `127.0.0.1:{http_port}`.
    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.http_port))
    }

    /// `127.0.0.1:{https_port}`.
    pub fn https_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.https_port))
    }

    /// `caddy reload` of the (edited) Caddyfile through the admin endpoint;
    /// Caddy answers once the new config is running, or with its error.
    pub fn reload(&mut self) -> anyhow::Result<()> {
        self.process.check_running()?;
        let output = Command::new(&self.program)
            .args(["reload", "--adapter", "caddyfile", "--address"])
            .arg(format!("127.0.0.1:{}", self.admin_port))
            .arg("--config")
            .arg(self.caddyfile())
            .env("HOME", self.dir.join("home"))
            .output()
            .with_context(|| format!("cannot run {}", self.program.display()))?;
        if !output.status.success() {
            bail!(
                "caddy reload failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    /// Waits until `addr` accepts connections (e.g. the HTTPS port).
    pub fn wait_for_port(&self, addr: SocketAddr) -> anyhow::Result<()> {
        wait_for_tcp(addr, START_TIMEOUT)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Stops Caddy (also done on drop).
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.process.kill()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::http_get;

    #[test]
    #[cfg_attr(not(peer_caddy), ignore = "needs CAIRN_CADDY")]
    fn caddy_starts_serves_reloads_refuses_a_bad_config_and_stops() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut caddy = Caddy::start(dir.path(), "", PLAIN_HTTP_SITE).expect("Caddy starts");
        let (status, body) = http_get(caddy.http_addr(), "example.test", "/").expect("GET");
        assert_eq!((status, body.as_str()), (200, "hello from caddy"));

        let caddyfile = std::fs::read_to_string(caddy.caddyfile()).expect("read");
        std::fs::write(
            caddy.caddyfile(),
            caddyfile.replace("hello from caddy", "reloaded"),
        )
        .expect("write");
        caddy.reload().expect("reload");
        let (_, body) = http_get(caddy.http_addr(), "example.test", "/").expect("GET");
        assert_eq!(body, "reloaded");

        std::fs::write(caddy.caddyfile(), caddyfile.replace("respond", "nonsense")).expect("write");
        assert!(caddy.reload().is_err(), "the bad config is refused");
        let (_, body) = http_get(caddy.http_addr(), "example.test", "/").expect("GET");
        assert_eq!(body, "reloaded", "the old config still serves");

        let addr = caddy.http_addr();
        caddy.stop().expect("stop");
        assert!(http_get(addr, "example.test", "/").is_err(), "stopped");
    }
}
