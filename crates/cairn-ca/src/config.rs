//! The CA's configuration: one TOML file, every key optional with a working
//! default, unknown keys refused. `--dev` (or `dev = true`) swaps in
//! Pebble-compatible test defaults before the file's own values apply.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::va::VaConfig;

/// Everything `cairn-ca serve` can be told.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Pebble-like test settings (high validation ports, local DNS,
    /// loopback validation allowed).
    pub dev: bool,
    /// Where the database, keys and certificates live.
    pub data_dir: PathBuf,
    /// The database: unset for SQLite in `data_dir`, `sqlite:PATH` for
    /// another SQLite file, or `postgres://user@host:port/db` for
    /// PostgreSQL, which several nodes can share.
    pub database: Option<String>,
    /// Connections each node keeps open to PostgreSQL.
    pub database_max_connections: u32,
    pub server: ServerConfig,
    pub issuance: IssuanceConfig,
    pub validation: VaConfig,
    pub testing: TestingConfig,
}

/// The listeners and how the CA names itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The ACME API (HTTPS unless `tls = false`).
    pub listen: SocketAddr,
    /// Plain HTTP: CRLs and issuer certificates, whose URLs every leaf carries.
    pub http_listen: SocketAddr,
    /// The URL clients use to reach `listen`; every URL the CA emits and
    /// every JWS `url` check uses it. Default: from `hostnames[0]` and the port.
    pub public_url: Option<String>,
    /// The URL clients use to reach `http_listen`, for CRL and issuer URLs.
    pub public_http_url: Option<String>,
    /// DNS names and IP addresses for the API's own certificate.
    pub hostnames: Vec<String>,
    /// Serve the API over HTTPS (true) or plain HTTP behind a TLS-terminating
    /// reverse proxy (false).
    pub tls: bool,
    /// An operator's own certificate chain and key (PEM) for the API,
    /// instead of one the CA makes for itself.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Time a client has for the TLS handshake, for each request's headers
    /// and for its body, in seconds.
    pub header_timeout_seconds: u64,
    /// A connection with no byte moving either way for this long is
    /// closed, in seconds.
    pub idle_timeout_seconds: u64,
    /// Connections open at once, per listener; more wait in the kernel's
    /// accept queue.
    pub max_connections: usize,
    /// Where used nonces are recorded: `local` (in this process, no
    /// database round trip; only for a single node), `shared` (in the
    /// database, so a nonce from any node redeems once at any node), or
    /// `auto`: local on SQLite, shared on PostgreSQL.
    pub nonces: NonceScope,
}

impl ServerConfig {
    /// What each listener enforces on its connections.
    pub fn limits(&self) -> cairn_serve::Limits {
        cairn_serve::Limits {
            header_timeout: std::time::Duration::from_secs(self.header_timeout_seconds),
            idle_timeout: std::time::Duration::from_secs(self.idle_timeout_seconds),
            max_connections: self.max_connections,
        }
    }
}

/// See [`ServerConfig::nonces`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NonceScope {
    Auto,
    Local,
    Shared,
}

/// The database a [`Config`] names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Database {
    Sqlite(PathBuf),
    /// A `postgres://` URL.
    Postgres(String),
}

impl Database {
    /// For messages: the file, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite(path) => path.display().to_string(),
            Self::Postgres(url) => redact_password(url),
        }
    }
}

/// `url` with the password of its user info, if any, replaced by `***`.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// What the CA issues and for how long things last.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuanceConfig {
    /// Certificate lifetime in days (90 by default).
    pub certificate_lifetime_days: u32,
    /// How long a valid authorization is reused for new orders, in days.
    pub authorization_reuse_days: u32,
    /// How long a pending authorization waits for validation, in hours.
    pub pending_authorization_hours: u32,
    /// How long an order can take to be finalized, in hours.
    pub order_lifetime_hours: u32,
    /// Shown in the directory's `meta`; clients must agree to it if set.
    pub terms_of_service: Option<String>,
    pub website: Option<String>,
    /// Page size of an account's orders list.
    pub orders_page_size: u32,
    /// Allow `notBefore`/`notAfter` in newOrder (within the lifetime).
    pub allow_validity_request: bool,
    /// A finalize that began this many seconds ago and stored no
    /// certificate was cut off by a crash: its order is failed, so the
    /// client starts over instead of polling `processing`.
    pub finalize_timeout_seconds: u32,
}

