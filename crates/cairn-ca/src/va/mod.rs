//! The validation authority: proves from the network that an applicant
//! controls an identifier (RFC 8555 §8) and that CAA lets this CA issue for
//! it (RFC 8659).
//!
//! - `http01`: GET `http://<name>/.well-known/acme-challenge/<token>`
//!   (RFC 8555 §8.3, BR 3.2.2.4.19);
//! - `dns01`: TXT at `_acme-challenge.<name>` (RFC 8555 §8.4, BR 3.2.2.4.7);
//! - `tls_alpn01`: a TLS handshake offering only `acme-tls/1` (RFC 8737,
//!   BR 3.2.2.4.20), for IP identifiers too (RFC 8738 §6);
//! - `caa`: the relevant CAA RRset (RFC 8659 §3) and its `issue` /
//!   `issuewild` properties, with RFC 8657 `validationmethods` and
//!   `accounturi`; checked with every validation and again, alone, when a
//!   finalize uses a validation older than `caa_recheck_minutes`.
//!
//! Validation fails closed: a DNS error, a timeout or an address the CA
//! does not connect to is a failed validation, never a pass. Every outcome
//! is written to the audit log (target `cairn::audit`) with what was
//! fetched and which addresses were dialled.

mod caa;
mod dns01;
mod http01;
mod net;
mod tls_alpn01;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use cairn_proto::challenge::Token;
use cairn_proto::objects::ChallengeType;
use cairn_proto::{Identifier, IdentifierType, ProblemType};
use serde::{Deserialize, Serialize};

use crate::error::CaError;

/// The validation authority's settings (`[va]` in the CA's config file).
/// Every key is optional; the defaults are the production values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VaConfig {
    /// Port that http-01 requests go to: 80 (RFC 8555 §8.3).
    pub http01_port: u16,
    /// Port that tls-alpn-01 handshakes go to: 443 (RFC 8737 §3).
    pub tls_alpn01_port: u16,
    /// The recursive resolver to ask; `None` reads the nameservers from
    /// `/etc/resolv.conf`.
    pub dns_resolver: Option<SocketAddr>,
    /// Connect to loopback, private and other non-public addresses. Only
    /// for tests and development: in production this would let anyone
    /// make the CA probe its own network.
    pub allow_private_addresses: bool,
    /// How long one validation (DNS, connections, CAA) may take, in seconds.
    pub timeout_seconds: u64,
    /// The issuer domain names this CA answers to in CAA `issue` and
    /// `issuewild` properties (RFC 8659 §4.2). Empty: CAA is not checked
    /// (only allowed in dev mode).
    pub caa_identities: Vec<String>,
    /// A finalize that uses an authorization validated longer ago than
    /// this checks CAA again for its name before signing (BR 3.2.2.8 allows
    /// 8 hours; the default 420 keeps an hour of margin). 0: always.
    pub caa_recheck_minutes: u32,
    /// How many validations run and wait at once.
    pub queue: QueueLimits,
}

/// Bounds of the validation queue (`[validation.queue]` in the config
/// file); the RA enforces them when a challenge is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueLimits {
    /// Validations running at once.
    pub running: usize,
    /// Validations of one account running at once.
    pub per_account: usize,
    /// Validations of one account running or waiting; past it, answering
    /// a challenge gets `rateLimited`.
    pub waiting_per_account: usize,
    /// Validations running or waiting in all; past it, 503.
    pub waiting: usize,
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self {
            running: 64,
            per_account: 8,
            waiting_per_account: 300,
            waiting: 10_000,
        }
    }
}

impl Default for VaConfig {
    fn default() -> Self {
        Self {
            http01_port: 80,
            tls_alpn01_port: 443,
            dns_resolver: None,
            allow_private_addresses: false,
            timeout_seconds: 10,
            caa_identities: Vec::new(),
            caa_recheck_minutes: 420,
            queue: QueueLimits::default(),
        }
    }
}

impl VaConfig {
    /// Pebble-like test settings: high ports, a resolver on
    /// 127.0.0.1:8053, loopback and private targets allowed.
    pub fn dev() -> Self {
        Self {
            http01_port: 5002,
            tls_alpn01_port: 5001,
            dns_resolver: Some(SocketAddr::from(([127, 0, 0, 1], 8053))),
            allow_private_addresses: true,
            ..Self::default()
        }
    }
}

