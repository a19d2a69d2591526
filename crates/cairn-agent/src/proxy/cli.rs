//! `cairn proxy` flags. The CA and account flags are the agent's own.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::config::{CaFile, Challenge, DnsFile, LogFormat, Overrides};
use crate::cli::{RegistrationArgs, ServerArgs};

pub(crate) const PROXY_ABOUT: &str = "\
A reverse proxy with automatic HTTPS: it gets a certificate for every site \
from the ACME CA (tls-alpn-01 or http-01 on its own listeners, or dns-01 by \
RFC 2136), serves it by SNI, renews it before it expires, and forwards \
requests to the site's upstream over HTTP/1.1.

Example (the whole set-up):
  cairn proxy --route example.com=http://127.0.0.1:8080 -m me@example.com --agree-tos

Or with a file (see dist/proxy.example.toml and docs/auto-https.md):
  cairn proxy --config /etc/cairn/proxy.toml
  cairn proxy check-config --config /etc/cairn/proxy.toml
  cairn proxy reload            (or: kill -HUP PID)";

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct ProxyArgs {
    #[command(subcommand)]
    pub(crate) action: Option<ProxyAction>,
    #[command(flatten)]
    pub(crate) run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProxyAction {
    /// Parse and validate a configuration file, change nothing.
    CheckConfig {
        /// The file to check.
        #[arg(long, value_name = "FILE", required = true)]
        config: PathBuf,
    },
    /// Make the running proxy re-read its configuration (no connection is dropped).
    Reload {
        /// The control socket of the running proxy (default:
        /// CONFIG_DIR/proxy.sock).
        #[arg(long, value_name = "PATH")]
        control_socket: Option<PathBuf>,
        /// Send SIGHUP to the process whose id this file holds, instead.
        #[arg(long, value_name = "FILE", conflicts_with = "control_socket")]
        pid_file: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// A site: NAME=URL, NAME a host name (several separated by commas) and
    /// URL its upstream, http://HOST:PORT[/prefix]. Repeat for more sites.
    #[arg(long, value_name = "NAME=URL")]
    pub(crate) route: Vec<String>,
    /// A TOML configuration file (sites, listeners, CAs, on-demand, limits).
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Where the HTTP listener binds (http-01, redirects). Default [::]:80.
    #[arg(long, value_name = "ADDR")]
    pub(crate) http_listen: Option<SocketAddr>,
    /// Where the HTTPS listener binds. Default [::]:443.
    #[arg(long, value_name = "ADDR")]
    pub(crate) https_listen: Option<SocketAddr>,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
    #[command(flatten)]
    pub(crate) registration: RegistrationArgs,
    /// External account binding key id, when the CA requires one.
    #[arg(long, value_name = "KID", requires = "eab_hmac_key")]
    pub(crate) eab_kid: Option<String>,
    /// External account binding MAC key (base64url).
    #[arg(long, value_name = "KEY", requires = "eab_kid")]
    pub(crate) eab_hmac_key: Option<String>,
    /// Challenge types to use, in order of preference (comma-separated).
    /// Default: tls-alpn-01,http-01.
    #[arg(long, value_name = "TYPE", value_delimiter = ',', value_enum)]
    pub(crate) challenges: Option<Vec<Challenge>>,
    /// dns-01 by DNS UPDATE: certbot-dns-rfc2136's INI credentials file.
    #[arg(long, value_name = "FILE")]
    pub(crate) dns_rfc2136_credentials: Option<PathBuf>,
    /// Seconds to wait after the DNS update before asking the CA to check.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub(crate) dns_rfc2136_propagation_seconds: u64,
    /// On-demand TLS: names without a site get a certificate at their first
    /// handshake if `GET URL?domain=NAME` answers 200.
    #[arg(long, value_name = "URL")]
    pub(crate) on_demand_ask: Option<String>,
    /// Send Strict-Transport-Security with this max-age (seconds).
    #[arg(long, value_name = "SECONDS")]
    pub(crate) hsts: Option<u64>,
    /// Write an access log for every site to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) access_log: Option<PathBuf>,
    /// Access log format.
    #[arg(long, value_enum)]
    pub(crate) log_format: Option<LogFormat>,
    /// Seconds a client has for the TLS handshake and each request's headers.
    #[arg(long, value_name = "SECONDS")]
    pub(crate) header_timeout: Option<u64>,
    /// Seconds without traffic after which a connection is closed.
    #[arg(long, value_name = "SECONDS")]
    pub(crate) idle_timeout: Option<u64>,
    /// Connections open at once; more wait until one closes.
    #[arg(long, value_name = "N")]
    pub(crate) max_connections: Option<usize>,
    /// Seconds to connect to an upstream (then 502).
    #[arg(long, value_name = "SECONDS")]
    pub(crate) upstream_connect_timeout: Option<u64>,
    /// Seconds to the upstream's response headers (then 504).
    #[arg(long, value_name = "SECONDS")]
    pub(crate) upstream_timeout: Option<u64>,
    /// On SIGTERM, seconds in-flight requests get to finish.
    #[arg(long, value_name = "SECONDS")]
    pub(crate) drain_timeout: Option<u64>,
    /// The control socket `cairn proxy reload` talks to (default:
    /// CONFIG_DIR/proxy.sock).
    #[arg(long, value_name = "PATH")]
    pub(crate) control_socket: Option<PathBuf>,
    /// Write the process id to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) pid_file: Option<PathBuf>,
}

impl RunArgs {
    /// What the command line sets, to lay over the file.
    pub(crate) fn overrides(&self) -> Overrides {
        use std::time::Duration;
        let secs = |v: Option<u64>| v.map(Duration::from_secs);
        Overrides {
            routes: self.route.clone(),
            http_listen: self.http_listen,
            https_listen: self.https_listen,
            ca: self.server.explicit().map(|server| CaFile {
                server,
                ca_bundle: self.server.ca_bundle.clone(),
                eab_kid: self.eab_kid.clone(),
                eab_hmac_key: self.eab_hmac_key.clone(),
                profile: None,
            }),
            email: self.registration.email.clone(),
            agree_tos: self.registration.agree_tos,
            challenges: self.challenges.clone(),
            on_demand_ask: self.on_demand_ask.clone(),
            dns: self.dns_rfc2136_credentials.clone().map(|path| DnsFile {
                rfc2136_credentials: path,
                propagation_seconds: self.dns_rfc2136_propagation_seconds,
            }),
            hsts_max_age: self.hsts,
            access_log: self.access_log.clone(),
            log_format: self.log_format,
            header_timeout: secs(self.header_timeout),
            idle_timeout: secs(self.idle_timeout),
            max_connections: self.max_connections,
            upstream_connect_timeout: secs(self.upstream_connect_timeout),
            upstream_response_timeout: secs(self.upstream_timeout),
            drain_timeout: secs(self.drain_timeout),
        }
    }
}
