//! The command line: certbot's subcommands and flags, where cairn has them,
//! with the same names and meanings.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

pub(crate) use crate::cli_install::{
    ConfigChangesArgs, EnhanceArgs, EnhanceFlags, InstallArgs, InstallerArgs, RollbackArgs,
};

/// Let's Encrypt's production directory: the default `--server`, as for certbot.
pub(crate) const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory, for `--staging` / `--test-cert`.
pub(crate) const LETS_ENCRYPT_STAGING: &str =
    "https://acme-staging-v02.api.letsencrypt.org/directory";

const LONG_ABOUT: &str = "\
cairn gets, installs, renews and revokes TLS certificates from any ACME \
(RFC 8555) certificate authority: Let's Encrypt, Pebble, cairn-ca.

Its commands and flags follow certbot's, and it saves certificates in the same \
layout under the configuration directory (--config-dir; default /etc/cairn when \
run as root, otherwise $XDG_CONFIG_HOME/cairn or ~/.config/cairn):

  live/NAME/{cert,chain,fullchain,privkey}.pem   what servers should point at
  archive/NAME/{cert,chain,fullchain,privkey}N.pem  every version
  renewal/NAME.toml                              how to renew NAME
  accounts/HOST/ID/account.json                  ACME account keys, one per server

Example:
  cairn certonly --standalone -d example.org -d www.example.org \\
      --email admin@example.org --agree-tos
  cairn renew        (run it twice a day; see dist/cairn-renew.timer)

Exit status:
  0  success (for renew: nothing failed, including when nothing was due)
  1  an error; the message says what failed, for which name, and what to try
  2  the command line is wrong (unknown flag, missing value, conflicting flags)
  3  renew: at least one certificate could not be renewed (others may have been)";

/// The `cairn` command line.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, about = "An ACME agent: get, renew and revoke TLS certificates", long_about = LONG_ABOUT)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Flags every subcommand takes.
#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// Where accounts, certificates and renewal settings are kept.
    /// Default: /etc/cairn as root, else $XDG_CONFIG_HOME/cairn or ~/.config/cairn.
    #[arg(long, global = true, value_name = "DIR", env = "CAIRN_CONFIG_DIR")]
    pub(crate) config_dir: Option<PathBuf>,
    /// Never ask a question; fail instead when an answer is needed.
    #[arg(
        short = 'n',
        long = "non-interactive",
        visible_alias = "noninteractive",
        global = true
    )]
    pub(crate) non_interactive: bool,
    /// More log output (repeat for more detail).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    /// Print only errors.
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Obtain a certificate and save it, without installing it into a server.
    #[command(
        long_about = "Obtain a certificate for the names given with -d and save it \
        under live/NAME/. Choose how control of the names is proved: --standalone (a \
        built-in HTTP server for http-01), --webroot -w DIR (files in a directory your web \
        server serves), --tls-alpn (a built-in TLS server for tls-alpn-01), --manual with \
        hooks (http-01 or dns-01, certbot hook scripts work unchanged) or --dns-rfc2136 \
        (DNS UPDATE with TSIG). A certificate already saved for the same names is kept \
        until it is due for renewal, unless --force-renewal."
    )]
    Certonly(Box<CertonlyArgs>),
    /// Obtain a certificate and install it into nginx or Apache (HTTPS on).
    #[command(
        long_about = "Obtain a certificate and install it: --nginx or --apache proves control \
        of the names through the running server (http-01), then adds the certificate, \
        the key and cairn's TLS settings to the server blocks / virtual hosts of those \
        names, tests the configuration and reloads the server. Without -d: every name \
        in the server's configuration (a choice on a terminal). The server's config \
        test runs before and after every edit; on any failure every file is put back. \
        `cairn renew` later deploys renewed certificates and reloads the server."
    )]
    Run(Box<CertonlyArgs>),
    /// Install a saved certificate (or given files) into nginx or Apache.
    Install(Box<InstallArgs>),
    /// Turn on --redirect, --hsts or --uir for names already served over HTTPS.
    Enhance(Box<EnhanceArgs>),
    /// Undo the last configuration changes cairn made to nginx or Apache.
    Rollback(RollbackArgs),
    /// List the configuration changes (checkpoints) cairn made, newest last.
    #[command(name = "config_changes", visible_alias = "config-changes")]
    ConfigChanges(ConfigChangesArgs),
    /// Create an ACME account at the server, without ordering a certificate.
    Register(RegisterArgs),
    /// Show, update, deactivate or roll over the key of the ACME account.
    Account(AccountArgs),
    /// Renew every saved certificate that is due (or the one --cert-name names).
    #[command(
        long_about = "Renew saved certificates that are due: when a third of the \
        certificate's lifetime is left (half, for certificates of 10 days or less), or \
        earlier if the CA's renewal information (RFC 9773) says so. Each is renewed with \
        the settings saved in renewal/NAME.toml when it was obtained. --pre-hook runs once \
        before the first renewal, --post-hook once after the last, --deploy-hook after \
        each successful one with RENEWED_LINEAGE and RENEWED_DOMAINS set. Exits 0 when \
        nothing failed (including when nothing was due) and 3 when some renewal failed."
    )]
    Renew(RenewArgs),
    /// Revoke a certificate.
    Revoke(RevokeArgs),
    /// List saved certificates: names, expiry, days left, paths.
    Certificates(CertificatesArgs),
    /// Delete a saved certificate (live, archive and renewal settings).
    Delete(DeleteArgs),
    /// A reverse proxy with automatic HTTPS for any HTTP backend.
    #[command(long_about = crate::proxy::cli::PROXY_ABOUT)]
    Proxy(Box<crate::proxy::cli::ProxyArgs>),
}

