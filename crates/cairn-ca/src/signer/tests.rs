//! Tests of the signer as a whole: the hierarchy on disk, leaves, CRLs.

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::OnceLock;

use cairn_proto::{Identifier, ProblemType};
use rcgen::{KeyPair, PublicKeyData as _};
use tempfile::TempDir;
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer as _;
use x509_parser::revocation_list::CertificateRevocationList;

use super::*;

const BASE_URL: &str = "http://127.0.0.1:14080";

fn options(dir: &Path) -> PkiOptions {
    PkiOptions {
        data_dir: dir.to_path_buf(),
        crl_base_url: format!("{BASE_URL}/"),
        api_hostnames: vec!["localhost".into(), "127.0.0.1".into()],
    }
}

/// One CA for the tests that only read from it (the RSA 4096 root takes a
/// moment to make).
fn shared() -> &'static Pki {
    static PKI: OnceLock<(TempDir, Pki)> = OnceLock::new();
    let (_, pki) = PKI.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::load_or_create(&options(dir.path())).expect("creates");
        (dir, pki)
    });
    pki
}

fn request(pki: &Pki, key: &KeyPair, csr_key: CsrKey, names: Vec<Identifier>) -> LeafRequest {
    let now = OffsetDateTime::now_utc();
    LeafRequest {
        serial: new_serial(),
        issuer: pki.issuer_for_key(&csr_key),
        names,
        public_key_spki_der: key.subject_public_key_info(),
        not_before: now - Duration::minutes(5),
        not_after: now + Duration::days(90),
    }
}

fn p256_request(pki: &Pki, names: Vec<Identifier>) -> (KeyPair, LeafRequest) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("generates");
    let req = request(pki, &key, CsrKey::Ecdsa(Curve::P256), names);
    (key, req)
}

fn parse(der: &[u8]) -> X509Certificate<'_> {
    let (rest, cert) = X509Certificate::from_der(der).expect("parses");
    assert!(rest.is_empty());
    cert
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).expect("exists").permissions().mode() & 0o777
}

#[test]
fn serials_are_16_positive_bytes_with_a_nonzero_first_byte() {
    let mut seen = HashSet::new();
    for _ in 0..2000 {
        let serial = new_serial();
        assert_eq!(serial.len(), 16);
        assert!((1..=0x7f).contains(&serial[0]), "{}", serial_hex(&serial));
        assert!(seen.insert(serial), "repeated serial");
    }
}

#[test]
fn serial_hex_is_lowercase() {
    assert_eq!(serial_hex(&[0x0a, 0xbc, 0x00, 0xff]), "0abc00ff");
    assert_eq!(serial_hex(&[]), "");
}

#[test]
fn pki_is_shareable() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<Pki>();
}

#[test]
fn a_second_start_loads_the_same_hierarchy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Pki::load_or_create(&options(dir.path())).expect("creates");
    let second = Pki::load_or_create(&options(dir.path())).expect("loads");
    assert_eq!(first.roots(), second.roots());
    for id in first.issuer_ids() {
        assert_eq!(first.chains(&id), second.chains(&id));
    }
    assert_eq!(first.api_tls(), second.api_tls(), "API certificate reused");

    let pki_dir = dir.path().join("pki");
    assert_eq!(mode_of(&pki_dir), 0o700);
    let mut keys = 0;
    for entry in fs::read_dir(&pki_dir).expect("lists") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(!name.starts_with('.'), "temporary file left: {name}");
        if name.ends_with(".key.pem") {
            keys += 1;
            assert_eq!(mode_of(&path), 0o600, "{name}");
        }
    }
    assert_eq!(keys, 5, "four CA keys and the API key");

    // root.pem: both roots, and nothing else.
    assert_eq!(first.root_pem_path(), dir.path().join("root.pem"));
    let pem = fs::read_to_string(first.root_pem_path()).expect("reads");
    assert_eq!(
        cairn_proto::pem::decode_all(&pem, "CERTIFICATE"),
        first.roots()
    );
    assert_eq!(mode_of(&first.root_pem_path()), 0o644);
}

