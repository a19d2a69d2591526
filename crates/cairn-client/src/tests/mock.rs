//! A scriptable ACME server on 127.0.0.1 for misbehaviour tests.
//!
//! It answers the directory, `HEAD newNonce` and newAccount itself, checks
//! every JWS (signature, and that its `url` is the URL requested), hands
//! every other request to the test's route, and adds a fresh
//! `Replay-Nonce` to every non-GET reply that does not set its own.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use cairn_proto::Jwk;
use cairn_proto::jws::{JwsKind, KeyRef, UnverifiedJws, VerifiedJws};
use serde_json::{Value, json};

use crate::{AcmeClient, ClientOptions};

pub(crate) type Route = Box<dyn Fn(&Req) -> Option<Reply> + Send + Sync>;

/// A running mock server; it stops when the test's runtime ends.
pub(crate) struct Mock {
    pub(crate) base: String,
    shared: Arc<Shared>,
}

struct Shared {
    base: String,
    route: Route,
    log: Mutex<Vec<Logged>>,
    account_key: Arc<Mutex<Option<Jwk>>>,
    nonces: AtomicUsize,
}

/// A request as the route sees it.
#[derive(Debug)]
pub(crate) struct Req {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) base: String,
    pub(crate) jws: Option<VerifiedJws>,
    /// The key newAccount registered; a route may replace it (key change).
    pub(crate) account_key: Arc<Mutex<Option<Jwk>>>,
}

/// What the server saw, for assertions.
#[derive(Clone, Debug)]
pub(crate) struct Logged {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) nonce: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) user_agent: Option<String>,
    pub(crate) accept: Option<String>,
}

/// A scripted reply.
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) fresh_nonce: bool,
}

impl Req {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The JWS payload as JSON; `Null` for POST-as-GET or no JWS.
    pub(crate) fn payload(&self) -> Value {
        match &self.jws {
            Some(jws) if !jws.is_post_as_get() => {
                serde_json::from_slice(jws.payload()).expect("JSON payload")
            }
            _ => Value::Null,
        }
    }

    pub(crate) fn is(&self, method: Method, path: &str) -> bool {
        self.method == method && self.path == path
    }
}

impl Reply {
    pub(crate) fn json(status: u16, body: Value) -> Self {
        Self::raw(status, "application/json", body.to_string())
    }

    pub(crate) fn problem(status: u16, short: &str, detail: &str) -> Self {
        let body = json!({
            "type": format!("urn:ietf:params:acme:error:{short}"),
            "detail": detail,
            "status": status,
        });
        Self::raw(status, "application/problem+json", body.to_string())
    }

    pub(crate) fn raw(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
            fresh_nonce: true,
        }
    }

    pub(crate) fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub(crate) fn without_nonce(mut self) -> Self {
        self.fresh_nonce = false;
        self
    }
}

impl Mock {
    pub(crate) async fn start(
        route: impl Fn(&Req) -> Option<Reply> + Send + Sync + 'static,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let shared = Arc::new(Shared {
            base: base.clone(),
            route: Box::new(route),
            log: Mutex::new(Vec::new()),
            account_key: Arc::new(Mutex::new(None)),
            nonces: AtomicUsize::new(0),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base, shared }
    }

    pub(crate) fn directory_url(&self) -> String {
        format!("{}/dir", self.base)
    }

    pub(crate) async fn client(&self) -> AcmeClient {
        AcmeClient::new(&self.directory_url(), test_options())
            .await
            .expect("client")
    }

    pub(crate) fn log(&self) -> Vec<Logged> {
        self.shared.log.lock().expect("log").clone()
    }

    pub(crate) fn count(&self, method: Method, path: &str) -> usize {
        self.log()
            .iter()
            .filter(|l| l.method == method && l.path == path)
            .count()
    }
}

