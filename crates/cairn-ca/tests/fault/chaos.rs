//! The run: clients issuing and revoking, a killer killing, and what the
//! clients were told, kept for the checks.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_client::{Account, AccountCredentials, AcmeClient, ClientOptions, csr};
use cairn_proto::objects::{ChallengeType, NewAccount, NewOrder};
use cairn_proto::{Identifier, KeyPair, KeyType};

use crate::RUN_FOR;
use crate::checks::check_everything;
use crate::nodes::{Backend, HOST, Nodes, node_ip};

/// Clients issuing at once.
const CLIENTS: usize = 6;

/// What the clients were told, by 2xx answers only.
#[derive(Debug, Default)]
pub(crate) struct Told {
    /// Every certificate downloaded: the account, its order, the leaf.
    pub(crate) issued: Vec<Issued>,
    /// Leaf DERs whose revocation was answered 200.
    pub(crate) revoked: Vec<Vec<u8>>,
    /// Steps that failed (a node died under them): retried.
    pub(crate) errors: usize,
}

#[derive(Debug)]
pub(crate) struct Issued {
    pub(crate) account: AccountCredentials,
    pub(crate) order_url: String,
    pub(crate) leaf: Vec<u8>,
}

pub(crate) async fn run_chaos(backend: Backend, count: u8) {
    let name = backend.name();
    let mut nodes = Nodes::start(backend, count).await;
    let told = Arc::new(Mutex::new(Told::default()));
    let deadline = Instant::now() + RUN_FOR;

    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let told = Arc::clone(&told);
            let directory = nodes.directory_url();
            let port = nodes.port;
            tokio::spawn(async move { client(c, count, port, directory, told, deadline).await })
        })
        .collect();

    // The killer: a random node, at a random moment, again and again.
    let mut rng = Rng::seeded();
    let mut kills = 0;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(rng.below(900) + 300)).await;
        let victim = usize::try_from(rng.below(u64::from(count))).unwrap();
        nodes.nodes[victim].kill_9();
        kills += 1;
        tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
        nodes.nodes[victim].start().await;
    }
    for client in clients {
        tokio::time::timeout(Duration::from_secs(60), client)
            .await
            .expect("a client finishes its step within a minute of the end")
            .unwrap();
    }
    // Let a node fail the finalizes a kill cut off.
    tokio::time::sleep(Duration::from_secs(crate::nodes::FINALIZE_TIMEOUT * 2 + 1)).await;

    let told = std::mem::take(&mut *told.lock().unwrap());
    eprintln!(
        "{name}: {} nodes, {kills} kills, {} certificates received, {} revoked, {} failed steps retried",
        count,
        told.issued.len(),
        told.revoked.len(),
        told.errors
    );
    assert!(kills >= 10, "only {kills} kills in {RUN_FOR:?}");
    assert!(
        told.issued.len() >= 10,
        "only {} certificates issued under faults:\n{}",
        told.issued.len(),
        nodes.logs()
    );
    check_everything(&nodes, &told).await;
}

/// One client: accounts, orders, finalizes, downloads and revokes, each
/// step at a random node, until the deadline. A failed step starts the
/// order over; only what was answered with success goes in `told`.
async fn client(
    c: usize,
    count: u8,
    port: u16,
    directory: String,
    told: Arc<Mutex<Told>>,
    deadline: Instant,
) {
    let mut rng = Rng::seeded();
    let key = KeyPair::generate(KeyType::EcdsaP256).unwrap();
    let mut account = None;
    let mut n = 0;
    while Instant::now() < deadline {
        let node = u8::try_from(rng.below(u64::from(count))).unwrap();
        let Some(client) = connect(&directory, node, port).await else {
            told.lock().unwrap().errors += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let step = match &account {
            None => create_account(&client, &key).await.map(|a| {
                account = Some(a);
            }),
            Some(a) => {
                n += 1;
                let name = format!("c{c}-{n}.fault.test");
                issue_and_maybe_revoke(a, &client, &name, &told, &mut rng, &directory, port, count)
                    .await
            }
        };
        if step.is_err() {
            told.lock().unwrap().errors += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn connect(directory: &str, node: u8, port: u16) -> Option<AcmeClient> {
    let options = ClientOptions {
        resolve: vec![(HOST.to_owned(), SocketAddr::new(node_ip(node), port))],
        timeout: Duration::from_secs(10),
        poll_deadline: Duration::from_secs(20),
        max_retry_after: Duration::from_secs(1),
        bad_nonce_retries: 5,
        ..ClientOptions::default()
    };
    AcmeClient::new(directory, options).await.ok()
}

async fn create_account(client: &AcmeClient, key: &KeyPair) -> Result<Account, ()> {
    let new = NewAccount {
        terms_of_service_agreed: Some(true),
        ..NewAccount::default()
    };
    let key = KeyPair::from_pkcs8_der(&key.to_pkcs8_der().unwrap()).unwrap();
    Account::create(client, key, &new, None)
        .await
        .map(|(account, _)| account)
        .map_err(|_| ())
}

/// One order from newOrder to download, each request at a node picked
/// afresh; then, one time in three, a revocation.
#[allow(clippy::too_many_arguments)]
async fn issue_and_maybe_revoke(
    account: &Account,
    first: &AcmeClient,
    name: &str,
    told: &Mutex<Told>,
    rng: &mut Rng,
    directory: &str,
    port: u16,
    count: u8,
) -> Result<(), ()> {
    let credentials = account.credentials();
    let on = |client: &AcmeClient| Account::from_credentials(client, credentials.clone()).unwrap();
    let mut at = on(first);
    let names = vec![Identifier::dns(name)];
    let order = at
        .new_order(&NewOrder::new(names.clone()))
        .await
        .map_err(drop)?;
    let order_url = order.url().to_owned();
    for authz in order.authorizations().await.map_err(drop)? {
        let challenge = authz.challenge(&ChallengeType::Http01).ok_or(())?;
        at.respond(&challenge.url).await.map_err(drop)?;
        at.poll_authorization(&authz.url).await.map_err(drop)?;
    }
    let hop = async |rng: &mut Rng| -> Result<Account, ()> {
        let node = u8::try_from(rng.below(u64::from(count))).unwrap();
        connect(directory, node, port)
            .await
            .map(|c| on(&c))
            .ok_or(())
    };
    at = hop(rng).await?;
    let mut order = at.order(&order_url).await.map_err(drop)?;
    order.poll_ready().await.map_err(drop)?;
    let key = KeyPair::generate(KeyType::EcdsaP256).unwrap();
    order
        .finalize(&csr(&names, &key).unwrap())
        .await
        .map_err(drop)?;
    at = hop(rng).await?;
    let mut order = at.order(&order_url).await.map_err(drop)?;
    order.poll_valid().await.map_err(drop)?;
    let chain = order.certificate().await.map_err(drop)?;
    let leaf = chain.leaf_der().ok_or(())?.to_vec();
    told.lock().unwrap().issued.push(Issued {
        account: credentials.clone(),
        order_url,
        leaf: leaf.clone(),
    });

    if rng.below(3) == 0 {
        at = hop(rng).await?;
        at.revoke(&leaf, Some(1)).await.map_err(drop)?;
        told.lock().unwrap().revoked.push(leaf);
    }
    Ok(())
}

/// xorshift64*: enough randomness to pick nodes and moments.
pub(crate) struct Rng(u64);

impl Rng {
    /// Seeded from the standard library's per-instance random hash keys.
    pub(crate) fn seeded() -> Self {
        use std::hash::BuildHasher as _;
        Self(std::collections::hash_map::RandomState::new().hash_one(0u8) | 1)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}
