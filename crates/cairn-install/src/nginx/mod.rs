//! nginx: the configuration language, block choice and edits.
//!
//! # Parsing
//!
//! [`parse`] reads one file into a lossless tree ([`Document`]): every
//! byte belongs to a token, the whitespace and comments before it, a `;`,
//! or a brace, so [`Document::print`] gives back the input exactly. The
//! tokenizer is nginx's own (see [`parse`]'s module), so `map`, `geo`,
//! `types` and `if (...)` bodies, quoted strings with escapes, `${var}`
//! and comments holding braces or quotes read as nginx reads them.
//! [`NginxConfig::load`] follows `include`s: a relative path starts at the
//! directory of the main file (nginx's conf prefix, not `-p`); a glob
//! (`*`, `?`, `[`) that matches nothing is fine, as for nginx; a plain
//! path that does not exist is an error at the line naming it.
//!
//! # Which block serves a name
//!
//! As nginx chooses: among the `server` blocks of `http { }` listening on
//! the port (a block without `listen` listens on `*:80`), the exact
//! `server_name` first, then the longest leading wildcard (`*.example.com`,
//! `.example.com`), then the longest trailing wildcard (`www.example.*`),
//! then the first regex (`~^...`, case-insensitive) in configuration order;
//! when no name matches, the port's `default_server` (else its first
//! block). Two blocks with the same best name on the same address and port
//! (nginx warns "conflicting server name" and ignores one) are refused
//! with [`Error::Ambiguous`](crate::Error::Ambiguous), listing both
//! `file:line`s.
//!
//! # What `deploy` changes
//!
//! For each name, the block serving it on the HTTPS port (`--https-port`,
//! 443), else the block serving it by name on the HTTP port, gets, at the
//! end of its body and indented like its other lines:
//!
//! - `listen PORT ssl;` for each address it listens on (`listen [::]:PORT
//!   ssl;` when it listens on IPv6); a block already listening on the port
//!   gets no second `listen` (one without `ssl` gets the flag added);
//! - `ssl_certificate` and `ssl_certificate_key` (existing ones are
//!   replaced in place, wherever they are, an included file too);
//! - `include .../options-ssl-nginx.conf;` unless the block sets one of its
//!   directives itself (nginx rejects them twice in one block).
//!
//! A name no block names gets a new `server { }` block after the HTTP
//! port's default server, a copy of that block's body without its
//! `listen`, `server_name` and certificate lines (so HTTPS serves what HTTP
//! served for the name), or at the end of `http { }` when no block listens
//! on the HTTP port. Every added or changed line ends with `# managed by
//! cairn`; every other byte stays. Paths are quoted when they hold spaces,
//! quotes, `;`, `#` or braces; a path with `$` is refused (nginx would read
//! a variable).
//!
//! # Enhancements
//!
//! - Redirect: the HTTP block for the name gets `if ($scheme != "https") {
//!   return 301 https://$host$request_uri; }` (with `:PORT` when the HTTPS
//!   port is not 443) — one line that works whether the block serves HTTP
//!   alone or both; with no HTTP block by that name, a new block listening
//!   on the HTTP port only redirects. A block that already redirects is
//!   left alone.
//! - HSTS: `add_header Strict-Transport-Security "max-age=31536000"
//!   always;` in the HTTPS block; UIR: `add_header Content-Security-Policy
//!   "upgrade-insecure-requests" always;`. A block with its own header of
//!   that name is left alone. (nginx's `add_header` in a `location`
//!   replaces the server's: add it there too if your locations set
//!   headers.)
//! - OCSP stapling is refused: cairn's CAs publish CRLs, not OCSP.
//!
//! # http-01 through nginx
//!
//! `serve_http01` adds `location ^~ /.well-known/acme-challenge/ {
//! default_type text/plain; alias DIR/; }` to the block nginx uses for the
//! name on the HTTP port; `^~` wins over regex locations. With the
//! redirect in the same block, the challenge is redirected to HTTPS and
//! answered there by the same block.
//!
//! Every edit is idempotent: the same `deploy`/`enhance` twice leaves the
//! second [`changes`](crate::Config::changes) empty.

mod choose;
mod config;
pub mod parse;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub use config::NginxConfig;
pub use parse::{Document, ParseError, parse};

use crate::{Config, Error, WebServer};

/// The shared TLS options file every HTTPS block includes (Mozilla
/// "intermediate": TLS 1.2 and 1.3; no dhparam, the ciphers are all
/// ECDHE).
pub const OPTIONS_SSL_NGINX: &str = "\
# TLS settings cairn includes in the HTTPS server blocks it manages.
# Mozilla \"intermediate\": TLS 1.2 and 1.3, forward-secret AEAD ciphers.
# cairn records this file's hash and never overwrites a copy you edited.
ssl_protocols TLSv1.2 TLSv1.3;
ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
ssl_prefer_server_ciphers off;
ssl_session_cache shared:cairn_ssl:10m;
ssl_session_timeout 1d;
ssl_session_tickets off;
";

