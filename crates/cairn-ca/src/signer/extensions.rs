//! Certificate extensions rcgen has no field for, and the URLs they carry.
//!
//! URLs are plain HTTP on purpose: relying parties fetch CRLs and issuer
//! certificates without TLS (RFC 5280 §4.2.1.13, §4.2.2.1; BR §7.1.2.7.7),
//! since validating TLS would need the very certificates being fetched.

use rcgen::CustomExtension;

use super::der;

const OID_BASIC_CONSTRAINTS: &[u64] = &[2, 5, 29, 19];
const OID_CERTIFICATE_POLICIES: &[u64] = &[2, 5, 29, 32];
const OID_AUTHORITY_INFO_ACCESS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
const OID_AD_CA_ISSUERS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 2];
/// CA/Browser Forum reserved policy: domain validated (BR §7.1.6.1).
pub(crate) const OID_POLICY_DV: &[u64] = &[2, 23, 140, 1, 2, 1];

/// Where the CRL of `issuer_id` is published.
pub(crate) fn crl_url(base_url: &str, issuer_id: &str) -> String {
    format!("{base_url}/crl/{issuer_id}.crl")
}

/// Where the DER certificate of `issuer_id` is published.
pub(crate) fn issuer_url(base_url: &str, issuer_id: &str) -> String {
    format!("{base_url}/issuer/{issuer_id}.der")
}

/// basicConstraints, critical, `cA` FALSE (RFC 5280 §4.2.1.9).
///
/// rcgen's `IsCa::ExplicitNoCa` writes the BOOLEAN although it equals its
/// DEFAULT, which DER forbids (X.690 §11.5), and adds a subjectKeyIdentifier
/// that the BRs do not recommend for subscriber certificates; hence this.
pub(crate) fn not_a_ca() -> CustomExtension {
    critical(CustomExtension::from_oid_content(
        OID_BASIC_CONSTRAINTS,
        der::sequence(&[]),
    ))
}

/// authorityInformationAccess with one caIssuers URL (RFC 5280 §4.2.2.1).
pub(crate) fn ca_issuers(url: &str) -> CustomExtension {
    let access = der::sequence(&[
        der::oid(OID_AD_CA_ISSUERS),
        der::tlv(der::TAG_GENERAL_NAME_URI, url.as_bytes()),
    ]);
    CustomExtension::from_oid_content(OID_AUTHORITY_INFO_ACCESS, der::sequence(&[access]))
}

/// certificatePolicies with only the DV policy, no qualifiers
/// (RFC 5280 §4.2.1.4; BR §7.1.2.7.9).
pub(crate) fn dv_policy() -> CustomExtension {
    let policy = der::sequence(&[der::oid(OID_POLICY_DV)]);
    CustomExtension::from_oid_content(OID_CERTIFICATE_POLICIES, der::sequence(&[policy]))
}

fn critical(mut ext: CustomExtension) -> CustomExtension {
    ext.set_criticality(true);
    ext
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_constraints_leave_the_default_out() {
        let ext = not_a_ca();
        assert!(ext.criticality());
        assert_eq!(ext.content(), &[0x30, 0x00]);
    }

    #[test]
    fn policies_and_aia_have_the_expected_shape() {
        assert_eq!(
            dv_policy().content(),
            &[
                0x30, 0x0a, 0x30, 0x08, 0x06, 0x06, 0x67, 0x81, 0x0c, 0x01, 0x02, 0x01
            ]
        );
        let aia = ca_issuers("http://x/i");
        let content = aia.content();
        assert_eq!(content[0], 0x30);
        assert!(content.ends_with(b"\x86\x0ahttp://x/i"));
        assert!(!aia.criticality());
    }

    #[test]
    fn urls() {
        assert_eq!(
            crl_url("http://127.0.0.1:14080", "ecdsa-1"),
            "http://127.0.0.1:14080/crl/ecdsa-1.crl"
        );
        assert_eq!(
            issuer_url("http://ca.test", "rsa-1"),
            "http://ca.test/issuer/rsa-1.der"
        );
    }
}
