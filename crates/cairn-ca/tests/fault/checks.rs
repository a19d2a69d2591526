//! The end-of-run checks: what clients were told against the database and
//! against what the nodes serve.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cairn_ca::signer::serial_hex;
use cairn_client::{Account, AcmeClient, ClientOptions};
use cairn_store::{OrderState, PgStore, SqliteStore, Storage};
use time::OffsetDateTime;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::chaos::Told;
use crate::nodes::{Backend, FINALIZE_TIMEOUT, HOST, Nodes, node_ip};

/// The store and a raw connection to the nodes' database.
enum Db {
    Sqlite(std::sync::Mutex<rusqlite::Connection>),
    Postgres(sqlx::PgPool),
}

impl Db {
    async fn scalar(&self, sql: &str) -> i64 {
        match self {
            Self::Sqlite(conn) => conn
                .lock()
                .unwrap()
                .query_row(sql, [], |row| row.get(0))
                .unwrap(),
            Self::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        }
    }
}

pub(crate) async fn check_everything(nodes: &Nodes, told: &Told) {
    let (store, db): (Arc<dyn Storage>, Db) = match &nodes.backend {
        Backend::Sqlite => (
            Arc::new(SqliteStore::open(&nodes.sqlite_path()).await.unwrap()),
            Db::Sqlite(std::sync::Mutex::new(
                rusqlite::Connection::open(nodes.sqlite_path()).unwrap(),
            )),
        ),
        Backend::Postgres(schema) => (
            Arc::new(PgStore::open(schema.database_url(), 2).await.unwrap()),
            Db::Postgres(sqlx::PgPool::connect(schema.database_url()).await.unwrap()),
        ),
    };

    // Every certificate received is stored as received, on its order, and
    // downloads again; no serial was received twice.
    let mut serials = HashSet::new();
    let node0 = client(nodes, 0).await;
    for issued in &told.issued {
        let (_, leaf) = x509_parser::parse_x509_certificate(&issued.leaf).unwrap();
        let serial = serial_hex(leaf.raw_serial());
        assert!(
            serials.insert(serial.clone()),
            "serial {serial} received twice"
        );
        let stored = store.certificate(&serial).await.unwrap();
        let stored =
            stored.unwrap_or_else(|| panic!("received certificate {serial} is not stored"));
        assert_eq!(
            stored.der.as_deref(),
            Some(&issued.leaf[..]),
            "certificate {serial}"
        );
        let order_id: i64 = issued
            .order_url
            .rsplit('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let order = store.order(order_id).await.unwrap().unwrap();
        assert_eq!(order.state, OrderState::Valid, "order {order_id}");
        assert_eq!(order.certificate_serial.as_deref(), Some(serial.as_str()));
        let account = Account::from_credentials(&node0, issued.account.clone()).unwrap();
        let chain = account
            .order(&issued.order_url)
            .await
            .unwrap()
            .certificate()
            .await
            .unwrap();
        assert_eq!(
            chain.leaf_der(),
            Some(&issued.leaf[..]),
            "download of {serial}"
        );
    }

    // At most one certificate per order, ever; serials are the primary key.
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM (SELECT order_id FROM certificates \
             WHERE order_id IS NOT NULL GROUP BY order_id HAVING count(*) > 1) AS t"
        )
        .await,
        0,
        "an order with two certificates"
    );
    assert_eq!(
        db.scalar("SELECT count(*) - count(DISTINCT serial) FROM certificates")
            .await,
        0
    );

    // No order left processing: every finalize a kill cut off was failed.
    let cut_off = db
        .scalar(
            "SELECT count(*) FROM orders WHERE state = 'invalid' AND error LIKE '%interrupted%'",
        )
        .await;
    eprintln!("{cut_off} finalizes cut off by a kill were failed after the timeout");
    let now = OffsetDateTime::now_utc();
    let stalled = store
        .stalled_finalizes(now - Duration::from_secs(FINALIZE_TIMEOUT + 1))
        .await
        .unwrap();
    assert!(
        stalled.is_empty(),
        "orders stuck processing: {stalled:?}\n{}",
        nodes.logs()
    );
    let now_nanos = now.unix_timestamp_nanos();
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM orders WHERE state = 'processing' AND expires < {now_nanos}"
        ))
        .await,
        0
    );

    // Every node's CRL lists every revocation a client was told of, and
    // exactly what the database holds as revoked.
    let told_revoked: HashSet<String> = told
        .revoked
        .iter()
        .map(|der| {
            serial_hex(
                x509_parser::parse_x509_certificate(der)
                    .unwrap()
                    .1
                    .raw_serial(),
            )
        })
        .collect();
    let in_db: HashSet<String> = store
        .revoked_certificates("ecdsa-1", now)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.serial)
        .collect();
    assert!(
        told_revoked.is_subset(&in_db),
        "a revocation acknowledged but not stored"
    );
    for node in &nodes.nodes {
        let der = reqwest::get(format!("http://{}/crl/ecdsa-1.crl", node.http))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let (_, crl) = CertificateRevocationList::from_der(&der).unwrap();
        let listed: HashSet<String> = crl
            .iter_revoked_certificates()
            .map(|entry| serial_hex(entry.raw_serial()))
            .collect();
        assert_eq!(listed, in_db, "the CRL served by {}", node.api);
    }
}

async fn client(nodes: &Nodes, i: u8) -> AcmeClient {
    let options = ClientOptions {
        resolve: vec![(HOST.to_owned(), SocketAddr::new(node_ip(i), nodes.port))],
        ..ClientOptions::default()
    };
    AcmeClient::new(&nodes.directory_url(), options)
        .await
        .unwrap()
}
