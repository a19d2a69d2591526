//! Test fixtures: a small PKI that issues certificates like a CA would.

use cairn_proto::{Identifier, IdentifierType, KeyPair};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa,
    KeyUsagePurpose, SanType,
};

/// A root and an intermediate, each with its own key.
pub(crate) struct TestPki {
    pub(crate) root: CertifiedIssuer<'static, rcgen::KeyPair>,
    pub(crate) intermediate: CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl TestPki {
    /// A P-384 root and an RSA-2048 intermediate, so that both signature
    /// families are exercised.
    pub(crate) fn new(name: &str) -> Self {
        let root_key =
            rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("root key");
        let root = CertifiedIssuer::self_signed(ca_params(&format!("{name} root")), root_key)
            .expect("root");
        let intermediate_key =
            rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
                .expect("intermediate key");
        let intermediate = CertifiedIssuer::signed_by(
            ca_params(&format!("{name} intermediate")),
            intermediate_key,
            &root,
        )
        .expect("intermediate");
        Self { root, intermediate }
    }

    pub(crate) fn root_pem(&self) -> String {
        self.root.pem()
    }

    /// A leaf for `names` and `key`, PEM chain: leaf then intermediate.
    pub(crate) fn issue(&self, names: &[Identifier], key: &KeyPair) -> String {
        self.issue_with(names, key, |_| {})
    }

    pub(crate) fn issue_with(
        &self,
        names: &[Identifier],
        key: &KeyPair,
        adjust: impl FnOnce(&mut CertificateParams),
    ) -> String {
        let public = rcgen::KeyPair::try_from(key.to_pkcs8_der().expect("pkcs8").as_slice())
            .expect("rcgen key");
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = names
            .iter()
            .map(|id| match id.kind {
                IdentifierType::Ip => SanType::IpAddress(id.value.parse().expect("an IP")),
                _ => SanType::DnsName(id.value.as_str().try_into().expect("ia5")),
            })
            .collect();
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(90);
        adjust(&mut params);
        let leaf = params.signed_by(&public, &self.intermediate).expect("leaf");
        format!("{}{}", leaf.pem(), self.intermediate.pem())
    }
}

fn ca_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}
