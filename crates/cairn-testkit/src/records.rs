//! The state every responder reads and the management API writes: DNS
//! records, http-01 responses and tls-alpn-01 certificates.
//!
//! [`Records`] is a cheap handle (an `Arc` inside); clones share one store.
//! Host names are case-insensitive and may be given with or without the
//! trailing dot: `A.Example.` and `a.example` are the same name.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use cairn_proto::challenge::{ACME_IDENTIFIER_OID, Token, tls_alpn01_extension_value};
use rcgen::{CertificateParams, CustomExtension, DistinguishedName, DnType, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

/// Why a record could not be set.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The host is not a usable DNS name.
    InvalidHost {
        /// The host as given.
        host: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The http-01 token is not base64url of an acceptable length.
    InvalidToken(String),
    /// A record value is out of range (a CAA tag, for one).
    InvalidRecord(String),
    /// The tls-alpn-01 certificate could not be made.
    Certificate {
        /// The host the certificate was for.
        host: String,
        /// What failed.
        reason: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidHost { host, reason } => write!(f, "invalid host {host:?}: {reason}"),
            Self::InvalidToken(message) => write!(f, "invalid http-01 token: {message}"),
            Self::InvalidRecord(message) => f.write_str(message),
            Self::Certificate { host, reason } => {
                write!(
                    f,
                    "cannot make a tls-alpn-01 certificate for {host:?}: {reason}"
                )
            }
        }
    }
}

impl std::error::Error for Error {}

/// One CAA record (RFC 8659 §4.1): flags, property tag and value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaaPolicy {
    /// Flags octet; 128 is the issuer-critical flag.
    pub flags: u8,
    /// Property tag: `issue`, `issuewild`, `iodef`, ...
    pub tag: String,
    /// Property value, sent as given.
    pub value: String,
}

impl CaaPolicy {
    /// A policy with flags 0.
    pub fn new(tag: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            flags: 0,
            tag: tag.into(),
            value: value.into(),
        }
    }

    /// `0 issue "<issuer>"`.
    pub fn issue(issuer: impl Into<String>) -> Self {
        Self::new("issue", issuer)
    }

    /// `0 issuewild "<issuer>"`.
    pub fn issuewild(issuer: impl Into<String>) -> Self {
        Self::new("issuewild", issuer)
    }

    /// The same policy with these flags.
    pub fn with_flags(mut self, flags: u8) -> Self {
        self.flags = flags;
        self
    }

    fn check(&self) -> Result<(), Error> {
        // RFC 8659 §4.1: a tag is 1..15 ASCII letters and digits.
        let tag_ok = (1..=15).contains(&self.tag.len())
            && self.tag.bytes().all(|b| b.is_ascii_alphanumeric());
        if !tag_ok {
            return Err(Error::InvalidRecord(format!(
                "CAA tag {:?} is not 1 to 15 ASCII letters and digits (RFC 8659 §4.1)",
                self.tag
            )));
        }
        if self.value.len() > u16::MAX as usize / 2 {
            return Err(Error::InvalidRecord("CAA value is too long".into()));
        }
        Ok(())
    }
}

/// Shared store of everything the test server answers. Clones share state.
#[derive(Clone, Debug, Default)]
pub struct Records {
    inner: Arc<RwLock<Inner>>,
}

/// The data behind [`Records`], keyed by normalized names (lowercase, no
/// trailing dot).
#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub(crate) default_ipv4: Option<Ipv4Addr>,
    pub(crate) default_ipv6: Option<Ipv6Addr>,
    pub(crate) a: HashMap<String, Vec<Ipv4Addr>>,
    pub(crate) aaaa: HashMap<String, Vec<Ipv6Addr>>,
    pub(crate) txt: HashMap<String, Vec<String>>,
    pub(crate) caa: HashMap<String, Vec<CaaPolicy>>,
    pub(crate) cname: HashMap<String, String>,
    pub(crate) nxdomain: HashSet<String>,
    pub(crate) servfail: HashSet<String>,
    pub(crate) http01: HashMap<String, String>,
    /// Keyed by the SNI the validator sends: the name itself, or for an IP
    /// identifier its reverse name (RFC 8738 §6).
    pub(crate) tls_alpn01: HashMap<String, Arc<CertifiedKey>>,
}

