//! One CA and one challenge test server, in this process, on ephemeral
//! loopback ports, with real validation between them: the CA resolves
//! names through the test server's DNS (every name is 127.0.0.1) and
//! connects to its http-01 and tls-alpn-01 responders.
//!
//! Requests go through `cairn-client` where a test is about the CA's
//! behaviour, and through [`Harness::post_signed`] and friends, hand-built
//! JWS over `reqwest`, where it is about the wire.

use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cairn_ca::app::{self, Overrides, RunningCa};
use cairn_ca::config::Config;
use cairn_ca::signer::{Pki, PkiOptions};
use cairn_client::{Account, AcmeClient, CertificateChain, ClientOptions, Order, csr};
use cairn_proto::jws::{FlattenedJws, SigningHeader};
use cairn_proto::objects::{
    AuthorizationStatus, ChallengeType, Directory, NewAccount, NewOrder, OrderStatus,
};
use cairn_proto::{Identifier, KeyPair, KeyType, Problem, ProblemType};
use cairn_testkit::{TestServer, TestServerConfig};
use reqwest::header::HeaderMap;
use serde_json::Value;
use tempfile::TempDir;

use crate::recording_store::RecordingStore;

/// The media type of every ACME POST body (RFC 8555 §6.2).
pub(crate) const JOSE_JSON: &str = "application/jose+json";

/// A running CA, its challenge test server and a client for it. Dropping
/// it stops both: the test server aborts its listeners, and the CA's
/// listeners stop when their shutdown sender (inside [`RunningCa`]) is
/// dropped.
pub(crate) struct Harness {
    pub(crate) ca: RunningCa,
    pub(crate) testkit: TestServer,
    /// A client trusting the CA's `root.pem`, as an agent would.
    pub(crate) client: AcmeClient,
    /// A plain HTTP client trusting the CA's `root.pem` only, for requests
    /// built by hand. Follows no redirects.
    pub(crate) http: reqwest::Client,
    /// The CA's `root.pem`: both roots.
    pub(crate) root_pem: Vec<u8>,
    /// The CA's store, recording the certificate rows it makes.
    pub(crate) store: Arc<RecordingStore>,
    _data_dir: TempDir,
}

/// A response as it came off the wire.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

/// A certificate issued through [`Harness::issue`].
#[derive(Debug)]
pub(crate) struct Issued {
    pub(crate) order: Order,
    pub(crate) chain: CertificateChain,
    pub(crate) key: KeyPair,
}

impl Harness {
    /// Starts a dev CA with `tweak` applied to its configuration.
    pub(crate) async fn start(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start_with(Overrides::default(), tweak).await
    }

    /// As [`Harness::start`], with parts replaced (a fake clock). The store
    /// is always the harness's own recording SQLite store.
    pub(crate) async fn start_with(
        mut overrides: Overrides,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        assert!(
            overrides.store.is_none(),
            "the harness brings its own store"
        );
        let testkit = TestServer::start(TestServerConfig::default())
            .await
            .expect("the challenge test server starts");
        let data_dir = tempfile::tempdir().expect("a temporary directory");
        let mut config = Config::defaults(true);
        config.data_dir = data_dir.path().join("ca");
        config.server.listen = "127.0.0.1:0".parse().expect("address");
        config.server.http_listen = "127.0.0.1:0".parse().expect("address");
        config.validation.dns_resolver = testkit.dns_addr();
        config.validation.http01_port = testkit.http01_addr().expect("http-01 is on").port();
        config.validation.tls_alpn01_port =
            testkit.tls_alpn01_addr().expect("tls-alpn-01 is on").port();
        config.validation.timeout_seconds = 5;
        tweak(&mut config);

        std::fs::create_dir_all(&config.data_dir).expect("the data directory");
        install_pki(&config.data_dir);
        let store = Arc::new(RecordingStore::open(&config.database_path()).await);
        overrides.store = Some(Arc::clone(&store) as Arc<dyn cairn_store::Storage>);
        let ca = app::start(config, overrides).await.expect("the CA starts");
        let root_pem = std::fs::read(&ca.root_pem).expect("root.pem is written");
        let client = AcmeClient::new(&ca.directory_url, client_options(&root_pem))
            .await
            .expect("the client reads the directory");
        let http = http_client(&root_pem);
        Self {
            ca,
            testkit,
            client,
            http,
            root_pem,
            store,
            _data_dir: data_dir,
        }
    }

