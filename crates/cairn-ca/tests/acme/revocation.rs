//! RFC 8555 §7.6 revokeCert: who may revoke (the issuing account, an
//! account holding valid authorizations for every name, the certificate
//! key), which reasons, and the CRL that publishes it (RFC 5280 §5).

use cairn_client::{Account, revoke_with_certificate_key};
use cairn_proto::objects::{ChallengeType, NewOrder};
use cairn_proto::{Identifier, ProblemType, base64url};
use serde_json::json;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::harness::{Harness, Issued, Reply, dns, new_key};
use crate::pki::{openssl, parse};

async fn issue(h: &Harness, account: &Account, names: &[Identifier]) -> Issued {
    h.issue(account, names, &ChallengeType::Http01).await
}

/// revokeCert signed by `account` (`kid`), by hand to see the status.
async fn revoke_as(h: &Harness, account: &Account, issued: &Issued, reason: Option<u8>) -> Reply {
    h.post_as(
        account,
        &h.directory().revoke_cert,
        &revocation(issued, reason),
    )
    .await
}

fn revocation(issued: &Issued, reason: Option<u8>) -> Vec<u8> {
    let mut body = json!({
        "certificate": base64url::encode(issued.chain.leaf_der().expect("a leaf")),
    });
    if let Some(reason) = reason {
        body["reason"] = json!(reason);
    }
    serde_json::to_vec(&body).unwrap()
}

fn assert_revoked_ok(reply: &Reply) {
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert!(reply.nonce().is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn issuing_account_can_revoke() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let issued = issue(&h, &account, &dns(&["own.revoke.test"])).await;
    assert_revoked_ok(&revoke_as(&h, &account, &issued, None).await);
}

/// §7.6: "...an account that holds authorizations for all of the
/// identifiers in the certificate".
#[tokio::test(flavor = "multi_thread")]
async fn account_with_authorizations_for_every_name_can_revoke() {
    let h = Harness::start(|_| {}).await;
    let names = dns(&["a.revoke.test", "b.revoke.test"]);
    let subscriber = h.account().await;
    let issued = issue(&h, &subscriber, &names).await;

    let other = h.account().await;
    let order = other
        .new_order(&NewOrder::new(names))
        .await
        .expect("newOrder");
    h.authorize(&other, &order, &ChallengeType::Http01).await;
    assert_revoked_ok(&revoke_as(&h, &other, &issued, Some(4)).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn account_without_authorizations_cannot_revoke() {
    let h = Harness::start(|_| {}).await;
    let names = dns(&["c.revoke.test", "d.revoke.test"]);
    let subscriber = h.account().await;
    let issued = issue(&h, &subscriber, &names).await;

    // Another account, with a valid authorization for one name of two.
    let other = h.account().await;
    h.issue(&other, &names[..1], &ChallengeType::Http01).await;
    let reply = revoke_as(&h, &other, &issued, None).await;
    reply.problem(403, ProblemType::Unauthorized);
    // Still revocable by its owner, so it was not revoked.
    assert_revoked_ok(&revoke_as(&h, &subscriber, &issued, None).await);
}

/// §7.6: a JWS signed by the certificate's key, embedding it as `jwk`.
#[tokio::test(flavor = "multi_thread")]
async fn certificate_key_can_revoke() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let issued = issue(&h, &account, &dns(&["key.revoke.test"])).await;
    let leaf = issued.chain.leaf_der().expect("a leaf");

    // Another key signing as jwk is refused.
    let reply = h
        .post_signed(
            &h.directory().revoke_cert,
            &new_key(),
            None,
            &revocation(&issued, None),
        )
        .await;
    reply.problem(403, ProblemType::Unauthorized);

    revoke_with_certificate_key(&h.client, leaf, &issued.key, Some(1))
        .await
        .expect("revocation by the certificate key");
}

/// RFC 5280 §5.3.1 reasons a subscriber may not give are
/// `badRevocationReason`.
#[tokio::test(flavor = "multi_thread")]
async fn reason_ca_compromise_is_bad_revocation_reason() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let issued = issue(&h, &account, &dns(&["reason.revoke.test"])).await;
    for reason in [2, 6, 7, 11] {
        let reply = revoke_as(&h, &account, &issued, Some(reason)).await;
        reply.problem(400, ProblemType::BadRevocationReason);
    }
    assert_revoked_ok(&revoke_as(&h, &account, &issued, Some(5)).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn second_revocation_is_already_revoked() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let issued = issue(&h, &account, &dns(&["twice.revoke.test"])).await;
    assert_revoked_ok(&revoke_as(&h, &account, &issued, None).await);
    let reply = revoke_as(&h, &account, &issued, None).await;
    reply.problem(400, ProblemType::AlreadyRevoked);
    let by_key = revoke_with_certificate_key(
        &h.client,
        issued.chain.leaf_der().expect("a leaf"),
        &issued.key,
        None,
    )
    .await
    .expect_err("already revoked");
    assert!(by_key.is_problem(&ProblemType::AlreadyRevoked), "{by_key}");
}

/// A burst of CRL requests right after a revocation builds one CRL: the
/// first request builds, the others wait for it and share it.
#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_crl_requests_builds_one_crl() {
    use std::sync::atomic::Ordering;

    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let issued = issue(&h, &account, &dns(&["burst.revoke.test"])).await;
    assert_revoked_ok(&revoke_as(&h, &account, &issued, Some(4)).await);
    let crl_url = format!("http://{}/crl/ecdsa-1.crl", h.ca.http_addr);
    let before = h.store.crl_reads.load(Ordering::SeqCst);
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (http, url) = (h.http.clone(), crl_url.clone());
        burst.spawn(async move {
            let reply = http.get(url).send().await.expect("GET the CRL");
            assert_eq!(reply.status(), 200);
            reply.bytes().await.expect("the CRL")
        });
    }
    let crls = burst.join_all().await;
    assert!(crls.windows(2).all(|w| w[0] == w[1]), "one CRL");
    assert_eq!(h.store.crl_reads.load(Ordering::SeqCst) - before, 1);
}