/// Which ACME server, and how to trust it.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct ServerArgs {
    /// The ACME directory URL. Default: the server a saved certificate came
    /// from, else Let's Encrypt.
    #[arg(long, value_name = "URL", global = true)]
    pub(crate) server: Option<String>,
    /// Use Let's Encrypt's staging server (certbot's --test-cert).
    #[arg(
        long,
        visible_alias = "test-cert",
        conflicts_with = "server",
        global = true
    )]
    pub(crate) staging: bool,
    /// PEM certificates to trust for the ACME server's HTTPS, besides the
    /// system's: for a private or test CA.
    #[arg(long, value_name = "FILE", global = true)]
    pub(crate) ca_bundle: Option<PathBuf>,
}

impl ServerArgs {
    /// The server named on the command line, if any.
    pub(crate) fn explicit(&self) -> Option<String> {
        if self.staging {
            Some(LETS_ENCRYPT_STAGING.to_owned())
        } else {
            self.server.clone()
        }
    }
}

/// Account registration flags (certbot's).
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct RegistrationArgs {
    /// Contact email for the account: the CA writes about expiry and policy.
    #[arg(short = 'm', long, value_name = "EMAIL")]
    pub(crate) email: Option<String>,
    /// Agree to the CA's terms of service.
    #[arg(long)]
    pub(crate) agree_tos: bool,
    /// Register without a contact email (accepted for certbot compatibility:
    /// cairn never requires one).
    #[arg(long)]
    pub(crate) register_unsafely_without_email: bool,
    /// Accepted for certbot compatibility; cairn shares no email with anyone.
    #[arg(long, hide = true)]
    pub(crate) no_eff_email: bool,
    /// Accepted for certbot compatibility; cairn shares no email with anyone.
    #[arg(long, hide = true)]
    pub(crate) eff_email: bool,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("authenticator").multiple(false)))]
