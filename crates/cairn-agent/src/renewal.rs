//! `renewal/NAME.toml`: everything needed to get the next certificate of a
//! lineage without the original command line, and when that is due.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::storage::write_atomic;

/// The renewal settings of one lineage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RenewalConfig {
    /// Format version of this file.
    pub(crate) version: u32,
    /// The ACME directory URL.
    pub(crate) server: String,
    /// Extra trust for the server's HTTPS (PEM file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ca_bundle: Option<PathBuf>,
    /// Roots the issued chain must lead to (PEM file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) issuer_roots: Option<PathBuf>,
    /// The account URL the certificate was ordered with.
    pub(crate) account: String,
    /// The certificate key type (`ecdsa-p256`, ...).
    pub(crate) key_type: String,
    /// The names in the certificate, in order.
    pub(crate) domains: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) preferred_chain: Option<String>,
    pub(crate) authenticator: Authenticator,
    #[serde(default)]
    pub(crate) hooks: Hooks,
    /// The web server the certificate is installed in, if any: `cairn
    /// renew` deploys each new certificate there and reloads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) installer: Option<InstallerConfig>,
}

/// A web server cairn talks to (`--nginx`/`--apache` and their flags).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebServerConfig {
    /// `nginx` or `apache`.
    pub(crate) kind: WebServerKind,
    /// The configuration directory.
    pub(crate) server_root: PathBuf,
    /// The control program.
    pub(crate) ctl: PathBuf,
    /// nginx: seconds to wait after a reload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sleep_seconds: Option<f64>,
    /// Apache: where new HTTPS virtual hosts go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) vhost_root: Option<PathBuf>,
    /// Apache: the ending of HTTPS twins of vhost files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) le_vhost_ext: Option<String>,
    pub(crate) https_port: u16,
    pub(crate) http_port: u16,
}

impl Eq for WebServerConfig {}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum WebServerKind {
    Nginx,
    Apache,
}

/// Where a lineage is installed and what was turned on there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InstallerConfig {
    pub(crate) server: WebServerConfig,
    /// The names served over HTTPS with this certificate.
    pub(crate) domains: Vec<String>,
    #[serde(default)]
    pub(crate) redirect: bool,
    #[serde(default)]
    pub(crate) hsts: bool,
    #[serde(default)]
    pub(crate) uir: bool,
}

/// How control of the names is proved, with its settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) enum Authenticator {
    /// A built-in HTTP server answers http-01.
    Standalone {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<IpAddr>,
        port: u16,
    },
    /// Files under a web server's document root answer http-01; each name
    /// maps to its webroot.
    Webroot { map: Vec<WebrootEntry> },
    /// A built-in TLS server answers tls-alpn-01.
    TlsAlpn {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<IpAddr>,
        port: u16,
    },
    /// Operator hooks answer http-01 or dns-01.
    Manual {
        /// `http-01` or `dns-01`.
        challenge: String,
        auth_hook: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cleanup_hook: Option<String>,
    },
    /// DNS UPDATE with TSIG answers dns-01.
    DnsRfc2136 {
        credentials: PathBuf,
        propagation_seconds: u64,
    },
    /// A server (`by`, e.g. `cairn-tls`) obtains and renews this lineage
    /// itself; `cairn renew` leaves it alone, `cairn certificates` lists it.
    Managed { by: String },
    /// The running nginx or Apache answers http-01 from a temporary
    /// location / alias, removed afterwards.
    WebServer { server: WebServerConfig },
}

/// One name and the webroot that serves it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebrootEntry {
    pub(crate) domain: String,
    pub(crate) path: PathBuf,
}

/// certbot's renewal hooks, run by `sh -c`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Hooks {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pre_hook: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) post_hook: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) deploy_hook: Option<String>,
}

impl RenewalConfig {
    pub(crate) const VERSION: u32 = 1;

    pub(crate) fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the renewal settings {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("the renewal settings {} are not valid", path.display()))
    }

    pub(crate) fn save(&self, path: &Path) -> Result<()> {
        let text = format!(
            "# Renewal settings written by cairn {}; `cairn renew` reads them.\n{}",
            env!("CARGO_PKG_VERSION"),
            toml::to_string(self).context("serializing the renewal settings")?
        );
        if let Some(dir) = path.parent() {
            crate::storage::create_dir(dir, 0o755)?;
        }
        Ok(write_atomic(path, text.as_bytes(), 0o644)?)
    }
}

