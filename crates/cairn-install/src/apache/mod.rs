//! Apache httpd: the configuration language, virtual host choice and edits.
//!
//! - `syntax`: a lossless parser (directives, `<Section>` nesting, comment
//!   lines, quotes, `\` continuations); printing gives back every byte.
//! - `tree`: the configuration as httpd reads it — `Include` /
//!   `IncludeOptional` globs relative to `ServerRoot`, `Define` and
//!   `${VAR}` (Debian's `envvars` next to `apache2.conf`, then the
//!   environment), `<IfModule>` against the modules `LoadModule`d so far
//!   (`mods-enabled/*.load`), `<IfDefine>`, `<IfFile>`.
//! - `choose`: which `<VirtualHost>` serves a name on a port.
//! - `edit`: [`ApacheConfig`], the edits of [`crate::Config`].
//!
//! # The marker
//! httpd has no trailing comments (a `#` after a directive is one more
//! argument), so [`crate::MARKER`] sits on its own line directly above
//! each directive or section cairn adds or changes. A section cairn adds is
//! marked once, above its opening line. A file cairn creates starts with
//! the marker.
//!
//! # What deploy writes
//! For a name with no HTTPS vhost yet, the vhost serving it over HTTP gets
//! a twin, as certbot makes one: `NAME-le-ssl.conf` (the HTTP vhost's file
//! name with `.conf` replaced by `--apache-le-vhost-ext`), holding
//! `<IfModule mod_ssl.c><VirtualHost ADDR:443>`, a copy of the HTTP vhost's
//! body, and `SSLEngine on`, `SSLCertificateFile` (the full chain),
//! `SSLCertificateKeyFile` and `Include options-ssl-apache.conf`. If the
//! HTTP vhost's file is a symlink (`sites-enabled/x.conf` →
//! `sites-available/x.conf`), the twin goes into the vhost root
//! (`--apache-vhost-root`, `sites-available`) and is enabled by a regular
//! file of the same name in `sites-enabled` that `Include`s it (a
//! [`crate::ChangeSet`] holds bytes, not links; `a2dissite` will not remove
//! it: delete it, or roll back). Otherwise the twin goes next to the HTTP
//! vhost's file; when no include pattern picks it up, an `Include` line is
//! added after the HTTP vhost. A name that already has an HTTPS vhost gets
//! the certificate lines set in that vhost instead.
//!
//! Modules are enabled the way `a2enmod` does it, with their `# Depends:`:
//! `mods-available/ssl.load` (and `.conf`) copied into `mods-enabled/` as
//! regular files (`mod_headers` for HSTS/UIR, `mod_rewrite` for the
//! redirect, `mod_alias` for http-01). A `Listen PORT` (`Listen PORT https`
//! off 443) is added after the last `Listen` when none covers the HTTPS
//! port.

mod choose;
mod edit;
mod syntax;
mod tree;

use std::path::{Path, PathBuf};
use std::process::Command;

pub use edit::ApacheConfig;

use crate::{Config, Error, WebServer};

/// The shared TLS settings every cairn HTTPS vhost includes: Mozilla's
/// "intermediate" profile (TLS 1.2 and 1.3) for httpd 2.4 and OpenSSL 3.
/// No dhparam: httpd picks DH parameters itself.
pub const OPTIONS_SSL_APACHE: &str = "\
# managed by cairn
# TLS settings for Apache httpd, Mozilla \"intermediate\" (TLS 1.2 and 1.3).
# cairn records this file's hash and never overwrites a copy you edited.
SSLProtocol all -SSLv3 -TLSv1 -TLSv1.1
SSLCipherSuite ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305
SSLHonorCipherOrder off
SSLSessionTickets off
SSLOptions +StrictRequire
";

/// One Apache httpd: its configuration root and how to control it.
///
/// ```no_run
/// use cairn_install::{WebServer, apache::Apache};
/// let apache = Apache::new("/etc/apache2").ctl("/usr/sbin/apache2ctl");
/// apache.config_test()?;
/// let config = apache.load()?;
/// println!("{:?}", config.server_names());
/// # Ok::<(), cairn_install::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Apache {
    server_root: PathBuf,
    main: PathBuf,
    ctl: PathBuf,
    vhost_root: PathBuf,
    le_vhost_ext: String,
}