#[test]
fn two_installations_have_different_names() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let a = Pki::load_or_create(&options(a.path())).expect("creates");
    let b = Pki::load_or_create(&options(b.path())).expect("creates");
    let subject = |der: &[u8]| parse(der).subject().to_string();
    for (x, y) in a.roots().iter().zip(b.roots().iter()) {
        assert_ne!(subject(x), subject(y));
    }
}

#[test]
fn an_incomplete_pki_directory_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    Pki::load_or_create(&options(dir.path())).expect("creates");
    fs::remove_file(dir.path().join("pki").join("rsa-1.key.pem")).expect("removes");
    let err = Pki::load_or_create(&options(dir.path())).expect_err("refused");
    assert!(err.detail.contains("rsa-1.key.pem"), "{}", err.detail);
}

#[test]
fn the_api_certificate_is_renewed_when_names_change_or_it_nears_expiry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = options(dir.path());
    let first = Pki::load_or_create(&opts).expect("creates");
    let (chain, key) = first.api_tls();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[1], first.chains("ecdsa-1")[0][0]);
    let leaf = parse(&chain[0]);
    let sans: Vec<String> = leaf
        .subject_alternative_name()
        .expect("parses")
        .expect("present")
        .value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(sans, vec!["DNSName(localhost)", "IPAddress(7f:00:00:01)"]);
    let parsed_key = KeyPair::try_from(key.as_slice()).expect("PKCS#8");
    assert_eq!(leaf.public_key().raw, parsed_key.subject_public_key_info());

    opts.api_hostnames.push("ca.test".into());
    let renamed = Pki::load_or_create(&opts).expect("loads");
    assert_ne!(renamed.api_tls().0[0], chain[0]);
    assert_eq!(renamed.roots(), first.roots());

    let same = Pki::load_or_create(&opts).expect("loads");
    assert_eq!(same.api_tls(), renamed.api_tls());
    let lifetime = {
        let (chain, _) = same.api_tls();
        let cert = parse(&chain[0]);
        cert.validity().not_after.to_datetime() - cert.validity().not_before.to_datetime()
    };
    assert_eq!(lifetime, Duration::days(90) - Duration::SECOND);

    // Still 31 days left: kept. 29 days left: replaced, at start or on demand.
    let now = OffsetDateTime::now_utc();
    assert!(
        !same
            .renew_api_tls(now + Duration::days(59))
            .expect("checks")
    );
    assert_eq!(same.api_tls(), renamed.api_tls());
    let renewed = Pki::load_or_create_at(&opts, now + Duration::days(61)).expect("loads");
    assert_ne!(renewed.api_tls().0[0], same.api_tls().0[0]);
    assert!(
        same.renew_api_tls(now + Duration::days(122))
            .expect("renews")
    );
    assert_ne!(same.api_tls().0[0], renewed.api_tls().0[0]);
}

#[test]
fn only_http_crl_urls_are_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = options(dir.path());
    opts.crl_base_url = "https://ca.test".into();
    let err = Pki::load_or_create(&opts).expect_err("refused");
    assert!(err.detail.contains("http://"), "{}", err.detail);
    assert!(!dir.path().join("pki").exists());
}

#[test]
fn ids_chains_and_issuer_choice() {
    let pki = shared();
    assert_eq!(pki.issuer_ids(), vec!["ecdsa-1", "rsa-1"]);
    assert_eq!(pki.root_ids(), vec!["root-ecdsa", "root-rsa"]);
    assert_eq!(pki.issuer_for_key(&CsrKey::Ecdsa(Curve::P384)), "ecdsa-1");
    assert_eq!(pki.issuer_for_key(&CsrKey::Rsa { bits: 4096 }), "rsa-1");

    let ecdsa = pki.chains("ecdsa-1");
    assert_eq!(ecdsa.len(), 2, "default and cross-signed");
    let (default, cross) = (parse(&ecdsa[0][0]), parse(&ecdsa[1][0]));
    assert_eq!(default.subject(), cross.subject());
    assert_eq!(default.public_key(), cross.public_key());
    assert_eq!(default.issuer(), parse(&pki.roots()[0]).subject());
    assert_eq!(cross.issuer(), parse(&pki.roots()[1]).subject());
    assert_eq!(pki.chains("rsa-1").len(), 1);
    assert!(pki.chains("nope").is_empty());

    assert_eq!(pki.issuer_der("ecdsa-1"), Some(ecdsa[0][0].as_slice()));
    assert_eq!(pki.issuer_der("root-rsa"), Some(pki.roots()[1].as_slice()));
    assert_eq!(pki.issuer_der("nope"), None);
}

