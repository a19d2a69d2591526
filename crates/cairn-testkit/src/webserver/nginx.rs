//! A private nginx (`$CAIRN_NGINX`) with its whole prefix in a test's temp
//! dir, on loopback ports, in the foreground, stopped on drop.
//!
//! Layout of the prefix `dir` (Debian-like, so installers meet includes):
//!
//! ```text
//! dir/nginx.conf             main config: pid, error_log, temp paths, daemon off,
//!                            `include dir/sites-enabled/*;` inside `http { }`
//! dir/mime.types             copied from /etc/nginx when present
//! dir/sites-enabled/default  the test's `http_body`
//! dir/html/index.html        "hello from nginx" unless it exists
//! dir/logs/                  error.log, access.log, nginx.pid
//! dir/temp/                  client_body, proxy, fastcgi, uwsgi, scgi
//! ```
//!
//! In `http_body`, `{http_port}` and `{https_port}` become two free loopback
//! ports and `{prefix}` the prefix dir. The same instance is controlled from
//! outside with `nginx -c CONF -p PREFIX -e ERROR_LOG -s reload` (see
//! [`Nginx::ctl_args`]); as root the config says `user root;` so workers can
//! read the temp dir.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::process::{
    KillOnDrop, ReservedPort, START_TIMEOUT, children_of, log_tail, peer_program, running_as_root,
    wait_for_result, wait_for_tcp,
};

/// A `server { }` block serving `{prefix}/html` on `{http_port}` for
/// `localhost` and `example.test`.
pub const DEFAULT_SITE: &str = "server {
    listen 127.0.0.1:{http_port};
    server_name localhost example.test;
    root {prefix}/html;
}
";

/// A running private nginx.
#[derive(Debug)]
pub struct Nginx {
    program: PathBuf,
    prefix: PathBuf,
    http_port: u16,
    https_port: u16,
    process: KillOnDrop,
}

impl Nginx {
    /// Writes the prefix into `dir` (which must exist), starts `$CAIRN_NGINX`
    /// there with `http_body` as the only site, and waits until the master
    /// wrote its pid file and `{http_port}`/`{https_port}`, where the body
    /// uses them, accept connections. Panics when `CAIRN_NGINX` is unset.
    pub fn start(dir: &Path, http_body: &str) -> anyhow::Result<Nginx> {
        Nginx::start_with(&peer_program("CAIRN_NGINX"), dir, http_body)
    }

    /// [`Nginx::start`] with an explicit program.
    pub fn start_with(program: &Path, dir: &Path, http_body: &str) -> anyhow::Result<Nginx> {
        let prefix = dir
            .canonicalize()
            .with_context(|| format!("nginx prefix {} does not exist", dir.display()))?;
        let (http, https) = (ReservedPort::new()?, ReservedPort::new()?);
        let (http_port, https_port) = (http.port(), https.port());
        write_prefix(&prefix, http_body, http_port, https_port)?;
        let (http_port, https_port) = (http.release(), https.release());
        let child = Command::new(program)
            .args(ctl_args(&prefix))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot run {}", program.display()))?;
        let mut nginx = Nginx {
            program: program.to_owned(),
            prefix,
            http_port,
            https_port,
            process: KillOnDrop::new("nginx", child),
        };
        let pid_file = nginx.pid_file();
        let error_log = nginx.error_log();
        let process = &mut nginx.process;
        let started = wait_for_result("the nginx pid file", START_TIMEOUT, || {
            process.check_running()?;
            Ok(std::fs::read_to_string(&pid_file).is_ok_and(|pid| !pid.trim().is_empty()))
        })
        .and_then(|()| {
            for (placeholder, port) in [("{http_port}", http_port), ("{https_port}", https_port)] {
                if http_body.contains(placeholder) {
                    wait_for_tcp(SocketAddr::from(([127, 0, 0, 1], port)), START_TIMEOUT)?;
                }
            }
            Ok(())
        });
        if let Err(error) = started {
            bail!(
                "nginx did not start: {error:#}\n{}",
                log_tail(&error_log, 20)
            );
        }
        Ok(nginx)
    }

    /// The prefix dir (`-p`).
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// The main config file (`-c`).
    pub fn conf_path(&self) -> PathBuf {
        self.prefix.join("nginx.conf")
    }

    /// The file holding the test's `http_body`.
    pub fn site_path(&self) -> PathBuf {
        self.prefix.join("sites-enabled/default")
    }

    /// The error log (`-e` and `error_log`).
    pub fn error_log(&self) -> PathBuf {
        self.prefix.join("logs/error.log")
    }

    /// The pid file of the master process.
    pub fn pid_file(&self) -> PathBuf {
        self.prefix.join("logs/nginx.pid")
    }

    /// The program (`$CAIRN_NGINX`).
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The port `{http_port}` stood for.
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The port `{https_port}` stood for.
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

    /// `-c CONF -p PREFIX -e ERROR_LOG`: what any `nginx -t`/`-s reload` of
    /// this instance needs.
    pub fn ctl_args(&self) -> Vec<OsString> {
        ctl_args(&self.prefix)
    }

