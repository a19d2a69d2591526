//! CA-issued leaves against pkilint's CA/Browser Forum TLS Baseline
//! Requirements linter (`lint_cabf_serverauth_cert`, from PyPI), as a
//! final DV certificate: no finding of severity ERROR or worse.
//!
//! Runs when `CAIRN_PKILINT` names the linter (a missing file then fails
//! the test); without it each test says on stderr that it did not run.
//!
//! ```text
//! CAIRN_PKILINT=target/peers-venv/bin/lint_cabf_serverauth_cert \
//!     cargo test -p cairn-ca --test acme pkilint
//! ```

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;

use cairn_proto::objects::ChallengeType;
use cairn_proto::{KeyPair, KeyType, pem};

use crate::harness::{Harness, dns};

#[tokio::test(flavor = "multi_thread")]
async fn pkilint_finds_no_error_in_an_ecdsa_leaf() {
    lint_leaf(KeyType::EcdsaP256).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pkilint_finds_no_error_in_an_rsa_leaf() {
    lint_leaf(KeyType::Rsa2048).await;
}

/// The linter named by `CAIRN_PKILINT`, or `None` (said on stderr, past
/// the test harness's output capture) when unset.
fn linter() -> Option<PathBuf> {
    let Some(path) = std::env::var_os("CAIRN_PKILINT") else {
        let _ = writeln!(
            std::io::stderr(),
            "pkilint check not run: set CAIRN_PKILINT"
        );
        return None;
    };
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "CAIRN_PKILINT={} is not a file; install pkilint or unset it",
        path.display()
    );
    Some(path)
}

async fn lint_leaf(key_type: KeyType) {
    let Some(linter) = linter() else {
        return;
    };
    // Public-looking URLs in the leaf's CRL and AIA extensions, as a
    // deployed CA has; nothing fetches them here.
    let h = Harness::start(|c| {
        c.server.public_http_url = Some("http://ca.example.com".into());
        c.testing.always_valid = true;
    })
    .await;
    let account = h.account().await;
    let key = KeyPair::generate(key_type).expect("a certificate key");
    let issued = h
        .issue_with_key(
            &account,
            &dns(&["www.example.com"]),
            &ChallengeType::Http01,
            key,
        )
        .await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let leaf = dir.path().join("leaf.pem");
    std::fs::write(
        &leaf,
        pem::encode("CERTIFICATE", issued.chain.leaf_der().expect("a leaf")),
    )
    .expect("written");
    let output = Command::new(&linter)
        .args(["lint", "-t", "DV-FINAL-CERTIFICATE", "-s", "ERROR"])
        .arg(&leaf)
        .output()
        .expect("pkilint runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.trim().is_empty() && stderr.trim().is_empty(),
        "pkilint on the {key_type} leaf ({}):\n{stdout}{stderr}",
        output.status
    );
}