/// One challenge to check: what the RA asks the VA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationRequest {
    /// The identifier of the authorization; a wildcard may be given with
    /// or without its `*.` prefix.
    pub identifier: Identifier,
    /// Whether the authorization is for the wildcard `*.<identifier>`.
    pub wildcard: bool,
    pub challenge: ChallengeType,
    pub token: Token,
    /// `token || '.' || thumbprint` (RFC 8555 §8.1), computed by the RA from
    /// the account key.
    pub key_authorization: String,
    /// The URL of the account asking, for CAA `accounturi` (RFC 8657 §3).
    pub account_uri: String,
}

/// A CAA check on its own, as finalize makes when the validation it relies
/// on is old (BR 3.2.2.8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaaRequest {
    /// The authorization's identifier (a wildcard's base name).
    pub identifier: Identifier,
    pub wildcard: bool,
    /// How the name was validated, for `validationmethods`.
    pub method: ChallengeType,
    /// The account the certificate is for, for `accounturi`.
    pub account_uri: String,
}

/// Checks challenges. The RA holds one as `Arc<dyn Validator>`; a remote
/// validation perspective would implement it over the wire.
#[async_trait]
pub trait Validator: Send + Sync + 'static {
    /// Checks one challenge and, for `dns` identifiers, CAA. `Ok` only when
    /// the applicant proved control and CAA allows issuance.
    async fn validate(&self, req: &ValidationRequest) -> Result<ValidationRecord, CaError>;

    /// Checks CAA alone for a DNS name (an IP address has no CAA). `Ok`
    /// when this CA may issue for it to that account.
    async fn check_caa(&self, req: &CaaRequest) -> Result<CaaRecord, CaError>;
}

/// What a validation looked at, for the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationRecord {
    pub identifier: Identifier,
    pub challenge: ChallengeType,
    /// Connections made: one per URL for http-01 (redirects included, in
    /// order), one for tls-alpn-01, none for dns-01.
    pub connections: Vec<ConnectionRecord>,
    /// DNS questions asked for the challenge itself, e.g.
    /// `TXT _acme-challenge.example.org`.
    pub dns_queries: Vec<String>,
    /// The CAA check, when one was made.
    pub caa: Option<CaaRecord>,
}

/// One connection of a validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionRecord {
    /// The URL fetched (http-01), or `None` for a tls-alpn-01 handshake.
    pub url: Option<String>,
    /// The name or IP address connected to.
    pub host: String,
    pub port: u16,
    /// Every address the name resolved to, refused ones included.
    pub addresses_resolved: Vec<IpAddr>,
    /// The addresses dialled, in order.
    pub addresses_tried: Vec<IpAddr>,
    /// The address that answered.
    pub address_used: Option<IpAddr>,
}

/// What a CAA check looked at and concluded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaaRecord {
    /// The names whose CAA RRset was asked for, from the name up.
    pub names_queried: Vec<String>,
    /// Where the relevant RRset was found (RFC 8659 §3), if anywhere.
    pub relevant_at: Option<String>,
    /// The relevant RRset, in presentation form (`0 issue "ca.example"`).
    pub records: Vec<String>,
}

/// The production validator: real DNS, real connections.
pub struct NetworkValidator {
    config: VaConfig,
    network: net::Network,
    http01: http01::Http01,
    tls_alpn01: tls_alpn01::TlsAlpn01,
    caa_identities: Vec<String>,
}