    /// `nginx -t` on this instance's config: `Err` with nginx's message when
    /// the config is invalid.
    pub fn test(&self) -> anyhow::Result<()> {
        let output = Command::new(&self.program)
            .args(self.ctl_args())
            .arg("-t")
            .output()
            .with_context(|| format!("cannot run {}", self.program.display()))?;
        if !output.status.success() {
            bail!(
                "nginx -t failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    /// `nginx -s reload`, then waits until only new workers run (the reload
    /// took effect) or the error log shows the new config was refused.
    pub fn reload(&mut self) -> anyhow::Result<()> {
        self.process.check_running()?;
        let master = self.process.id();
        let old_workers = children_of(master);
        let log_before = std::fs::read_to_string(self.error_log())
            .unwrap_or_default()
            .len();
        let output = Command::new(&self.program)
            .args(self.ctl_args())
            .args(["-s", "reload"])
            .output()
            .with_context(|| format!("cannot run {}", self.program.display()))?;
        if !output.status.success() {
            bail!(
                "nginx -s reload failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let error_log = self.error_log();
        wait_for_result("nginx to reload", START_TIMEOUT, || {
            let log = std::fs::read_to_string(&error_log).unwrap_or_default();
            if let Some(refused) = log
                .get(log_before..)
                .and_then(|new| new.lines().find(|line| line.contains("[emerg]")))
            {
                bail!("nginx refused the new config: {refused}");
            }
            // Done when only new workers run: old ones may accept until
            // they get their QUIT.
            let workers = children_of(master);
            Ok(!workers.is_empty() && workers.iter().all(|w| !old_workers.contains(w)))
        })
    }

    /// The master's process id.
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Stops nginx (also done on drop).
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.process.kill()?;
        Ok(())
    }
}

fn ctl_args(prefix: &Path) -> Vec<OsString> {
    vec![
        "-c".into(),
        prefix.join("nginx.conf").into(),
        "-p".into(),
        prefix.into(),
        "-e".into(),
        prefix.join("logs/error.log").into(),
    ]
}

fn write_prefix(
    prefix: &Path,
    http_body: &str,
    http_port: u16,
    https_port: u16,
) -> anyhow::Result<()> {
    for sub in [
        "logs",
        "html",
        "sites-enabled",
        "temp/client_body",
        "temp/proxy",
        "temp/fastcgi",
        "temp/uwsgi",
        "temp/scgi",
    ] {
        std::fs::create_dir_all(prefix.join(sub))?;
    }
    let p = prefix.display();
    let mime = if Path::new("/etc/nginx/mime.types").is_file() {
        std::fs::copy("/etc/nginx/mime.types", prefix.join("mime.types"))?;
        format!("    include {p}/mime.types;\n")
    } else {
        String::new()
    };
    let user = if running_as_root() {
        "user root;\n"
    } else {
        ""
    };
    let conf = format!(
        "# Written by cairn-testkit: a private nginx for one test.
{user}daemon off;
master_process on;
worker_processes 1;
pid {p}/logs/nginx.pid;
error_log {p}/logs/error.log notice;

events {{
    worker_connections 1024;
}}

http {{
{mime}    default_type application/octet-stream;
    access_log {p}/logs/access.log;
    client_body_temp_path {p}/temp/client_body;
    proxy_temp_path {p}/temp/proxy;
    fastcgi_temp_path {p}/temp/fastcgi;
    uwsgi_temp_path {p}/temp/uwsgi;
    scgi_temp_path {p}/temp/scgi;
    include {p}/sites-enabled/*;
}}
"
    );
    std::fs::write(prefix.join("nginx.conf"), conf)?;
    let body = http_body
        .replace("{http_port}", &http_port.to_string())
        .replace("{https_port}", &https_port.to_string())
        .replace("{prefix}", &p.to_string());
    std::fs::write(prefix.join("sites-enabled/default"), body)?;
    let index = prefix.join("html/index.html");
    if !index.exists() {
        std::fs::write(index, "hello from nginx\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::http_get;

    #[test]
    #[cfg_attr(not(peer_nginx), ignore = "needs CAIRN_NGINX")]
    fn nginx_starts_serves_reloads_refuses_a_bad_config_and_stops() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut nginx = Nginx::start(dir.path(), DEFAULT_SITE).expect("nginx starts");
        let (status, body) = http_get(nginx.http_addr(), "example.test", "/").expect("GET");
        assert_eq!((status, body.as_str()), (200, "hello from nginx\n"));
        nginx.test().expect("the config is valid");

        let changed = DEFAULT_SITE
            .replace("{http_port}", &nginx.http_port().to_string())
            .replace("{prefix}", &nginx.prefix().display().to_string())
            .replace(
                "root ",
                "location = /new { return 200 \"reloaded\\n\"; }\n    root ",
            );
        std::fs::write(nginx.site_path(), changed).expect("write the site");
        nginx.reload().expect("reload");
        let (status, body) = http_get(nginx.http_addr(), "example.test", "/new").expect("GET");
        assert_eq!((status, body.as_str()), (200, "reloaded\n"));

        std::fs::write(nginx.site_path(), "server { listen nonsense; }").expect("write");
        assert!(nginx.test().is_err(), "nginx -t sees the bad config");
        let error = nginx.reload().expect_err("the bad config is refused");
        assert!(error.to_string().contains("[emerg]"), "{error:#}");
        let (status, _) = http_get(nginx.http_addr(), "example.test", "/new").expect("GET");
        assert_eq!(status, 200, "the old config still serves");

        let addr = nginx.http_addr();
        nginx.stop().expect("stop");
        assert!(http_get(addr, "example.test", "/").is_err(), "stopped");
    }
}