impl Records {
    /// An empty store answering A and AAAA queries for any name with these
    /// default addresses (`None`: no default, an empty answer).
    pub fn new(default_ipv4: Option<Ipv4Addr>, default_ipv6: Option<Ipv6Addr>) -> Self {
        let records = Self::default();
        {
            let mut inner = records.write();
            inner.default_ipv4 = default_ipv4;
            inner.default_ipv6 = default_ipv6;
        }
        records
    }

    /// Sets the address every A query gets when its name has no A record of
    /// its own; `None` gives an empty answer.
    pub fn set_default_ipv4(&self, address: Option<Ipv4Addr>) {
        self.write().default_ipv4 = address;
    }

    /// Sets the address every AAAA query gets when its name has no AAAA
    /// record of its own; `None` gives an empty answer.
    pub fn set_default_ipv6(&self, address: Option<Ipv6Addr>) {
        self.write().default_ipv6 = address;
    }

    /// Adds a TXT value for `host`, next to any already there (a dns-01
    /// name can need two values at once: `a.example` and `*.a.example`).
    /// Adding a value that is already there changes nothing.
    pub fn set_txt(&self, host: &str, value: &str) -> Result<(), Error> {
        let host = normalize_host(host)?;
        let mut inner = self.write();
        let values = inner.txt.entry(host).or_default();
        if !values.iter().any(|v| v == value) {
            values.push(value.to_owned());
        }
        Ok(())
    }

    /// Removes every TXT value of `host`.
    pub fn clear_txt(&self, host: &str) -> Result<(), Error> {
        let host = normalize_host(host)?;
        self.write().txt.remove(&host);
        Ok(())
    }

    /// Adds A records for `host`; the default IPv4 address no longer applies to it.
    pub fn add_a(&self, host: &str, addresses: &[Ipv4Addr]) -> Result<(), Error> {
        let host = normalize_host(host)?;
        add_unique(self.write().a.entry(host).or_default(), addresses);
        Ok(())
    }

    /// Removes the A records of `host`; it gets the default address again.
    pub fn clear_a(&self, host: &str) -> Result<(), Error> {
        let host = normalize_host(host)?;
        self.write().a.remove(&host);
        Ok(())
    }

    /// Adds AAAA records for `host`; the default IPv6 address no longer applies to it.
    pub fn add_aaaa(&self, host: &str, addresses: &[Ipv6Addr]) -> Result<(), Error> {
        let host = normalize_host(host)?;
        add_unique(self.write().aaaa.entry(host).or_default(), addresses);
        Ok(())
    }

    /// Removes the AAAA records of `host`; it gets the default address again.
    pub fn clear_aaaa(&self, host: &str) -> Result<(), Error> {
        let host = normalize_host(host)?;
        self.write().aaaa.remove(&host);
        Ok(())
    }

    /// Adds CAA records for `host`.
    pub fn add_caa(&self, host: &str, policies: &[CaaPolicy]) -> Result<(), Error> {
        let host = normalize_host(host)?;
        for policy in policies {
            policy.check()?;
        }
        add_unique(self.write().caa.entry(host).or_default(), policies);
        Ok(())
    }

    /// Removes the CAA records of `host`.
    pub fn clear_caa(&self, host: &str) -> Result<(), Error> {
        let host = normalize_host(host)?;
        self.write().caa.remove(&host);
        Ok(())
    }

    /// Makes `host` an alias of `target`, replacing an earlier alias. Queries
    /// for `host` get the CNAME and then `target`'s records of the asked type.
    pub fn set_cname(&self, host: &str, target: &str) -> Result<(), Error> {
        let host = normalize_host(host)?;
        let target = normalize_host(target)?;
        self.write().cname.insert(host, target);
        Ok(())
    }

    /// Removes the alias of `host`.
    pub fn clear_cname(&self, host: &str) -> Result<(), Error> {
        let host = normalize_host(host)?;
        self.write().cname.remove(&host);
        Ok(())
    }

    /// Makes every query for `host` answer NXDOMAIN, whatever is set for it.
    pub fn set_nxdomain(&self, host: &str) -> Result<(), Error> {
        let host = normalize_host(host)?;
        self.write().nxdomain.insert(host);
        Ok(())
    }

