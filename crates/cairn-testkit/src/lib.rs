//! Test helpers for Cairn. The main one is the challenge test server (the
//! `cairn-testsrv` binary, like Pebble's `pebble-challtestsrv`):
//!
//! - a DNS server (UDP and TCP) answering A/AAAA for every name with default
//!   addresses, and TXT, CAA, CNAME, NXDOMAIN and SERVFAIL as set;
//! - an http-01 responder (RFC 8555 §8.3);
//! - a tls-alpn-01 responder (RFC 8737);
//! - an HTTP management API to set all of that, with pebble-challtestsrv's
//!   paths and bodies.
//!
//! Rust tests run it in-process on ephemeral ports and set records directly:
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use cairn_testkit::{TestServer, TestServerConfig};
//!
//! let server = TestServer::start(TestServerConfig::default()).await?;
//! server.set_txt("_acme-challenge.a.example", "value")?;
//! let resolver_address = server.dns_addr().expect("DNS is on by default");
//! # let _ = resolver_address;
//! # Ok(())
//! # }
//! ```
//!
//! Dropping the [`TestServer`] stops every listener.

#![forbid(unsafe_code)]

pub mod browser;
mod dns;
mod http01;
mod management;
pub mod postgres;
pub mod process;
mod records;
mod tls_alpn01;
pub mod webserver;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use cairn_proto::challenge::{dns01_record_name, dns01_txt_value};
use tokio::task::JoinHandle;

pub use crate::dns::MAX_CNAME_CHAIN;
pub use crate::records::{CaaPolicy, Error, Records};

/// Where each part of the test server listens (`None`: not started; port 0:
/// an ephemeral port) and the default DNS addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestServerConfig {
    /// DNS server, UDP and TCP on the same address.
    pub dns: Option<SocketAddr>,
    /// Management API (HTTP).
    pub management: Option<SocketAddr>,
    /// http-01 responder (HTTP).
    pub http01: Option<SocketAddr>,
    /// tls-alpn-01 responder (TLS).
    pub tls_alpn01: Option<SocketAddr>,
    /// Answer to A queries for names with no A record; `None`: empty answer.
    pub default_ipv4: Option<Ipv4Addr>,
    /// Answer to AAAA queries for names with no AAAA record; `None`: empty answer.
    pub default_ipv6: Option<Ipv6Addr>,
}

impl TestServerConfig {
    /// Default DNS port of `cairn-testsrv` (and pebble-challtestsrv).
    pub const DNS_PORT: u16 = 8053;
    /// Default management API port.
    pub const MANAGEMENT_PORT: u16 = 8055;
    /// Default http-01 port (Pebble's `httpPort`).
    pub const HTTP01_PORT: u16 = 5002;
    /// Default tls-alpn-01 port (Pebble's `tlsPort`).
    pub const TLS_ALPN01_PORT: u16 = 5001;

    /// Every part on loopback at the fixed ports the `cairn-testsrv` binary
    /// uses by default (8053, 8055, 5002, 5001).
    pub fn fixed_ports() -> Self {
        let at = |port| Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
        Self {
            dns: at(Self::DNS_PORT),
            management: at(Self::MANAGEMENT_PORT),
            http01: at(Self::HTTP01_PORT),
            tls_alpn01: at(Self::TLS_ALPN01_PORT),
            ..Self::default()
        }
    }
}

impl Default for TestServerConfig {
    /// Every part on 127.0.0.1 with an ephemeral port; A queries answer
    /// 127.0.0.1, AAAA queries answer nothing.
    fn default() -> Self {
        let ephemeral = Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
        Self {
            dns: ephemeral,
            management: ephemeral,
            http01: ephemeral,
            tls_alpn01: ephemeral,
            default_ipv4: Some(Ipv4Addr::LOCALHOST),
            default_ipv6: None,
        }
    }
}

/// A running challenge test server. Dropping it aborts every listener.
///
/// The record methods change what every part answers at once; they are the
/// same as the management API's, without HTTP.
#[derive(Debug)]
pub struct TestServer {
    records: Records,
    dns_addr: Option<SocketAddr>,
    management_addr: Option<SocketAddr>,
    http01_addr: Option<SocketAddr>,
    tls_alpn01_addr: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

impl TestServer {
    /// Binds every configured listener and starts serving on the current
    /// Tokio runtime (it must be called inside one; a current-thread runtime
    /// such as `#[tokio::test]`'s is enough). Fails, naming the listener and address, when one
    /// cannot bind; listeners already started are then stopped.
    pub async fn start(config: TestServerConfig) -> anyhow::Result<Self> {
        let records = Records::new(config.default_ipv4, config.default_ipv6);
        let mut server = Self {
            records: records.clone(),
            dns_addr: None,
            management_addr: None,
            http01_addr: None,
            tls_alpn01_addr: None,
            tasks: Vec::new(),
        };
        if let Some(addr) = config.dns {
            let (bound, task) = dns::spawn(addr, records.clone()).await?;
            server.tasks.push(task);
            server.dns_addr = Some(bound);
        }
        if let Some(addr) = config.management {
            let (bound, task) = management::spawn(addr, records.clone()).await?;
            server.tasks.push(task);
            server.management_addr = Some(bound);
        }
        if let Some(addr) = config.http01 {
            let (bound, task) = http01::spawn(addr, records.clone()).await?;
            server.tasks.push(task);
            server.http01_addr = Some(bound);
        }
        if let Some(addr) = config.tls_alpn01 {
            let (bound, task) = tls_alpn01::spawn(addr, records).await?;
            server.tasks.push(task);
            server.tls_alpn01_addr = Some(bound);
        }
        Ok(server)
    }

