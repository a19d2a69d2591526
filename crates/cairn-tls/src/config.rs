//! What a [`TlsManager`](crate::TlsManager) is told: the names, the CAs in
//! order, the challenges it may answer, and the on-demand policy.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use cairn_proto::KeyType;

/// A boxed, sendable future: what the caller's hooks return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One ACME CA to get certificates from. Several are tried in order.
#[derive(Clone)]
pub struct CaConfig {
    pub(crate) directory_url: String,
    pub(crate) ca_bundle_pem: Option<Vec<u8>>,
    pub(crate) eab: Option<(String, Vec<u8>)>,
    pub(crate) profile: Option<String>,
    pub(crate) contact: Vec<String>,
    pub(crate) agree_tos: bool,
}

impl fmt::Debug for CaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaConfig")
            .field("directory_url", &self.directory_url)
            .field("ca_bundle", &self.ca_bundle_pem.is_some())
            .field("eab_kid", &self.eab.as_ref().map(|(kid, _)| kid))
            .field("profile", &self.profile)
            .field("contact", &self.contact)
            .finish()
    }
}

impl CaConfig {
    /// The CA whose ACME directory is at `directory_url`. Its terms of
    /// service are agreed to (call [`CaConfig::agree_tos`] with `false` to
    /// refuse CAs that have some).
    pub fn new(directory_url: impl Into<String>) -> Self {
        Self {
            directory_url: directory_url.into(),
            ca_bundle_pem: None,
            eab: None,
            profile: None,
            contact: Vec::new(),
            agree_tos: true,
        }
    }

    /// Extra roots (PEM) to trust for the CA's HTTPS, besides the system's.
    pub fn ca_bundle_pem(mut self, pem: Vec<u8>) -> Self {
        self.ca_bundle_pem = Some(pem);
        self
    }

    /// External account binding (RFC 8555 §7.3.4): the key id and the
    /// decoded HMAC key the CA gave.
    pub fn eab(mut self, kid: impl Into<String>, hmac_key: Vec<u8>) -> Self {
        self.eab = Some((kid.into(), hmac_key));
        self
    }

    /// The certificate profile to ask for in new orders.
    pub fn profile(mut self, profile: impl Into<String>) -> Self {
        self.profile = Some(profile.into());
        self
    }

    /// A contact email for the account.
    pub fn email(mut self, email: impl AsRef<str>) -> Self {
        self.contact.push(format!("mailto:{}", email.as_ref()));
        self
    }

    /// Whether to agree to the CA's terms of service (default: yes).
    pub fn agree_tos(mut self, agree: bool) -> Self {
        self.agree_tos = agree;
        self
    }

    /// The directory URL.
    pub fn directory_url(&self) -> &str {
        &self.directory_url
    }
}

/// The challenge types a manager answers, tried in this order of preference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Challenge {
    /// tls-alpn-01, answered in-band by [`TlsManager::accept`](crate::TlsManager::accept)
    /// and the resolver on the HTTPS listener (RFC 8737).
    TlsAlpn01,
    /// http-01, answered by [`Http01Service`](crate::Http01Service) or
    /// [`TlsManager::http01_key_authorization`](crate::TlsManager::http01_key_authorization)
    /// on the port-80 listener.
    Http01,
    /// dns-01, through the [`DnsSolver`] given to the builder.
    Dns01,
}

/// Publishes and removes dns-01 TXT records (RFC 8555 §8.4). The proxy
/// wires RFC 2136 DNS UPDATE to it; tests use an in-memory DNS server.
pub trait DnsSolver: Send + Sync + fmt::Debug {
    /// Publishes `value` as a TXT record at `record_name`
    /// (`_acme-challenge.NAME`). Return once it is visible to the CA.
    fn present<'a>(
        &'a self,
        record_name: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), String>>;
    /// Removes what [`DnsSolver::present`] published. Failures are logged.
    fn cleanup<'a>(
        &'a self,
        record_name: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// Decides whether a name that is not configured may get a certificate on
/// demand, during its first handshake.
pub type OnDemandPolicy = Arc<dyn Fn(&str) -> BoxFuture<'static, bool> + Send + Sync>;

/// Limits on on-demand issuance, so a scanner sending random names cannot
/// make the server order certificates.
#[derive(Clone)]
pub struct OnDemand {
    pub(crate) policy: OnDemandPolicy,
    pub(crate) handshake_timeout: Duration,
    /// Orders allowed at once over all names, then refilled one per
    /// `global_refill`.
    pub(crate) global_burst: u32,
    pub(crate) global_refill: Duration,
    /// Attempts per name, refilled one per `name_refill`.
    pub(crate) name_burst: u32,
    pub(crate) name_refill: Duration,
}

impl fmt::Debug for OnDemand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnDemand")
            .field("handshake_timeout", &self.handshake_timeout)
            .field("global_burst", &self.global_burst)
            .field("global_refill", &self.global_refill)
            .field("name_burst", &self.name_burst)
            .field("name_refill", &self.name_refill)
            .finish_non_exhaustive()
    }
}

impl OnDemand {
    /// On-demand issuance for the names `policy` allows. Defaults: a
    /// handshake waits at most 30 s; 10 orders at once then one a minute
    /// overall; 2 attempts per name then one every 10 minutes.
    pub fn new<F>(policy: F) -> Self
    where
        F: Fn(&str) -> BoxFuture<'static, bool> + Send + Sync + 'static,
    {
        Self {
            policy: Arc::new(policy),
            handshake_timeout: Duration::from_secs(30),
            global_burst: 10,
            global_refill: Duration::from_secs(60),
            name_burst: 2,
            name_refill: Duration::from_secs(600),
        }
    }

    /// How long a handshake waits for its certificate.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The global token bucket: `burst` orders, one more every `refill`.
    pub fn global_rate(mut self, burst: u32, refill: Duration) -> Self {
        self.global_burst = burst.max(1);
        self.global_refill = refill;
        self
    }

    /// The per-name token bucket: `burst` attempts, one more every `refill`.
    pub fn per_name_rate(mut self, burst: u32, refill: Duration) -> Self {
        self.name_burst = burst.max(1);
        self.name_refill = refill;
        self
    }
}

/// Timings of maintenance. The defaults suit production; tests shorten them.
#[derive(Clone, Debug)]
pub struct Timings {
    /// How often each certificate's ARI window and CRL are checked.
    pub check_interval: Duration,
    /// The first retry delay after a failure; it doubles up to `retry_max`.
    pub retry_base: Duration,
    /// The longest retry delay.
    pub retry_max: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            check_interval: Duration::from_secs(6 * 3600),
            retry_base: Duration::from_secs(60),
            retry_max: Duration::from_secs(6 * 3600),
        }
    }
}

/// Everything a manager is built from; see [`TlsManager::builder`](crate::TlsManager::builder).
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) config_dir: PathBuf,
    pub(crate) certificates: Vec<Vec<String>>,
    pub(crate) cas: Vec<CaConfig>,
    pub(crate) challenges: Vec<Challenge>,
    pub(crate) dns: Option<Arc<dyn DnsSolver>>,
    pub(crate) key_type: KeyType,
    pub(crate) on_demand: Option<OnDemand>,
    pub(crate) default_name: Option<String>,
    pub(crate) alpn: Vec<Vec<u8>>,
    pub(crate) timings: Timings,
    pub(crate) requested_validity: Option<Duration>,
    pub(crate) ari: bool,
    pub(crate) crl: bool,
}
