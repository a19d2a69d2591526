//! Identifiers: the names a certificate is requested for (RFC 8555 §7.1.3,
//! §9.7.7) — DNS names, and IP addresses as added by RFC 8738.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An identifier object, `{"type": "dns", "value": "www.example.org"}`
/// (RFC 8555 §7.1.3, §9.7.7).
///
/// The value is kept as sent; nothing here checks that a `dns` value is a
/// valid DNS name. `Display` prints `type:value`, e.g. `dns:example.com`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identifier {
    /// The identifier type (`"type"` on the wire).
    #[serde(rename = "type")]
    pub kind: IdentifierType,
    /// The identifier itself, e.g. a DNS name or the textual form of an IP
    /// address.
    pub value: String,
}

impl Identifier {
    /// A `dns` identifier (RFC 8555 §9.7.7). A wildcard is written with
    /// its `*.` prefix, as in a newOrder request (RFC 8555 §7.1.3).
    pub fn dns(name: impl Into<String>) -> Self {
        Self {
            kind: IdentifierType::Dns,
            value: name.into(),
        }
    }

    /// An `ip` identifier (RFC 8738 §3): the textual form of the address,
    /// with IPv6 in the canonical form of RFC 5952, which is what the
    /// standard library's `Display` for `Ipv6Addr` produces.
    pub fn ip(addr: IpAddr) -> Self {
        Self {
            kind: IdentifierType::Ip,
            value: addr.to_string(),
        }
    }

    /// True for a `dns` identifier whose value starts with `*.`
    /// (RFC 8555 §7.1.3: wildcard domain names in newOrder).
    pub fn is_wildcard(&self) -> bool {
        self.kind == IdentifierType::Dns && self.value.starts_with("*.")
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

/// The `type` of an identifier, sent as a plain string.
///
/// `dns` is from RFC 8555 §9.7.7 and `ip` from RFC 8738 §3; any other type
/// is kept verbatim in [`IdentifierType::Other`] so it can be echoed back
/// or reported as `unsupportedIdentifier`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum IdentifierType {
    /// `"dns"` (RFC 8555 §9.7.7).
    Dns,
    /// `"ip"` (RFC 8738 §3).
    Ip,
    /// Any other type string, kept exactly as received.
    Other(String),
}

impl IdentifierType {
    /// The string sent on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Dns => "dns",
            Self::Ip => "ip",
            Self::Other(other) => other,
        }
    }
}

impl From<&str> for IdentifierType {
    fn from(s: &str) -> Self {
        match s {
            "dns" => Self::Dns,
            "ip" => Self::Ip,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for IdentifierType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for IdentifierType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for IdentifierType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Ok(match s.as_str() {
            "dns" => Self::Dns,
            "ip" => Self::Ip,
            _ => Self::Other(s),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use serde_json::json;

    use super::*;

    #[test]
    fn dns_identifier_has_the_rfc_shape() {
        // RFC 8555 §7.1.3, identifiers of the example order.
        let id = Identifier::dns("www.example.org");
        let wire = json!({ "type": "dns", "value": "www.example.org" });
        assert_eq!(serde_json::to_value(&id).expect("serializes"), wire);
        let back: Identifier = serde_json::from_value(wire).expect("parses");
        assert_eq!(back, id);
    }

    #[test]
    fn ip_identifiers_use_the_textual_form() {
        let v4 = Identifier::ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(v4.kind, IdentifierType::Ip);
        assert_eq!(v4.value, "192.0.2.1");
        assert_eq!(v4.to_string(), "ip:192.0.2.1");

        // RFC 5952 §4: lowercase, leading zeros dropped, longest run of
        // zero groups shortened to "::".
        let v6: Ipv6Addr = "2001:0DB8:0000:0000:0000:0000:0000:0001"
            .parse()
            .expect("valid address");
        let v6 = Identifier::ip(IpAddr::V6(v6));
        assert_eq!(v6.value, "2001:db8::1");
        assert_eq!(
            serde_json::to_value(&v6).expect("serializes"),
            json!({ "type": "ip", "value": "2001:db8::1" })
        );
    }

    #[test]
    fn unknown_types_are_kept_verbatim() {
        let wire = json!({ "type": "email", "value": "admin@example.org" });
        let id: Identifier = serde_json::from_value(wire.clone()).expect("parses");
        assert_eq!(id.kind, IdentifierType::Other("email".into()));
        assert_eq!(id.to_string(), "email:admin@example.org");
        assert_eq!(serde_json::to_value(&id).expect("serializes"), wire);
    }

    #[test]
    fn type_names_are_case_sensitive() {
        assert_eq!(
            IdentifierType::from("DNS"),
            IdentifierType::Other("DNS".into())
        );
        assert_eq!(IdentifierType::from("dns"), IdentifierType::Dns);
    }

    #[test]
    fn wildcards_are_dns_names_starting_with_star_dot() {
        assert!(Identifier::dns("*.example.org").is_wildcard());
        assert!(!Identifier::dns("example.org").is_wildcard());
        assert!(!Identifier::dns("*example.org").is_wildcard());
        let other = Identifier {
            kind: IdentifierType::Other("x".into()),
            value: "*.example.org".into(),
        };
        assert!(!other.is_wildcard());
    }

    #[test]
    fn display_prints_type_and_value() {
        assert_eq!(
            Identifier::dns("example.com").to_string(),
            "dns:example.com"
        );
        assert_eq!(IdentifierType::Ip.to_string(), "ip");
    }
}
