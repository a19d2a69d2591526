//! CAA (RFC 8659): may this CA issue for a name?
//!
//! The relevant RRset is the first non-empty CAA RRset found from the name
//! up towards the root (§3), the resolver following CNAMEs at each name.
//! With none, issuance is allowed. A property with the critical flag and a
//! tag this CA does not know forbids issuance (§4.1). For a wildcard the
//! `issuewild` properties rule when there are any, `issue` otherwise
//! (§4.3); with neither, nothing is restricted. Issuance is allowed when
//! one property names an issuer domain in `caa_identities` and its
//! parameters allow it: RFC 8657 `validationmethods` must list the
//! challenge type that proved control, and `accounturi` must be the URL of
//! the account asking.
//!
//! A lookup error (SERVFAIL, timeout) at any name forbids issuance: the
//! CA cannot know what the record says.

use cairn_proto::ProblemType;
use cairn_proto::objects::ChallengeType;
use hickory_resolver::proto::rr::rdata::CAA;
use hickory_resolver::proto::rr::{RData, RecordType};

use super::CaaRecord;
use super::net::{LookupError, Network};
use crate::error::CaError;

/// Tags this CA understands (RFC 8659 §4, RFC 9495 `issuemail` and the
/// BR's contact tags); only `issue` and `issuewild` bear on TLS issuance.
const KNOWN_TAGS: &[&str] = &[
    "issue",
    "issuewild",
    "iodef",
    "issuemail",
    "contactemail",
    "contactphone",
];

/// Who asks to issue: this CA's identities, the validation method and the
/// account, what `issue` properties and their parameters are matched to.
#[derive(Clone, Copy, Debug)]
pub(super) struct Asker<'a> {
    pub identities: &'a [String],
    pub method: &'a ChallengeType,
    pub account_uri: &'a str,
}

/// Walks up from `name` (without `*.`) to the relevant RRset and decides.
pub(super) async fn check(
    network: &Network,
    asker: &Asker<'_>,
    name: &str,
    wildcard: bool,
    record: &mut CaaRecord,
) -> Result<(), CaError> {
    let labels: Vec<&str> = name.split('.').collect();
    for start in 0..labels.len() {
        let at = labels[start..].join(".");
        record.names_queried.push(at.clone());
        let rrset: Vec<CAA> = match network.lookup(&at, RecordType::CAA).await {
            Ok(answers) => answers
                .into_iter()
                .filter_map(|rdata| match rdata {
                    RData::CAA(caa) => Some(caa),
                    _ => None,
                })
                .collect(),
            Err(LookupError::NotFound { .. }) => continue,
            Err(LookupError::Failed(why)) => {
                return Err(CaError::new(
                    ProblemType::Dns,
                    format!(
                        "could not look up CAA records at {at} for {name}: {why}; the CA \
                         does not issue while CAA cannot be checked"
                    ),
                ));
            }
        };
        record.relevant_at = Some(at.clone());
        record.records = rrset.iter().map(presentation).collect();
        return evaluate(&rrset, asker, wildcard).map_err(|why| {
            CaError::new(
                ProblemType::Caa,
                format!("CAA record for {at} prevents issuance{why}"),
            )
        });
    }
    Ok(())
}

/// Decides on the relevant RRset; the error completes the sentence
/// "CAA record for X prevents issuance".
fn evaluate(rrset: &[CAA], asker: &Asker<'_>, wildcard: bool) -> Result<(), String> {
    if let Some(unknown) = rrset.iter().find(|caa| {
        caa.issuer_critical && !KNOWN_TAGS.contains(&caa.tag.to_ascii_lowercase().as_str())
    }) {
        return Err(format!(
            ": its property {:?} is marked critical and this CA does not know it \
             (RFC 8659 §4.1)",
            unknown.tag
        ));
    }
    let with_tag = |tag: &str| -> Vec<&CAA> {
        rrset
            .iter()
            .filter(|caa| caa.tag.eq_ignore_ascii_case(tag))
            .collect()
    };
    let issuewild = with_tag("issuewild");
    let relevant = if wildcard && !issuewild.is_empty() {
        issuewild
    } else {
        with_tag("issue")
    };
    if relevant.is_empty() {
        return Ok(());
    }
    let allowed = relevant.iter().any(|caa| {
        parse_issue_value(&caa.value).is_some_and(|(issuer, parameters)| {
            asker.identities.contains(&issuer) && parameters_allow(&parameters, asker)
        })
    });
    if allowed {
        Ok(())
    } else if wildcard {
        Err(" of a wildcard certificate".into())
    } else {
        Err(String::new())
    }
}

/// The issuer domain name (lowercase, no trailing dot) and parameters of
/// an `issue` or `issuewild` value (RFC 8659 §4.2):
/// `issuer-domain-name *WSP [";" *WSP [parameters]]`, parameters as
/// `tag=value` separated by `;`. `None` when no issuer is named (`";"`,
/// which forbids everyone) or the value is malformed.
fn parse_issue_value(value: &[u8]) -> Option<(String, Vec<(String, String)>)> {
    let value = std::str::from_utf8(value).ok()?;
    let (issuer, parameters) = value.split_once(';').unwrap_or((value, ""));
    let issuer = issuer.trim().trim_end_matches('.').to_ascii_lowercase();
    if issuer.is_empty() {
        return None;
    }
    let mut parsed = Vec::new();
    for parameter in parameters
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (tag, value) = parameter.split_once('=')?;
        let tag = tag.trim();
        if tag.is_empty() || !tag.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        parsed.push((tag.to_ascii_lowercase(), value.trim().to_owned()));
    }
    Some((issuer, parsed))
}

