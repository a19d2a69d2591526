//! DNS lookups and outgoing connections, with the address policy that
//! keeps the CA from being used to probe networks it sits in (SSRF).
//!
//! Names are resolved here, with hickory, never by the operating system:
//! every address is checked before it is dialled, and each connection goes
//! to the address that was checked.
//!
//! Address order, as Boulder does: of the addresses a name resolves to,
//! the first allowed IPv6 address is tried, then, if connecting to it
//! fails (refused, unreachable, timed out), the first allowed IPv4
//! address. A failure after the connection is made (TLS, HTTP) is final.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use cairn_proto::ProblemType;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use tokio::net::TcpStream;

use super::{ConnectionRecord, VaConfig};
use crate::error::CaError;
use crate::policy::non_public;

/// Where a connection goes: a DNS name to resolve, or an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Host {
    Name(String),
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => f.write_str(name),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Why a lookup gave no records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum LookupError {
    /// The name does not exist (NXDOMAIN) or has no records of the type.
    NotFound { nxdomain: bool },
    /// The resolver could not answer: SERVFAIL, REFUSED, timeout, I/O.
    Failed(String),
}

/// The resolver and the connection policy of one validator.
pub(super) struct Network {
    resolver: TokioResolver,
    allow_private: bool,
    connect_timeout: Duration,
}

impl Network {
    pub(super) fn new(config: &VaConfig, timeout: Duration) -> Result<Self, CaError> {
        let servers = match config.dns_resolver {
            Some(server) => vec![server],
            None => system_nameservers()?,
        };
        let name_servers = servers
            .iter()
            .map(|server| {
                let mut udp = ConnectionConfig::udp();
                udp.port = server.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = server.port();
                NameServerConfig::new(server.ip(), true, vec![udp, tcp])
            })
            .collect();
        let mut options = ResolverOpts::default();
        // Each query goes to the network: a record fixed after a failed
        // attempt must be seen by the next one, and nothing is reused
        // across validations.
        options.cache_size = 0;
        options.positive_max_ttl = Some(Duration::ZERO);
        options.negative_max_ttl = Some(Duration::ZERO);
        options.use_hosts_file = ResolveHosts::Never;
        options.ndots = 0;
        // Two tries of a quarter of the budget each leave room for CAA
        // and the connection itself.
        options.timeout = (timeout / 4).clamp(Duration::from_millis(500), Duration::from_secs(5));
        options.attempts = 2;
        let resolver = Resolver::builder_with_config(
            ResolverConfig::from_name_servers(name_servers),
            TokioRuntimeProvider::default(),
        )
        .with_options(options)
        .build()
        .map_err(|e| CaError::internal("building the validation authority's resolver", e))?;
        Ok(Self {
            resolver,
            allow_private: config.allow_private_addresses,
            connect_timeout: (timeout / 2).max(Duration::from_secs(1)),
        })
    }

    pub(super) fn allow_private(&self) -> bool {
        self.allow_private
    }

    /// The records of `record_type` at `name` (CNAMEs followed by the
    /// resolver); never empty when `Ok`.
    pub(super) async fn lookup(
        &self,
        name: &str,
        record_type: RecordType,
    ) -> Result<Vec<RData>, LookupError> {
        let fqdn = Name::from_ascii(format!("{}.", name.trim_end_matches('.')))
            .map_err(|e| LookupError::Failed(format!("{name:?} is not a valid DNS name: {e}")))?;
        let lookup = self
            .resolver
            .lookup(fqdn, record_type)
            .await
            .map_err(classify)?;
        let records: Vec<RData> = lookup
            .answers()
            .iter()
            .filter(|r| r.record_type() == record_type)
            .map(|r| r.data.clone())
            .collect();
        if records.is_empty() {
            return Err(LookupError::NotFound { nxdomain: false });
        }
        Ok(records)
    }

    /// Resolves `host` (A and AAAA side by side) and keeps the addresses
    /// the policy allows, in the order they are to be tried.
    async fn addresses(
        &self,
        host: &Host,
        record: &mut ConnectionRecord,
    ) -> Result<Vec<IpAddr>, CaError> {
        let resolved = match host {
            Host::Ip(ip) => vec![*ip],
            Host::Name(name) => self.resolve(name).await?,
        };
        record.addresses_resolved.clone_from(&resolved);
        let mut refused = Vec::new();
        let mut v6 = None;
        let mut v4 = None;
        for ip in resolved {
            if let Some(why) = self.refusal(ip) {
                refused.push(format!("{ip} ({why})"));
                continue;
            }
            match ip {
                IpAddr::V6(_) => v6 = v6.or(Some(ip)),
                IpAddr::V4(_) => v4 = v4.or(Some(ip)),
            }
        }
        let candidates: Vec<IpAddr> = v6.into_iter().chain(v4).collect();
        if candidates.is_empty() {
            let detail = match host {
                Host::Ip(_) => format!(
                    "the CA does not connect to {}, which is not a public address",
                    refused.join(", ")
                ),
                Host::Name(name) => format!(
                    "{name} resolves only to addresses the CA does not connect to: {}",
                    refused.join(", ")
                ),
            };
            let kind = match host {
                Host::Ip(_) => ProblemType::Connection,
                Host::Name(_) => ProblemType::Dns,
            };
            return Err(CaError::new(kind, detail));
        }
        Ok(candidates)
    }

