//! The signer's certificates and CRLs as programs nobody here wrote see
//! them: `openssl verify`, `openssl crl` and, when `CAIRN_PKILINT` names
//! `lint_cabf_serverauth_cert`, pkilint.
//!
//! Set `CAIRN_SIGNER_ARTIFACTS=/some/dir` to keep the files the tests write
//! (one subdirectory per test) for a look by hand.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cairn_ca::signer::{CrlEntry, LeafRequest, Pki, PkiOptions, check_csr, new_serial, serial_hex};
use cairn_proto::{KeyPair as AccountKey, KeyType};
use rcgen::{CertificateParams, DistinguishedName, KeyPair, RsaKeySize};
use time::{Duration, OffsetDateTime};

const OPENSSL: &str = "/usr/bin/openssl";

/// A fresh CA in its own directory, and somewhere to write files.
struct Fixture {
    _temp: Option<tempfile::TempDir>,
    dir: PathBuf,
    pki: Pki,
}

impl Fixture {
    fn new(name: &str) -> Self {
        Self::with_urls(
            name,
            "http://127.0.0.1:14080",
            &["localhost", "127.0.0.1", "::1"],
        )
    }

    fn with_urls(name: &str, crl_base_url: &str, api_hostnames: &[&str]) -> Self {
        let (temp, dir) = match std::env::var_os("CAIRN_SIGNER_ARTIFACTS") {
            Some(root) => {
                let dir = PathBuf::from(root).join(name);
                let _ = fs::remove_dir_all(&dir);
                fs::create_dir_all(&dir).unwrap();
                (None, dir)
            }
            None => {
                let temp = tempfile::tempdir().unwrap();
                let dir = temp.path().to_path_buf();
                (Some(temp), dir)
            }
        };
        let pki = Pki::load_or_create(&PkiOptions {
            data_dir: dir.join("data"),
            crl_base_url: crl_base_url.into(),
            api_hostnames: api_hostnames.iter().map(|h| h.to_string()).collect(),
        })
        .unwrap();
        Self {
            _temp: temp,
            dir,
            pki,
        }
    }

    /// Issues a leaf the way the RA will: CSR, check, serial, sign.
    fn leaf(&self, key: &KeyPair, names: &[&str]) -> (LeafRequest, Vec<u8>) {
        let account = AccountKey::generate(KeyType::EcdsaP256).unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name = DistinguishedName::new();
        let csr = params.serialize_request(key).unwrap();
        let checked = check_csr(csr.der(), account.public_jwk()).unwrap();
        let now = OffsetDateTime::now_utc();
        let req = LeafRequest {
            serial: new_serial(),
            issuer: self.pki.issuer_for_key(&checked.key),
            names: checked.names,
            public_key_spki_der: checked.public_key_spki_der,
            not_before: now - Duration::minutes(1),
            not_after: now - Duration::minutes(1) + Duration::days(90) - Duration::seconds(1),
        };
        let der = self.pki.issue_leaf(&req).unwrap();
        (req, der)
    }

    fn write_pem(&self, name: &str, label: &str, ders: &[&[u8]]) -> PathBuf {
        let text: String = ders
            .iter()
            .map(|der| cairn_proto::pem::encode(label, der))
            .collect();
        let path = self.dir.join(name);
        fs::write(&path, text).unwrap();
        path
    }

    fn write_certs(&self, name: &str, ders: &[&[u8]]) -> PathBuf {
        self.write_pem(name, "CERTIFICATE", ders)
    }

    fn root_pem(&self) -> PathBuf {
        self.pki.root_pem_path()
    }
}

fn p256() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap()
}

fn rsa2048() -> KeyPair {
    KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048).unwrap()
}

