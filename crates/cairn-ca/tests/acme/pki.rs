//! Certificate helpers for the tests: PEM splitting, parsing, and
//! `openssl` (/usr/bin/openssl) as an independent verifier.

use std::path::Path;
use std::process::Command;

use cairn_proto::pem;
use x509_parser::prelude::{FromDer, X509Certificate};

const OPENSSL: &str = "/usr/bin/openssl";

/// The DER certificates of a PEM text.
pub(crate) fn ders(pem_text: &str) -> Vec<Vec<u8>> {
    pem::decode_all(pem_text, "CERTIFICATE")
}

pub(crate) fn parse(der: &[u8]) -> X509Certificate<'_> {
    X509Certificate::from_der(der).expect("a DER certificate").1
}

/// The roots in `root.pem`: `(ecdsa, rsa)`, told apart by key type.
pub(crate) fn roots(root_pem: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let all = ders(std::str::from_utf8(root_pem).expect("PEM is text"));
    assert_eq!(all.len(), 2, "root.pem holds two roots");
    let is_rsa = |der: &[u8]| {
        parse(der).public_key().algorithm.algorithm
            == x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION
    };
    let rsa = all.iter().find(|d| is_rsa(d)).expect("an RSA root").clone();
    let ecdsa = all
        .iter()
        .find(|d| !is_rsa(d))
        .expect("an ECDSA root")
        .clone();
    (ecdsa, rsa)
}

pub(crate) fn to_pem(ders: &[Vec<u8>]) -> String {
    ders.iter().map(|d| pem::encode("CERTIFICATE", d)).collect()
}

/// `openssl verify -x509_strict -purpose sslserver -CAfile <trusted>
/// -untrusted <intermediates> <leaf>`; panics with openssl's output if it
/// does not say OK.
pub(crate) fn openssl_verify(dir: &Path, name: &str, trusted: &[Vec<u8>], chain: &[Vec<u8>]) {
    let (leaf, intermediates) = chain.split_first().expect("a leaf");
    let write = |suffix: &str, ders: &[Vec<u8>]| {
        let path = dir.join(format!("{name}-{suffix}.pem"));
        std::fs::write(&path, to_pem(ders)).expect("written");
        path
    };
    let trusted = write("trusted", trusted);
    let untrusted = write("untrusted", intermediates);
    let leaf = write("leaf", std::slice::from_ref(leaf));
    let output = Command::new(OPENSSL)
        .arg("verify")
        .args(["-x509_strict", "-purpose", "sslserver", "-CAfile"])
        .arg(&trusted)
        .arg("-untrusted")
        .arg(&untrusted)
        .arg(&leaf)
        .output()
        .expect("openssl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && text.trim_end().ends_with(": OK"),
        "openssl verify of {name}: {text}"
    );
}

/// Runs openssl with `args`, returns (success, stdout + stderr).
pub(crate) fn openssl(args: &[&std::ffi::OsStr]) -> (bool, String) {
    let output = Command::new(OPENSSL)
        .args(args)
        .output()
        .expect("openssl runs");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// `cairn-ca init --root-key-out` then `admin sign-root-crl`, as an
/// operator runs them: the data directory keeps no root key, the key file
/// is 0600, and signing the roots' CRLs from it works; a second init does
/// not overwrite the key file.
#[test]
fn init_keeps_the_root_keys_out_and_sign_root_crl_uses_them() {
    use std::os::unix::fs::PermissionsExt as _;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ca");
    let keys = dir.path().join("roots.key.pem");
    let cairn_ca = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cairn-ca"))
            .args(args)
            .args(["--dev", "--data-dir"])
            .arg(&data)
            .output()
            .expect("cairn-ca runs")
    };
    let out = cairn_ca(&["init", "--root-key-out", keys.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("root keys are now only in"), "{stdout}");
    let pki = data.join("pki");
    assert!(!pki.join("root-ecdsa.key.pem").exists());
    assert!(!pki.join("root-rsa.key.pem").exists());
    assert!(pki.join("ecdsa-1.key.pem").exists(), "intermediates stay");
    assert!(pki.join("root-rsa.crl").exists());
    let mode = std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let before = std::fs::read(pki.join("root-rsa.crl")).unwrap();
    let out = cairn_ca(&[
        "admin",
        "sign-root-crl",
        "--root-key",
        keys.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(std::fs::read(pki.join("root-rsa.crl")).unwrap(), before);

    let out = cairn_ca(&["init", "--root-key-out", keys.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("offline already"));
}
