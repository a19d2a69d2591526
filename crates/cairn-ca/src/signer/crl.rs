//! Certificate revocation lists (RFC 5280 §5; BR §7.2): version 2, signed
//! by the issuer whose certificates they list, with authorityKeyIdentifier,
//! cRLNumber and, for an intermediate's CRL, an issuingDistributionPoint
//! (onlyContainsUserCerts) naming the URL its leaves point to.

use cairn_proto::ProblemType;
use rcgen::{
    CertificateRevocationListParams, CrlDistributionPoint, CrlIssuingDistributionPoint, CrlScope,
    KeyIdMethod, RevocationReason, RevokedCertParams, SerialNumber,
};
use time::OffsetDateTime;

use super::hierarchy::Authority;
use super::{CrlEntry, extensions};
use crate::error::CaError;

/// Which certificates a CRL covers: the leaves of an issuing intermediate,
/// or the CA certificates of a root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    Leaves,
    CaCertificates,
}

pub(crate) struct CrlRequest<'a> {
    pub(crate) entries: &'a [CrlEntry],
    pub(crate) this_update: OffsetDateTime,
    pub(crate) next_update: OffsetDateTime,
    pub(crate) number: u64,
    pub(crate) scope: Scope,
}

/// Signs a CRL. Entries with reason unspecified (0) carry no reasonCode
/// extension (RFC 5280 §5.3.1); code 7 and codes above 10 are refused.
pub(crate) fn sign(
    issuer: &Authority,
    req: &CrlRequest<'_>,
    base_url: &str,
) -> Result<Vec<u8>, CaError> {
    if req.next_update <= req.this_update {
        return Err(CaError::internal(
            "signing a CRL",
            "nextUpdate is not after thisUpdate",
        ));
    }
    let revoked_certs = req
        .entries
        .iter()
        .map(|entry| {
            Ok(RevokedCertParams {
                serial_number: SerialNumber::from_slice(&entry.serial),
                revocation_time: entry.revoked_at,
                reason_code: reason(entry.reason)?,
                invalidity_date: None,
            })
        })
        .collect::<Result<Vec<_>, CaError>>()?;
    let params = CertificateRevocationListParams {
        this_update: req.this_update,
        next_update: req.next_update,
        crl_number: SerialNumber::from_slice(&minimal_be(req.number)),
        issuing_distribution_point: match req.scope {
            Scope::Leaves => Some(CrlIssuingDistributionPoint {
                distribution_point: CrlDistributionPoint {
                    uris: vec![extensions::crl_url(base_url, issuer.id)],
                },
                scope: Some(CrlScope::UserCertsOnly),
            }),
            // A root's CRL is complete for everything it signed, so it needs
            // no scope (RFC 5280 §5.2.5); with a distributionPoint, RFC 5280
            // §6.3.3 path validation would not apply it to certificates
            // without a matching CRL distribution point, such as the root.
            Scope::CaCertificates => None,
        },
        revoked_certs,
        // The AKI must equal the issuer certificate's SKI, whatever method
        // made it (RFC 5280 §5.2.1).
        key_identifier_method: KeyIdMethod::PreSpecified(issuer.key_id.clone()),
    };
    let crl = params
        .signed_by(issuer.signer()?)
        .map_err(|e| CaError::internal("signing a CRL", e))?;
    Ok(crl.der().to_vec())
}

/// CRLReason (RFC 5280 §5.3.1). `None` for unspecified: the extension is
/// then left out, as the RFC recommends.
fn reason(code: u8) -> Result<Option<RevocationReason>, CaError> {
    Ok(Some(match code {
        0 => return Ok(None),
        1 => RevocationReason::KeyCompromise,
        2 => RevocationReason::CaCompromise,
        3 => RevocationReason::AffiliationChanged,
        4 => RevocationReason::Superseded,
        5 => RevocationReason::CessationOfOperation,
        6 => RevocationReason::CertificateHold,
        8 => RevocationReason::RemoveFromCrl,
        9 => RevocationReason::PrivilegeWithdrawn,
        10 => RevocationReason::AaCompromise,
        other => {
            return Err(CaError::new(
                ProblemType::BadRevocationReason,
                format!("revocation reason {other} is not defined by RFC 5280 §5.3.1"),
            ));
        }
    }))
}

/// `number` as big-endian bytes without leading zeros (at least one byte).
fn minimal_be(number: u64) -> Vec<u8> {
    let bytes = number.to_be_bytes();
    let start = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len() - 1);
    bytes[start..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_follow_rfc5280() {
        assert_eq!(reason(0), Ok(None));
        assert_eq!(reason(1), Ok(Some(RevocationReason::KeyCompromise)));
        assert_eq!(reason(10), Ok(Some(RevocationReason::AaCompromise)));
        for bad in [7, 11, 255] {
            assert_eq!(
                reason(bad).expect_err("undefined").kind,
                ProblemType::BadRevocationReason
            );
        }
    }

    #[test]
    fn crl_numbers_are_minimal() {
        assert_eq!(minimal_be(0), vec![0]);
        assert_eq!(minimal_be(1), vec![1]);
        assert_eq!(minimal_be(0x1_0000), vec![1, 0, 0]);
        assert_eq!(minimal_be(u64::MAX), vec![0xff; 8]);
    }
}