/// Knobs that make clients robust, as Pebble's do. Off by default.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestingConfig {
    /// Every challenge passes without a network check.
    pub always_valid: bool,
    /// Share (0–100) of good nonces refused with badNonce.
    pub nonce_reject_percent: u8,
    /// Wait this long before each validation, in milliseconds.
    pub validation_delay_ms: u64,
}

impl Config {
    /// Built-in defaults: production, or `--dev`.
    pub fn defaults(dev: bool) -> Self {
        let listen: SocketAddr = if dev {
            "127.0.0.1:14000"
        } else {
            "0.0.0.0:443"
        }
        .parse()
        .expect("literal address");
        let http_listen: SocketAddr = if dev { "127.0.0.1:14080" } else { "0.0.0.0:80" }
            .parse()
            .expect("literal address");
        Self {
            dev,
            data_dir: PathBuf::from("cairn-data"),
            database: None,
            database_max_connections: 16,
            server: ServerConfig {
                listen,
                http_listen,
                public_url: None,
                public_http_url: None,
                hostnames: if dev {
                    vec!["127.0.0.1".into(), "localhost".into(), "::1".into()]
                } else {
                    vec!["localhost".into()]
                },
                tls: true,
                tls_cert_file: None,
                tls_key_file: None,
                max_body_bytes: 64 * 1024,
                header_timeout_seconds: 10,
                idle_timeout_seconds: 60,
                max_connections: 10_000,
                nonces: NonceScope::Auto,
            },
            issuance: IssuanceConfig {
                certificate_lifetime_days: 90,
                authorization_reuse_days: 30,
                pending_authorization_hours: 7 * 24,
                order_lifetime_hours: 7 * 24,
                terms_of_service: None,
                website: None,
                orders_page_size: 50,
                allow_validity_request: false,
                finalize_timeout_seconds: 60,
            },
            validation: if dev {
                VaConfig::dev()
            } else {
                VaConfig::default()
            },
            testing: TestingConfig::default(),
        }
    }

