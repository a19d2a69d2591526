//! Identifier and key policy: which names and addresses the CA will
//! certify (RFC 8555 §7.1.3, RFC 8738, the Baseline Requirements), and
//! which addresses are public: the one answer both newOrder (IP
//! identifiers) and the VA (where it may connect) use.

mod addresses;
pub mod keys;

use std::net::IpAddr;

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};

pub use self::addresses::{is_public, non_public};

use cairn_proto::objects::ChallengeType;
use cairn_proto::problem::{ProblemType, Subproblem};
use cairn_proto::{Identifier, IdentifierType};

use crate::error::CaError;

/// Most identifiers one order may name.
pub const MAX_IDENTIFIERS: usize = 100;

/// What the CA accepts.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Dev mode: single-label names, names without a public suffix and
    /// private or loopback IP addresses are acceptable.
    pub permissive: bool,
}

impl Policy {
    /// Checks every identifier of a new order and returns them deduplicated
    /// and sorted, or `rejectedIdentifier` with one subproblem per bad one
    /// (RFC 8555 §6.7.1).
    pub fn check_order_identifiers(
        &self,
        identifiers: &[Identifier],
    ) -> Result<Vec<Identifier>, CaError> {
        if identifiers.is_empty() {
            return Err(CaError::malformed("the order names no identifiers"));
        }
        if identifiers.len() > MAX_IDENTIFIERS {
            return Err(CaError::new(
                ProblemType::RejectedIdentifier,
                format!(
                    "an order may name at most {MAX_IDENTIFIERS} identifiers, not {}",
                    identifiers.len()
                ),
            ));
        }
        let mut problems = Vec::new();
        for id in identifiers {
            if let Err((kind, detail)) = self.check_identifier(id) {
                problems.push(Subproblem {
                    kind,
                    detail: Some(detail),
                    identifier: Some(id.clone()),
                });
            }
        }
        match problems.len() {
            0 => {
                let mut ids = identifiers.to_vec();
                ids.sort();
                ids.dedup();
                Ok(ids)
            }
            1 => {
                let only = &problems[0];
                let id = only
                    .identifier
                    .as_ref()
                    .map(|i| i.value.clone())
                    .unwrap_or_default();
                let detail = format!(
                    "cannot issue for {id:?}: {}",
                    only.detail.as_deref().unwrap_or("")
                );
                Err(CaError::new(only.kind.clone(), detail).with_subproblems(problems))
            }
            n => Err(CaError::new(
                ProblemType::RejectedIdentifier,
                format!("cannot issue for {n} of the order's identifiers; see subproblems"),
            )
            .with_subproblems(problems)),
        }
    }

    /// Checks one identifier; the error is its problem type and detail.
    pub fn check_identifier(&self, id: &Identifier) -> Result<(), (ProblemType, String)> {
        match &id.kind {
            IdentifierType::Dns => self.check_dns(&id.value),
            IdentifierType::Ip => self.check_ip(&id.value),
            other => Err((
                ProblemType::UnsupportedIdentifier,
                format!("identifier type {other:?} is not supported; use \"dns\" or \"ip\""),
            )),
        }
    }