    /// Undoes [`Records::set_nxdomain`].
    pub fn clear_nxdomain(&self, host: &str) -> Result<(), Error> {
        let host = normalize_host(host)?;
        self.write().nxdomain.remove(&host);
        Ok(())
    }

    /// Makes every query for `host` answer SERVFAIL, to test that a
    /// validator fails closed.
    pub fn set_servfail(&self, host: &str) -> Result<(), Error> {
        let host = normalize_host(host)?;
        self.write().servfail.insert(host);
        Ok(())
    }

    /// Undoes [`Records::set_servfail`].
    pub fn clear_servfail(&self, host: &str) -> Result<(), Error> {
        let host = normalize_host(host)?;
        self.write().servfail.remove(&host);
        Ok(())
    }

    /// Serves `content` at `/.well-known/acme-challenge/<token>` on the
    /// http-01 responder, replacing an earlier content for that token.
    pub fn add_http01(&self, token: &str, content: &str) -> Result<(), Error> {
        let token = parse_token(token)?;
        self.write()
            .http01
            .insert(token.as_str().to_owned(), content.to_owned());
        Ok(())
    }

    /// Stops serving `token`.
    pub fn del_http01(&self, token: &str) -> Result<(), Error> {
        let token = parse_token(token)?;
        self.write().http01.remove(token.as_str());
        Ok(())
    }

    /// The content served for an http-01 token, if any.
    pub fn http01(&self, token: &str) -> Option<String> {
        self.read().http01.get(token).cloned()
    }

    /// Makes the tls-alpn-01 responder answer a handshake for `host` (SNI,
    /// ALPN `acme-tls/1`) with a self-signed certificate for `host` carrying
    /// the acmeIdentifier extension for `key_authorization` (RFC 8737 §3).
    /// `host` may be an IP address: the certificate then names the address
    /// and is chosen by its reverse name (RFC 8738 §6).
    pub fn add_tls_alpn01(&self, host: &str, key_authorization: &str) -> Result<(), Error> {
        let (sni, san) = tls_alpn01_names(host)?;
        let certified_key = tls_alpn01_certificate(&san, key_authorization).map_err(|reason| {
            Error::Certificate {
                host: host.to_owned(),
                reason,
            }
        })?;
        self.write().tls_alpn01.insert(sni, Arc::new(certified_key));
        Ok(())
    }

    /// Stops answering tls-alpn-01 handshakes for `host`.
    pub fn del_tls_alpn01(&self, host: &str) -> Result<(), Error> {
        let (sni, _) = tls_alpn01_names(host)?;
        self.write().tls_alpn01.remove(&sni);
        Ok(())
    }