#[test]
fn ca_certificates_have_the_ca_profile() {
    let pki = shared();
    for root in pki.roots() {
        let cert = parse(&root);
        let bc = cert.basic_constraints().expect("ok").expect("present");
        assert!(bc.critical && bc.value.ca && bc.value.path_len_constraint.is_none());
        let ku = cert.key_usage().expect("ok").expect("present");
        assert!(ku.critical && ku.value.key_cert_sign() && ku.value.crl_sign());
        assert!(!ku.value.digital_signature());
        assert!(cert.extended_key_usage().expect("ok").is_none());
        assert!(cert.verify_signature(None).is_ok(), "self-signed");
        assert!(cert.subject().to_string().contains("Cairn Root"));
    }
    for (id, chain) in [("ecdsa-1", 0), ("ecdsa-1", 1), ("rsa-1", 0)] {
        let der = &pki.chains(id)[chain][0];
        let cert = parse(der);
        let bc = cert.basic_constraints().expect("ok").expect("present");
        assert!(bc.critical && bc.value.ca);
        assert_eq!(bc.value.path_len_constraint, Some(0));
        let eku = cert.extended_key_usage().expect("ok").expect("present");
        assert!(eku.value.server_auth && !eku.value.client_auth && !eku.value.any);
        assert!(cert.subject().to_string().contains("Cairn Issuing"));
        let lifetime =
            cert.validity().not_after.to_datetime() - cert.validity().not_before.to_datetime();
        assert!(lifetime > Duration::days(5 * 365) && lifetime < Duration::days(6 * 365));
    }
}