    fn check_dns(&self, name: &str) -> Result<(), (ProblemType, String)> {
        let reject = |detail: String| Err((ProblemType::RejectedIdentifier, detail));
        let (wildcard, base) = match name.strip_prefix("*.") {
            Some(base) => (true, base),
            None => (false, name),
        };
        if base.contains('*') {
            return reject("a wildcard may only be the whole leftmost label (\"*.\")".into());
        }
        if let Err(detail) = check_dns_syntax(base).and_then(|()| check_idna(base)) {
            return reject(detail);
        }
        if base.parse::<IpAddr>().is_ok()
            || base
                .split('.')
                .all(|l| l.bytes().all(|b| b.is_ascii_digit()))
        {
            return reject("an IP address must be requested as an \"ip\" identifier".into());
        }
        let labels = base.split('.').count();
        if !self.permissive {
            if labels < 2 {
                return reject("the name must be fully qualified (at least two labels)".into());
            }
            let tld = base.rsplit('.').next().unwrap_or_default();
            if tld.bytes().all(|b| b.is_ascii_digit()) {
                return reject("the top-level label must not be numeric".into());
            }
            match psl::domain(base.as_bytes()) {
                Some(domain) if domain.suffix().is_known() => {
                    if wildcard && domain.as_bytes().len() > base.len() {
                        return reject("a wildcard must not cover a public suffix".into());
                    }
                }
                _ => {
                    return reject(format!(
                        "{base:?} is not under a public suffix (or is one itself); only names under a registered domain can be certified"
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_ip(&self, value: &str) -> Result<(), (ProblemType, String)> {
        let Ok(ip) = value.parse::<IpAddr>() else {
            return Err((
                ProblemType::Malformed,
                format!("{value:?} is not an IP address"),
            ));
        };
        if ip.to_string() != value {
            return Err((
                ProblemType::Malformed,
                format!("IP address {value:?} is not in canonical form; send {ip} (RFC 8738 §3)"),
            ));
        }
        if !self.permissive && !is_public(ip) {
            return Err((
                ProblemType::RejectedIdentifier,
                format!("{ip} is a private, loopback or reserved address"),
            ));
        }
        Ok(())
    }

    /// The challenge types offered for an identifier: wildcards only dns-01
    /// (RFC 8555 §7.1.3), IP addresses never dns-01 (RFC 8738 §7).
    pub fn challenge_types(&self, id: &Identifier, wildcard: bool) -> Vec<ChallengeType> {
        match (&id.kind, wildcard) {
            (_, true) => vec![ChallengeType::Dns01],
            (IdentifierType::Ip, false) => vec![ChallengeType::Http01, ChallengeType::TlsAlpn01],
            _ => vec![
                ChallengeType::Http01,
                ChallengeType::Dns01,
                ChallengeType::TlsAlpn01,
            ],
        }
    }
}

/// LDH syntax, lengths and lowercase; `xn--` labels are left to
/// [`check_idna`].
fn check_dns_syntax(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    if name.ends_with('.') {
        return Err("the name must not end with a dot".into());
    }
    if name.len() > 253 {
        return Err(format!(
            "the name is {} characters long; at most 253 are allowed",
            name.len()
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("the name has an empty label".into());
        }
        if label.len() > 63 {
            return Err(format!("label {label:?} is longer than 63 characters"));
        }
        if let Some(c) = label.chars().find(|c| c.is_ascii_uppercase()) {
            return Err(format!("the name must be lowercase ({c:?} is not)"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(format!(
                "label {label:?} has the character {c:?}; only a-z, 0-9 and - are allowed"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "label {label:?} must not start or end with a hyphen"
            ));
        }
        if label.len() >= 4 && &label[2..4] == "--" && !label.starts_with("xn--") {
            return Err(format!(
                "label {label:?} has hyphens in the third and fourth positions"
            ));
        }
    }
    Ok(())
}

/// Internationalized names (IDNA2008 as UTS #46 processes it, with the
/// `idna` crate): each `xn--` label must decode, must be a label UTS #46
/// would itself produce (nothing it would map, such as an uppercase
/// letter or a non-NFC form; no ZWJ/ZWNJ outside the contexts RFC 5892
/// allows; not ASCII only), and the whole name must pass the Bidi rule
/// (RFC 5893), which refuses e.g. Latin and Hebrew in one label. A name
/// whose A-labels do not round-trip could show as something else than
/// what was validated.
fn check_idna(name: &str) -> Result<(), String> {
    if !name.split('.').any(|label| label.starts_with("xn--")) {
        return Ok(());
    }
    let uts46 = Uts46::new();
    let to_ascii = |input: &str| {
        uts46
            .to_ascii(
                input.as_bytes(),
                AsciiDenyList::STD3,
                Hyphens::Check,
                DnsLength::Verify,
            )
            .ok()
            .is_some_and(|ascii| ascii == input)
    };
    for label in name.split('.').filter(|l| l.starts_with("xn--")) {
        let Some(unicode) = idna::punycode::decode_to_string(&label[4..]) else {
            return Err(format!("label {label:?} is not valid punycode"));
        };
        if unicode.is_ascii() {
            return Err(format!(
                "label {label:?} is not a valid IDNA A-label: it decodes to ASCII only"
            ));
        }
        if !to_ascii(label) {
            return Err(format!(
                "label {label:?} is not a valid IDNA A-label (UTS #46): its Unicode form \
                 {unicode:?} is not one IDNA would encode that way"
            ));
        }
    }
    if !to_ascii(name) {
        return Err("the name's internationalized labels break the Bidi rule (RFC 5893)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> Policy {
        Policy { permissive: false }
    }

    fn dns(v: &str) -> Identifier {
        Identifier::dns(v)
    }

    #[test]
    fn good_names_pass_and_are_sorted_and_deduplicated() {
        let ids = strict()
            .check_order_identifiers(&[
                dns("www.example.com"),
                dns("example.com"),
                dns("*.example.com"),
                dns("example.com"),
            ])
            .expect("valid");
        assert_eq!(
            ids,
            vec![
                dns("*.example.com"),
                dns("example.com"),
                dns("www.example.com")
            ]
        );
        assert!(
            strict()
                .check_identifier(&dns("xn--bcher-kva.example.com"))
                .is_ok()
        );
    }

    #[test]
    fn bad_names_are_rejected_with_a_reason() {
        let cases = [
            ("", "empty"),
            ("example.com.", "dot"),
            ("Example.com", "lowercase"),
            ("exa_mple.com", "only a-z"),
            ("-a.example.com", "hyphen"),
            ("a..example.com", "empty label"),
            ("ab--cd.example.com", "third and fourth"),
            ("xn--a.example.com", "IDNA A-label"),
            ("xn--zzzzzzzzzzzzzz9999.example", "punycode"),
            ("*.*.example.com", "wildcard"),
            ("a.*.example.com", "wildcard"),
            ("*.co.uk", "public suffix"),
            ("com", "fully qualified"),
            ("co.uk", "public suffix"),
            ("localhost", "two labels"),
            ("1.2.3.4", "\"ip\" identifier"),
            ("example.123", "numeric"),
        ];
        for (name, why) in cases {
            let Err((kind, detail)) = strict().check_identifier(&dns(name)) else {
                panic!("{name:?} should be rejected");
            };
            assert_eq!(kind, ProblemType::RejectedIdentifier, "{name}");
            assert!(detail.contains(why), "{name:?}: {detail}");
        }
        let long = format!("{}.example.com", "a".repeat(64));
        assert!(strict().check_identifier(&dns(&long)).is_err());
        let too_long = format!("{}example.com", "abcdefghi.".repeat(25));
        assert!(strict().check_identifier(&dns(&too_long)).is_err());
    }

    /// A-labels that do not round-trip through UTS #46 are refused: each
    /// is made here from its Unicode form with the punycode encoder alone,
    /// which (unlike IDNA) maps nothing.
    #[test]
    fn internationalized_names_must_round_trip() {
        let a_label = |unicode: &str| {
            format!(
                "xn--{}.example.com",
                idna::punycode::encode_str(unicode).expect("encodable")
            )
        };
        let good = a_label("bücher");
        assert_eq!(good, "xn--bcher-kva.example.com");
        assert!(strict().check_identifier(&dns(&good)).is_ok());
        // A ZWNJ after a virama is allowed (RFC 5892 Appendix A.1).
        let zwnj_in_context = a_label("\u{915}\u{94d}\u{200c}\u{937}");
        assert!(
            strict().check_identifier(&dns(&zwnj_in_context)).is_ok(),
            "{zwnj_in_context}"
        );
        for (unicode, why) in [
            // An uppercase letter where IDNA would have a lowercase one.
            ("b\u{dc}cher", "not a valid IDNA A-label"),
            // ZWJ and ZWNJ outside the contexts RFC 5892 allows.
            ("b\u{200d}\u{fc}cher", "not a valid IDNA A-label"),
            ("a\u{200c}b\u{e9}", "not a valid IDNA A-label"),
            // Not NFC: u + combining diaeresis instead of ü.
            ("u\u{308}ber", "not a valid IDNA A-label"),
            // Latin and Hebrew in one label (the Bidi rule).
            ("ab\u{5d0}\u{e9}", "not a valid IDNA A-label"),
        ] {
            let name = a_label(unicode);
            let Err((kind, detail)) = strict().check_identifier(&dns(&name)) else {
                panic!("{unicode:?} ({name}) should be rejected");
            };
            assert_eq!(kind, ProblemType::RejectedIdentifier);
            assert!(detail.contains(why), "{unicode:?}: {detail}");
        }
        // Decodes to ASCII only: a fake A-label (which ends in a hyphen, so
        // the LDH check refuses it first).
        let detail = check_idna("xn--abc-.example.com").unwrap_err();
        assert!(detail.contains("ASCII only"), "{detail}");
        // Bidi rule across labels: a right-to-left label next to one that
        // starts with a digit.
        let rtl = idna::punycode::encode_str("\u{5d0}\u{5d1}").expect("encodable");
        let name = format!("xn--{rtl}.1a.example.com");
        let (_, detail) = strict().check_identifier(&dns(&name)).unwrap_err();
        assert!(detail.contains("Bidi"), "{name}: {detail}");
    }

    #[test]
    fn one_subproblem_per_bad_identifier() {
        let err = strict()
            .check_order_identifiers(&[
                dns("good.example.com"),
                dns("Bad.example.com"),
                dns("also_bad.example.com"),
            ])
            .unwrap_err();
        assert_eq!(err.kind, ProblemType::RejectedIdentifier);
        assert_eq!(err.subproblems.len(), 2);
        assert_eq!(err.subproblems[0].identifier, Some(dns("Bad.example.com")));
    }

    #[test]
    fn ip_identifiers() {
        let ip = |v: &str| Identifier {
            kind: IdentifierType::Ip,
            value: v.into(),
        };
        assert!(strict().check_identifier(&ip("8.8.8.8")).is_ok());
        assert!(strict().check_identifier(&ip("2606:4700::1111")).is_ok());
        assert_eq!(
            strict().check_identifier(&ip("127.0.0.1")).unwrap_err().0,
            ProblemType::RejectedIdentifier
        );
        assert_eq!(
            strict().check_identifier(&ip("10.1.2.3")).unwrap_err().0,
            ProblemType::RejectedIdentifier
        );
        assert_eq!(
            strict()
                .check_identifier(&ip("2606:4700:0::1111"))
                .unwrap_err()
                .0,
            ProblemType::Malformed
        );
        assert_eq!(
            strict().check_identifier(&ip("banana")).unwrap_err().0,
            ProblemType::Malformed
        );
        let dev = Policy { permissive: true };
        assert!(dev.check_identifier(&ip("127.0.0.1")).is_ok());
        assert!(dev.check_identifier(&ip("::1")).is_ok());
        assert!(dev.check_identifier(&dns("localhost")).is_ok());
        assert_eq!(
            dev.challenge_types(&ip("127.0.0.1"), false),
            vec![ChallengeType::Http01, ChallengeType::TlsAlpn01]
        );
        assert_eq!(
            dev.challenge_types(&dns("example.com"), true),
            vec![ChallengeType::Dns01]
        );
    }

    #[test]
    fn other_identifier_types_are_unsupported() {
        let email = Identifier {
            kind: IdentifierType::Other("email".into()),
            value: "a@b.c".into(),
        };
        assert_eq!(
            strict().check_identifier(&email).unwrap_err().0,
            ProblemType::UnsupportedIdentifier
        );
    }
}