/// One nginx: its configuration file, the program that controls it and
/// how to call it. Programs run directly (no shell).
#[derive(Debug, Clone)]
pub struct Nginx {
    server_root: PathBuf,
    conf: PathBuf,
    ctl: PathBuf,
    prefix: Option<PathBuf>,
    sleep: Duration,
}

impl Nginx {
    /// The nginx whose configuration is `server_root/nginx.conf`
    /// (`--nginx-server-root`, `/etc/nginx` on Debian), controlled by
    /// `nginx` from `PATH`, with nginx's compiled-in prefix, waiting 1 s
    /// after a reload (certbot's default).
    pub fn new(server_root: impl Into<PathBuf>) -> Self {
        let server_root = server_root.into();
        Nginx {
            conf: server_root.join("nginx.conf"),
            server_root,
            ctl: PathBuf::from("nginx"),
            prefix: None,
            sleep: Duration::from_secs(1),
        }
    }

    /// The program that tests and reloads (`--nginx-ctl`).
    pub fn with_ctl(mut self, ctl: impl Into<PathBuf>) -> Self {
        self.ctl = ctl.into();
        self
    }

    /// The main configuration file, when not `server_root/nginx.conf`.
    pub fn with_conf(mut self, conf: impl Into<PathBuf>) -> Self {
        self.conf = conf.into();
        self
    }

    /// nginx's prefix (`-p`), where relative `pid`, log and `root` paths
    /// start. Leave it unset for a system nginx: passing a prefix the
    /// running server was not started with would send the reload to the
    /// wrong pid file.
    pub fn with_prefix(mut self, prefix: impl Into<PathBuf>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// How long to wait after a reload for the workers to pick up the new
    /// configuration (`--nginx-sleep-seconds`).
    pub fn with_sleep(mut self, sleep: Duration) -> Self {
        self.sleep = sleep;
        self
    }

    /// The main configuration file.
    pub fn conf(&self) -> &Path {
        &self.conf
    }

    /// Parses the configuration with includes followed, as the concrete
    /// type (see [`WebServer::load`]).
    pub fn load_config(&self) -> Result<NginxConfig, Error> {
        NginxConfig::load(&self.conf)
    }

    fn command(&self, extra: &[&str]) -> (Command, String) {
        let mut cmd = Command::new(&self.ctl);
        cmd.args(extra).arg("-c").arg(&self.conf);
        if let Some(p) = &self.prefix {
            cmd.arg("-p").arg(p);
        }
        let mut line = self.ctl.display().to_string();
        for a in cmd.get_args() {
            line.push(' ');
            line.push_str(&a.to_string_lossy());
        }
        (cmd, line)
    }
}

impl WebServer for Nginx {
    fn name(&self) -> &'static str {
        "nginx"
    }

    fn server_root(&self) -> &Path {
        &self.server_root
    }

    fn load(&self) -> Result<Box<dyn Config>, Error> {
        Ok(Box::new(self.load_config()?))
    }

    fn config_test(&self) -> Result<(), Error> {
        let (mut cmd, program) = self.command(&["-t", "-q"]);
        let out = cmd.output().map_err(|e| Error::Command {
            program: program.clone(),
            message: format!("cannot run it: {e} (set --nginx-ctl to nginx's path)"),
        })?;
        if out.status.success() {
            return Ok(());
        }
        let mut output = String::from_utf8_lossy(&out.stderr).into_owned();
        output.push_str(&String::from_utf8_lossy(&out.stdout));
        Err(Error::ConfigTest {
            program,
            output: output.trim_end().to_owned(),
        })
    }

    fn reload(&self) -> Result<(), Error> {
        let (mut cmd, program) = self.command(&["-s", "reload"]);
        let out = cmd.output().map_err(|e| Error::Command {
            program: program.clone(),
            message: format!("cannot run it: {e} (set --nginx-ctl to nginx's path)"),
        })?;
        if !out.status.success() {
            let mut message = format!("{}: ", out.status);
            message.push_str(String::from_utf8_lossy(&out.stderr).trim_end());
            return Err(Error::Command { program, message });
        }
        std::thread::sleep(self.sleep);
        Ok(())
    }

    fn options_file_name(&self) -> &'static str {
        "options-ssl-nginx.conf"
    }

    fn options_file_contents(&self) -> &'static str {
        OPTIONS_SSL_NGINX
    }
}