    /// Reads a config file over the defaults. `dev` from the command line
    /// wins over the file's `dev` key when true.
    pub fn load(file: Option<&Path>, dev_flag: bool) -> Result<Self, ConfigError> {
        let text = match file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?,
            None => String::new(),
        };
        Self::from_toml(&text, dev_flag).map_err(|ConfigError(msg)| match file {
            Some(path) => ConfigError(format!("{}: {msg}", path.display())),
            None => ConfigError(msg),
        })
    }

    /// Parses TOML text over the defaults.
    pub fn from_toml(text: &str, dev_flag: bool) -> Result<Self, ConfigError> {
        let file: toml::Table = toml::from_str(text).map_err(|e| ConfigError(e.to_string()))?;
        let dev = dev_flag
            || file
                .get("dev")
                .and_then(toml::Value::as_bool)
                .unwrap_or(false);
        let mut merged = toml::Table::try_from(Self::defaults(dev))
            .map_err(|e| ConfigError(format!("defaults do not serialize: {e}")))?;
        merge(&mut merged, file);
        merged.insert("dev".into(), toml::Value::Boolean(dev));
        let config: Self = toml::Value::Table(merged)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError(e.to_string()))?;
        config.check()?;
        Ok(config)
    }

    /// What `serve` and `check-config` ask beyond a well-formed file
    /// (`migrate` does not): a production CA checks CAA before issuing
    /// (CA/B Forum BR 3.2.2.8), so it must know the issuer domain names
    /// CAA records use for it. Only dev mode may leave them out.
    pub fn check_serving(&self) -> Result<(), ConfigError> {
        if !self.dev && self.validation.caa_identities.is_empty() {
            return Err(ConfigError(
                "validation.caa_identities is empty: a production CA must check CAA records \
                 before issuing (CA/B Forum BR 3.2.2.8). List the issuer domain names CAA \
                 records use for this CA, e.g. caa_identities = [\"ca.example.com\"]; only \
                 dev mode (dev = true or --dev) may leave it empty"
                    .into(),
            ));
        }
        Ok(())
    }

    fn check(&self) -> Result<(), ConfigError> {
        let bad = |msg: String| Err(ConfigError(msg));
        let lifetime = self.issuance.certificate_lifetime_days;
        if !(1..=398).contains(&lifetime) {
            return bad(format!(
                "issuance.certificate_lifetime_days = {lifetime}: must be 1 to 398"
            ));
        }
        if self.issuance.authorization_reuse_days > 398 {
            return bad("issuance.authorization_reuse_days must be at most 398".into());
        }
        // A finalize may wait on a CAA recheck, which takes up to the
        // validation timeout; a shorter finalize timeout would fail orders
        // that are still being worked on.
        if u64::from(self.issuance.finalize_timeout_seconds) <= self.validation.timeout_seconds {
            return bad(format!(
                "issuance.finalize_timeout_seconds ({}) must be longer than \
                 validation.timeout_seconds ({}): finalize may check CAA again",
                self.issuance.finalize_timeout_seconds, self.validation.timeout_seconds
            ));
        }
        if self.server.header_timeout_seconds == 0 || self.server.idle_timeout_seconds == 0 {
            return bad(
                "server.header_timeout_seconds and server.idle_timeout_seconds must be at least 1"
                    .into(),
            );
        }
        let queue = &self.validation.queue;
        if queue.running == 0
            || queue.per_account == 0
            || queue.waiting_per_account == 0
            || queue.waiting == 0
        {
            return bad("every validation.queue limit must be at least 1".into());
        }
        if self.server.max_connections == 0 {
            return bad("server.max_connections must be at least 1".into());
        }
        if self.issuance.orders_page_size == 0 {
            return bad("issuance.orders_page_size must be at least 1".into());
        }
        if self.testing.nonce_reject_percent > 100 {
            return bad("testing.nonce_reject_percent must be 0 to 100".into());
        }
        let switched_on: Vec<&str> = [
            ("testing.always_valid", self.testing.always_valid),
            (
                "testing.nonce_reject_percent",
                self.testing.nonce_reject_percent > 0,
            ),
            (
                "testing.validation_delay_ms",
                self.testing.validation_delay_ms > 0,
            ),
        ]
        .into_iter()
        .filter_map(|(key, on)| on.then_some(key))
        .collect();
        if !self.dev && !switched_on.is_empty() {
            return bad(format!(
                "{} can only be set in dev mode (dev = true or --dev): a test switch must \
                 never reach a CA that issues real certificates",
                switched_on.join(", ")
            ));
        }
        if let Some(url) = &self.database {
            Self::parse_database(url).map_err(ConfigError)?;
        }
        if self.database_max_connections == 0 {
            return bad("database_max_connections must be at least 1".into());
        }
        if self.server.hostnames.is_empty() {
            return bad("server.hostnames must name at least one host".into());
        }
        if self.server.tls_cert_file.is_some() != self.server.tls_key_file.is_some() {
            return bad("server.tls_cert_file and server.tls_key_file go together".into());
        }
        for (key, url) in [
            ("server.public_url", &self.server.public_url),
            ("server.public_http_url", &self.server.public_http_url),
        ] {
            if let Some(url) = url
                && !(url.starts_with("https://") || url.starts_with("http://"))
            {
                return bad(format!(
                    "{key} = {url:?}: must start with https:// or http://"
                ));
            }
        }
        Ok(())
    }

    /// The base URL of the ACME API, without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.server.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let scheme = if self.server.tls { "https" } else { "http" };
                base_url(scheme, &self.server.hostnames[0], self.server.listen.port())
            }
        }
    }

    /// The base URL of the plain-HTTP listener (CRLs, issuer certificates).
    pub fn public_http_url(&self) -> String {
        match &self.server.public_http_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => base_url(
                "http",
                &self.server.hostnames[0],
                self.server.http_listen.port(),
            ),
        }
    }

    /// The SQLite database file used when `database` is unset.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("cairn.db")
    }

    /// The database this configuration names.
    pub fn database(&self) -> Result<Database, ConfigError> {
        match &self.database {
            None => Ok(Database::Sqlite(self.database_path())),
            Some(url) => Self::parse_database(url).map_err(ConfigError),
        }
    }

    fn parse_database(url: &str) -> Result<Database, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Database::Postgres(url.to_owned()))
        } else if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                Err(
                    "database = \"sqlite:\" needs a file path, as in sqlite:/var/lib/cairn/ca.db"
                        .into(),
                )
            } else {
                Ok(Database::Sqlite(PathBuf::from(path)))
            }
        } else {
            Err(format!(
                "database = {:?}: use postgres://user@host:port/dbname or sqlite:PATH",
                redact_password(url)
            ))
        }
    }

    /// Whether nonces are recorded in the database (see [`ServerConfig::nonces`]).
    pub fn shared_nonces(&self) -> bool {
        match self.server.nonces {
            NonceScope::Local => false,
            NonceScope::Shared => true,
            NonceScope::Auto => matches!(self.database(), Ok(Database::Postgres(_))),
        }
    }
}

