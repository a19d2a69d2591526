//! Two (or more) in-process nodes sharing one database and one data
//! directory, and clients pinned to each.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use cairn_ca::app::{self, Overrides, RunningCa};
use cairn_ca::config::Config;
use cairn_client::{Account, AcmeClient, CertificateChain, ClientOptions, Order, csr};
use cairn_proto::jws::{FlattenedJws, SigningHeader};
use cairn_proto::objects::{ChallengeType, NewAccount, NewOrder};
use cairn_proto::{Identifier, KeyPair, KeyType};
use cairn_testkit::postgres::FreshSchema;
use tempfile::TempDir;

/// The name every node is reached by.
pub(crate) const HOST: &str = "acme.test";

pub(crate) struct Cluster {
    pub(crate) nodes: Vec<RunningCa>,
    /// The public API port, the same on every node's address.
    pub(crate) port: u16,
    _data_dir: TempDir,
    _schema: FreshSchema,
}

impl Cluster {
    /// Starts `count` nodes, or `None` (with a note) when no PostgreSQL
    /// server is configured.
    pub(crate) async fn start(count: u8) -> Option<Self> {
        let Some(schema) = FreshSchema::create().await else {
            eprintln!("not run: set CAIRN_POSTGRES_URL to a PostgreSQL database");
            return None;
        };
        let data_dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut nodes = Vec::new();
        for i in 0..count {
            let mut config = Config::defaults(true);
            config.data_dir = data_dir.path().to_owned();
            config.database = Some(schema.database_url().to_owned());
            config.server.listen = SocketAddr::new(node_ip(i), port);
            config.server.http_listen = SocketAddr::new(node_ip(i), 0);
            config.server.tls = false;
            config.server.public_url = Some(format!("http://{HOST}:{port}"));
            config.testing.always_valid = true;
            nodes.push(
                app::start(config, Overrides::default())
                    .await
                    .unwrap_or_else(|e| panic!("node {i} starts: {e}")),
            );
        }
        Some(Self {
            nodes,
            port,
            _data_dir: data_dir,
            _schema: schema,
        })
    }

    /// The directory URL every node answers to.
    pub(crate) fn directory_url(&self) -> String {
        format!("http://{HOST}:{}/directory", self.port)
    }

    /// A client whose every request goes to node `i`.
    pub(crate) async fn client(&self, i: u8) -> AcmeClient {
        let options = ClientOptions {
            resolve: vec![(HOST.to_owned(), SocketAddr::new(node_ip(i), self.port))],
            ..ClientOptions::default()
        };
        AcmeClient::new(&self.directory_url(), options)
            .await
            .unwrap_or_else(|e| panic!("node {i}'s directory: {e}"))
    }

    /// A plain HTTP client whose every request goes to node `i`.
    pub(crate) fn http(&self, i: u8) -> reqwest::Client {
        reqwest::Client::builder()
            .resolve(HOST, SocketAddr::new(node_ip(i), self.port))
            .build()
            .unwrap()
    }

    /// A raw query on the shared database.
    pub(crate) async fn count(&self, sql: &str) -> i64 {
        let url = self._schema.database_url();
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    }
}

/// Node `i`'s loopback address: 127.0.0.1, 127.0.0.2, …
pub(crate) fn node_ip(i: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, i + 1))
}

/// A port free on 127.0.0.1 now (and, on an otherwise idle loopback, on
/// the other addresses too).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

pub(crate) async fn new_account(client: &AcmeClient, key: KeyPair) -> Account {
    let new = NewAccount {
        terms_of_service_agreed: Some(true),
        ..NewAccount::default()
    };
    Account::create(client, key, &new, None).await.unwrap().0
}

/// The same account, its requests sent through `client`.
pub(crate) fn on(client: &AcmeClient, account: &Account) -> Account {
    Account::from_credentials(client, account.credentials()).unwrap()
}

pub(crate) fn dns(names: &[&str]) -> Vec<Identifier> {
    names.iter().map(|n| Identifier::dns(*n)).collect()
}

/// An order for `names` whose authorizations were all answered (the nodes
/// run with `always_valid`), ready to finalize.
pub(crate) async fn ready_order(account: &Account, names: &[&str]) -> Order {
    let mut order = account.new_order(&NewOrder::new(dns(names))).await.unwrap();
    for authz in order.authorizations().await.unwrap() {
        let challenge = authz.challenge(&ChallengeType::Http01).unwrap();
        account.respond(&challenge.url).await.unwrap();
        account.poll_authorization(&authz.url).await.unwrap();
    }
    order.poll_ready().await.unwrap();
    order
}

/// Finalizes `order` with a fresh P-256 key and downloads the chain.
pub(crate) async fn finalize(order: &mut Order, names: &[&str]) -> CertificateChain {
    let key = KeyPair::generate(KeyType::EcdsaP256).unwrap();
    order
        .finalize(&csr(&dns(names), &key).unwrap())
        .await
        .unwrap();
    order.poll_valid().await.unwrap();
    order.certificate().await.unwrap()
}

/// A JWS as a flattened JSON string.
pub(crate) fn jws(
    key: &KeyPair,
    kid: Option<&str>,
    nonce: &str,
    url: &str,
    payload: &[u8],
) -> String {
    FlattenedJws::sign(
        key,
        SigningHeader {
            kid,
            nonce: Some(nonce),
            url,
        },
        payload,
    )
    .unwrap()
    .to_json_string()
}