impl fmt::Debug for NetworkValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetworkValidator")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl NetworkValidator {
    /// Builds the validator: checks the settings and sets up the resolver.
    pub fn new(config: VaConfig) -> Result<Self, CaError> {
        if config.timeout_seconds == 0 {
            return Err(config_error("va.timeout_seconds must be at least 1"));
        }
        if config.http01_port == 0 || config.tls_alpn01_port == 0 {
            return Err(config_error(
                "va.http01_port and va.tls_alpn01_port must not be 0",
            ));
        }
        let timeout = Duration::from_secs(config.timeout_seconds);
        let network = net::Network::new(&config, timeout)?;
        let http01 = http01::Http01::new(config.http01_port, http01::HTTPS_PORT)?;
        let tls_alpn01 = tls_alpn01::TlsAlpn01::new(config.tls_alpn01_port)?;
        let caa_identities = config
            .caa_identities
            .iter()
            .map(|id| id.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|id| !id.is_empty())
            .collect();
        Ok(Self {
            config,
            network,
            http01,
            tls_alpn01,
            caa_identities,
        })
    }

    /// The challenge and, for DNS names, CAA, run side by side. A failed
    /// challenge is reported before a CAA refusal.
    async fn run(
        &self,
        req: &ValidationRequest,
        record: &mut ValidationRecord,
        caa_record: &mut CaaRecord,
    ) -> Result<(), CaError> {
        let subject = Subject::from_request(req)?;
        let challenge = async {
            match (&req.challenge, &subject) {
                (ChallengeType::Http01, _) => {
                    self.http01
                        .validate(&self.network, &subject, req, record)
                        .await
                }
                (ChallengeType::Dns01, Subject::Name { name, .. }) => {
                    dns01::validate(&self.network, name, &req.key_authorization, record).await
                }
                (ChallengeType::TlsAlpn01, _) => {
                    self.tls_alpn01
                        .validate(&self.network, &subject, &req.key_authorization, record)
                        .await
                }
                (ChallengeType::Dns01, Subject::Ip(_)) => Err(CaError::malformed(
                    "dns-01 cannot validate an IP address identifier (RFC 8738 §7)",
                )),
                (other, _) => Err(CaError::malformed(format!(
                    "challenge type {:?} is not supported by this CA",
                    other.as_str()
                ))),
            }
        };
        match &subject {
            Subject::Name { name, wildcard } if !self.caa_identities.is_empty() => {
                let asker = caa::Asker {
                    identities: &self.caa_identities,
                    method: &req.challenge,
                    account_uri: &req.account_uri,
                };
                let caa = caa::check(&self.network, &asker, name, *wildcard, caa_record);
                let (challenge, caa) = tokio::join!(challenge, caa);
                challenge.and(caa)
            }
            _ => challenge.await,
        }
    }
}

#[async_trait]
impl Validator for NetworkValidator {
    async fn validate(&self, req: &ValidationRequest) -> Result<ValidationRecord, CaError> {
        let mut record = ValidationRecord {
            identifier: req.identifier.clone(),
            challenge: req.challenge.clone(),
            connections: Vec::new(),
            dns_queries: Vec::new(),
            caa: None,
        };
        let mut caa_record = CaaRecord::default();
        let timeout = Duration::from_secs(self.config.timeout_seconds);
        let outcome = match tokio::time::timeout(
            timeout,
            self.run(req, &mut record, &mut caa_record),
        )
        .await
        {
            Ok(outcome) => outcome,
            Err(_) => Err(timed_out(req, self.config.timeout_seconds)),
        };
        if !caa_record.names_queried.is_empty() {
            record.caa = Some(caa_record);
        }
        audit(req, &record, &outcome);
        outcome.map(|()| record)
    }

    async fn check_caa(&self, req: &CaaRequest) -> Result<CaaRecord, CaError> {
        let mut record = CaaRecord::default();
        if self.caa_identities.is_empty() || req.identifier.kind != IdentifierType::Dns {
            return Ok(record);
        }
        let value = req.identifier.value.as_str();
        let name = value.strip_prefix("*.").unwrap_or(value);
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        let wildcard = req.wildcard || req.identifier.is_wildcard();
        let asker = caa::Asker {
            identities: &self.caa_identities,
            method: &req.method,
            account_uri: &req.account_uri,
        };
        let seconds = self.config.timeout_seconds;
        let outcome = match tokio::time::timeout(
            Duration::from_secs(seconds),
            caa::check(&self.network, &asker, &name, wildcard, &mut record),
        )
        .await
        {
            Ok(outcome) => outcome,
            Err(_) => Err(CaError::new(
                ProblemType::Dns,
                format!("the CAA check of {name} did not finish within {seconds} s"),
            )),
        };
        let relevant = record.relevant_at.as_deref().unwrap_or("nowhere");
        match &outcome {
            Ok(()) => tracing::info!(
                target: "cairn::audit", identifier = %req.identifier, wildcard,
                method = req.method.as_str(), relevant_at = relevant, records = ?record.records,
                result = "allowed", "CAA checked again"
            ),
            Err(e) => tracing::info!(
                target: "cairn::audit", identifier = %req.identifier, wildcard,
                method = req.method.as_str(), relevant_at = relevant, records = ?record.records,
                result = "forbidden", problem = %e.kind, detail = %e.detail, "CAA checked again"
            ),
        }
        outcome.map(|()| record)
    }
}