/// The CRL named in the leaf, fetched over plain HTTP, lists the revoked
/// serial with its reason, and verifies under the issuing intermediate,
/// which `/issuer/ecdsa-1.der` serves.
#[tokio::test(flavor = "multi_thread")]
async fn crl_lists_the_revoked_serial_and_verifies() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let revoked = issue(&h, &account, &dns(&["crl.revoke.test"])).await;
    let kept = issue(&h, &account, &dns(&["kept.revoke.test"])).await;
    let leaf = parse(revoked.chain.leaf_der().expect("a leaf"));

    let crl_url = format!("http://{}/crl/ecdsa-1.crl", h.ca.http_addr);
    assert_eq!(crl_distribution_points(&leaf), [crl_url.as_str()]);
    let before = h.get(&crl_url).await;
    assert_eq!(before.status, 200);
    assert!(
        revoked_serials(&before.body).is_empty(),
        "nothing revoked yet"
    );

    assert_revoked_ok(&revoke_as(&h, &account, &revoked, Some(4)).await);

    let after = h.get(&crl_url).await;
    assert_eq!(after.status, 200);
    assert_eq!(after.header("content-type"), Some("application/pkix-crl"));
    let entries = revoked_serials(&after.body);
    assert_eq!(
        entries,
        [(leaf.raw_serial().to_vec(), Some(4))],
        "the revoked serial, superseded (4), and nothing else"
    );
    let kept_serial = parse(kept.chain.leaf_der().expect("a leaf"))
        .raw_serial()
        .to_vec();
    assert!(!entries.iter().any(|(s, _)| *s == kept_serial));

    // The issuer certificate, and the CRL's signature under it.
    let issuer = h
        .get(&format!("{}/issuer/ecdsa-1.der", h.http_base_url()))
        .await;
    assert_eq!(issuer.status, 200);
    assert_eq!(
        issuer.body, revoked.chain.certificates_der[1],
        "the intermediate that issued the leaf"
    );
    let (_, crl) = CertificateRevocationList::from_der(&after.body).expect("a DER CRL");
    assert_eq!(crl.issuer().as_raw(), leaf.issuer().as_raw());

    let dir = tempfile::tempdir().unwrap();
    let crl_path = dir.path().join("ecdsa-1.crl");
    let issuer_path = dir.path().join("ecdsa-1.pem");
    std::fs::write(&crl_path, &after.body).unwrap();
    std::fs::write(
        &issuer_path,
        cairn_proto::pem::encode("CERTIFICATE", &issuer.body),
    )
    .unwrap();
    let (ok, text) = openssl(&[
        "crl".as_ref(),
        "-inform".as_ref(),
        "DER".as_ref(),
        "-in".as_ref(),
        crl_path.as_os_str(),
        "-CAfile".as_ref(),
        issuer_path.as_os_str(),
        "-noout".as_ref(),
    ]);
    assert!(ok && text.contains("verify OK"), "openssl crl: {text}");
}

/// The CRL URLs in a certificate's CRLDistributionPoints.
fn crl_distribution_points(cert: &x509_parser::certificate::X509Certificate<'_>) -> Vec<String> {
    let mut urls = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::CRLDistributionPoints(points) = ext.parsed_extension() {
            for point in points.iter() {
                if let Some(DistributionPointName::FullName(names)) = &point.distribution_point {
                    for name in names {
                        if let GeneralName::URI(uri) = name {
                            urls.push((*uri).to_owned());
                        }
                    }
                }
            }
        }
    }
    urls
}