#[test]
fn ecdsa_leaves_have_the_dv_profile() {
    let pki = shared();
    let names = vec![
        Identifier::dns("example.com"),
        Identifier::dns("www.example.com"),
        Identifier::ip("192.0.2.7".parse().expect("ip")),
    ];
    let (key, req) = p256_request(pki, names);
    let der = pki.issue_leaf(&req).expect("issues");
    let cert = parse(&der);
    let issuer = parse(pki.issuer_der("ecdsa-1").expect("known"));

    assert_eq!(cert.version().0, 2, "v3");
    assert_eq!(cert.raw_serial(), req.serial.as_slice());
    assert_eq!(cert.subject().to_string(), "CN=example.com");
    assert_eq!(cert.issuer(), issuer.subject());
    assert_eq!(cert.public_key().raw, key.subject_public_key_info());
    assert_eq!(
        cert.validity().not_before.timestamp(),
        req.not_before.unix_timestamp()
    );
    assert_eq!(
        cert.validity().not_after.timestamp(),
        req.not_after.unix_timestamp()
    );
    assert_eq!(
        cert.signature_algorithm.algorithm.to_id_string(),
        "1.2.840.10045.4.3.2",
        "ecdsa-with-SHA256"
    );
    cert.verify_signature(Some(issuer.public_key()))
        .expect("signed by the intermediate");

    let mut seen = Vec::new();
    for ext in cert.extensions() {
        let oid = ext.oid.to_id_string();
        seen.push(oid.clone());
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                assert!(!ext.critical, "subject is not empty");
                let names: Vec<String> = san.general_names.iter().map(|n| n.to_string()).collect();
                assert_eq!(
                    names,
                    vec![
                        "DNSName(example.com)",
                        "DNSName(www.example.com)",
                        "IPAddress(c0:00:02:07)"
                    ]
                );
            }
            ParsedExtension::KeyUsage(ku) => {
                assert!(ext.critical);
                assert_eq!(ku.flags, 1, "digitalSignature only");
            }
            ParsedExtension::ExtendedKeyUsage(eku) => {
                assert!(eku.server_auth && !eku.client_auth && eku.other.is_empty());
            }
            ParsedExtension::BasicConstraints(bc) => {
                assert!(ext.critical && !bc.ca && bc.path_len_constraint.is_none());
                assert_eq!(ext.value, &[0x30, 0x00]);
            }
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                let ski = issuer
                    .iter_extensions()
                    .find_map(|e| match e.parsed_extension() {
                        ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0),
                        _ => None,
                    })
                    .expect("issuer SKI");
                assert_eq!(aki.key_identifier.as_ref().map(|k| k.0), Some(ski));
            }
            ParsedExtension::AuthorityInfoAccess(aia) => {
                let urls: Vec<String> = aia
                    .accessdescs
                    .iter()
                    .map(|d| format!("{} {}", d.access_method.to_id_string(), d.access_location))
                    .collect();
                assert_eq!(
                    urls,
                    vec![format!(
                        "1.3.6.1.5.5.7.48.2 URI({BASE_URL}/issuer/ecdsa-1.der)"
                    )]
                );
            }
            ParsedExtension::CRLDistributionPoints(points) => {
                let [point] = points.points.as_slice() else {
                    panic!("one distribution point");
                };
                let Some(DistributionPointName::FullName(names)) = &point.distribution_point else {
                    panic!("a full name");
                };
                assert_eq!(
                    names.as_slice(),
                    &[GeneralName::URI(&format!("{BASE_URL}/crl/ecdsa-1.crl"))]
                );
            }
            ParsedExtension::CertificatePolicies(policies) => {
                let oids: Vec<String> = policies
                    .iter()
                    .map(|p| p.policy_id.to_id_string())
                    .collect();
                assert_eq!(oids, vec!["2.23.140.1.2.1"]);
            }
            other => panic!("unexpected extension {oid}: {other:?}"),
        }
    }
    seen.sort();
    assert_eq!(seen.len(), 8, "{seen:?}");
    assert!(!seen.contains(&"2.5.29.14".to_string()), "no SKI");
}

#[test]
fn rsa_leaves_are_signed_by_the_rsa_intermediate() {
    let pki = shared();
    let key = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        .expect("generates");
    let req = request(
        pki,
        &key,
        CsrKey::Rsa { bits: 2048 },
        vec![Identifier::dns("rsa.example")],
    );
    assert_eq!(req.issuer, "rsa-1");
    let der = pki.issue_leaf(&req).expect("issues");
    let cert = parse(&der);
    let issuer = parse(pki.issuer_der("rsa-1").expect("known"));
    assert_eq!(
        cert.signature_algorithm.algorithm.to_id_string(),
        "1.2.840.113549.1.1.11",
        "sha256WithRSAEncryption"
    );
    cert.verify_signature(Some(issuer.public_key()))
        .expect("signed by the RSA intermediate");
    let ku = cert.key_usage().expect("ok").expect("present");
    assert!(ku.value.digital_signature() && ku.value.key_encipherment());
    assert_eq!(ku.value.flags, 0b101);
}

#[test]
fn without_a_short_dns_name_the_subject_is_empty_and_the_san_critical() {
    let pki = shared();
    let long = format!("{}.example.com", "a".repeat(60));
    let (_, req) = p256_request(
        pki,
        vec![
            Identifier::dns(long.clone()),
            Identifier::ip("2001:db8::5".parse().expect("ip")),
        ],
    );
    let cert_der = pki.issue_leaf(&req).expect("issues");
    let cert = parse(&cert_der);
    assert_eq!(cert.subject().iter().count(), 0);
    let san = cert
        .subject_alternative_name()
        .expect("ok")
        .expect("present");
    assert!(san.critical);

    // With a short name after the long one, the short one is the CN.
    let (_, req) = p256_request(
        pki,
        vec![Identifier::dns(long), Identifier::dns("short.example")],
    );
    let cert_der = pki.issue_leaf(&req).expect("issues");
    assert_eq!(parse(&cert_der).subject().to_string(), "CN=short.example");
}