pub(crate) struct CertonlyArgs {
    /// A name to put in the certificate (repeat, or separate with commas).
    /// The first one names the certificate unless --cert-name is given.
    #[arg(
        short = 'd',
        long = "domains",
        visible_alias = "domain",
        value_name = "NAME",
        value_delimiter = ',',
        required_unless_present_any = ["nginx", "apache"]
    )]
    pub(crate) domains: Vec<String>,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
    #[command(flatten)]
    pub(crate) registration: RegistrationArgs,
    #[command(flatten)]
    pub(crate) installer: InstallerArgs,
    #[command(flatten)]
    pub(crate) enhance: EnhanceFlags,

    /// Prove control with a built-in HTTP server (http-01) on --http-01-port.
    #[arg(long, group = "authenticator")]
    pub(crate) standalone: bool,
    /// Prove control by writing files under the webroot (-w) that your web
    /// server serves (http-01).
    #[arg(long, group = "authenticator", requires = "webroot_path")]
    pub(crate) webroot: bool,
    /// Prove control with hooks you provide (http-01 or dns-01).
    #[arg(long, group = "authenticator")]
    pub(crate) manual: bool,
    /// Prove control with a built-in TLS server (tls-alpn-01) on --tls-alpn-01-port.
    #[arg(long, group = "authenticator")]
    pub(crate) tls_alpn: bool,
    /// Prove control with DNS UPDATE (RFC 2136) signed with TSIG (dns-01).
    #[arg(long, group = "authenticator", requires = "dns_rfc2136_credentials")]
    pub(crate) dns_rfc2136: bool,

    /// Webroot for the -d names that follow it (repeat: each -w applies to
    /// the -d flags after it, as with certbot).
    #[arg(short = 'w', long, value_name = "DIR")]
    pub(crate) webroot_path: Vec<PathBuf>,
    /// With --manual: command run (by `sh -c`) to provision each challenge.
    /// It gets CERTBOT_DOMAIN, CERTBOT_VALIDATION, CERTBOT_TOKEN (http-01),
    /// CERTBOT_REMAINING_CHALLENGES and CERTBOT_ALL_DOMAINS.
    #[arg(long, value_name = "CMD")]
    pub(crate) manual_auth_hook: Option<String>,
    /// With --manual: command run after validation, with the same
    /// environment plus CERTBOT_AUTH_OUTPUT (the auth hook's output).
    #[arg(long, value_name = "CMD")]
    pub(crate) manual_cleanup_hook: Option<String>,
    /// With --manual: the challenge type to answer, http (http-01) or dns (dns-01).
    #[arg(long, value_name = "TYPE", value_enum, default_value = "http")]
    pub(crate) preferred_challenges: PreferredChallenge,
    /// With --dns-rfc2136: the credentials file (server, port, TSIG key name,
    /// secret and algorithm, in certbot-dns-rfc2136's INI format).
    #[arg(long, value_name = "FILE")]
    pub(crate) dns_rfc2136_credentials: Option<PathBuf>,
    /// With --dns-rfc2136: seconds to wait after the update before asking
    /// the CA to check.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub(crate) dns_rfc2136_propagation_seconds: u64,

    /// Port of the --standalone http-01 server; with --nginx/--apache, the
    /// port the server's plain-HTTP blocks listen on.
    #[arg(long = "http-01-port", value_name = "PORT", default_value_t = 80)]
    pub(crate) http01_port: u16,
    /// Address the --standalone http-01 server binds (default: all).
    #[arg(long = "http-01-address", value_name = "ADDR")]
    pub(crate) http01_address: Option<IpAddr>,
    /// Port of the --tls-alpn tls-alpn-01 server.
    #[arg(long = "tls-alpn-01-port", value_name = "PORT", default_value_t = 443)]
    pub(crate) tls_alpn01_port: u16,
    /// Address the --tls-alpn server binds (default: all).
    #[arg(long = "tls-alpn-01-address", value_name = "ADDR")]
    pub(crate) tls_alpn01_address: Option<IpAddr>,

    /// The certificate key's type.
    #[arg(long, value_enum, default_value = "ecdsa-p256")]
    pub(crate) key_type: KeyTypeArg,
    /// The name the certificate is saved under (live/NAME). Default: the
    /// first -d name.
    #[arg(long, value_name = "NAME")]
    pub(crate) cert_name: Option<String>,
    /// Of the chains the CA offers, take the one whose top certificate was
    /// issued by this common name.
    #[arg(long, value_name = "ISSUER_CN")]
    pub(crate) preferred_chain: Option<String>,
    /// PEM roots the issued chain must lead to (default: the chain is
    /// checked against itself and trusted through the HTTPS connection).
    #[arg(long, value_name = "FILE")]
    pub(crate) issuer_roots: Option<PathBuf>,
    /// Get a certificate but save nothing of it (the account is still saved).
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Get a new certificate even if the saved one is not due.
    #[arg(long, visible_alias = "renew-by-default")]
    pub(crate) force_renewal: bool,
    #[command(flatten)]
    pub(crate) hooks: HookArgs,
}

