//! dns-01 (RFC 8555 §8.4, BR 3.2.2.4.7): a TXT record at
//! `_acme-challenge.<name>` (a wildcard's base name) holding
//! base64url(SHA-256(key authorization)). CNAMEs are followed by the
//! resolver; a record split into several character-strings (RFC 1035
//! §3.3.14) is read as their concatenation.

use cairn_proto::ProblemType;
use cairn_proto::challenge::{dns01_record_name, dns01_txt_value};
use hickory_resolver::proto::rr::{RData, RecordType};

use super::net::{LookupError, Network};
use super::{ValidationRecord, quote};
use crate::error::CaError;

/// Checks the TXT records of `_acme-challenge.<name>`; `name` is the
/// base name, without `*.`.
pub(super) async fn validate(
    network: &Network,
    name: &str,
    key_authorization: &str,
    record: &mut ValidationRecord,
) -> Result<(), CaError> {
    let query = dns01_record_name(name);
    record.dns_queries.push(format!("TXT {query}"));
    let answers = match network.lookup(&query, RecordType::TXT).await {
        Ok(answers) => answers,
        Err(LookupError::NotFound { .. }) => {
            return Err(CaError::unauthorized(format!(
                "no TXT record found at {query}"
            )));
        }
        Err(LookupError::Failed(why)) => {
            return Err(CaError::new(
                ProblemType::Dns,
                format!("could not look up TXT records at {query}: {why}"),
            ));
        }
    };
    let expected = dns01_txt_value(key_authorization);
    let values: Vec<Vec<u8>> = answers
        .iter()
        .filter_map(|rdata| match rdata {
            RData::TXT(txt) => Some(txt.txt_data.iter().flatten().copied().collect()),
            _ => None,
        })
        .collect();
    if values.iter().any(|value| value == expected.as_bytes()) {
        return Ok(());
    }
    Err(CaError::unauthorized(match values.as_slice() {
        [only] => format!(
            "the TXT record at {query} is not the expected value (got {})",
            quote(only)
        ),
        _ => format!(
            "none of the {} TXT records at {query} is the expected value",
            values.len()
        ),
    }))
}