#[test]
fn bad_leaf_requests_are_internal_errors() {
    let pki = shared();
    let (_, mut req) = p256_request(pki, vec![Identifier::dns("example.com")]);
    req.issuer = "nope".into();
    assert_eq!(
        pki.issue_leaf(&req).expect_err("refused").kind,
        ProblemType::ServerInternal
    );

    let (_, mut req) = p256_request(pki, vec![Identifier::dns("example.com")]);
    req.not_after = req.not_before + Duration::days(20 * 365);
    let err = pki.issue_leaf(&req).expect_err("outlives the intermediate");
    assert_eq!(err.kind, ProblemType::ServerInternal);

    let (_, mut req) = p256_request(pki, vec![Identifier::dns("example.com")]);
    req.serial = vec![0x80; 16];
    assert!(pki.issue_leaf(&req).is_err(), "negative serial");

    let (_, mut req) = p256_request(pki, vec![]);
    req.names.clear();
    assert!(pki.issue_leaf(&req).is_err(), "no names");
}

#[test]
fn the_ari_cert_id_is_the_aki_and_serial() {
    let pki = shared();
    let (_, req) = p256_request(pki, vec![Identifier::dns("ari.example")]);
    let der = pki.issue_leaf(&req).expect("issues");
    let id = leaf_ari_cert_id(&der).expect("has an AKI");
    let issuer = parse(pki.issuer_der("ecdsa-1").expect("known"));
    let ski = issuer
        .iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
            _ => None,
        })
        .expect("issuer SKI");
    assert_eq!(id.key_identifier(), ski.as_slice());
    assert_eq!(id.serial_unsigned(), req.serial.as_slice());
    assert_eq!(
        id.serial_der(),
        req.serial.as_slice(),
        "no leading zero needed"
    );
    assert!(leaf_ari_cert_id(b"junk").is_err());
}

#[test]
fn crls_list_the_revoked_serials() {
    let pki = shared();
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("valid");
    let entries = vec![
        CrlEntry {
            serial: new_serial(),
            revoked_at: now - Duration::hours(2),
            reason: 0,
        },
        CrlEntry {
            serial: new_serial(),
            revoked_at: now - Duration::hours(1),
            reason: 1,
        },
    ];
    let der = pki
        .crl("ecdsa-1", &entries, now, now + Duration::days(7), 42)
        .expect("signs");
    let (rest, crl) = CertificateRevocationList::from_der(&der).expect("parses");
    assert!(rest.is_empty());
    let issuer = parse(pki.issuer_der("ecdsa-1").expect("known"));
    crl.verify_signature(issuer.public_key())
        .expect("signed by ecdsa-1");
    assert_eq!(crl.issuer(), issuer.subject());
    assert_eq!(crl.crl_number().map(|n| n.to_string()), Some("42".into()));
    assert_eq!(crl.last_update().timestamp(), now.unix_timestamp());
    let revoked: Vec<_> = crl.iter_revoked_certificates().collect();
    assert_eq!(revoked.len(), 2);
    assert_eq!(revoked[0].raw_serial(), entries[0].serial.as_slice());
    assert!(
        revoked[0].reason_code().is_none(),
        "unspecified is left out"
    );
    assert_eq!(revoked[1].raw_serial(), entries[1].serial.as_slice());
    assert_eq!(revoked[1].reason_code().map(|(_, r)| r.0), Some(1));
    let has = |oid: &str| crl.extensions().iter().any(|e| e.oid.to_id_string() == oid);
    assert!(has("2.5.29.35"), "AKI");
    assert!(has("2.5.29.20"), "CRL number");
    assert!(has("2.5.29.28"), "issuing distribution point");

    // An empty CRL has no revokedCertificates at all; roots sign theirs.
    let empty = pki
        .crl("root-rsa", &[], now, now + Duration::days(300), 1)
        .expect("signs");
    let (_, crl) = CertificateRevocationList::from_der(&empty).expect("parses");
    assert_eq!(crl.iter_revoked_certificates().count(), 0);
    crl.verify_signature(parse(&pki.roots()[1]).public_key())
        .expect("signed by the RSA root");

    let err = pki
        .crl("nope", &[], now, now + Duration::days(1), 1)
        .expect_err("unknown");
    assert_eq!(err.http_status(), 404);
    let bad_reason = [CrlEntry {
        serial: new_serial(),
        revoked_at: now,
        reason: 7,
    }];
    assert_eq!(
        pki.crl("ecdsa-1", &bad_reason, now, now + Duration::days(1), 1)
            .expect_err("reason 7")
            .kind,
        ProblemType::BadRevocationReason
    );
}