fn run(program: &str, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let output = Command::new(program)
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    eprintln!(
        "$ {program} {}\n{}{}",
        args.iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `openssl verify` of `leaf` against `ca_file`, through `untrusted`,
/// strictly and for TLS server use.
fn openssl_verify(ca_file: &Path, untrusted: &Path, leaf: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
        &"verify",
        &"-x509_strict",
        &"-purpose",
        &"sslserver",
        &"-CAfile",
        &ca_file,
        &"-untrusted",
        &untrusted,
    ];
    for arg in extra {
        args.push(arg);
    }
    args.push(&leaf);
    run(OPENSSL, &args)
}

fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn openssl_verifies_ecdsa_rsa_and_cross_signed_chains() {
    let f = Fixture::new("chains");
    let ecdsa_chains = f.pki.chains("ecdsa-1");
    let ecdsa_int = f.write_certs("ecdsa-1.pem", &[&ecdsa_chains[0][0]]);
    let cross = f.write_certs("ecdsa-1-cross.pem", &[&ecdsa_chains[1][0]]);
    let rsa_int = f.write_certs("rsa-1.pem", &[&f.pki.chains("rsa-1")[0][0]]);
    let roots = f.pki.roots();
    let ecdsa_root_only = f.write_certs("root-ecdsa.pem", &[&roots[0]]);
    let rsa_root_only = f.write_certs("root-rsa.pem", &[&roots[1]]);

    let (_, der) = f.leaf(&p256(), &["www.example.com", "example.com"]);
    let ecdsa_leaf = f.write_certs("leaf-ecdsa.pem", &[&der]);
    let (_, der) = f.leaf(&rsa2048(), &["rsa.example.com"]);
    let rsa_leaf = f.write_certs("leaf-rsa.pem", &[&der]);

    let host = ["-verify_hostname", "www.example.com"];
    assert_ok(&openssl_verify(
        &f.root_pem(),
        &ecdsa_int,
        &ecdsa_leaf,
        &host,
    ));
    assert_ok(&openssl_verify(
        &f.root_pem(),
        &rsa_int,
        &rsa_leaf,
        &["-verify_hostname", "rsa.example.com"],
    ));
    // The alternate chain: ECDSA leaf, cross-signed intermediate, RSA root.
    assert_ok(&openssl_verify(&f.root_pem(), &cross, &ecdsa_leaf, &host));
    assert_ok(&openssl_verify(&rsa_root_only, &cross, &ecdsa_leaf, &host));
    // ...and each intermediate certificate leads to its own root only.
    assert!(
        !openssl_verify(&ecdsa_root_only, &cross, &ecdsa_leaf, &host)
            .status
            .success()
    );
    assert!(
        !openssl_verify(&rsa_root_only, &ecdsa_int, &ecdsa_leaf, &host)
            .status
            .success()
    );
    // A name the certificate does not have fails, so the checks above mean something.
    assert!(
        !openssl_verify(
            &f.root_pem(),
            &ecdsa_int,
            &ecdsa_leaf,
            &["-verify_hostname", "other.example"]
        )
        .status
        .success()
    );

    // The API's own certificate, for a name and an IP literal.
    let (chain, _) = f.pki.api_tls();
    let api_leaf = f.write_certs("api.pem", &[&chain[0]]);
    let api_int = f.write_certs("api-chain.pem", &[&chain[1]]);
    assert_ok(&openssl_verify(
        &f.root_pem(),
        &api_int,
        &api_leaf,
        &["-verify_hostname", "localhost"],
    ));
    assert_ok(&openssl_verify(
        &f.root_pem(),
        &api_int,
        &api_leaf,
        &["-verify_ip", "127.0.0.1"],
    ));
}

#[test]
fn openssl_checks_crls_and_sees_revocations() {
    let f = Fixture::new("crls");
    let ecdsa_int_der = f.pki.chains("ecdsa-1")[0][0].clone();
    let ecdsa_int = f.write_certs("ecdsa-1.pem", &[&ecdsa_int_der]);
    let (revoked_req, revoked_der) = f.leaf(&p256(), &["revoked.example"]);
    let (_, good_der) = f.leaf(&p256(), &["good.example"]);
    let revoked_leaf = f.write_certs("leaf-revoked.pem", &[&revoked_der]);
    let good_leaf = f.write_certs("leaf-good.pem", &[&good_der]);

    let now = OffsetDateTime::now_utc();
    let other_serial = new_serial();
    let entries = [
        CrlEntry {
            serial: revoked_req.serial.clone(),
            revoked_at: now - Duration::minutes(1),
            reason: 1,
        },
        CrlEntry {
            serial: other_serial.clone(),
            revoked_at: now - Duration::minutes(2),
            reason: 0,
        },
    ];
    let crl = f
        .pki
        .crl(
            "ecdsa-1",
            &entries,
            now - Duration::minutes(1),
            now + Duration::days(7),
            7,
        )
        .unwrap();
    let crl_der = f.dir.join("ecdsa-1.crl");
    fs::write(&crl_der, &crl).unwrap();

    // Signed by its issuer: openssl finds the issuer in -CAfile.
    let issuer_and_root =
        f.write_certs("ecdsa-1-and-root.pem", &[&ecdsa_int_der, &f.pki.roots()[0]]);
    let check = run(
        OPENSSL,
        &[
            &"crl",
            &"-in",
            &crl_der,
            &"-inform",
            &"DER",
            &"-CAfile",
            &issuer_and_root,
            &"-noout",
        ],
    );
    assert_ok(&check);
    assert!(String::from_utf8_lossy(&check.stderr).contains("verify OK"));

    // Lists both serials, the reason only where one was given.
    let text = run(
        OPENSSL,
        &[
            &"crl", &"-in", &crl_der, &"-inform", &"DER", &"-noout", &"-text",
        ],
    );
    assert_ok(&text);
    let text = String::from_utf8_lossy(&text.stdout).to_ascii_lowercase();
    assert!(text.contains(&serial_hex(&revoked_req.serial)), "{text}");
    assert!(text.contains(&serial_hex(&other_serial)), "{text}");
    assert!(text.contains("key compromise"), "{text}");
    assert_eq!(text.matches("crl reason code").count(), 1, "{text}");
    assert!(text.contains("crl number"), "{text}");
    assert!(text.contains("issuing distribution point"), "{text}");

    // Revocation checking end to end: the leaf CRL and the root's (empty)
    // CRL; the issuingDistributionPoint must match the leaf's CRL URL for
    // openssl to use it.
    let root_crl = f
        .pki
        .crl(
            "root-ecdsa",
            &[],
            now - Duration::minutes(1),
            now + Duration::days(300),
            1,
        )
        .unwrap();
    let crls = f.write_pem("crls.pem", "X509 CRL", &[&crl, &root_crl]);
    let crl_args = ["-crl_check_all", "-CRLfile", crls.to_str().unwrap()];
    assert_ok(&openssl_verify(
        &f.root_pem(),
        &ecdsa_int,
        &good_leaf,
        &crl_args,
    ));
    let refused = openssl_verify(&f.root_pem(), &ecdsa_int, &revoked_leaf, &crl_args);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stdout).contains("certificate revoked")
            || String::from_utf8_lossy(&refused.stderr).contains("certificate revoked")
    );
}

