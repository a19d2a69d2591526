//! A private Apache httpd (Debian's `apache2`) with its whole server root in a
//! test's temp dir, on loopback ports, in the foreground, stopped on drop.
//!
//! `$CAIRN_APACHE` names Debian's `apache2ctl`; the daemon is the `apache2`
//! next to it. Layout of the server root `dir` (Debian's, so installers meet
//! `sites-enabled`, `mods-enabled` and `ports.conf`):
//!
//! ```text
//! dir/apache2.conf            main config (ServerRoot dir, PidFile, Mutex, logs,
//!                             IncludeOptional mods-enabled/*.load|*.conf,
//!                             Include ports.conf, IncludeOptional sites-enabled/*.conf)
//! dir/envvars                 APACHE_RUN_USER/GROUP, APACHE_PID_FILE, APACHE_RUN_DIR,
//!                             APACHE_LOCK_DIR, APACHE_LOG_DIR, all inside dir
//! dir/ports.conf              Listen 127.0.0.1:{http_port}
//! dir/mods-available/         a copy of /etc/apache2/mods-available
//! dir/mods-enabled/           symlinks to mods-available, Debian's defaults
//!                             (ssl is available, not enabled, as on Debian)
//! dir/sites-enabled/000-default.conf   the test's `body`
//! dir/html/index.html         "hello from apache" unless it exists
//! dir/logs/, dir/run/, dir/lock/
//! ```
//!
//! In `body` and in `ports.conf`, `{http_port}`, `{https_port}` and `{root}`
//! are replaced. Controlling it from outside, both of these work:
//!
//! - `apache2 -d DIR -k graceful` (and `-t`) with the [`Apache::envvars`]
//!   set in the environment (mods' configs read `${APACHE_RUN_DIR}`);
//! - Debian's `apache2ctl` with `APACHE_CONFDIR=DIR` in the environment: it
//!   sources `DIR/envvars` and adds `-d DIR` itself, so `apache2ctl -t` and
//!   `apache2ctl graceful` act on this instance. (`apache2ctl start` would
//!   hand over to systemd on a systemd machine; the launcher never uses it.)
//!
//! Apache refuses to serve as root, so as root the workers run as `www-data`
//! and the server root is made world-readable (0755).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::process::{
    KillOnDrop, ReservedPort, START_TIMEOUT, children_of, log_tail, peer_program, running_as_root,
    wait_for_result, wait_for_tcp,
};

/// A `<VirtualHost>` serving `{root}/html` on `{http_port}` for `localhost`
/// and `example.test`.
pub const DEFAULT_SITE: &str = "<VirtualHost 127.0.0.1:{http_port}>
    ServerName example.test
    ServerAlias localhost
    DocumentRoot {root}/html
    <Directory {root}/html>
        Require all granted
    </Directory>
</VirtualHost>
";

/// The modules enabled in `mods-enabled`: Debian's defaults.
pub const DEFAULT_MODULES: &[&str] = &[
    "mpm_event",
    "access_compat",
    "alias",
    "authn_core",
    "authz_core",
    "authz_host",
    "dir",
    "env",
    "filter",
    "mime",
    "reqtimeout",
    "setenvif",
];

/// A running private Apache.
#[derive(Debug)]
pub struct Apache {
    ctl: PathBuf,
    httpd: PathBuf,
    root: PathBuf,
    http_port: u16,
    https_port: u16,
    process: KillOnDrop,
}

impl Apache {
    /// Writes the server root into `dir` (which must exist), starts Apache
    /// there with `body` as the only site and [`DEFAULT_MODULES`], and waits
    /// until it accepts connections on `{http_port}`. Panics when
    /// `CAIRN_APACHE` is unset.
    pub fn start(dir: &Path, body: &str) -> anyhow::Result<Apache> {
        Apache::start_with(&peer_program("CAIRN_APACHE"), dir, body, DEFAULT_MODULES)
    }

