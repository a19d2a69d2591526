//! Automatic HTTPS for any rustls server: certificates are obtained,
//! renewed and served by SNI with nobody at the keyboard.
//!
//! A [`TlsManager`] is built for some names and one or more ACME CAs. It
//!
//! - serves certificates by SNI through its [`Resolver`] (exact name, then a
//!   wildcard one label deep, then a default), swapping in renewed ones
//!   without a restart (connections already open keep theirs);
//! - answers tls-alpn-01 on the HTTPS listener itself (a ClientHello
//!   offering only `acme-tls/1` gets the validation certificate), http-01
//!   through [`Http01Service`] on the HTTP listener, and dns-01 through a
//!   [`DnsSolver`] the caller provides;
//! - stores certificates in the `cairn` agent's layout (`live/`,
//!   `archive/`, `renewal/`), so `cairn certificates` lists them, behind a
//!   per-lineage file lock so that processes sharing the directory place
//!   one order per name;
//! - renews when the CA's renewal information (ARI, RFC 9773) says so, or
//!   with a third of the lifetime left, at once when the certificate shows
//!   up in its CRL; retries failures with exponential backoff (1 min to
//!   6 h, jittered); tries the CAs in order;
//! - optionally obtains certificates on demand during the first handshake
//!   for names a policy allows, with rate limits and a bounded wait.
//!
//! ```no_run
//! # async fn run() -> Result<(), cairn_tls::Error> {
//! use cairn_tls::{CaConfig, TlsManager};
//! let manager = TlsManager::builder("/var/lib/cairn")
//!     .certificate(["example.com", "www.example.com"])
//!     .ca(CaConfig::new("https://acme.example/dir").email("admin@example.com"))
//!     .build()?;
//! manager.start();
//! let listener = tokio::net::TcpListener::bind("[::]:443").await?;
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     let manager = manager.clone();
//!     tokio::spawn(async move {
//!         if let Ok(tls) = manager.accept(tcp).await {
//!             // serve HTTP on `tls` with hyper ...
//! #           drop(tls);
//!         }
//!     });
//! }
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod accept;
mod challenge;
mod config;
mod crl;
mod disk;
mod maintain;
mod obtain;
mod resolver;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use cairn_client::lineage::CertName;
use cairn_proto::KeyType;
use rustls::ServerConfig;
use time::OffsetDateTime;
use tokio::sync::broadcast;

pub use challenge::{Http01Body, Http01Service, NotFound};
pub use config::{BoxFuture, CaConfig, Challenge, DnsSolver, OnDemand, OnDemandPolicy, Timings};
pub use resolver::Resolver;

use crate::config::Config;
use crate::disk::Loaded;

