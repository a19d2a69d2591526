//! `cairn-ca serve` processes sharing one data directory and database,
//! each on its own loopback address and the same port, named `acme.test`.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn_testkit::postgres::FreshSchema;
use tempfile::TempDir;

/// The name every node answers to.
pub(crate) const HOST: &str = "acme.test";

/// Seconds after which a cut-off finalize is failed, short for the test.
pub(crate) const FINALIZE_TIMEOUT: u64 = 2;

pub(crate) enum Backend {
    Sqlite,
    Postgres(FreshSchema),
}

impl Backend {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

pub(crate) struct Node {
    pub(crate) api: SocketAddr,
    pub(crate) http: SocketAddr,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Node {
    /// Starts the process and waits until it answers.
    pub(crate) async fn start(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cairn-ca"))
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("CAIRN_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("cairn-ca runs");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("http://{}/directory", self.api);
        loop {
            if reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "node {} exited with {status}: {}",
                    self.api,
                    self.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "node {} did not answer in 30 s: {}",
                self.api,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `SIGKILL`: no chance to flush, close or finish a request.
    pub(crate) fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// The nodes, their shared directory and what they were configured with.
pub(crate) struct Nodes {
    pub(crate) nodes: Vec<Node>,
    pub(crate) port: u16,
    pub(crate) dir: TempDir,
    pub(crate) backend: Backend,
}

impl Nodes {
    /// Writes each node's configuration and starts them one by one.
    pub(crate) async fn start(backend: Backend, count: u8) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let database = match &backend {
            Backend::Sqlite => String::new(),
            Backend::Postgres(schema) => format!("database = {:?}\n", schema.database_url()),
        };
        let mut nodes = Vec::new();
        for i in 0..count {
            let ip = node_ip(i);
            let http = SocketAddr::new(ip, free_port());
            let config = dir.path().join(format!("node{i}.toml"));
            std::fs::write(
                &config,
                format!(
                    "dev = true\n\
                     data_dir = {data:?}\n\
                     {database}\
                     [server]\n\
                     listen = \"{ip}:{port}\"\n\
                     http_listen = \"{http}\"\n\
                     tls = false\n\
                     public_url = \"http://{HOST}:{port}\"\n\
                     [issuance]\n\
                     finalize_timeout_seconds = {FINALIZE_TIMEOUT}\n\
                     [validation]\n\
                     timeout_seconds = 1\n\
                     [testing]\n\
                     always_valid = true\n",
                    data = dir.path().join("data"),
                ),
            )
            .unwrap();
            let mut node = Node {
                api: SocketAddr::new(ip, port),
                http,
                config,
                log: dir.path().join(format!("node{i}.log")),
                child: None,
            };
            node.start().await;
            nodes.push(node);
        }
        Self {
            nodes,
            port,
            dir,
            backend,
        }
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub(crate) fn directory_url(&self) -> String {
        format!("http://{HOST}:{}/directory", self.port)
    }

    pub(crate) fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- node {} ---\n{}", n.api, n.log_tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub(crate) fn sqlite_path(&self) -> PathBuf {
        self.data_dir().join("cairn.db")
    }
}

/// Node `i`'s loopback address: 127.0.0.1, 127.0.0.2, …
pub(crate) fn node_ip(i: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, i + 1))
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