    pub(crate) fn directory(&self) -> &Directory {
        self.client.directory()
    }

    /// The CA's data directory (keys, SQLite database).
    pub(crate) fn data_dir(&self) -> std::path::PathBuf {
        self._data_dir.path().join("ca")
    }

    pub(crate) fn directory_url(&self) -> &str {
        &self.ca.directory_url
    }

    /// `https://127.0.0.1:<port>`: the API's base URL.
    pub(crate) fn base_url(&self) -> String {
        self.ca.wfe.urls.base().to_owned()
    }

    /// `http://127.0.0.1:<port>`: CRLs and issuer certificates.
    pub(crate) fn http_base_url(&self) -> String {
        format!("http://{}", self.ca.http_addr)
    }

    // --- accounts and issuance through the client library ---

    /// A new account with a new P-256 key, terms agreed.
    pub(crate) async fn account(&self) -> Account {
        let new = NewAccount {
            terms_of_service_agreed: Some(true),
            ..NewAccount::default()
        };
        let (account, _) = Account::create(&self.client, new_key(), &new, None)
            .await
            .expect("newAccount");
        account
    }

    /// Provisions `kind` at the test server for every pending authorization
    /// of `order`, answers the challenges and waits for each to be valid.
    pub(crate) async fn authorize(&self, account: &Account, order: &Order, kind: &ChallengeType) {
        for authz in order.authorizations().await.expect("authorizations") {
            if authz.state.status != AuthorizationStatus::Pending {
                continue;
            }
            let challenge = authz
                .prepare(account, kind)
                .expect("the challenge is offered");
            let provisioned = match kind {
                ChallengeType::Http01 => self
                    .testkit
                    .add_http01(challenge.token.as_str(), &challenge.key_authorization),
                ChallengeType::Dns01 => self
                    .testkit
                    .add_dns01(&challenge.identifier.value, &challenge.key_authorization),
                ChallengeType::TlsAlpn01 => self
                    .testkit
                    .add_tls_alpn01(&challenge.identifier.value, &challenge.key_authorization),
                other => panic!("no provisioning for {other}"),
            };
            provisioned.expect("the test server takes the challenge response");
            account.respond(&challenge.url).await.expect("respond");
            account
                .poll_authorization(&authz.url)
                .await
                .expect("the authorization becomes valid");
        }
    }

    /// A new order for one name whose http-01 challenge is provisioned and
    /// answered; returns the authorization's URL, to poll for the outcome.
    pub(crate) async fn answer_http01(&self, account: &Account, name: &str) -> String {
        let order = account
            .new_order(&NewOrder::new(dns(&[name])))
            .await
            .expect("newOrder");
        let authz = order
            .authorizations()
            .await
            .expect("authorizations")
            .remove(0);
        let challenge = authz
            .prepare(account, &ChallengeType::Http01)
            .expect("http-01");
        self.testkit
            .add_http01(challenge.token.as_str(), &challenge.key_authorization)
            .expect("provisioned");
        account.respond(&challenge.url).await.expect("respond");
        authz.url
    }

    /// A new order for `names`, every authorization validated with `kind`,
    /// polled until `ready`.
    pub(crate) async fn ready_order(
        &self,
        account: &Account,
        names: &[Identifier],
        kind: &ChallengeType,
    ) -> Order {
        let mut order = account
            .new_order(&NewOrder::new(names.to_vec()))
            .await
            .expect("newOrder");
        self.authorize(account, &order, kind).await;
        order.refresh().await.expect("the order reads back");
        assert_eq!(
            order.poll_ready().await.expect("the order becomes ready"),
            OrderStatus::Ready
        );
        order
    }

    /// The whole of RFC 8555 §7.1's flow with a new P-256 certificate key.
    pub(crate) async fn issue(
        &self,
        account: &Account,
        names: &[Identifier],
        kind: &ChallengeType,
    ) -> Issued {
        self.issue_with_key(account, names, kind, new_key()).await
    }