/// pkilint, when `CAIRN_PKILINT` names `lint_cabf_serverauth_cert`; the
/// other pkilint programs are looked for beside it. Set but missing is a
/// failure, not a skip.
#[test]
fn pkilint_finds_no_errors() {
    let Some(lint) = std::env::var_os("CAIRN_PKILINT") else {
        // Straight to stderr, past the test harness's capture, so the
        // skip shows in every run's output.
        let _ = writeln!(
            std::io::stderr(),
            "pkilint not run: set CAIRN_PKILINT=/path/to/lint_cabf_serverauth_cert to run it"
        );
        return;
    };
    let lint = PathBuf::from(lint);
    assert!(
        lint.is_file(),
        "CAIRN_PKILINT={} does not exist",
        lint.display()
    );
    let bin = lint.parent().unwrap();
    let chain_lint = bin.join("lint_pkix_signer_signee_cert_chain");
    let crl_lint = bin.join("lint_crl");
    for tool in [&chain_lint, &crl_lint] {
        assert!(
            tool.is_file(),
            "{} is missing beside CAIRN_PKILINT",
            tool.display()
        );
    }
    let lint = lint.to_str().unwrap();

    // pkilint rightly flags loopback and documentation addresses as
    // internal names, so this CA gets public-looking URLs and names.
    let f = Fixture::with_urls("pkilint", "http://ca.example.com", &["acme.example.com"]);
    let (_, ecdsa) = f.leaf(&p256(), &["www.example.com", "example.com", "9.9.9.9"]);
    let (_, rsa) = f.leaf(&rsa2048(), &["rsa.example.com"]);
    let (api_chain, _) = f.pki.api_tls();
    let ecdsa_int = f.write_certs("ecdsa-1.pem", &[&f.pki.chains("ecdsa-1")[0][0]]);
    let rsa_int = f.write_certs("rsa-1.pem", &[&f.pki.chains("rsa-1")[0][0]]);
    for (name, der, issuer) in [
        ("leaf-ecdsa.pem", &ecdsa, &ecdsa_int),
        ("leaf-rsa.pem", &rsa, &rsa_int),
        ("api.pem", &api_chain[0], &ecdsa_int),
    ] {
        let leaf = f.write_certs(name, &[der]);
        assert_ok(&run(
            lint,
            &[
                &"lint",
                &"-t",
                &"DV-FINAL-CERTIFICATE",
                &"-s",
                &"ERROR",
                &leaf,
            ],
        ));
        assert_ok(&run(
            chain_lint.to_str().unwrap(),
            &[&"lint", &"-s", &"ERROR", issuer, &leaf],
        ));
    }

    let now = OffsetDateTime::now_utc();
    let entries = [CrlEntry {
        serial: new_serial(),
        revoked_at: now - Duration::minutes(1),
        reason: 1,
    }];
    let crl = f
        .pki
        .crl(
            "ecdsa-1",
            &entries,
            now - Duration::minutes(1),
            now + Duration::days(7),
            3,
        )
        .unwrap();
    let crl_path = f.write_pem("ecdsa-1.crl.pem", "X509 CRL", &[&crl]);
    assert_ok(&run(
        crl_lint.to_str().unwrap(),
        &[
            &"lint", &"-t", &"CRL", &"-p", &"BR", &"-s", &"ERROR", &crl_path,
        ],
    ));
    // A root's CRL lists CA certificates: an ARL.
    let arl = f
        .pki
        .crl(
            "root-ecdsa",
            &[],
            now - Duration::minutes(1),
            now + Duration::days(300),
            1,
        )
        .unwrap();
    let arl_path = f.write_pem("root-ecdsa.crl.pem", "X509 CRL", &[&arl]);
    assert_ok(&run(
        crl_lint.to_str().unwrap(),
        &[
            &"lint", &"-t", &"ARL", &"-p", &"BR", &"-s", &"ERROR", &arl_path,
        ],
    ));
}