/// A checked identifier: a lowercase DNS name without `*.` or trailing
/// dot, or an IP address.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Subject {
    Name { name: String, wildcard: bool },
    Ip(IpAddr),
}

impl Subject {
    fn from_request(req: &ValidationRequest) -> Result<Self, CaError> {
        let value = req.identifier.value.as_str();
        match &req.identifier.kind {
            IdentifierType::Dns => {
                let wildcard = req.wildcard || req.identifier.is_wildcard();
                let name = value.strip_prefix("*.").unwrap_or(value);
                let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
                if !net::is_dns_name(&name) {
                    return Err(CaError::malformed(format!(
                        "{} is not a DNS name the CA can validate",
                        quote(value.as_bytes())
                    )));
                }
                if wildcard && req.challenge != ChallengeType::Dns01 {
                    return Err(CaError::malformed(format!(
                        "{} cannot validate the wildcard *.{name}; wildcard names are \
                         validated with dns-01 only (RFC 8555 §7.1.3)",
                        req.challenge.as_str()
                    )));
                }
                Ok(Self::Name { name, wildcard })
            }
            IdentifierType::Ip => value.parse().map(Self::Ip).map_err(|_| {
                CaError::malformed(format!("{} is not an IP address", quote(value.as_bytes())))
            }),
            other => Err(CaError::new(
                ProblemType::UnsupportedIdentifier,
                format!("identifier type {:?} cannot be validated", other.as_str()),
            )),
        }
    }