    pub(crate) async fn issue_with_key(
        &self,
        account: &Account,
        names: &[Identifier],
        kind: &ChallengeType,
        key: KeyPair,
    ) -> Issued {
        let mut order = self.ready_order(account, names, kind).await;
        order
            .finalize(&csr(names, &key).expect("a CSR"))
            .await
            .expect("finalize");
        order.poll_valid().await.expect("the order becomes valid");
        let chain = order
            .certificate()
            .await
            .expect("the certificate downloads");
        Issued { order, chain, key }
    }

    // --- requests built by hand ---

    /// A fresh nonce from `HEAD newNonce` (RFC 8555 §7.2).
    pub(crate) async fn nonce(&self) -> String {
        let reply = self.head(&self.directory().new_nonce).await;
        assert_eq!(reply.status, 200, "HEAD newNonce");
        reply.nonce().expect("a Replay-Nonce").to_owned()
    }

    /// POSTs `payload` signed by `key`, named by `kid` or embedded as
    /// `jwk`, with a fresh nonce and `url` as both target and JWS `url`.
    pub(crate) async fn post_signed(
        &self,
        url: &str,
        key: &KeyPair,
        kid: Option<&str>,
        payload: &[u8],
    ) -> Reply {
        let nonce = self.nonce().await;
        self.post_jws(url, jws(key, kid, &nonce, url, payload))
            .await
    }

    /// POSTs `payload` as `account` (`kid`): a POST-as-GET when empty.
    pub(crate) async fn post_as(&self, account: &Account, url: &str, payload: &[u8]) -> Reply {
        self.post_signed(url, account.key(), Some(account.url()), payload)
            .await
    }

    /// POSTs a JWS body as `application/jose+json`.
    pub(crate) async fn post_jws(&self, url: &str, body: String) -> Reply {
        self.post_raw(url, JOSE_JSON, body.into_bytes()).await
    }

    /// POSTs any body with any content type.
    pub(crate) async fn post_raw(&self, url: &str, content_type: &str, body: Vec<u8>) -> Reply {
        let request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        Reply::read(request).await
    }

    /// POSTs every JWS body to `url` at once: each request waits for the
    /// others to be ready, then all go. Replies in the order of `bodies`.
    pub(crate) async fn race(&self, url: &str, bodies: Vec<String>) -> Vec<Reply> {
        let start = Arc::new(tokio::sync::Barrier::new(bodies.len()));
        let tasks: Vec<_> = bodies
            .into_iter()
            .map(|body| {
                let request = self
                    .http
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, JOSE_JSON)
                    .body(body);
                let start = Arc::clone(&start);
                tokio::spawn(async move {
                    start.wait().await;
                    Reply::read(request).await
                })
            })
            .collect();
        let mut replies = Vec::with_capacity(tasks.len());
        for task in tasks {
            replies.push(task.await.expect("the request task"));
        }
        replies
    }

    pub(crate) async fn get(&self, url: &str) -> Reply {
        Reply::read(self.http.get(url)).await
    }

    pub(crate) async fn head(&self, url: &str) -> Reply {
        Reply::read(self.http.head(url)).await
    }
}

impl Reply {
    pub(crate) async fn read(request: reqwest::RequestBuilder) -> Self {
        let response = request.send().await.expect("the CA answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("the body reads").to_vec();
        Self {
            status,
            headers,
            body,
        }
    }

    /// The body as JSON.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "HTTP {}: not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn nonce(&self) -> Option<&str> {
        self.header("replay-nonce")
    }

    /// Targets of the `Link` headers with relation `rel` (RFC 8288).
    pub(crate) fn links(&self, rel: &str) -> Vec<String> {
        links(&self.headers, rel)
    }

    /// Asserts a problem document (RFC 8555 §6.7) of `kind` sent with
    /// `status`, and returns it.
    #[track_caller]
    pub(crate) fn problem(&self, status: u16, kind: ProblemType) -> Problem {
        let text = String::from_utf8_lossy(&self.body);
        assert_eq!(self.status, status, "status of {text}");
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{text}"
        );
        let problem: Problem = serde_json::from_slice(&self.body).expect("a problem document");
        assert_eq!(problem.kind, kind, "{text}");
        assert_eq!(
            problem.status,
            Some(status),
            "the document's status: {text}"
        );
        problem
    }
}

