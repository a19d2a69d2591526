//! What issue #5 asks of several nodes: an account, a nonce, an order and
//! a revocation each cross from one node to another, and racing requests
//! on both nodes keep the CA's uniqueness promises.

use std::collections::HashSet;

use cairn_client::Account;
use cairn_proto::{KeyPair, KeyType};
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::harness::*;

const A: u8 = 0;
const B: u8 = 1;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_account_and_an_order_move_between_nodes() {
    let Some(cluster) = Cluster::start(2).await else {
        return;
    };
    let (a, b) = (cluster.client(A).await, cluster.client(B).await);
    let on_a = new_account(&a, KeyPair::generate(KeyType::EcdsaP256).unwrap()).await;
    let on_b = on(&b, &on_a);
    assert_eq!(
        on_b.info().await.unwrap().status,
        cairn_proto::objects::AccountStatus::Valid
    );

    // Ordered and authorized on B, finalized on A, downloaded on B.
    let names = ["cross.cluster.test"];
    let order = ready_order(&on_b, &names).await;
    let mut at_a = on_a.order(order.url()).await.unwrap();
    let chain = finalize(&mut at_a, &names).await;
    let downloaded = on_b
        .order(order.url())
        .await
        .unwrap()
        .certificate()
        .await
        .unwrap();
    assert_eq!(downloaded.certificates_der, chain.certificates_der);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_nonce_from_one_node_redeems_once_at_another() {
    let Some(cluster) = Cluster::start(2).await else {
        return;
    };
    let a = cluster.client(A).await;
    let account = new_account(&a, KeyPair::generate(KeyType::EcdsaP256).unwrap()).await;
    let new_nonce = a.directory().new_nonce.clone();
    let nonce_from_a = cluster
        .http(A)
        .head(&new_nonce)
        .send()
        .await
        .unwrap()
        .headers()["replay-nonce"]
        .to_str()
        .unwrap()
        .to_owned();

    let post = |node: u8| {
        let body = jws(
            account.key(),
            Some(account.url()),
            &nonce_from_a,
            account.url(),
            b"",
        );
        let request = cluster
            .http(node)
            .post(account.url())
            .header("content-type", "application/jose+json")
            .body(body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };
    let (status, body) = post(B).await;
    assert_eq!(status, 200, "node B redeems node A's nonce: {body}");
    for node in [B, A] {
        let (status, body) = post(node).await;
        assert_eq!(status, 400, "a second use at node {node}: {body}");
        assert!(
            body.contains("urn:ietf:params:acme:error:badNonce"),
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revocation_on_one_node_is_in_the_crl_of_another() {
    let Some(cluster) = Cluster::start(2).await else {
        return;
    };
    let a = cluster.client(A).await;
    let on_a = new_account(&a, KeyPair::generate(KeyType::EcdsaP256).unwrap()).await;
    let names = ["crl.cluster.test"];
    let chain = finalize(&mut ready_order(&on_a, &names).await, &names).await;
    let leaf = chain.leaf_der().unwrap().to_vec();
    let (_, parsed) = x509_parser::parse_x509_certificate(&leaf).unwrap();
    let serial = parsed.raw_serial().to_vec();

    // Node B makes (and caches) its CRL before the revocation.
    let crl_at_b = format!(
        "http://{}/crl/ecdsa-1.crl",
        cluster.nodes[usize::from(B)].http_addr
    );
    let revoked_at_b = || async {
        let der = reqwest::get(&crl_at_b)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let (_, crl) = CertificateRevocationList::from_der(&der).unwrap();
        crl.iter_revoked_certificates()
            .map(|entry| entry.raw_serial().to_vec())
            .collect::<Vec<_>>()
    };
    assert!(revoked_at_b().await.is_empty());
    on_a.revoke(&leaf, Some(1)).await.unwrap();
    assert_eq!(
        revoked_at_b().await,
        [serial],
        "B's CRL right after A revoked"
    );
}

/// Security issue, item 4, on two nodes: a keyCompromise revocation at A
/// revokes the key's other certificate too, B's CRL lists both at once,
/// and B refuses the key at finalize.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_compromised_at_one_node_is_revoked_and_refused_at_another() {
    let Some(cluster) = Cluster::start(2).await else {
        return;
    };
    let a = cluster.client(A).await;
    let on_a = new_account(&a, KeyPair::generate(KeyType::EcdsaP256).unwrap()).await;
    let key = KeyPair::generate(KeyType::EcdsaP256).unwrap();
    let mut serials = Vec::new();
    let mut leaves = Vec::new();
    for name in ["one.key.cluster.test", "two.key.cluster.test"] {
        let mut order = ready_order(&on_a, &[name]).await;
        order
            .finalize(&cairn_client::csr(&dns(&[name]), &key).unwrap())
            .await
            .unwrap();
        order.poll_valid().await.unwrap();
        let leaf = order
            .certificate()
            .await
            .unwrap()
            .leaf_der()
            .unwrap()
            .to_vec();
        let (_, parsed) = x509_parser::parse_x509_certificate(&leaf).unwrap();
        serials.push(parsed.raw_serial().to_vec());
        leaves.push(leaf);
    }
    on_a.revoke(&leaves[0], Some(1)).await.unwrap();

    let crl_at_b = format!(
        "http://{}/crl/ecdsa-1.crl",
        cluster.nodes[usize::from(B)].http_addr
    );
    let der = reqwest::get(&crl_at_b)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let (_, crl) = CertificateRevocationList::from_der(&der).unwrap();
    let mut listed: Vec<Vec<u8>> = crl
        .iter_revoked_certificates()
        .map(|entry| entry.raw_serial().to_vec())
        .collect();
    listed.sort();
    serials.sort();
    assert_eq!(listed, serials, "both certificates of the key, at B");

    let b = cluster.client(B).await;
    let on_b = on(&b, &on_a);
    let names = ["three.key.cluster.test"];
    let mut order = ready_order(&on_b, &names).await;
    let err = order
        .finalize(&cairn_client::csr(&dns(&names), &key).unwrap())
        .await
        .expect_err("the key is blocked at B too");
    assert!(
        err.is_problem(&cairn_proto::ProblemType::BadPublicKey),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_finalizes_on_two_nodes_give_one_certificate() {
    let Some(cluster) = Cluster::start(2).await else {
        return;
    };
    let (a, b) = (cluster.client(A).await, cluster.client(B).await);
    let on_a = new_account(&a, KeyPair::generate(KeyType::EcdsaP256).unwrap()).await;
    let on_b = on(&b, &on_a);
    let names = ["race.cluster.test"];
    let order = ready_order(&on_a, &names).await;

    let start = std::sync::Arc::new(tokio::sync::Barrier::new(10));
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let account = if i % 2 == 0 {
                on_a.clone()
            } else {
                on_b.clone()
            };
            let url = order.url().to_owned();
            let start = std::sync::Arc::clone(&start);
            tokio::spawn(async move {
                let mut order = account.order(&url).await.unwrap();
                let key = KeyPair::generate(KeyType::EcdsaP256).unwrap();
                let csr = cairn_client::csr(&dns(&["race.cluster.test"]), &key).unwrap();
                start.wait().await;
                order.finalize(&csr).await.is_ok()
            })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        won += usize::from(task.await.unwrap());
    }
    assert!(won >= 1, "one finalize succeeds");
    let mut at_a = on_a.order(order.url()).await.unwrap();
    at_a.poll_valid().await.unwrap();
    let from_a = at_a.state().certificate.clone().unwrap();
    let from_b = on_b
        .order(order.url())
        .await
        .unwrap()
        .state()
        .certificate
        .clone()
        .unwrap();
    assert_eq!(from_a, from_b);
    let order_id: i64 = order.url().rsplit('/').next().unwrap().parse().unwrap();
    assert_eq!(
        cluster
            .count(&format!(
                "SELECT count(*) FROM certificates WHERE order_id = {order_id}"
            ))
            .await,
        1,
        "one certificate row for the order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_new_accounts_with_one_key_on_two_nodes_make_one_account() {
    let Some(cluster) = Cluster::start(2).await else {
        return;
    };
    let clients = [cluster.client(A).await, cluster.client(B).await];
    let key_der = KeyPair::generate(KeyType::EcdsaP256)
        .unwrap()
        .to_pkcs8_der()
        .unwrap();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(10));
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let client = clients[i % 2].clone();
            let key = KeyPair::from_pkcs8_der(&key_der).unwrap();
            let start = std::sync::Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                new_account(&client, key).await.url().to_owned()
            })
        })
        .collect();
    let mut urls = HashSet::new();
    for task in tasks {
        urls.insert(task.await.unwrap());
    }
    assert_eq!(urls.len(), 1, "{urls:?}");
    assert_eq!(cluster.count("SELECT count(*) FROM accounts").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serials_from_two_nodes_never_collide() {
    let Some(cluster) = Cluster::start(2).await else {
        return;
    };
    let clients = [cluster.client(A).await, cluster.client(B).await];
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let client = clients[i % 2].clone();
            tokio::spawn(async move {
                let account: Account =
                    new_account(&client, KeyPair::generate(KeyType::EcdsaP256).unwrap()).await;
                let name = format!("serial-{i}.cluster.test");
                let chain = finalize(&mut ready_order(&account, &[&name]).await, &[&name]).await;
                let (_, leaf) =
                    x509_parser::parse_x509_certificate(chain.leaf_der().unwrap()).unwrap();
                leaf.raw_serial().to_vec()
            })
        })
        .collect();
    let mut serials = HashSet::new();
    for task in tasks {
        assert!(serials.insert(task.await.unwrap()), "a serial repeated");
    }
    assert_eq!(
        cluster
            .count("SELECT count(DISTINCT serial) FROM certificates")
            .await,
        16
    );
}