    fn host(&self) -> net::Host {
        match self {
            Self::Name { name, .. } => net::Host::Name(name.clone()),
            Self::Ip(ip) => net::Host::Ip(*ip),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name { name, .. } => f.write_str(name),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

fn config_error(detail: &str) -> CaError {
    CaError::new(ProblemType::ServerInternal, detail)
}

/// The problem for a validation that ran out of time: `dns` for dns-01,
/// whose only work is DNS, `connection` otherwise.
fn timed_out(req: &ValidationRequest, seconds: u64) -> CaError {
    let kind = match req.challenge {
        ChallengeType::Dns01 => ProblemType::Dns,
        _ => ProblemType::Connection,
    };
    CaError::new(
        kind,
        format!(
            "{} validation of {} did not finish within {seconds} second{}",
            req.challenge.as_str(),
            req.identifier.value,
            if seconds == 1 { "" } else { "s" }
        ),
    )
}

fn audit(req: &ValidationRequest, record: &ValidationRecord, outcome: &Result<(), CaError>) {
    let urls: Vec<&str> = record
        .connections
        .iter()
        .filter_map(|c| c.url.as_deref())
        .collect();
    let addresses: Vec<IpAddr> = record
        .connections
        .iter()
        .flat_map(|c| c.addresses_tried.iter().copied())
        .collect();
    let caa = record.caa.as_ref().map(|caa| {
        caa.relevant_at.as_deref().map_or_else(
            || "no CAA records".to_owned(),
            |at| format!("relevant at {at}"),
        )
    });
    match outcome {
        Ok(()) => tracing::info!(
            target: "cairn::audit",
            identifier = %req.identifier,
            wildcard = req.wildcard,
            challenge = req.challenge.as_str(),
            result = "valid",
            ?urls,
            ?addresses,
            dns_queries = ?record.dns_queries,
            ?caa,
            "validation succeeded"
        ),
        Err(e) => tracing::info!(
            target: "cairn::audit",
            identifier = %req.identifier,
            wildcard = req.wildcard,
            challenge = req.challenge.as_str(),
            result = "invalid",
            problem = %e.kind,
            detail = %e.detail,
            ?urls,
            ?addresses,
            dns_queries = ?record.dns_queries,
            ?caa,
            "validation failed"
        ),
    }
}

/// Longest text quoted back from a response, in characters.
const QUOTE_MAX_CHARS: usize = 64;

/// Text an applicant's server sent, quoted for a problem detail: lossy
/// UTF-8, control characters escaped, cut after 64 characters.
fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::from("\"");
    let mut chars = text.chars();
    for c in chars.by_ref().take(QUOTE_MAX_CHARS) {
        out.extend(c.escape_debug());
    }
    out.push('"');
    if chars.next().is_some() {
        out.push_str(" (truncated)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(identifier: Identifier, challenge: ChallengeType) -> ValidationRequest {
        ValidationRequest {
            identifier,
            wildcard: false,
            challenge,
            token: Token::parse("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA").expect("token"),
            key_authorization: "x.y".into(),
            account_uri: "https://ca.test/acme/acct/1".into(),
        }
    }

    #[test]
    fn quote_escapes_and_cuts() {
        assert_eq!(quote(b"abc\n\x1b"), r#""abc\n\u{1b}""#);
        let long = "a".repeat(100);
        let q = quote(long.as_bytes());
        assert!(q.starts_with(&format!("\"{}\"", "a".repeat(64))), "{q}");
        assert!(q.ends_with("(truncated)"));
        assert_eq!(quote(&[0xff, b'a']), "\"\u{fffd}a\"");
    }

    #[test]
    fn subjects_are_normalised() {
        let req = request(Identifier::dns("WWW.Example.ORG."), ChallengeType::Http01);
        assert_eq!(
            Subject::from_request(&req),
            Ok(Subject::Name {
                name: "www.example.org".into(),
                wildcard: false
            })
        );
        let mut req = request(Identifier::dns("*.example.org"), ChallengeType::Dns01);
        assert_eq!(
            Subject::from_request(&req),
            Ok(Subject::Name {
                name: "example.org".into(),
                wildcard: true
            })
        );
        req.challenge = ChallengeType::Http01;
        let err = Subject::from_request(&req).expect_err("wildcard over http-01");
        assert_eq!(err.kind, ProblemType::Malformed);

        let req = request(Identifier::dns("a b.example"), ChallengeType::Http01);
        assert_eq!(
            Subject::from_request(&req).map_err(|e| e.kind),
            Err(ProblemType::Malformed)
        );
        let req = request(
            Identifier {
                kind: IdentifierType::Other("email".into()),
                value: "a@b.example".into(),
            },
            ChallengeType::Http01,
        );
        assert_eq!(
            Subject::from_request(&req).map_err(|e| e.kind),
            Err(ProblemType::UnsupportedIdentifier)
        );
    }

    #[test]
    fn validators_are_built_outside_a_runtime() {
        NetworkValidator::new(VaConfig::dev()).expect("dev settings");
        let zero = VaConfig {
            timeout_seconds: 0,
            ..VaConfig::dev()
        };
        let err = NetworkValidator::new(zero).expect_err("no time to validate");
        assert!(err.detail.contains("timeout_seconds"), "{}", err.detail);
    }

    #[test]
    fn config_defaults_are_production_values() {
        let parsed: VaConfig = toml::from_str("").expect("empty config");
        assert_eq!(parsed, VaConfig::default());
        assert_eq!(parsed.http01_port, 80);
        assert_eq!(parsed.tls_alpn01_port, 443);
        assert!(!parsed.allow_private_addresses);
        let dev: VaConfig = toml::from_str(
            "http01_port = 5002\ntls_alpn01_port = 5001\ndns_resolver = \"127.0.0.1:8053\"\n\
             allow_private_addresses = true",
        )
        .expect("dev config");
        assert_eq!(dev, VaConfig::dev());
        assert!(toml::from_str::<VaConfig>("http_port = 1").is_err());
    }
}