    /// Where the DNS server listens (UDP and TCP), if started.
    pub fn dns_addr(&self) -> Option<SocketAddr> {
        self.dns_addr
    }

    /// Where the management API listens, if started.
    pub fn management_addr(&self) -> Option<SocketAddr> {
        self.management_addr
    }

    /// Where the http-01 responder listens, if started.
    pub fn http01_addr(&self) -> Option<SocketAddr> {
        self.http01_addr
    }

    /// Where the tls-alpn-01 responder listens, if started.
    pub fn tls_alpn01_addr(&self) -> Option<SocketAddr> {
        self.tls_alpn01_addr
    }

    /// The shared record store; clones of it stay live while the server runs.
    pub fn records(&self) -> &Records {
        &self.records
    }

    /// See [`Records::set_default_ipv4`].
    pub fn set_default_ipv4(&self, address: Option<Ipv4Addr>) {
        self.records.set_default_ipv4(address);
    }

    /// See [`Records::set_default_ipv6`].
    pub fn set_default_ipv6(&self, address: Option<Ipv6Addr>) {
        self.records.set_default_ipv6(address);
    }

    /// Adds a TXT value for `host`, next to any already there. See [`Records::set_txt`].
    pub fn set_txt(&self, host: &str, value: &str) -> Result<(), Error> {
        self.records.set_txt(host, value)
    }

    /// Removes every TXT value of `host`.
    pub fn clear_txt(&self, host: &str) -> Result<(), Error> {
        self.records.clear_txt(host)
    }

    /// Provisions dns-01 for `domain` (a wildcard's `*.` dropped): adds the
    /// TXT value for `key_authorization` at `_acme-challenge.<domain>`
    /// (RFC 8555 §8.4).
    pub fn add_dns01(&self, domain: &str, key_authorization: &str) -> Result<(), Error> {
        self.records.set_txt(
            &dns01_record_name(domain),
            &dns01_txt_value(key_authorization),
        )
    }

    /// Removes every TXT value at `_acme-challenge.<domain>`.
    pub fn clear_dns01(&self, domain: &str) -> Result<(), Error> {
        self.records.clear_txt(&dns01_record_name(domain))
    }

    /// See [`Records::add_a`].
    pub fn add_a(&self, host: &str, addresses: &[Ipv4Addr]) -> Result<(), Error> {
        self.records.add_a(host, addresses)
    }

    /// See [`Records::clear_a`].
    pub fn clear_a(&self, host: &str) -> Result<(), Error> {
        self.records.clear_a(host)
    }

    /// See [`Records::add_aaaa`].
    pub fn add_aaaa(&self, host: &str, addresses: &[Ipv6Addr]) -> Result<(), Error> {
        self.records.add_aaaa(host, addresses)
    }

    /// See [`Records::clear_aaaa`].
    pub fn clear_aaaa(&self, host: &str) -> Result<(), Error> {
        self.records.clear_aaaa(host)
    }

    /// See [`Records::add_caa`].
    pub fn add_caa(&self, host: &str, policies: &[CaaPolicy]) -> Result<(), Error> {
        self.records.add_caa(host, policies)
    }

    /// See [`Records::clear_caa`].
    pub fn clear_caa(&self, host: &str) -> Result<(), Error> {
        self.records.clear_caa(host)
    }

    /// See [`Records::set_cname`].
    pub fn set_cname(&self, host: &str, target: &str) -> Result<(), Error> {
        self.records.set_cname(host, target)
    }

    /// See [`Records::clear_cname`].
    pub fn clear_cname(&self, host: &str) -> Result<(), Error> {
        self.records.clear_cname(host)
    }

    /// See [`Records::set_nxdomain`].
    pub fn set_nxdomain(&self, host: &str) -> Result<(), Error> {
        self.records.set_nxdomain(host)
    }

    /// See [`Records::clear_nxdomain`].
    pub fn clear_nxdomain(&self, host: &str) -> Result<(), Error> {
        self.records.clear_nxdomain(host)
    }

    /// See [`Records::set_servfail`].
    pub fn set_servfail(&self, host: &str) -> Result<(), Error> {
        self.records.set_servfail(host)
    }

    /// See [`Records::clear_servfail`].
    pub fn clear_servfail(&self, host: &str) -> Result<(), Error> {
        self.records.clear_servfail(host)
    }

    /// See [`Records::add_http01`].
    pub fn add_http01(&self, token: &str, content: &str) -> Result<(), Error> {
        self.records.add_http01(token, content)
    }

    /// See [`Records::del_http01`].
    pub fn del_http01(&self, token: &str) -> Result<(), Error> {
        self.records.del_http01(token)
    }

    /// See [`Records::add_tls_alpn01`].
    pub fn add_tls_alpn01(&self, host: &str, key_authorization: &str) -> Result<(), Error> {
        self.records.add_tls_alpn01(host, key_authorization)
    }

    /// See [`Records::del_tls_alpn01`].
    pub fn del_tls_alpn01(&self, host: &str) -> Result<(), Error> {
        self.records.del_tls_alpn01(host)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