/// RFC 8657: `validationmethods` lists the challenge types allowed;
/// `accounturi` names the one account allowed, compared exactly (§3). A
/// property with two `accounturi` parameters cannot match both and so
/// allows no one, which is what §3 asks of such a malformed property.
/// Other parameters are not understood and do not restrict (RFC 8659 §4.2).
fn parameters_allow(parameters: &[(String, String)], asker: &Asker<'_>) -> bool {
    parameters.iter().all(|(tag, value)| match tag.as_str() {
        "validationmethods" => value
            .split(',')
            .any(|method| method.trim() == asker.method.as_str()),
        "accounturi" => value == asker.account_uri,
        _ => true,
    })
}

/// `flags tag "value"`, as in a zone file.
fn presentation(caa: &CAA) -> String {
    format!(
        "{} {} {:?}",
        caa.flags(),
        caa.tag,
        String::from_utf8_lossy(&caa.value)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caa(flags: u8, tag: &str, value: &str) -> CAA {
        let mut caa = CAA::new_issue(false, None, Vec::new());
        caa.issuer_critical = flags & 0x80 != 0;
        caa.tag = tag.into();
        caa.value = value.as_bytes().to_vec();
        caa
    }

    const ACCOUNT: &str = "https://ca.example/acme/acct/1";

    fn decide(rrset: &[CAA], wildcard: bool) -> Result<(), String> {
        let asker = Asker {
            identities: &["ca.example".to_owned()],
            method: &ChallengeType::Dns01,
            account_uri: ACCOUNT,
        };
        evaluate(rrset, &asker, wildcard)
    }

    #[test]
    fn issue_names_the_ca() {
        assert!(decide(&[caa(0, "issue", "ca.example")], false).is_ok());
        assert!(decide(&[caa(0, "ISSUE", " CA.Example. ; foo=bar")], false).is_ok());
        assert!(decide(&[caa(0, "issue", "other.example")], false).is_err());
        assert!(decide(&[caa(0, "issue", ";")], false).is_err());
        assert!(
            decide(
                &[
                    caa(0, "issue", "other.example"),
                    caa(0, "issue", "ca.example")
                ],
                false
            )
            .is_ok()
        );
        // No issue property: nothing restricted.
        assert!(decide(&[caa(0, "iodef", "mailto:a@b.example")], false).is_ok());
    }

    #[test]
    fn issuewild_rules_wildcards_only() {
        let rrset = [
            caa(0, "issue", "ca.example"),
            caa(0, "issuewild", "other.example"),
        ];
        assert!(decide(&rrset, false).is_ok());
        assert!(decide(&rrset, true).is_err());
        // Without issuewild, issue governs wildcards too.
        assert!(decide(&[caa(0, "issue", "ca.example")], true).is_ok());
        assert!(decide(&[caa(0, "issue", "other.example")], true).is_err());
        let rrset = [caa(0, "issue", ";"), caa(0, "issuewild", "ca.example")];
        assert!(decide(&rrset, true).is_ok());
        assert!(decide(&rrset, false).is_err());
    }

    #[test]
    fn unknown_critical_tags_forbid_issuance() {
        let rrset = [caa(0, "issue", "ca.example"), caa(128, "tbs", "x")];
        let why = decide(&rrset, false).expect_err("critical unknown tag");
        assert!(why.contains("\"tbs\""), "{why}");
        // Not critical: ignored.
        assert!(decide(&[caa(0, "issue", "ca.example"), caa(0, "tbs", "x")], false).is_ok());
        // Critical but known.
        assert!(decide(&[caa(128, "issue", "ca.example")], false).is_ok());
    }

    #[test]
    fn rfc_8657_parameters() {
        let methods = |v: &str| {
            [caa(
                0,
                "issue",
                &format!("ca.example; validationmethods={v}"),
            )]
        };
        assert!(decide(&methods("dns-01"), false).is_ok());
        assert!(decide(&methods("http-01,dns-01"), false).is_ok());
        assert!(decide(&methods("http-01"), false).is_err());
        let account = |uri: &str| [caa(0, "issue", &format!("ca.example; accounturi={uri}"))];
        assert!(decide(&account(ACCOUNT), false).is_ok());
        assert!(decide(&account("https://ca.example/acme/acct/2"), false).is_err());
        assert!(decide(&account("https://CA.example/acme/acct/1"), false).is_err());
        let both = [caa(
            0,
            "issue",
            &format!("ca.example; accounturi={ACCOUNT}; validationmethods=http-01"),
        )];
        assert!(decide(&both, false).is_err(), "right account, wrong method");
        let twice = [caa(
            0,
            "issue",
            &format!("ca.example; accounturi={ACCOUNT}; accounturi=https://x.example/a"),
        )];
        assert!(decide(&twice, false).is_err());
        // Another property of the set may still allow the account.
        let either = [
            caa(
                0,
                "issue",
                "ca.example; accounturi=https://ca.example/acme/acct/2",
            ),
            caa(0, "issue", &format!("ca.example; accounturi={ACCOUNT}")),
        ];
        assert!(decide(&either, false).is_ok());
        assert!(decide(&[caa(0, "issue", "ca.example; bad")], false).is_err());
    }

    #[test]
    fn issue_values_parse() {
        assert_eq!(
            parse_issue_value(b"ca.example;  a=1 ; b = 2"),
            Some((
                "ca.example".into(),
                vec![("a".into(), "1".into()), ("b".into(), "2".into())]
            ))
        );
        assert_eq!(parse_issue_value(b" ; a=1"), None);
        assert_eq!(parse_issue_value(&[0xff]), None);
    }
}