/// Roots kept offline (security issue, item 12): `take_roots_offline`
/// moves both root keys into one 0600 file and signs the roots' CRLs; the
/// data directory then loads without them, still issues, and serves the
/// CRLs signed offline; `sign_root_crls` signs new ones from the file.
#[test]
fn roots_can_be_kept_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = options(&dir.path().join("ca"));
    let online = Pki::load_or_create(&opts).expect("creates");
    let now = OffsetDateTime::now_utc();
    let key_file = dir.path().join("roots.key.pem");
    let crls = Pki::take_roots_offline(&opts.data_dir, &key_file, now).expect("offline");
    assert_eq!(crls.len(), 2);

    let pki_dir = opts.data_dir.join("pki");
    for root in ["root-ecdsa", "root-rsa"] {
        assert!(!pki_dir.join(format!("{root}.key.pem")).exists(), "{root}");
    }
    let mode = fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = fs::read_to_string(&key_file).unwrap();
    assert_eq!(cairn_proto::pem::decode_all(&text, "PRIVATE KEY").len(), 2);
    let again = Pki::take_roots_offline(&opts.data_dir, &dir.path().join("again.pem"), now);
    assert!(
        again
            .expect_err("nothing to take")
            .detail
            .contains("offline already")
    );

    let offline = Pki::load_or_create(&opts).expect("loads without the root keys");
    assert_eq!(offline.roots(), online.roots());
    let key = KeyPair::generate().expect("a key");
    let names = vec![Identifier::dns("offline.example")];
    let leaf = offline
        .issue_leaf(&request(&offline, &key, CsrKey::Ecdsa(Curve::P256), names))
        .expect("intermediates still sign");
    assert!(!leaf.is_empty());

    let served = offline
        .crl("root-rsa", &[], now, now + Duration::days(1), 7)
        .expect("the CRL signed offline");
    assert_eq!(served, fs::read(&crls[1]).unwrap());
    let (_, crl) = CertificateRevocationList::from_der(&served).expect("parses");
    crl.verify_signature(parse(&offline.roots()[1]).public_key())
        .expect("signed by the RSA root");

    let later = now + Duration::days(300);
    let renewed = Pki::sign_root_crls(&opts.data_dir, &key_file, later).expect("signs");
    let renewed_der = fs::read(&renewed[0]).unwrap();
    let (_, crl) = CertificateRevocationList::from_der(&renewed_der).unwrap();
    assert!(crl.next_update().expect("nextUpdate").to_datetime() > later);
    crl.verify_signature(parse(&offline.roots()[0]).public_key())
        .expect("signed by the ECDSA root");

    // Keys that are not the roots' are refused.
    let wrong = dir.path().join("wrong.pem");
    fs::write(&wrong, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let err = Pki::sign_root_crls(&opts.data_dir, &wrong, later).expect_err("not the roots");
    assert!(err.detail.contains("holds no key for"), "{}", err.detail);
}
