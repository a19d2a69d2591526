//! The installer flags (certbot's `--nginx`/`--apache` and their settings),
//! one clap `Args` struct flattened into `run`, `certonly`, `install`,
//! `enhance`, `rollback` and `config_changes`; and the installer commands'
//! own arguments.

use std::path::PathBuf;

use clap::Args;

/// Which web server, and how to reach it.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct InstallerArgs {
    /// Use nginx: prove control through the running nginx (http-01) and/or
    /// install the certificate into its configuration.
    #[arg(long, groups = ["authenticator", "web_server"])]
    pub(crate) nginx: bool,
    /// Use Apache httpd: prove control through the running Apache (http-01)
    /// and/or install the certificate into its configuration.
    #[arg(long, groups = ["authenticator", "web_server"])]
    pub(crate) apache: bool,

    /// nginx's configuration directory (where nginx.conf is).
    #[arg(long, value_name = "DIR", default_value = "/etc/nginx")]
    pub(crate) nginx_server_root: PathBuf,
    /// The nginx program used to test (`-t`) and reload (`-s reload`) the
    /// configuration; run directly, never through a shell.
    #[arg(long, value_name = "PROGRAM", default_value = "nginx")]
    pub(crate) nginx_ctl: PathBuf,
    /// Seconds to wait after reloading nginx, for the workers to take the
    /// new configuration.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub(crate) nginx_sleep_seconds: f64,
    /// Apache's configuration directory (where apache2.conf or httpd.conf is).
    #[arg(long, value_name = "DIR", default_value = "/etc/apache2")]
    pub(crate) apache_server_root: PathBuf,
    /// The program used to test (`configtest`) and reload (`graceful`) Apache.
    #[arg(long, value_name = "PROGRAM", default_value = "apache2ctl")]
    pub(crate) apache_ctl: PathBuf,
    /// Where new HTTPS virtual hosts are written (default: SERVER_ROOT/sites-available).
    #[arg(long, value_name = "DIR")]
    pub(crate) apache_vhost_root: Option<PathBuf>,
    /// The ending of the HTTPS twin of a virtual host file (vhost.conf →
    /// vhost-le-ssl.conf).
    #[arg(long, value_name = "EXT", default_value = "-le-ssl.conf")]
    pub(crate) apache_le_vhost_ext: String,
    /// The port HTTPS is served on.
    #[arg(long, value_name = "PORT", default_value_t = 443)]
    pub(crate) https_port: u16,
}

/// What to turn on besides HTTPS (certbot's enhancement flags).
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct EnhanceFlags {
    /// Answer plain HTTP with a permanent redirect (301) to HTTPS.
    #[arg(long, overrides_with = "no_redirect")]
    pub(crate) redirect: bool,
    /// Leave plain HTTP as it is (the default).
    #[arg(long, overrides_with = "redirect")]
    pub(crate) no_redirect: bool,
    /// Send Strict-Transport-Security (one year) on HTTPS responses.
    #[arg(long)]
    pub(crate) hsts: bool,
    /// Send `Content-Security-Policy: upgrade-insecure-requests` on HTTPS responses.
    #[arg(long)]
    pub(crate) uir: bool,
    /// Refused: cairn's CAs publish CRLs; there is no OCSP to staple.
    #[arg(long)]
    pub(crate) staple_ocsp: bool,
}

/// `cairn install`.
#[derive(Debug, Args)]
pub(crate) struct InstallArgs {
    /// The saved certificate to install (live/NAME); its names are the ones
    /// the server gets HTTPS for.
    #[arg(long, value_name = "NAME")]
    pub(crate) cert_name: Option<String>,
    /// The names to serve (default: the certificate's names).
    #[arg(
        short = 'd',
        long = "domains",
        visible_alias = "domain",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub(crate) domains: Vec<String>,
    /// The certificate alone (with --key-path and --fullchain-path instead of --cert-name).
    #[arg(long, value_name = "FILE", requires_all = ["key_path", "fullchain_path"], conflicts_with = "cert_name")]
    pub(crate) cert_path: Option<PathBuf>,
    /// The private key of --cert-path.
    #[arg(long, value_name = "FILE", requires = "cert_path")]
    pub(crate) key_path: Option<PathBuf>,
    /// The certificate followed by its chain.
    #[arg(long, value_name = "FILE", requires = "cert_path")]
    pub(crate) fullchain_path: Option<PathBuf>,
    /// The chain without the certificate (default: --fullchain-path).
    #[arg(long, value_name = "FILE", requires = "cert_path")]
    pub(crate) chain_path: Option<PathBuf>,
    /// Print the unified diff of what would change; change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// The port the server's plain-HTTP blocks listen on (for --redirect).
    #[arg(long = "http-01-port", value_name = "PORT", default_value_t = 80)]
    pub(crate) http01_port: u16,
    #[command(flatten)]
    pub(crate) installer: InstallerArgs,
    #[command(flatten)]
    pub(crate) enhance: EnhanceFlags,
}

/// `cairn enhance`.
#[derive(Debug, Args)]
pub(crate) struct EnhanceArgs {
    /// The saved certificate whose names to enhance.
    #[arg(long, value_name = "NAME")]
    pub(crate) cert_name: Option<String>,
    /// The names to enhance (default: the certificate's names).
    #[arg(
        short = 'd',
        long = "domains",
        visible_alias = "domain",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub(crate) domains: Vec<String>,
    /// Print the unified diff of what would change; change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// The port the server's plain-HTTP blocks listen on (for --redirect).
    #[arg(long = "http-01-port", value_name = "PORT", default_value_t = 80)]
    pub(crate) http01_port: u16,
    #[command(flatten)]
    pub(crate) installer: InstallerArgs,
    #[command(flatten)]
    pub(crate) enhance: EnhanceFlags,
}

/// `cairn rollback`.
#[derive(Debug, Args)]
pub(crate) struct RollbackArgs {
    /// How many checkpoints to undo, newest first.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) checkpoints: usize,
    #[command(flatten)]
    pub(crate) installer: InstallerArgs,
}

/// `cairn config_changes`.
#[derive(Debug, Args)]
pub(crate) struct ConfigChangesArgs {
    /// Show at most this many checkpoints (newest).
    #[arg(long, value_name = "N")]
    pub(crate) num: Option<usize>,
    #[command(flatten)]
    pub(crate) installer: InstallerArgs,
}