fn base_url(scheme: &str, host: &str, port: u16) -> String {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let default_port = if scheme == "https" { 443 } else { 80 };
    if port == default_port {
        format!("{scheme}://{host}")
    } else {
        format!("{scheme}://{host}:{port}")
    }
}

/// Deep-merges `over` into `base`: tables merge, everything else replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// A configuration problem, with the key and file it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_production_defaults() {
        let c = Config::from_toml("", false).expect("valid");
        assert!(!c.dev);
        assert_eq!(c.server.listen.port(), 443);
        assert_eq!(c.issuance.certificate_lifetime_days, 90);
        assert_eq!(c.issuance.authorization_reuse_days, 30);
        assert_eq!(c.validation.http01_port, 80);
        assert_eq!(c.public_url(), "https://localhost");
    }

    #[test]
    fn dev_gives_pebble_compatible_defaults_and_the_file_still_wins() {
        let c = Config::from_toml("[validation]\nhttp01_port = 8080\n", true).expect("valid");
        assert!(c.dev);
        assert_eq!(c.public_url(), "https://127.0.0.1:14000");
        assert_eq!(c.public_http_url(), "http://127.0.0.1:14080");
        assert_eq!(c.validation.http01_port, 8080);
        assert_eq!(c.validation.tls_alpn01_port, 5001);
        assert!(c.validation.allow_private_addresses);
        let c = Config::from_toml("dev = true", false).expect("valid");
        assert!(c.dev);
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let err =
            Config::from_toml("[server]\nlisten_addr = \"127.0.0.1:1\"\n", false).unwrap_err();
        assert!(err.0.contains("listen_addr"), "{err}");
        let err = Config::from_toml("colour = 1\n", false).unwrap_err();
        assert!(err.0.contains("colour"), "{err}");
    }

    #[test]
    fn serving_without_caa_needs_dev_mode() {
        let production = Config::from_toml("", false).expect("a valid file");
        let err = production.check_serving().expect_err("no CAA identities");
        assert!(err.0.contains("validation.caa_identities"), "{err}");
        Config::from_toml(
            "[validation]\ncaa_identities = [\"ca.example.com\"]\n",
            false,
        )
        .expect("valid")
        .check_serving()
        .expect("CAA identities given");
        Config::from_toml("", true)
            .expect("valid")
            .check_serving()
            .expect("dev may skip CAA");
    }

    #[test]
    fn test_switches_need_dev_mode() {
        for switch in [
            "always_valid = true",
            "nonce_reject_percent = 5",
            "validation_delay_ms = 10",
        ] {
            let text = format!("[testing]\n{switch}\n");
            let err = Config::from_toml(&text, false).expect_err(switch);
            let key = switch.split(' ').next().unwrap_or_default();
            assert!(err.0.contains(&format!("testing.{key}")), "{err}");
            assert!(err.0.contains("dev mode"), "{err}");
            Config::from_toml(&text, true).expect("allowed with --dev");
            Config::from_toml(&format!("dev = true\n{text}"), false)
                .expect("allowed with dev = true");
        }
        Config::from_toml("[testing]\nalways_valid = false\n", false).expect("off is fine");
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(Config::from_toml("[issuance]\ncertificate_lifetime_days = 0\n", false).is_err());
        assert!(Config::from_toml("[testing]\nnonce_reject_percent = 101\n", true).is_err());
        let err = Config::from_toml("[issuance]\nfinalize_timeout_seconds = 10\n", false)
            .expect_err("no longer than the validation timeout");
        assert!(err.0.contains("validation.timeout_seconds"), "{err}");
        assert!(Config::from_toml("[server]\npublic_url = \"ftp://x\"\n", false).is_err());
        assert!(Config::from_toml("[server]\nlisten = \"nonsense\"\n", false).is_err());
    }

    /// Every cairn-ca configuration file the repository ships
    /// (`dist/cairn-ca*.toml`; `proxy.example.toml` is the proxy's, checked by
    /// its tests) parses, and the commented reference file states the real
    /// defaults.
    #[test]
    fn shipped_config_files_parse() {
        let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dist).expect("dist/ exists") {
            let path = entry.expect("entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with("cairn-ca") && name.ends_with(".toml") {
                Config::load(Some(&path), false)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                seen += 1;
            }
        }
        assert!(seen >= 2, "found {seen} config files in {}", dist.display());
        let reference =
            Config::load(Some(&dist.join("cairn-ca.toml")), false).expect("reference parses");
        assert_eq!(
            toml::to_string(&reference).expect("serializes"),
            toml::to_string(&Config::defaults(false)).expect("serializes"),
            "dist/cairn-ca.toml must show the production defaults"
        );
    }

    #[test]
    fn the_database_is_sqlite_in_data_dir_unless_named() {
        let c = Config::from_toml("data_dir = \"/srv/ca\"\n", false).expect("valid");
        assert_eq!(
            c.database(),
            Ok(Database::Sqlite(PathBuf::from("/srv/ca/cairn.db")))
        );
        assert!(!c.shared_nonces());
        let c = Config::from_toml("database = \"sqlite:///tmp/x.db\"\n", false).expect("valid");
        assert_eq!(
            c.database(),
            Ok(Database::Sqlite(PathBuf::from("/tmp/x.db")))
        );
        let c = Config::from_toml("database = \"postgres://ca:secret@db:5432/cairn\"\n", false)
            .expect("valid");
        assert!(c.shared_nonces(), "auto: shared on PostgreSQL");
        assert_eq!(
            c.database().expect("valid").describe(),
            "postgres://ca:***@db:5432/cairn"
        );
        let c = Config::from_toml(
            "database = \"postgres://db/cairn\"\n[server]\nnonces = \"local\"\n",
            false,
        )
        .expect("valid");
        assert!(!c.shared_nonces());
        let err = Config::from_toml("database = \"mysql://u:pw@h/db\"\n", false).unwrap_err();
        assert!(
            err.0.contains("postgres://") && !err.0.contains("pw"),
            "{err}"
        );
        assert!(Config::from_toml("[server]\nnonces = \"sometimes\"\n", false).is_err());
        assert!(Config::from_toml("database_max_connections = 0\n", false).is_err());
    }

    #[test]
    fn ipv6_hostnames_are_bracketed() {
        let c = Config::from_toml(
            "[server]\nhostnames = [\"::1\"]\nlisten = \"[::1]:14000\"\n",
            false,
        )
        .expect("valid");
        assert_eq!(c.public_url(), "https://[::1]:14000");
    }
}
