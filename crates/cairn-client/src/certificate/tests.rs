use cairn_proto::{Identifier, KeyPair, KeyType};
use x509_parser::certification_request::X509CertificationRequest;

use super::*;
use crate::testing::TestPki;

fn names() -> Vec<Identifier> {
    vec![
        Identifier::dns("a.example"),
        Identifier::dns("*.b.example"),
        Identifier::ip("192.0.2.7".parse().expect("ip")),
        Identifier::ip("2001:db8::7".parse().expect("ip")),
    ]
}

fn refusal(result: Result<()>) -> String {
    match result {
        Err(Error::CertificateRefused(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_good_chain_passes_for_every_key_type() {
    let pki = TestPki::new("good");
    let root = pki.root_pem();
    for kind in [
        KeyType::EcdsaP256,
        KeyType::EcdsaP384,
        KeyType::Rsa2048,
        KeyType::Ed25519,
    ] {
        let key = KeyPair::generate(kind).expect("key");
        let chain = CertificateChain::from_pem(&pki.issue(&names(), &key)).expect("pem");
        assert_eq!(chain.certificates_der.len(), 2);
        let anchored = check_certificate(&chain, &names(), &key, Some(root.as_bytes()));
        assert!(anchored.is_ok(), "{kind}: {anchored:?}");
        let unanchored = check_certificate(&chain, &names(), &key, None);
        assert!(unanchored.is_ok(), "{kind}: {unanchored:?}");
    }
}

#[test]
fn names_compare_without_case_and_ips_as_addresses() {
    let pki = TestPki::new("case");
    let key = KeyPair::generate(KeyType::EcdsaP256).expect("key");
    let chain = CertificateChain::from_pem(&pki.issue(&names(), &key)).expect("pem");
    let mut asked = names();
    asked[0] = Identifier::dns("A.Example");
    asked[3].value = "2001:0db8:0000::0007".into();
    asked.reverse();
    check_certificate(&chain, &asked, &key, None).expect("same names");
}

#[test]
fn a_certificate_for_another_key_is_refused() {
    let pki = TestPki::new("key");
    let csr_key = KeyPair::generate(KeyType::EcdsaP256).expect("key");
    let other = KeyPair::generate(KeyType::EcdsaP256).expect("key");
    let chain = CertificateChain::from_pem(&pki.issue(&names(), &other)).expect("pem");
    let why = refusal(check_certificate(&chain, &names(), &csr_key, None));
    assert!(why.contains("public key"), "{why}");
    // The same bits could never be another key type, but the type is checked too.
    let rsa = KeyPair::generate(KeyType::Rsa2048).expect("key");
    let why = refusal(check_certificate(&chain, &names(), &rsa, None));
    assert!(why.contains("public key"), "{why}");
}

#[test]
fn missing_or_extra_names_are_refused() {
    let pki = TestPki::new("names");
    let key = KeyPair::generate(KeyType::EcdsaP256).expect("key");
    let chain = CertificateChain::from_pem(&pki.issue(&names(), &key)).expect("pem");

    let mut more = names();
    more.push(Identifier::dns("c.example"));
    let why = refusal(check_certificate(&chain, &more, &key, None));
    assert!(why.contains("missing dns:c.example"), "{why}");

    let fewer = &names()[1..];
    let why = refusal(check_certificate(&chain, fewer, &key, None));
    assert!(why.contains("not ordered dns:a.example"), "{why}");

    let chain = CertificateChain::from_pem(&pki.issue_with(&names(), &key, |p| {
        p.subject_alt_names.push(rcgen::SanType::Rfc822Name(
            "x@a.example".try_into().expect("ia5"),
        ));
    }))
    .expect("pem");
    let why = refusal(check_certificate(&chain, &names(), &key, None));
    assert!(why.contains("not ordered"), "{why}");

    let chain = CertificateChain::from_pem(&pki.issue_with(&names(), &key, |p| {
        p.subject_alt_names.clear();
    }))
    .expect("pem");
    let why = refusal(check_certificate(&chain, &names(), &key, None));
    assert!(why.contains("no subjectAltName"), "{why}");
}

#[test]
fn a_chain_that_does_not_link_up_is_refused() {
    let pki = TestPki::new("one");
    let other = TestPki::new("two");
    let key = KeyPair::generate(KeyType::EcdsaP256).expect("key");
    let good = CertificateChain::from_pem(&pki.issue(&names(), &key)).expect("pem");

    // The leaf followed by someone else's intermediate: names differ.
    let mut spliced = good.clone();
    spliced.certificates_der[1] = other.intermediate.der().to_vec();
    let why = refusal(check_certificate(&spliced, &names(), &key, None));
    assert!(why.contains("as its issuer"), "{why}");

    // Same issuer name, different key: the signature does not verify.
    let twin = TestPki::new("one");
    let mut forged = good.clone();
    forged.certificates_der[1] = twin.intermediate.der().to_vec();
    let why = refusal(check_certificate(&forged, &names(), &key, None));
    assert!(why.contains("signature is wrong"), "{why}");

    // A good chain, but to a root that was not given.
    let why = refusal(check_certificate(
        &good,
        &names(),
        &key,
        Some(other.root_pem().as_bytes()),
    ));
    assert!(why.contains("none of the 1 given trust roots"), "{why}");

    // A chain whose issuer is not a CA certificate.
    let leaf_as_issuer = CertificateChain {
        certificates_der: vec![
            good.certificates_der[0].clone(),
            good.certificates_der[0].clone(),
        ],
        ..good.clone()
    };
    assert!(check_certificate(&leaf_as_issuer, &names(), &key, None).is_err());
}

#[test]
fn expired_certificates_and_junk_are_refused() {
    let pki = TestPki::new("time");
    let key = KeyPair::generate(KeyType::EcdsaP256).expect("key");
    let chain = CertificateChain::from_pem(&pki.issue_with(&names(), &key, |p| {
        p.not_after = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    }))
    .expect("pem");
    let why = refusal(check_certificate(&chain, &names(), &key, None));
    assert!(why.contains("not valid now"), "{why}");

    let mut junk = chain.clone();
    junk.certificates_der[0].push(0);
    let why = refusal(check_certificate(&junk, &names(), &key, None));
    assert!(why.contains("data after"), "{why}");

    assert!(CertificateChain::from_pem("<html>not a chain</html>").is_err());
    assert!(
        CertificateChain::from_pem("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")
            .is_err()
    );
}

#[test]
fn csrs_carry_every_name_and_the_certificate_key() {
    for kind in [
        KeyType::EcdsaP256,
        KeyType::EcdsaP384,
        KeyType::Rsa2048,
        KeyType::Ed25519,
    ] {
        let key = KeyPair::generate(kind).expect("key");
        let der = csr(&names(), &key).expect("csr");
        let (rest, request) = X509CertificationRequest::from_der(&der).expect("a CSR");
        assert!(rest.is_empty());
        let info = &request.certification_request_info;
        assert_eq!(info.subject.iter().count(), 0, "empty subject");
        let ours = rcgen::KeyPair::try_from(key.to_pkcs8_der().expect("der").as_slice())
            .expect("rcgen key");
        assert_eq!(
            info.subject_pki.subject_public_key.data.as_ref(),
            ours.public_key_raw()
        );
        let sans: Vec<String> = request
            .requested_extensions()
            .into_iter()
            .flatten()
            .flat_map(|ext| match ext {
                x509_parser::extensions::ParsedExtension::SubjectAlternativeName(san) => san
                    .general_names
                    .iter()
                    .map(|name| match name {
                        GeneralName::DNSName(dns) => format!("dns:{dns}"),
                        &GeneralName::IPAddress(&[a, b, c, d]) => {
                            format!("ip:{}", std::net::IpAddr::from([a, b, c, d]))
                        }
                        GeneralName::IPAddress(v6) => format!(
                            "ip:{}",
                            std::net::IpAddr::from(<[u8; 16]>::try_from(*v6).expect("16"))
                        ),
                        other => format!("unexpected {other}"),
                    })
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(
            sans,
            [
                "dns:a.example",
                "dns:*.b.example",
                "ip:192.0.2.7",
                "ip:2001:db8::7",
            ],
            "{kind}"
        );
    }
    assert!(matches!(
        csr(&[], &KeyPair::generate(KeyType::EcdsaP256).expect("key")),
        Err(Error::Csr(_))
    ));
    let bad = Identifier::dns("bücher.example");
    assert!(matches!(
        csr(&[bad], &KeyPair::generate(KeyType::EcdsaP256).expect("key")),
        Err(Error::Csr(_))
    ));
}