/// The files of one CA key hierarchy (`<data_dir>/pki/`): name, mode,
/// contents. Making one costs an RSA-4096 key, most of a second; every
/// in-process CA of this test binary starts from the same one, copied
/// into its own data directory, as a CA restarting on its keys would.
/// (The durability test's CA binary makes its own.)
type PkiFiles = Vec<(String, u32, Vec<u8>)>;

fn pki_template() -> &'static PkiFiles {
    static TEMPLATE: OnceLock<PkiFiles> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        Pki::load_or_create(&PkiOptions {
            data_dir: dir.path().to_owned(),
            crl_base_url: "http://127.0.0.1:14080".into(),
            api_hostnames: Config::defaults(true).server.hostnames,
        })
        .expect("a CA key hierarchy");
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir.path().join("pki")).expect("pki/") {
            let entry = entry.expect("a directory entry");
            let mode = entry.metadata().expect("metadata").permissions().mode();
            let name = entry.file_name().into_string().expect("a UTF-8 name");
            files.push((name, mode, std::fs::read(entry.path()).expect("readable")));
        }
        files
    })
}

/// Writes the shared key hierarchy into `data_dir/pki/`, modes kept.
fn install_pki(data_dir: &Path) {
    let pki = data_dir.join("pki");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&pki)
        .expect("pki/");
    for (name, mode, contents) in pki_template() {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(*mode)
            .open(pki.join(name))
            .expect("a new file in pki/");
        std::io::Write::write_all(&mut file, contents).expect("written");
    }
}

/// A new P-256 key.
pub(crate) fn new_key() -> KeyPair {
    KeyPair::generate(KeyType::EcdsaP256).expect("a P-256 key")
}

/// A flattened JWS (RFC 8555 §6.2) of `payload`.
pub(crate) fn jws(
    key: &KeyPair,
    kid: Option<&str>,
    nonce: &str,
    url: &str,
    payload: &[u8],
) -> String {
    let header = SigningHeader {
        kid,
        nonce: Some(nonce),
        url,
    };
    FlattenedJws::sign(key, header, payload)
        .expect("signing works")
        .to_json_string()
}

/// DNS identifiers for `names`.
pub(crate) fn dns(names: &[&str]) -> Vec<Identifier> {
    names.iter().map(|n| Identifier::dns(*n)).collect()
}

/// The numeric id at the end of an ACME URL (`.../acme/order/7`).
pub(crate) fn id_of(url: &str) -> i64 {
    url.rsplit('/')
        .next()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no id at the end of {url}"))
}

/// Targets of `Link` header values with relation `rel`: `<url>;rel="x"`,
/// several per header value allowed, comma-separated.
pub(crate) fn links(headers: &HeaderMap, rel: &str) -> Vec<String> {
    let mut found = Vec::new();
    for value in headers.get_all(reqwest::header::LINK) {
        let value = value.to_str().expect("a Link header is ASCII");
        for link in value.split(',') {
            let Some((target, params)) = link.trim().split_once('>') else {
                continue;
            };
            let matches = params.split(';').any(|p| {
                let p = p.trim();
                p == format!("rel=\"{rel}\"") || p == format!("rel={rel}")
            });
            if matches {
                found.push(target.trim_start_matches('<').to_owned());
            }
        }
    }
    found
}

pub(crate) fn client_options(root_pem: &[u8]) -> ClientOptions {
    ClientOptions {
        ca_bundle_pem: Some(root_pem.to_vec()),
        timeout: Duration::from_secs(10),
        poll_deadline: Duration::from_secs(20),
        // The CA asks for a second between polls of a validation that is
        // in flight; over loopback it is done in milliseconds.
        max_retry_after: Duration::from_millis(50),
        ..ClientOptions::default()
    }
}

/// An HTTP client that trusts only `root_pem` and follows no redirects.
pub(crate) fn http_client(root_pem: &[u8]) -> reqwest::Client {
    let roots = reqwest::Certificate::from_pem_bundle(root_pem).expect("root.pem is PEM");
    reqwest::Client::builder()
        .tls_certs_only(roots)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client")
}