/// When a certificate valid from `not_before` to `not_after` should be
/// renewed: when a third of its lifetime is left, or half of it for
/// lifetimes of 10 days or less (short-lived certificates).
pub(crate) fn renewal_time(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> OffsetDateTime {
    let lifetime = not_after - not_before;
    let left = if lifetime <= Duration::days(10) {
        lifetime / 2
    } else {
        lifetime / 3
    };
    not_after - left
}

/// True if the certificate is due at `now`.
pub(crate) fn is_due(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    now: OffsetDateTime,
) -> bool {
    now >= renewal_time(not_before, not_after)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn ninety_day_certificates_are_due_with_thirty_days_left() {
        let nb = datetime!(2025-01-01 0:00 UTC);
        let na = nb + Duration::days(90);
        assert_eq!(renewal_time(nb, na), nb + Duration::days(60));
        assert!(!is_due(nb, na, nb + Duration::days(59)));
        assert!(is_due(nb, na, nb + Duration::days(60)));
        assert!(is_due(nb, na, na + Duration::days(1)), "expired is due");
    }

    #[test]
    fn short_lived_certificates_are_due_at_half_life() {
        let nb = datetime!(2025-01-01 0:00 UTC);
        for days in [6, 10] {
            let na = nb + Duration::days(days);
            assert_eq!(
                renewal_time(nb, na),
                nb + Duration::days(days) / 2,
                "{days}"
            );
        }
        // Just over ten days is back to a third.
        let na = nb + Duration::days(10) + Duration::seconds(1);
        assert_eq!(renewal_time(nb, na), na - (na - nb) / 3);
        // Seconds-long test certificates work the same way.
        let na = nb + Duration::seconds(20);
        assert!(!is_due(nb, na, nb + Duration::seconds(9)));
        assert!(is_due(nb, na, nb + Duration::seconds(10)));
    }

    #[test]
    fn a_file_written_by_cairn_tls_loads_as_managed() {
        // What cairn-tls's disk.rs writes for a lineage it manages.
        let text = "# Written by cairn-tls\nversion = 1\nserver = \"https://ca.example/dir\"\n\
                    account = \"https://ca.example/acct/1\"\nkey_type = \"ecdsa-p256\"\n\
                    domains = [\"a.example\"]\n\n[authenticator]\nkind = \"managed\"\nby = \"cairn-tls\"\n";
        let temp = tempfile::tempdir().expect("tempdir");
        let path = temp.path().join("a.example.toml");
        std::fs::write(&path, text).expect("write");
        let config = RenewalConfig::load(&path).expect("loads");
        assert_eq!(
            config.authenticator,
            Authenticator::Managed {
                by: "cairn-tls".into()
            }
        );
        assert_eq!(config.domains, ["a.example"]);
    }

    #[test]
    fn renewal_files_round_trip_and_refuse_unknown_keys() {
        let config = RenewalConfig {
            version: RenewalConfig::VERSION,
            server: "https://ca.example/dir".into(),
            ca_bundle: Some("/etc/ca.pem".into()),
            issuer_roots: None,
            account: "https://ca.example/acct/1".into(),
            key_type: "ecdsa-p256".into(),
            domains: vec!["a.example".into(), "*.a.example".into()],
            preferred_chain: Some("Root X2".into()),
            authenticator: Authenticator::Webroot {
                map: vec![WebrootEntry {
                    domain: "a.example".into(),
                    path: "/var/www".into(),
                }],
            },
            hooks: Hooks {
                deploy_hook: Some("systemctl reload nginx".into()),
                ..Hooks::default()
            },
            installer: None,
        };
        let temp = tempfile::tempdir().expect("tempdir");
        let path = temp.path().join("renewal/a.example.toml");
        config.save(&path).expect("save");
        assert_eq!(RenewalConfig::load(&path).expect("load"), config);
        // A file from before installers (no [installer]) still loads.
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(!text.contains("installer"), "{text}");
        let nginx = WebServerConfig {
            kind: WebServerKind::Nginx,
            server_root: "/etc/nginx".into(),
            ctl: "nginx".into(),
            sleep_seconds: Some(1.0),
            vhost_root: None,
            le_vhost_ext: None,
            https_port: 443,
            http_port: 80,
        };
        let installed = RenewalConfig {
            installer: Some(InstallerConfig {
                server: nginx.clone(),
                domains: vec!["a.example".into()],
                redirect: true,
                hsts: false,
                uir: false,
            }),
            ..config.clone()
        };
        installed.save(&path).expect("save");
        assert_eq!(RenewalConfig::load(&path).expect("load"), installed);
        for authenticator in [
            Authenticator::Standalone {
                address: Some("127.0.0.1".parse().expect("ip")),
                port: 80,
            },
            Authenticator::TlsAlpn {
                address: None,
                port: 443,
            },
            Authenticator::Manual {
                challenge: "dns-01".into(),
                auth_hook: "/bin/auth".into(),
                cleanup_hook: None,
            },
            Authenticator::Managed {
                by: "cairn-tls".into(),
            },
            Authenticator::WebServer {
                server: nginx.clone(),
            },
            // Last: the checks below edit its saved text.
            Authenticator::DnsRfc2136 {
                credentials: "/etc/tsig.ini".into(),
                propagation_seconds: 5,
            },
        ] {
            let c = RenewalConfig {
                authenticator,
                ..config.clone()
            };
            c.save(&path).expect("save");
            assert_eq!(RenewalConfig::load(&path).expect("load"), c);
        }

        let text = std::fs::read_to_string(&path).expect("read");
        std::fs::write(&path, format!("surprise = 1\n{text}")).expect("write");
        assert!(RenewalConfig::load(&path).is_err());
        assert!(text.contains("propagation_seconds"), "{text}");
        let text = text.replace("propagation_seconds", "propagation_seconds = 1\nextra");
        std::fs::write(&path, text).expect("write");
        assert!(RenewalConfig::load(&path).is_err());
    }
}
