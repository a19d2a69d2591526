//! RFC 8555 §7.4.2: downloading the certificate — a PEM chain, alternate
//! chains by `Link: rel="alternate"`, no `rel="up"` (the PEM holds the
//! issuer; clients such as Caddy follow `up` with POST-as-GET) — checked
//! with `openssl verify` against the CA's roots.

use cairn_client::check_certificate;
use cairn_proto::objects::ChallengeType;
use cairn_proto::{KeyPair, KeyType, ProblemType};

use crate::harness::{Harness, dns};
use crate::pki::{ders, openssl_verify, parse, roots};

#[tokio::test(flavor = "multi_thread")]
async fn certificate_is_a_pem_chain_with_no_up_link() {
    let h = Harness::start(|c| c.testing.always_valid = true).await;
    let account = h.account().await;
    let issued = h
        .issue(&account, &dns(&["chain.test"]), &ChallengeType::Http01)
        .await;
    let url = issued
        .order
        .state()
        .certificate
        .clone()
        .expect("a certificate URL");
    let reply = h.post_as(&account, &url, b"").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("application/pem-certificate-chain")
    );
    let text = String::from_utf8(reply.body.clone()).expect("PEM is text");
    let chain = ders(&text);
    assert_eq!(chain.len(), 2, "leaf and intermediate, no root");
    assert_eq!(chain, issued.chain.certificates_der);

    assert!(
        reply.links("up").is_empty(),
        "no rel=up on a PEM chain: Caddy would POST-as-GET the issuer URL and fail"
    );
    let issuer = h
        .get(&format!("{}/issuer/ecdsa-1.der", h.http_base_url()))
        .await;
    assert_eq!(issuer.status, 200);
    assert_eq!(issuer.header("content-type"), Some("application/pkix-cert"));
    assert_eq!(
        issuer.body, chain[1],
        "the AIA issuer URL serves the issuing intermediate"
    );
    assert_eq!(reply.links("index"), [h.directory_url()]);

    let missing = format!("{}/acme/cert/00ff", h.base_url());
    h.post_as(&account, &missing, b"")
        .await
        .problem(404, ProblemType::Malformed);
}

/// The ECDSA intermediate is also cross-signed by the RSA root: the
/// alternate chain (`/1`) ends in that certificate, for clients that
/// trust only the RSA root.
#[tokio::test(flavor = "multi_thread")]
async fn ecdsa_leaf_has_an_alternate_chain_through_the_cross_signed_intermediate() {
    let h = Harness::start(|c| c.testing.always_valid = true).await;
    let account = h.account().await;
    let names = dns(&["alternate.test"]);
    let issued = h.issue(&account, &names, &ChallengeType::Http01).await;
    let url = issued
        .order
        .state()
        .certificate
        .clone()
        .expect("a certificate URL");

    let default = h.post_as(&account, &url, b"").await;
    let alternate_url = format!("{url}/1");
    assert_eq!(default.links("alternate"), [alternate_url.as_str()]);
    let alternate = h.post_as(&account, &alternate_url, b"").await;
    assert_eq!(alternate.status, 200);
    assert_eq!(
        alternate.header("content-type"),
        Some("application/pem-certificate-chain")
    );
    assert_eq!(alternate.links("alternate"), [url.as_str()], "and back");

    let default_chain = ders(std::str::from_utf8(&default.body).unwrap());
    let alternate_chain = ders(std::str::from_utf8(&alternate.body).unwrap());
    assert_eq!(alternate_chain[0], default_chain[0], "the same leaf");
    assert_eq!(issued.chain.alternates.len(), 1, "the client found it too");

    let (ecdsa_root, rsa_root) = roots(&h.root_pem);
    let intermediate = parse(&default_chain[1]);
    let cross = parse(&alternate_chain[1]);
    assert_eq!(
        cross.subject().as_raw(),
        intermediate.subject().as_raw(),
        "the cross-signed certificate is the ECDSA intermediate's"
    );
    assert_eq!(
        cross.public_key().raw,
        intermediate.public_key().raw,
        "with the same key"
    );
    assert_eq!(
        cross.issuer().as_raw(),
        parse(&rsa_root).subject().as_raw(),
        "issued by the RSA root"
    );
    assert_eq!(
        intermediate.issuer().as_raw(),
        parse(&ecdsa_root).subject().as_raw()
    );

    let dir = tempfile::tempdir().unwrap();
    let both = [ecdsa_root.clone(), rsa_root.clone()];
    openssl_verify(dir.path(), "default", &both, &default_chain);
    openssl_verify(dir.path(), "alternate", &both, &alternate_chain);
    openssl_verify(
        dir.path(),
        "default-ecdsa-root",
        &[ecdsa_root],
        &default_chain,
    );
    openssl_verify(
        dir.path(),
        "alternate-rsa-root",
        &[rsa_root],
        &alternate_chain,
    );

    let missing = h.post_as(&account, &format!("{url}/2"), b"").await;
    missing.problem(404, ProblemType::Malformed);
}

/// An RSA certificate key gets the RSA intermediate.
#[tokio::test(flavor = "multi_thread")]
async fn rsa_key_is_issued_by_the_rsa_intermediate() {
    let h = Harness::start(|c| c.testing.always_valid = true).await;
    let account = h.account().await;
    let names = dns(&["rsa.test"]);
    let key = KeyPair::generate(KeyType::Rsa2048).expect("an RSA key");
    let issued = h
        .issue_with_key(&account, &names, &ChallengeType::Http01, key)
        .await;
    check_certificate(&issued.chain, &names, &issued.key, Some(&h.root_pem))
        .expect("the chain checks out");
    assert!(issued.chain.alternates.is_empty(), "no alternate for RSA");

    let url = issued
        .order
        .state()
        .certificate
        .clone()
        .expect("a certificate URL");
    let reply = h.post_as(&account, &url, b"").await;
    assert!(reply.links("up").is_empty());
    assert!(reply.links("alternate").is_empty());
    let chain = ders(std::str::from_utf8(&reply.body).unwrap());
    let (_, rsa_root) = roots(&h.root_pem);
    let intermediate = parse(&chain[1]);
    assert_eq!(
        intermediate.issuer().as_raw(),
        parse(&rsa_root).subject().as_raw()
    );
    assert_eq!(
        intermediate.public_key().algorithm.algorithm,
        x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION
    );
    assert_eq!(
        parse(&chain[0]).issuer().as_raw(),
        intermediate.subject().as_raw()
    );

    let dir = tempfile::tempdir().unwrap();
    openssl_verify(dir.path(), "rsa", &[rsa_root], &chain);
    let h_roots = ders(std::str::from_utf8(&h.root_pem).unwrap());
    openssl_verify(dir.path(), "rsa-both-roots", &h_roots, &chain);
}