pub(crate) fn test_options() -> ClientOptions {
    ClientOptions {
        timeout: std::time::Duration::from_secs(10),
        poll_deadline: std::time::Duration::from_secs(10),
        ..ClientOptions::default()
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut logged = Logged {
        method: method.clone(),
        path: path.clone(),
        nonce: None,
        content_type: header("content-type"),
        user_agent: header("user-agent"),
        accept: header("accept"),
    };
    let mut jws = None;
    if method == Method::POST {
        match check_jws(&shared, &uri, &body) {
            Ok(verified) => {
                logged.nonce = verified.header().nonce.clone();
                jws = Some(verified);
            }
            Err(why) => {
                shared.log.lock().expect("log").push(logged);
                return finish(&shared, &method, Reply::problem(400, "malformed", &why));
            }
        }
    }
    shared.log.lock().expect("log").push(logged);
    let req = Req {
        method: method.clone(),
        path,
        base: shared.base.clone(),
        jws,
        account_key: Arc::clone(&shared.account_key),
    };
    let reply = (shared.route)(&req).unwrap_or_else(|| default_route(&req));
    finish(&shared, &method, reply)
}

fn check_jws(shared: &Shared, uri: &Uri, body: &[u8]) -> Result<VerifiedJws, String> {
    let jws = UnverifiedJws::parse(body, JwsKind::Request).map_err(|e| e.to_string())?;
    let expected_url = format!("{}{}", shared.base, uri);
    if jws.header().url != expected_url {
        return Err(format!(
            "JWS url {} is not {expected_url}",
            jws.header().url
        ));
    }
    let verified = match &jws.header().key {
        KeyRef::Jwk(_) => jws.verify_with_embedded_jwk(),
        KeyRef::Kid(_) => {
            let key = shared
                .account_key
                .lock()
                .expect("key")
                .clone()
                .ok_or("no account yet")?;
            jws.verify_with(&key)
        }
    };
    verified.map_err(|e| e.to_string())
}

fn default_route(req: &Req) -> Reply {
    if req.is(Method::GET, "/dir") {
        return Reply::json(
            200,
            json!({
                "newNonce": req.url("/nonce"),
                "newAccount": req.url("/new-acct"),
                "newOrder": req.url("/new-order"),
                "revokeCert": req.url("/revoke"),
                "keyChange": req.url("/key-change"),
            }),
        );
    }
    if req.is(Method::HEAD, "/nonce") {
        return Reply::raw(200, "text/plain", "");
    }
    if req.is(Method::POST, "/new-acct") {
        let jws = req.jws.as_ref().expect("checked JWS");
        let mut registered = req.account_key.lock().expect("key");
        if req.payload()["onlyReturnExisting"] == json!(true) && registered.is_none() {
            return Reply::problem(400, "accountDoesNotExist", "no account for this key");
        }
        *registered = Some(jws.key().clone());
        return Reply::json(
            201,
            json!({ "status": "valid", "orders": req.url("/acct/1/orders") }),
        )
        .header("location", req.url("/acct/1"));
    }
    if req.is(Method::POST, "/acct/1") {
        let mut account = json!({ "status": "valid", "orders": req.url("/acct/1/orders") });
        let update = req.payload();
        for field in ["contact", "status"] {
            if let Some(value) = update.get(field) {
                account[field] = value.clone();
            }
        }
        return Reply::json(200, account);
    }
    Reply::problem(
        404,
        "malformed",
        &format!("no route for {} {}", req.method, req.path),
    )
}

fn finish(shared: &Shared, method: &Method, reply: Reply) -> Response {
    let mut builder =
        Response::builder().status(StatusCode::from_u16(reply.status).expect("status"));
    let sets_nonce = reply
        .headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("replay-nonce"));
    for (name, value) in &reply.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    if reply.fresh_nonce && !sets_nonce && method != Method::GET {
        let n = shared.nonces.fetch_add(1, Ordering::SeqCst);
        builder = builder.header("replay-nonce", format!("srvNonce{n:04}"));
    }
    builder.body(Body::from(reply.body)).expect("response")
}