/// certbot's renewal hooks.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct HookArgs {
    /// Command run (by `sh -c`) once before certificates are obtained.
    #[arg(long, value_name = "CMD")]
    pub(crate) pre_hook: Option<String>,
    /// Command run once after certificates were obtained (or attempted).
    #[arg(long, value_name = "CMD")]
    pub(crate) post_hook: Option<String>,
    /// Command run after each certificate is saved, with RENEWED_LINEAGE
    /// (its live directory) and RENEWED_DOMAINS (its names, space-separated).
    #[arg(long, value_name = "CMD")]
    pub(crate) deploy_hook: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PreferredChallenge {
    #[value(name = "http", alias = "http-01")]
    Http,
    #[value(name = "dns", alias = "dns-01")]
    Dns,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum KeyTypeArg {
    #[value(name = "ecdsa-p256")]
    EcdsaP256,
    #[value(name = "ecdsa-p384")]
    EcdsaP384,
    #[value(name = "rsa2048")]
    Rsa2048,
    #[value(name = "rsa3072")]
    Rsa3072,
    #[value(name = "rsa4096")]
    Rsa4096,
}

impl From<KeyTypeArg> for cairn_proto::KeyType {
    fn from(value: KeyTypeArg) -> Self {
        match value {
            KeyTypeArg::EcdsaP256 => Self::EcdsaP256,
            KeyTypeArg::EcdsaP384 => Self::EcdsaP384,
            KeyTypeArg::Rsa2048 => Self::Rsa2048,
            KeyTypeArg::Rsa3072 => Self::Rsa3072,
            KeyTypeArg::Rsa4096 => Self::Rsa4096,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct RegisterArgs {
    #[command(flatten)]
    pub(crate) server: ServerArgs,
    #[command(flatten)]
    pub(crate) registration: RegistrationArgs,
}

#[derive(Debug, Args)]
pub(crate) struct AccountArgs {
    #[command(flatten)]
    pub(crate) server: ServerArgs,
    #[command(subcommand)]
    pub(crate) action: AccountAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AccountAction {
    /// Print the account's URL, status and contacts, as the server has them.
    Show,
    /// Change the account's contact email.
    Update {
        /// The new contact email (replaces the old ones).
        #[arg(short = 'm', long, value_name = "EMAIL", required = true)]
        email: String,
    },
    /// Deactivate the account for good (RFC 8555 §7.3.6); its certificates stay valid.
    Deactivate,
    /// Replace the account key with a new one (RFC 8555 §7.3.5).
    RolloverKey {
        /// The new account key's type.
        #[arg(long, value_enum, default_value = "ecdsa-p256")]
        key_type: KeyTypeArg,
    },
}

#[derive(Debug, Args)]
pub(crate) struct RenewArgs {
    /// Renew only this certificate.
    #[arg(long, value_name = "NAME")]
    pub(crate) cert_name: Option<String>,
    /// Renew even certificates that are not due.
    #[arg(long, visible_alias = "renew-by-default")]
    pub(crate) force_renewal: bool,
    /// Obtain certificates but save nothing and run no deploy hook.
    #[arg(long)]
    pub(crate) dry_run: bool,
    #[command(flatten)]
    pub(crate) hooks: HookArgs,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).multiple(false)))]
pub(crate) struct RevokeArgs {
    /// Revoke the current certificate of this saved lineage.
    #[arg(long, value_name = "NAME", group = "which")]
    pub(crate) cert_name: Option<String>,
    /// Revoke the certificate in this PEM file.
    #[arg(long, value_name = "FILE", group = "which")]
    pub(crate) cert_path: Option<PathBuf>,
    /// Sign the revocation with the certificate's private key (PEM) instead
    /// of the account key.
    #[arg(long, value_name = "FILE")]
    pub(crate) key_path: Option<PathBuf>,
    /// Why the certificate is revoked (RFC 5280 §5.3.1).
    #[arg(long, value_enum, default_value = "unspecified")]
    pub(crate) reason: RevocationReason,
    /// Delete the saved lineage after revoking (--cert-name only).
    #[arg(long)]
    pub(crate) delete_after_revoke: bool,
    /// Keep the saved lineage after revoking (the default; for certbot compatibility).
    #[arg(long, conflicts_with = "delete_after_revoke")]
    pub(crate) no_delete_after_revoke: bool,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RevocationReason {
    Unspecified,
    Keycompromise,
    Affiliationchanged,
    Superseded,
    Cessationofoperation,
}

impl RevocationReason {
    /// The CRLReason code (RFC 5280 §5.3.1).
    pub(crate) fn code(self) -> u8 {
        match self {
            Self::Unspecified => 0,
            Self::Keycompromise => 1,
            Self::Affiliationchanged => 3,
            Self::Superseded => 4,
            Self::Cessationofoperation => 5,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct CertificatesArgs {
    /// Show only this certificate.
    #[arg(long, value_name = "NAME")]
    pub(crate) cert_name: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DeleteArgs {
    /// The certificate to delete.
    #[arg(long, value_name = "NAME", required = true)]
    pub(crate) cert_name: String,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn certbot_style_command_lines_parse() {
        let cli = Cli::try_parse_from([
            "cairn",
            "certonly",
            "--standalone",
            "-d",
            "a.example,b.example",
            "-d",
            "c.example",
            "--http-01-port",
            "5002",
            "--http-01-address",
            "127.0.0.1",
            "--agree-tos",
            "-m",
            "me@a.example",
            "--non-interactive",
            "--key-type",
            "rsa3072",
        ])
        .expect("parses");
        let Command::Certonly(args) = cli.command else {
            panic!("certonly");
        };
        assert_eq!(args.domains, ["a.example", "b.example", "c.example"]);
        assert!(args.standalone && cli.global.non_interactive);
        assert_eq!(args.http01_port, 5002);
        assert_eq!(args.key_type, KeyTypeArg::Rsa3072);

        for bad in [
            &[
                "cairn",
                "certonly",
                "--standalone",
                "--webroot",
                "-w",
                "/x",
                "-d",
                "a",
            ][..],
            &["cairn", "certonly", "--standalone"],
            &["cairn", "certonly", "--webroot", "-d", "a"],
            &["cairn", "revoke"],
            &["cairn", "revoke", "--cert-name", "a", "--cert-path", "b"],
            &[
                "cairn",
                "certonly",
                "--standalone",
                "-d",
                "a",
                "--key-type",
                "dsa",
            ],
        ] {
            let err = Cli::try_parse_from(bad).expect_err("refused");
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }
}