    async fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, CaError> {
        let (v6, v4) = tokio::join!(
            self.lookup(name, RecordType::AAAA),
            self.lookup(name, RecordType::A)
        );
        let mut found = Vec::new();
        for records in [&v6, &v4].into_iter().flatten() {
            found.extend(records.iter().filter_map(|rdata| match rdata {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                _ => None,
            }));
        }
        if !found.is_empty() {
            return Ok(found);
        }
        let detail = match (v6, v4) {
            (_, Err(LookupError::NotFound { nxdomain: true }))
            | (Err(LookupError::NotFound { nxdomain: true }), _) => {
                format!("{name} does not exist (NXDOMAIN)")
            }
            (_, Err(LookupError::Failed(why))) | (Err(LookupError::Failed(why)), _) => {
                format!("could not look up the addresses of {name}: {why}")
            }
            _ => format!("no A or AAAA records found for {name}"),
        };
        Err(CaError::new(ProblemType::Dns, detail))
    }

    /// Why the CA must not connect to `ip`, unless private addresses are
    /// allowed.
    fn refusal(&self, ip: IpAddr) -> Option<&'static str> {
        if self.allow_private {
            None
        } else {
            non_public(ip)
        }
    }

    /// Connects to `host` on `port`: resolution, the address policy, then
    /// IPv6 first with a fallback to IPv4. `subject` names the identifier
    /// being validated, for the problem detail.
    pub(super) async fn connect(
        &self,
        host: &Host,
        port: u16,
        subject: &str,
        record: &mut ConnectionRecord,
    ) -> Result<(TcpStream, IpAddr), CaError> {
        let candidates = self.addresses(host, record).await?;
        let mut failures = Vec::new();
        for ip in candidates {
            record.addresses_tried.push(ip);
            let addr = SocketAddr::new(ip, port);
            let attempt =
                tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await;
            match attempt {
                Ok(Ok(stream)) => {
                    record.address_used = Some(ip);
                    return Ok((stream, ip));
                }
                Ok(Err(e)) => failures.push((addr, describe_io(&e))),
                Err(_) => failures.push((addr, "timed out".to_owned())),
            }
        }
        let detail = match failures.as_slice() {
            [(addr, why)] => format!("could not connect to {addr} for {subject}: {why}"),
            _ => {
                let each: Vec<String> = failures
                    .iter()
                    .map(|(addr, why)| format!("{addr} ({why})"))
                    .collect();
                format!("could not connect to {subject}: {}", each.join(", "))
            }
        };
        Err(CaError::new(ProblemType::Connection, detail))
    }
}

/// A short, stable phrase for a socket error.
pub(super) fn describe_io(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        io::ErrorKind::ConnectionAborted => "connection aborted".into(),
        io::ErrorKind::TimedOut => "timed out".into(),
        io::ErrorKind::HostUnreachable => "host unreachable".into(),
        io::ErrorKind::NetworkUnreachable => "network unreachable".into(),
        io::ErrorKind::UnexpectedEof => "connection closed early".into(),
        _ => e.to_string(),
    }
}

fn classify(e: NetError) -> LookupError {
    if e.is_no_records_found() {
        return LookupError::NotFound {
            nxdomain: e.is_nx_domain(),
        };
    }
    LookupError::Failed(match &e {
        NetError::Timeout => "the DNS query timed out".into(),
        NetError::Dns(DnsError::ResponseCode(code)) => match code {
            ResponseCode::ServFail => "SERVFAIL".into(),
            ResponseCode::Refused => "REFUSED".into(),
            ResponseCode::FormErr => "FORMERR".into(),
            ResponseCode::NotImp => "NOTIMP".into(),
            other => format!("DNS error ({other})"),
        },
        NetError::Io(io) => format!("the resolver could not be reached ({})", describe_io(io)),
        other => other.to_string(),
    })
}

/// The nameservers of `/etc/resolv.conf`, on port 53.
fn system_nameservers() -> Result<Vec<SocketAddr>, CaError> {
    const PATH: &str = "/etc/resolv.conf";
    let text = std::fs::read_to_string(PATH).map_err(|e| {
        CaError::new(
            ProblemType::ServerInternal,
            format!("va.dns_resolver is not set and {PATH} cannot be read: {e}"),
        )
    })?;
    let servers = parse_resolv_conf(&text);
    if servers.is_empty() {
        return Err(CaError::new(
            ProblemType::ServerInternal,
            format!("va.dns_resolver is not set and {PATH} names no nameserver"),
        ));
    }
    Ok(servers)
}

fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then_some(())?;
            // A link-local IPv6 server may carry a zone (`fe80::1%eth0`),
            // which SocketAddr cannot: such servers are skipped.
            let ip: IpAddr = words.next()?.parse().ok()?;
            Some(SocketAddr::new(ip, 53))
        })
        .collect()
}

/// A syntactically valid host name: ASCII letters, digits and hyphens in
/// labels of 1 to 63 characters that neither start nor end with a hyphen,
/// at least two labels, at most 253 characters. Lowercase expected.
pub(super) fn is_dns_name(name: &str) -> bool {
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    name.len() <= 253 && name.contains('.') && name.split('.').all(label_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn host_names_are_checked() {
        assert!(is_dns_name("a.example"));
        assert!(is_dns_name("xn--bcher-kva.example"));
        assert!(is_dns_name("1.2.3.4.example"));
        for bad in [
            "localhost",
            "a..example",
            "-a.example",
            "a-.example",
            "a_b.example",
            "A.example",
            "a.example.",
            "",
        ] {
            assert!(!is_dns_name(bad), "{bad}");
        }
        assert!(!is_dns_name(&format!("{}.example", "a".repeat(64))));
    }

    #[test]
    fn resolv_conf_nameservers_are_read() {
        let text = "# comment\nsearch example\nnameserver 192.0.2.53\nnameserver ::1\n\
                    nameserver fe80::1%eth0\noptions ndots:2\n";
        assert_eq!(
            parse_resolv_conf(text),
            vec![
                SocketAddr::from(([192, 0, 2, 53], 53)),
                SocketAddr::new(ip("::1"), 53)
            ]
        );
    }
}