impl Apache {
    /// An Apache whose main file is `server_root/apache2.conf` (or
    /// `httpd.conf` when there is no `apache2.conf`), controlled with
    /// `apache2ctl`, new vhost files in `server_root/sites-available`,
    /// twins named `*-le-ssl.conf`.
    pub fn new(server_root: impl Into<PathBuf>) -> Self {
        let server_root: PathBuf = server_root.into();
        let debian = server_root.join("apache2.conf");
        let main = if debian.exists() || !server_root.join("httpd.conf").exists() {
            debian
        } else {
            server_root.join("httpd.conf")
        };
        Self {
            vhost_root: server_root.join("sites-available"),
            main,
            ctl: PathBuf::from("apache2ctl"),
            le_vhost_ext: "-le-ssl.conf".to_owned(),
            server_root,
        }
    }

    /// The control program (`--apache-ctl`): Debian's `apache2ctl`,
    /// `apachectl`, or the `apache2`/`httpd` binary itself.
    #[must_use]
    pub fn ctl(mut self, ctl: impl Into<PathBuf>) -> Self {
        self.ctl = ctl.into();
        self
    }

    /// Where twins of symlinked vhosts go (`--apache-vhost-root`).
    #[must_use]
    pub fn vhost_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.vhost_root = dir.into();
        self
    }

    /// What replaces `.conf` in a twin's name (`--apache-le-vhost-ext`).
    #[must_use]
    pub fn le_vhost_ext(mut self, ext: impl Into<String>) -> Self {
        self.le_vhost_ext = ext.into();
        self
    }

    /// The main configuration file.
    pub fn main_file(&self) -> &Path {
        &self.main
    }

    /// Parses the configuration as httpd would read it (what
    /// [`WebServer::load`] gives, with its concrete type).
    pub fn load_config(&self) -> Result<ApacheConfig, Error> {
        ApacheConfig::load(
            &self.server_root,
            &self.main,
            self.env(),
            &self.vhost_root,
            &self.le_vhost_ext,
        )
    }

    /// Runs the control program with `args` then `-d ROOT -f MAIN`, and
    /// `APACHE_CONFDIR=ROOT` so Debian's `apache2ctl` reads `ROOT/envvars`
    /// (it passes unknown arguments on to `apache2`; the last `-d` wins).
    fn run(&self, args: &[&str]) -> Result<(bool, String, String), Error> {
        let mut command = Command::new(&self.ctl);
        command
            .args(args)
            .arg("-d")
            .arg(&self.server_root)
            .arg("-f")
            .arg(&self.main)
            .env("APACHE_CONFDIR", &self.server_root)
            .env_remove("APACHE_ARGUMENTS");
        let envvars = self.server_root.join("envvars");
        if envvars.exists() {
            command.env("APACHE_ENVVARS", envvars);
        }
        let program = format!(
            "{} {} -d {} -f {}",
            self.ctl.display(),
            args.join(" "),
            self.server_root.display(),
            self.main.display()
        );
        let output = command.output().map_err(|e| Error::Command {
            program: program.clone(),
            message: e.to_string(),
        })?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok((output.status.success(), program, text.trim().to_owned()))
    }

    /// The variables httpd resolves `${VAR}` with: `envvars` next to the
    /// main file when present; the environment fills in the rest.
    fn env(&self) -> std::collections::BTreeMap<String, String> {
        std::fs::read_to_string(self.server_root.join("envvars"))
            .map(|text| tree::read_envvars(&text, &self.server_root))
            .unwrap_or_default()
    }
}

impl WebServer for Apache {
    fn name(&self) -> &'static str {
        "apache"
    }

    fn server_root(&self) -> &Path {
        &self.server_root
    }

    fn load(&self) -> Result<Box<dyn Config>, Error> {
        Ok(Box::new(self.load_config()?))
    }

    fn config_test(&self) -> Result<(), Error> {
        let (ok, program, output) = self.run(&["-t"])?;
        if ok {
            Ok(())
        } else {
            Err(Error::ConfigTest { program, output })
        }
    }

    fn reload(&self) -> Result<(), Error> {
        let (ok, program, output) = self.run(&["-k", "graceful"])?;
        if ok {
            Ok(())
        } else {
            Err(Error::Command {
                program,
                message: output,
            })
        }
    }

    fn options_file_name(&self) -> &'static str {
        "options-ssl-apache.conf"
    }

    fn options_file_contents(&self) -> &'static str {
        OPTIONS_SSL_APACHE
    }
}

/// Parses `text` as one Apache configuration file and prints it back (for
/// the fuzz target and property tests): `Ok` holds the printed bytes.
pub fn parse_and_print(text: &[u8]) -> Result<Vec<u8>, Error> {
    let file = tree::Tree::parse_file(Path::new("fuzz.conf"), text.to_vec())?;
    Ok(syntax::print(&file.nodes))
}