/// What went wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The configuration cannot work (no CA, a bad name...).
    Config(String),
    /// The ACME exchange with a CA failed.
    Acme(cairn_client::Error),
    /// A challenge could not be answered.
    Challenge(String),
    /// A certificate or key is unusable.
    Certificate(String),
    /// Reading or writing the configuration directory failed.
    Storage(String),
    /// Every CA was tried and failed; each one's error, in order.
    AllCasFailed(Vec<(String, Box<Error>)>),
    /// On-demand issuance refused the name (policy or rate limit).
    Refused(String),
    /// The handshake waited longer than allowed for its certificate.
    Timeout,
    /// I/O on a connection.
    Io(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(m) => write!(f, "configuration: {m}"),
            Self::Acme(e) => write!(f, "ACME: {e}"),
            Self::Challenge(m) => write!(f, "challenge: {m}"),
            Self::Certificate(m) => write!(f, "certificate: {m}"),
            Self::Storage(m) => write!(f, "storage: {m}"),
            Self::AllCasFailed(errors) => {
                write!(f, "every CA failed")?;
                for (ca, e) in errors {
                    write!(f, "; {ca}: {e}")?;
                }
                Ok(())
            }
            Self::Refused(m) => write!(f, "refused: {m}"),
            Self::Timeout => write!(f, "timed out waiting for the certificate"),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<cairn_client::Error> for Error {
    fn from(e: cairn_client::Error) -> Self {
        Self::Acme(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<cairn_proto::Error> for Error {
    fn from(e: cairn_proto::Error) -> Self {
        Self::Certificate(e.to_string())
    }
}

/// What happened to a managed certificate, sent on [`TlsManager::events`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A certificate was obtained (or loaded from storage) and is served.
    Obtained {
        /// The lineage name.
        name: String,
        /// The serial, lowercase hex.
        serial: String,
        /// The end of its validity.
        not_after: OffsetDateTime,
    },
    /// A renewed certificate replaced the served one.
    Renewed {
        /// The lineage name.
        name: String,
        /// The new serial, lowercase hex.
        serial: String,
        /// The end of its validity.
        not_after: OffsetDateTime,
    },
    /// Obtaining or renewing failed; the next try is in `retry_in`.
    Failed {
        /// The lineage name.
        name: String,
        /// The error, as text.
        error: String,
        /// When the next attempt is made.
        retry_in: Duration,
    },
    /// The next renewal is planned for `at`.
    NextRenewal {
        /// The lineage name.
        name: String,
        /// When.
        at: OffsetDateTime,
    },
}

/// Counters for metrics, from [`TlsManager::metrics`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Certificates obtained by a new order (first time for a lineage).
    pub obtained: u64,
    /// Certificates renewed.
    pub renewed: u64,
    /// Orders placed with a CA.
    pub orders: u64,
    /// Failed attempts (each CA tried counts once).
    pub failures: u64,
    /// Certificates loaded from storage instead of ordered.
    pub loaded: u64,
    /// On-demand names refused by the policy or a rate limit.
    pub on_demand_refused: u64,
    /// Renewals started because the certificate was found revoked.
    pub revoked: u64,
}

#[derive(Debug, Default)]
struct Counters {
    obtained: AtomicU64,
    renewed: AtomicU64,
    orders: AtomicU64,
    failures: AtomicU64,
    loaded: AtomicU64,
    on_demand_refused: AtomicU64,
    revoked: AtomicU64,
}

/// A summary of the certificate served for a name.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertificateSummary {
    /// The lineage name.
    pub lineage: String,
    /// The names in the certificate.
    pub names: Vec<String>,
    /// The serial, lowercase hex.
    pub serial: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

/// One served lineage: its current certificate and the CA it came from.
#[derive(Debug)]
pub(crate) struct Served {
    pub(crate) lineage: CertName,
    pub(crate) names: Vec<String>,
    pub(crate) loaded: Loaded,
    /// Index in the CA list of the CA that issued it, if known.
    pub(crate) ca: Option<usize>,
}

/// State shared by the manager's clones, the resolver and its tasks.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: Config,
    /// Served certificates by name (lowercase; wildcards as `*.rest`).
    pub(crate) by_name: RwLock<HashMap<String, Arc<Served>>>,
    pub(crate) alpn: challenge::AlpnCertificates,
    /// http-01 key authorizations by token.
    pub(crate) http: Mutex<HashMap<String, String>>,
    pub(crate) events: broadcast::Sender<Event>,
    counters: Counters,
    /// One async lock per lineage: concurrent requests for one name in
    /// this process wait for one order.
    pub(crate) in_flight: Mutex<HashMap<CertName, Arc<tokio::sync::Mutex<()>>>>,
    /// Held while an account is loaded or registered, so names ordered at
    /// once in this process share one account instead of each making one.
    pub(crate) account_lock: tokio::sync::Mutex<()>,
    /// Lineages with a maintenance task running.
    pub(crate) maintained: Mutex<HashMap<CertName, tokio::task::JoinHandle<()>>>,
    pub(crate) rate: accept::RateLimits,
    /// On-demand decisions in progress, by name.
    #[allow(clippy::type_complexity)]
    pub(crate) on_demand_waits:
        Mutex<HashMap<String, tokio::sync::watch::Receiver<Option<Result<(), String>>>>>,
    pub(crate) server_config: RwLock<Option<Arc<ServerConfig>>>,
}

impl Inner {
    pub(crate) fn count(&self, which: fn(&Counters) -> &AtomicU64) {
        which(&self.counters).fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn send(&self, event: Event) {
        tracing::debug!(?event, "cairn-tls event");
        let _ = self.events.send(event);
    }

    /// Serves `served` for its names, replacing what was served before.
    pub(crate) fn serve(&self, served: Arc<Served>) {
        let mut map = self.by_name.write().unwrap_or_else(|e| e.into_inner());
        for name in &served.names {
            map.insert(name.clone(), Arc::clone(&served));
        }
    }

    /// What is served for lineage `name`, if anything.
    pub(crate) fn served_lineage(&self, name: &CertName) -> Option<Arc<Served>> {
        let map = self.by_name.read().unwrap_or_else(|e| e.into_inner());
        map.values().find(|s| &s.lineage == name).cloned()
    }
}

/// Builds a [`TlsManager`]; from [`TlsManager::builder`].
#[derive(Debug)]
pub struct Builder {
    config: Config,
}

impl Builder {
    /// A certificate for `names` (the first one names the lineage, a
    /// leading `*.` dropped). Call once per certificate.
    pub fn certificate<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let names = names
            .into_iter()
            .map(|n| normalize(n.as_ref()))
            .filter(|n| !n.is_empty())
            .collect::<Vec<_>>();
        self.config.certificates.push(names);
        self
    }

    /// A CA to get certificates from; CAs are tried in the order added.
    pub fn ca(mut self, ca: CaConfig) -> Self {
        self.config.cas.push(ca);
        self
    }

    /// The challenge types to answer, in order of preference (default:
    /// tls-alpn-01, then http-01; dns-01 is added by [`Builder::dns_solver`]).
    pub fn challenges(mut self, challenges: &[Challenge]) -> Self {
        self.config.challenges = challenges.to_vec();
        self
    }

    /// Answers dns-01 (needed for wildcards) with `solver`.
    pub fn dns_solver(mut self, solver: Arc<dyn DnsSolver>) -> Self {
        if !self.config.challenges.contains(&Challenge::Dns01) {
            self.config.challenges.push(Challenge::Dns01);
        }
        self.config.dns = Some(solver);
        self
    }

    /// The certificate key type (default ECDSA P-256).
    pub fn key_type(mut self, key_type: KeyType) -> Self {
        self.config.key_type = key_type;
        self
    }

    /// Obtains certificates for names not configured during their first
    /// handshake, as `on_demand` allows.
    pub fn on_demand(mut self, on_demand: OnDemand) -> Self {
        self.config.on_demand = Some(on_demand);
        self
    }

    /// The name whose certificate is served when the SNI matches nothing
    /// (or is missing).
    pub fn default_name(mut self, name: impl AsRef<str>) -> Self {
        self.config.default_name = Some(normalize(name.as_ref()));
        self
    }

    /// The ALPN protocols offered to clients (default `h2`, `http/1.1`);
    /// `acme-tls/1` is added while tls-alpn-01 is enabled.
    pub fn alpn_protocols(mut self, protocols: Vec<Vec<u8>>) -> Self {
        self.config.alpn = protocols;
        self
    }

    /// Maintenance timings (check interval, retry backoff).
    pub fn timings(mut self, timings: Timings) -> Self {
        self.config.timings = timings;
        self
    }

    /// Asks the CA for certificates valid this long (`notAfter` in the
    /// order; the CA must allow it). For tests of renewal.
    pub fn requested_validity(mut self, validity: Duration) -> Self {
        self.config.requested_validity = Some(validity);
        self
    }

    /// Whether to follow the CA's renewal information (ARI, RFC 9773;
    /// default on). Off, certificates are renewed with a third of their
    /// lifetime left (half for lifetimes of 10 days or less).
    pub fn renewal_info(mut self, enabled: bool) -> Self {
        self.config.ari = enabled;
        self
    }

    /// Whether to fetch each certificate's CRL at every check and renew at
    /// once when it is listed (default on).
    pub fn crl_checks(mut self, enabled: bool) -> Self {
        self.config.crl = enabled;
        self
    }

    /// Checks the configuration and builds the manager. Certificates saved
    /// earlier are loaded and served at once; call [`TlsManager::start`]
    /// to obtain the missing ones and keep them renewed.
    pub fn build(self) -> Result<TlsManager, Error> {
        let config = self.config;
        if config.cas.is_empty() {
            return Err(Error::Config("give at least one CA".into()));
        }
        for names in &config.certificates {
            let Some(first) = names.first() else {
                return Err(Error::Config(
                    "a certificate needs at least one name".into(),
                ));
            };
            CertName::default_for(first).map_err(|e| Error::Config(e.to_string()))?;
            if names.iter().any(|n| n.starts_with("*."))
                && !config.challenges.contains(&Challenge::Dns01)
            {
                return Err(Error::Config(format!(
                    "{first}: a wildcard name can only be validated with dns-01; give a DNS solver"
                )));
            }
        }
        if config.challenges.is_empty() {
            return Err(Error::Config("enable at least one challenge type".into()));
        }
        let (events, _) = broadcast::channel(256);
        let rate = config
            .on_demand
            .as_ref()
            .map(accept::RateLimits::new)
            .unwrap_or_default();
        let manager = TlsManager {
            inner: Arc::new(Inner {
                config,
                by_name: RwLock::default(),
                alpn: challenge::AlpnCertificates::default(),
                http: Mutex::default(),
                events,
                counters: Counters::default(),
                in_flight: Mutex::default(),
                account_lock: tokio::sync::Mutex::new(()),
                maintained: Mutex::default(),
                rate,
                on_demand_waits: Mutex::default(),
                server_config: RwLock::default(),
            }),
        };
        manager.load_saved();
        Ok(manager)
    }
}

/// Lowercase, trailing dot dropped.
pub(crate) fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Gets, renews and serves certificates. Cheap to clone; clones share
/// everything.
#[derive(Clone, Debug)]
pub struct TlsManager {
    pub(crate) inner: Arc<Inner>,
}

impl TlsManager {
    /// A builder storing everything under `config_dir` (the `cairn`
    /// agent's `--config-dir`, e.g. `/etc/cairn`).
    pub fn builder(config_dir: impl Into<PathBuf>) -> Builder {
        Builder {
            config: Config {
                config_dir: config_dir.into(),
                certificates: Vec::new(),
                cas: Vec::new(),
                challenges: vec![Challenge::TlsAlpn01, Challenge::Http01],
                dns: None,
                key_type: KeyType::EcdsaP256,
                on_demand: None,
                default_name: None,
                alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
                timings: Timings::default(),
                requested_validity: None,
                ari: true,
                crl: true,
            },
        }
    }

    /// Loads and serves the certificates already saved for the configured
    /// names (a restart serves at once, before any network traffic).
    fn load_saved(&self) {
        let dir = self.config_dir();
        for names in &self.inner.config.certificates {
            let Some(lineage) = names.first().and_then(|n| CertName::default_for(n).ok()) else {
                continue;
            };
            if let Some(loaded) = Loaded::from_live(&dir, &lineage)
                && loaded.info.covers(names)
            {
                self.inner.serve(Arc::new(Served {
                    lineage,
                    names: names.clone(),
                    loaded,
                    ca: None,
                }));
            }
        }
    }

    pub(crate) fn config_dir(&self) -> cairn_client::lineage::ConfigDir {
        cairn_client::lineage::ConfigDir::new(self.inner.config.config_dir.clone())
    }

    /// The certificate resolver, for a `rustls::ServerConfig` of your own.
    /// It answers tls-alpn-01 too: add `acme-tls/1` to that config's ALPN
    /// protocols and close connections that negotiate it.
    pub fn resolver(&self) -> Arc<Resolver> {
        Arc::new(Resolver::new(Arc::clone(&self.inner)))
    }

    /// A rustls server configuration using [`TlsManager::resolver`], with
    /// the ALPN protocols configured (and `acme-tls/1` when tls-alpn-01 is
    /// enabled). Built once, then shared.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        if let Some(config) = self
            .inner
            .server_config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            return Arc::clone(config);
        }
        let mut config = ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map(|b| b.with_no_client_auth())
        .map(|b| {
            b.with_cert_resolver(self.resolver() as Arc<dyn rustls::server::ResolvesServerCert>)
        });
        let config = match config.as_mut() {
            Ok(config) => {
                config.alpn_protocols = self.inner.config.alpn.clone();
                if self.inner.config.challenges.contains(&Challenge::TlsAlpn01) {
                    config
                        .alpn_protocols
                        .push(cairn_proto::challenge::ACME_TLS_ALPN_PROTOCOL.to_vec());
                }
                Arc::new(config.clone())
            }
            // The aws-lc-rs provider supports the default versions.
            Err(e) => unreachable!("rustls default configuration: {e}"),
        };
        *self
            .inner
            .server_config
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&config));
        config
    }

    /// The key authorization to answer for an http-01 request `path`
    /// (`/.well-known/acme-challenge/TOKEN`), if it is a challenge in
    /// progress.
    pub fn http01_key_authorization(&self, path: &str) -> Option<String> {
        let token = path.strip_prefix("/.well-known/acme-challenge/")?;
        self.inner
            .http
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .cloned()
    }

    /// Wraps `inner` so that the plain-HTTP listener answers http-01.
    pub fn http01_service<S>(&self, inner: S) -> Http01Service<S> {
        Http01Service::new(self.clone(), inner)
    }

    /// Events: obtained, renewed, failed, next renewal.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// A snapshot of the counters.
    pub fn metrics(&self) -> Metrics {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Metrics {
            obtained: get(&c.obtained),
            renewed: get(&c.renewed),
            orders: get(&c.orders),
            failures: get(&c.failures),
            loaded: get(&c.loaded),
            on_demand_refused: get(&c.on_demand_refused),
            revoked: get(&c.revoked),
        }
    }

    /// The certificate that would be served for SNI `name`, if any.
    pub fn certificate(&self, name: &str) -> Option<CertificateSummary> {
        let served = resolver::lookup(&self.inner, Some(&normalize(name)))?;
        let info = &served.loaded.info;
        Some(CertificateSummary {
            lineage: served.lineage.to_string(),
            names: info.names.clone(),
            serial: info.serial_hex(),
            not_before: info.not_before,
            not_after: info.not_after,
        })
    }

    /// Starts the background work: obtains every configured certificate
    /// not yet served, then keeps each renewed. Returns at once; call it
    /// once (later calls do nothing for lineages already maintained).
    pub fn start(&self) {
        for names in self.inner.config.certificates.clone() {
            maintain::spawn(self, names);
        }
    }

    /// Obtains (or loads) the certificate for `names` now and serves it,
    /// without starting its maintenance. Errors are returned, not retried.
    pub async fn obtain(&self, names: &[&str]) -> Result<CertificateSummary, Error> {
        let names: Vec<String> = names.iter().map(|n| normalize(n)).collect();
        let served = obtain::ensure(self, &names, None).await?;
        self.certificate(&served.names[0])
            .ok_or_else(|| Error::Certificate("the certificate is not served".into()))
    }

    /// Stops the maintenance tasks. Served certificates stay served.
    pub fn stop(&self) {
        let mut tasks = self
            .inner
            .maintained
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (_, task) in tasks.drain() {
            task.abort();
        }
    }
}