    /// [`Apache::start`] with an explicit `apache2ctl` and module list (e.g.
    /// add `"ssl"` and `"socache_shmcb"` for a site that already has TLS).
    pub fn start_with(
        ctl: &Path,
        dir: &Path,
        body: &str,
        modules: &[&str],
    ) -> anyhow::Result<Apache> {
        let httpd = ctl.with_file_name("apache2");
        if !httpd.is_file() {
            bail!(
                "{} has no apache2 next to it (expected {})",
                ctl.display(),
                httpd.display()
            );
        }
        let root = dir
            .canonicalize()
            .with_context(|| format!("Apache server root {} does not exist", dir.display()))?;
        let (http, https) = (ReservedPort::new()?, ReservedPort::new()?);
        write_root(&root, body, modules, http.port(), https.port())?;
        let (http_port, https_port) = (http.release(), https.release());
        let child = Command::new(&httpd)
            .envs(envvars(&root))
            .arg("-d")
            .arg(&root)
            .arg("-DFOREGROUND")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(root.join("logs/stderr.log"))?)
            .spawn()
            .with_context(|| format!("cannot run {}", httpd.display()))?;
        let mut apache = Apache {
            ctl: ctl.to_owned(),
            httpd,
            root,
            http_port,
            https_port,
            process: KillOnDrop::new("apache2", child),
        };
        let addr = apache.http_addr();
        let process = &mut apache.process;
        let started = wait_for_result("Apache to start", START_TIMEOUT, || {
            process.check_running()?;
            Ok(std::net::TcpStream::connect(addr).is_ok())
        });
        if let Err(error) = started {
            bail!(
                "Apache did not start: {error:#}\n{}\n{}",
                log_tail(&apache.root.join("logs/stderr.log"), 20),
                log_tail(&apache.error_log(), 20)
            );
        }
        Ok(apache)
    }

    /// The server root (`-d`, `APACHE_CONFDIR`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The main config file.
    pub fn conf_path(&self) -> PathBuf {
        self.root.join("apache2.conf")
    }

    /// The file holding the test's `body`.
    pub fn site_path(&self) -> PathBuf {
        self.root.join("sites-enabled/000-default.conf")
    }

    /// The error log.
    pub fn error_log(&self) -> PathBuf {
        self.root.join("logs/error.log")
    }

    /// `apache2ctl` (`$CAIRN_APACHE`).
    pub fn ctl(&self) -> &Path {
        &self.ctl
    }

    /// The `apache2` daemon.
    pub fn httpd(&self) -> &Path {
        &self.httpd
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

    /// The environment `apache2` needs for this root (what `dir/envvars`
    /// exports), plus `APACHE_CONFDIR` for `apache2ctl`.
    pub fn envvars(&self) -> Vec<(OsString, OsString)> {
        envvars(&self.root)
    }

    /// A `Command` for `apache2ctl` that acts on this instance
    /// (`APACHE_CONFDIR` set); add the arguments (`-t`, `graceful`).
    pub fn ctl_command(&self) -> Command {
        let mut command = Command::new(&self.ctl);
        command.envs(self.envvars());
        command
    }

    /// `apache2ctl -t`: `Err` with Apache's message when the config is
    /// invalid.
    pub fn test(&self) -> anyhow::Result<()> {
        let output = self
            .ctl_command()
            .arg("-t")
            .output()
            .with_context(|| format!("cannot run {}", self.ctl.display()))?;
        if !output.status.success() {
            bail!(
                "apache2ctl -t failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    /// `apache2ctl graceful`, then waits until new worker processes run (the
    /// new config is in effect). A config that fails `-t` is an `Err` and the
    /// old config keeps serving.
    pub fn reload(&mut self) -> anyhow::Result<()> {
        self.process.check_running()?;
        let parent = self.process.id();
        let old_workers = children_of(parent);
        let output = self
            .ctl_command()
            .arg("graceful")
            .output()
            .with_context(|| format!("cannot run {}", self.ctl.display()))?;
        if !output.status.success() {
            bail!(
                "apache2ctl graceful failed: {}{}",
                String::from_utf8_lossy(&output.stdout).trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let process = &mut self.process;
        wait_for_result("Apache to reload", START_TIMEOUT, || {
            process.check_running()?;
            let workers = children_of(parent);
            Ok(!workers.is_empty() && workers.iter().all(|w| !old_workers.contains(w)))
        })?;
        wait_for_tcp(self.http_addr(), START_TIMEOUT)
    }

    /// The parent process id.
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Stops Apache (also done on drop).
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.process.kill()?;
        Ok(())
    }
}

fn envvars(root: &Path) -> Vec<(OsString, OsString)> {
    let user = if running_as_root() {
        "www-data".to_owned()
    } else {
        std::env::var("USER").unwrap_or_else(|_| "nobody".to_owned())
    };
    vec![
        ("APACHE_CONFDIR".into(), root.into()),
        ("APACHE_RUN_USER".into(), user.clone().into()),
        ("APACHE_RUN_GROUP".into(), user.into()),
        (
            "APACHE_PID_FILE".into(),
            root.join("run/apache2.pid").into(),
        ),
        ("APACHE_RUN_DIR".into(), root.join("run").into()),
        ("APACHE_LOCK_DIR".into(), root.join("lock").into()),
        ("APACHE_LOG_DIR".into(), root.join("logs").into()),
        ("LANG".into(), "C".into()),
    ]
}

fn write_root(
    root: &Path,
    body: &str,
    modules: &[&str],
    http_port: u16,
    https_port: u16,
) -> anyhow::Result<()> {
    for sub in [
        "logs",
        "run",
        "lock",
        "html",
        "mods-available",
        "mods-enabled",
        "sites-enabled",
    ] {
        std::fs::create_dir_all(root.join(sub))?;
    }
    let available = Path::new("/etc/apache2/mods-available");
    for entry in std::fs::read_dir(available)
        .with_context(|| format!("cannot read {}", available.display()))?
    {
        let entry = entry?;
        std::fs::copy(
            entry.path(),
            root.join("mods-available").join(entry.file_name()),
        )?;
    }
    for module in modules {
        for ext in ["load", "conf"] {
            let name = format!("{module}.{ext}");
            let target = root.join("mods-available").join(&name);
            let link = root.join("mods-enabled").join(&name);
            if target.is_file() && !link.exists() {
                std::os::unix::fs::symlink(&target, link)?;
            } else if ext == "load" && !target.is_file() {
                bail!("no Apache module {module} in {}", available.display());
            }
        }
    }
    let r = root.display().to_string();
    let substitute = |text: &str| {
        text.replace("{http_port}", &http_port.to_string())
            .replace("{https_port}", &https_port.to_string())
            .replace("{root}", &r)
    };
    let mut envvars_file =
        String::from("# Written by cairn-testkit: a private Apache for one test.\n");
    for (name, value) in envvars(root) {
        if name != "APACHE_CONFDIR" {
            envvars_file.push_str(&format!(
                "export {}={}\n",
                name.to_string_lossy(),
                value.to_string_lossy()
            ));
        }
    }
    std::fs::write(root.join("envvars"), envvars_file)?;
    std::fs::write(
        root.join("apache2.conf"),
        format!(
            "# Written by cairn-testkit: a private Apache for one test.
ServerRoot \"{r}\"
ServerName localhost
DefaultRuntimeDir {r}/run
PidFile {r}/run/apache2.pid
Mutex file:{r}/lock default
Timeout 30
User ${{APACHE_RUN_USER}}
Group ${{APACHE_RUN_GROUP}}
ErrorLog {r}/logs/error.log
LogLevel warn
LogFormat \"%h %l %u %t \\\"%r\\\" %>s %O\" common
CustomLog {r}/logs/access.log common
IncludeOptional mods-enabled/*.load
IncludeOptional mods-enabled/*.conf
Include ports.conf
<Directory />
    AllowOverride None
    Require all denied
</Directory>
AccessFileName .htaccess
IncludeOptional sites-enabled/*.conf
"
        ),
    )?;
    std::fs::write(
        root.join("ports.conf"),
        substitute("Listen 127.0.0.1:{http_port}\n"),
    )?;
    std::fs::write(
        root.join("sites-enabled/000-default.conf"),
        substitute(body),
    )?;
    let index = root.join("html/index.html");
    if !index.exists() {
        std::fs::write(&index, "hello from apache\n")?;
    }
    if running_as_root() {
        // Workers run as www-data: they must reach the document root.
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755))?;
        std::fs::set_permissions(root.join("html"), std::fs::Permissions::from_mode(0o755))?;
        std::fs::set_permissions(&index, std::fs::Permissions::from_mode(0o644))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::http_get;

    #[test]
    #[cfg_attr(not(peer_apache), ignore = "needs CAIRN_APACHE")]
    fn apache_starts_serves_reloads_refuses_a_bad_config_and_stops() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut apache = Apache::start(dir.path(), DEFAULT_SITE).expect("Apache starts");
        let (status, body) = http_get(apache.http_addr(), "example.test", "/").expect("GET");
        assert_eq!((status, body.as_str()), (200, "hello from apache\n"));
        apache.test().expect("apache2ctl -t passes");

        std::fs::write(apache.root().join("html/new.html"), "reloaded\n").expect("write");
        let site = std::fs::read_to_string(apache.site_path()).expect("read");
        let changed = site
            .replace(
                "</VirtualHost>",
                "    Alias /fresh {root}/html/new.html\n</VirtualHost>",
            )
            .replace("{root}", &apache.root().display().to_string());
        std::fs::write(apache.site_path(), changed).expect("write the site");
        let (status, _) = http_get(apache.http_addr(), "example.test", "/fresh").expect("GET");
        assert_eq!(status, 404, "not yet reloaded");
        apache.reload().expect("graceful");
        let (status, body) = http_get(apache.http_addr(), "example.test", "/fresh").expect("GET");
        assert_eq!((status, body.as_str()), (200, "reloaded\n"));

        std::fs::write(apache.site_path(), "<VirtualHost nonsense\n").expect("write");
        assert!(apache.test().is_err(), "apache2ctl -t sees the bad config");
        assert!(apache.reload().is_err(), "graceful refuses the bad config");
        let (status, _) = http_get(apache.http_addr(), "example.test", "/fresh").expect("GET");
        assert_eq!(status, 200, "the old config still serves");

        let addr = apache.http_addr();
        apache.stop().expect("stop");
        assert!(http_get(addr, "example.test", "/").is_err(), "stopped");
    }
}