/// `(serial, reason code)` of each entry of a DER CRL.
fn revoked_serials(der: &[u8]) -> Vec<(Vec<u8>, Option<u8>)> {
    let (_, crl) = CertificateRevocationList::from_der(der).expect("a DER CRL");
    crl.iter_revoked_certificates()
        .map(|entry| {
            (
                entry.raw_serial().to_vec(),
                entry.reason_code().map(|(_, code)| code.0),
            )
        })
        .collect()
}

/// A keyCompromise revocation blocks the key: its other certificates are
/// revoked too (and listed in the CRL), and a CSR with it is refused.
#[tokio::test(flavor = "multi_thread")]
async fn key_compromise_revokes_the_keys_other_certificates_and_blocks_it() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let key = new_key();
    let copy = |k: &cairn_proto::KeyPair| {
        cairn_proto::KeyPair::from_pkcs8_der(&k.to_pkcs8_der().unwrap()).unwrap()
    };
    let first = h
        .issue_with_key(
            &account,
            &dns(&["one.compromised.test"]),
            &ChallengeType::Http01,
            copy(&key),
        )
        .await;
    let second = h
        .issue_with_key(
            &account,
            &dns(&["two.compromised.test"]),
            &ChallengeType::Http01,
            copy(&key),
        )
        .await;
    let unrelated = issue(&h, &account, &dns(&["three.compromised.test"])).await;

    assert_revoked_ok(&revoke_as(&h, &account, &first, Some(1)).await);
    let serial = |issued: &Issued| {
        parse(issued.chain.leaf_der().expect("a leaf"))
            .raw_serial()
            .to_vec()
    };
    let crl = h
        .get(&format!("http://{}/crl/ecdsa-1.crl", h.ca.http_addr))
        .await;
    let entries = revoked_serials(&crl.body);
    assert!(entries.contains(&(serial(&first), Some(1))), "{entries:?}");
    assert!(
        entries.contains(&(serial(&second), Some(1))),
        "the sibling too"
    );
    assert!(!entries.iter().any(|(s, _)| *s == serial(&unrelated)));

    let mut order = h
        .ready_order(
            &account,
            &dns(&["four.compromised.test"]),
            &ChallengeType::Http01,
        )
        .await;
    let err = order
        .finalize(&cairn_client::csr(&dns(&["four.compromised.test"]), &key).expect("a CSR"))
        .await
        .expect_err("the key is blocked");
    assert!(err.is_problem(&ProblemType::BadPublicKey), "{err}");
    assert!(err.to_string().contains("blocked"), "{err}");
}

/// `cairn-ca admin block-key --cert`, run while the CA serves from the
/// same database: the certificate is revoked (keyCompromise) and in the
/// CRL, and its key is refused at finalize. A bad hash is a clear error.
#[tokio::test(flavor = "multi_thread")]
async fn admin_block_key_works_while_the_ca_serves() {
    let h = Harness::start(|_| {}).await;
    let account = h.account().await;
    let key = new_key();
    let pkcs8 = key.to_pkcs8_der().unwrap();
    let issued = h
        .issue_with_key(
            &account,
            &dns(&["admin.blocked.test"]),
            &ChallengeType::Http01,
            cairn_proto::KeyPair::from_pkcs8_der(&pkcs8).unwrap(),
        )
        .await;
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.der");
    std::fs::write(&cert, issued.chain.leaf_der().unwrap()).unwrap();

    let admin = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cairn-ca"))
            .args(["admin", "block-key", "--dev", "--data-dir"])
            .arg(h.data_dir())
            .args(args)
            .output()
            .expect("cairn-ca runs")
    };
    let out = admin(&[
        "--cert",
        cert.to_str().unwrap(),
        "--reason",
        "leaked in a backup",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("revoked 1 certificate"), "{stdout}");

    let crl = h
        .get(&format!("http://{}/crl/ecdsa-1.crl", h.ca.http_addr))
        .await;
    let serial = parse(issued.chain.leaf_der().unwrap())
        .raw_serial()
        .to_vec();
    assert!(revoked_serials(&crl.body).contains(&(serial, Some(1))));

    let names = dns(&["admin2.blocked.test"]);
    let mut order = h
        .ready_order(&account, &names, &ChallengeType::Http01)
        .await;
    let err = order
        .finalize(&cairn_client::csr(&names, &key).unwrap())
        .await
        .expect_err("blocked");
    assert!(err.to_string().contains("leaked in a backup"), "{err}");

    let out = admin(&["--spki-hash", "abc"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("64 characters"));
}