    /// The certificate for a tls-alpn-01 handshake with this SNI, if any.
    pub(crate) fn tls_alpn01_certificate(&self, server_name: &str) -> Option<Arc<CertifiedKey>> {
        let key = server_name.trim_end_matches('.').to_ascii_lowercase();
        self.read().tls_alpn01.get(&key).cloned()
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Inner> {
        // A panic while holding the lock leaves whole maps behind; keep serving.
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Lowercases `host`, drops one trailing dot and checks it is a DNS name
/// (underscores and `*` labels allowed, as test names need them).
pub(crate) fn normalize_host(host: &str) -> Result<String, Error> {
    let invalid = |reason: &str| Error::InvalidHost {
        host: host.chars().take(300).collect(),
        reason: reason.to_owned(),
    };
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if name.is_empty() {
        return Err(invalid("the name is empty"));
    }
    if name.len() > 253 {
        return Err(invalid("the name is longer than 253 characters"));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(invalid("the name has an empty label"));
        }
        if label.len() > 63 {
            return Err(invalid("a label is longer than 63 characters"));
        }
        let chars_ok = label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'*');
        if !chars_ok {
            return Err(invalid(
                "only letters, digits, '-', '_' and '*' are allowed in a label",
            ));
        }
    }
    Ok(name)
}

fn parse_token(token: &str) -> Result<Token, Error> {
    Token::parse(token).map_err(|e| Error::InvalidToken(e.to_string()))
}

fn add_unique<T: Clone + PartialEq>(list: &mut Vec<T>, new: &[T]) {
    for item in new {
        if !list.contains(item) {
            list.push(item.clone());
        }
    }
}

/// The SNI key and the SAN of a tls-alpn-01 certificate for `host`.
fn tls_alpn01_names(host: &str) -> Result<(String, String), Error> {
    let trimmed = host.strip_suffix('.').unwrap_or(host);
    if let Ok(ip) = trimmed.parse::<IpAddr>() {
        let reverse = hickory_proto::rr::Name::from(ip).to_ascii();
        let sni = reverse.trim_end_matches('.').to_ascii_lowercase();
        return Ok((sni, ip.to_string()));
    }
    let name = normalize_host(host)?;
    if name.contains('*') {
        return Err(Error::InvalidHost {
            host: host.to_owned(),
            reason: "tls-alpn-01 cannot validate a wildcard name (RFC 8737 §3)".into(),
        });
    }
    Ok((name.clone(), name))
}

/// A self-signed certificate whose only SAN is `san`, with the critical
/// acmeIdentifier extension for `key_authorization` (RFC 8737 §3).
fn tls_alpn01_certificate(san: &str, key_authorization: &str) -> Result<CertifiedKey, String> {
    let key_pair = KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params = CertificateParams::new(vec![san.to_owned()]).map_err(|e| e.to_string())?;
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, "cairn-testsrv tls-alpn-01");
    params.distinguished_name = subject;
    let mut acme_identifier = CustomExtension::from_oid_content(
        &ACME_IDENTIFIER_OID,
        tls_alpn01_extension_value(key_authorization).to_vec(),
    );
    acme_identifier.set_criticality(true);
    params.custom_extensions.push(acme_identifier);
    let certificate = params.self_signed(&key_pair).map_err(|e| e.to_string())?;

    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
    let signing_key =
        rustls::crypto::aws_lc_rs::sign::any_supported_type(&key_der).map_err(|e| e.to_string())?;
    Ok(CertifiedKey::new(
        vec![certificate.der().clone()],
        signing_key,
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_normalized() {
        assert_eq!(normalize_host("A.Example.").unwrap(), "a.example");
        assert_eq!(
            normalize_host("_acme-challenge.a.example").unwrap(),
            "_acme-challenge.a.example"
        );
        assert_eq!(normalize_host("*.a.example.").unwrap(), "*.a.example");
        for bad in [
            "",
            ".",
            "a..example",
            "a b.example",
            "a.example..",
            "é.example",
        ] {
            assert!(normalize_host(bad).is_err(), "{bad:?} accepted");
        }
        assert!(normalize_host(&"a".repeat(64)).is_err());
    }

    #[test]
    fn txt_values_accumulate_once() {
        let records = Records::default();
        records.set_txt("A.example.", "one").unwrap();
        records.set_txt("a.example", "two").unwrap();
        records.set_txt("a.example", "one").unwrap();
        assert_eq!(records.read().txt["a.example"], ["one", "two"]);
        records.clear_txt("A.EXAMPLE").unwrap();
        assert!(records.read().txt.is_empty());
    }

    #[test]
    fn http01_needs_a_base64url_token() {
        let records = Records::default();
        assert!(matches!(
            records.add_http01("not a token", "x"),
            Err(Error::InvalidToken(_))
        ));
        let token = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0";
        records.add_http01(token, "ka").unwrap();
        assert_eq!(records.http01(token).as_deref(), Some("ka"));
        records.del_http01(token).unwrap();
        assert_eq!(records.http01(token), None);
    }

    #[test]
    fn caa_tags_are_checked() {
        let records = Records::default();
        assert!(
            records
                .add_caa("a.example", &[CaaPolicy::new("is sue", "x")])
                .is_err()
        );
        records
            .add_caa(
                "a.example",
                &[CaaPolicy::issue("cairn.test").with_flags(128)],
            )
            .unwrap();
    }

    #[test]
    fn tls_alpn01_for_ip_is_keyed_by_reverse_name() {
        let records = Records::default();
        records.add_tls_alpn01("192.0.2.1", "ka").unwrap();
        assert!(
            records
                .tls_alpn01_certificate("1.2.0.192.in-addr.arpa")
                .is_some()
        );
        records.add_tls_alpn01("A.example.", "ka").unwrap();
        assert!(records.tls_alpn01_certificate("a.example").is_some());
        assert!(records.add_tls_alpn01("*.a.example", "ka").is_err());
        records.del_tls_alpn01("a.example").unwrap();
        assert!(records.tls_alpn01_certificate("a.example").is_none());
    }
}
