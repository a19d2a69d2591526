//! Shared pieces: the `cairn` binary run as a child process, a cairn-ca in
//! this process (dev settings, ephemeral ports, DNS from cairn-testkit),
//! and checks of what the agent wrote to disk.

use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Output;

use cairn_ca::app::{self, Overrides, RunningCa};
use cairn_ca::config::Config;
use cairn_testkit::{TestServer, TestServerConfig};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// A free TCP port on 127.0.0.1 (bound, then released for the user).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The `cairn` binary with its own config dir, pointed at one CA.
pub(crate) struct Agent {
    pub(crate) config_dir: PathBuf,
    pub(crate) server: String,
    pub(crate) ca_bundle: PathBuf,
}

impl Agent {
    pub(crate) fn new(config_dir: PathBuf, server: &str, ca_bundle: &Path) -> Self {
        Self {
            config_dir,
            server: server.to_owned(),
            ca_bundle: ca_bundle.to_owned(),
        }
    }

    /// Runs `cairn ARGS` with `--config-dir` and `--non-interactive`.
    pub(crate) async fn run(&self, args: &[&str]) -> Output {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(args)
            .arg("--config-dir")
            .arg(&self.config_dir)
            .arg("--non-interactive")
            .env_remove("RUST_LOG")
            .kill_on_drop(true)
            .output()
            .await
            .expect("cairn runs");
        eprintln!(
            "$ cairn {}\n--- exit {:?}\n{}{}",
            args.join(" "),
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// The flags that name the server: for certonly, register, account, revoke.
    pub(crate) fn server_args(&self) -> Vec<String> {
        vec![
            "--server".into(),
            self.server.clone(),
            "--ca-bundle".into(),
            self.ca_bundle.to_string_lossy().into_owned(),
        ]
    }

    /// `cairn certonly` with the server, an email and --agree-tos, then `extra`.
    pub(crate) async fn certonly(&self, extra: &[&str]) -> Output {
        let mut args: Vec<String> = vec!["certonly".into()];
        args.extend(self.server_args());
        args.extend(["--agree-tos", "-m", "admin@example.com"].map(String::from));
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        self.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .await
    }

    /// `cairn SUBCOMMAND [ACTION]` with the server flags, then `extra`.
    pub(crate) async fn with_server(&self, command: &[&str], extra: &[&str]) -> Output {
        let mut args: Vec<String> = command.iter().map(|s| (*s).to_owned()).collect();
        args.extend(self.server_args());
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        self.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .await
    }

    pub(crate) fn live(&self, name: &str, file: &str) -> PathBuf {
        self.config_dir.join("live").join(name).join(file)
    }

    pub(crate) fn archive(&self, name: &str, file: &str) -> PathBuf {
        self.config_dir.join("archive").join(name).join(file)
    }
}

/// Asserts success and returns standard output and error together.
#[track_caller]
pub(crate) fn ok(output: &Output) -> String {
    let text = text(output);
    assert!(
        output.status.success(),
        "cairn failed ({}):\n{text}",
        output.status
    );
    text
}

pub(crate) fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The CA and its DNS, plus the ports the CA validates on.
pub(crate) struct Ca {
    pub(crate) running: RunningCa,
    pub(crate) dns: TestServer,
    pub(crate) http01_port: u16,
    pub(crate) tls_alpn01_port: u16,
    pub(crate) dir: tempfile::TempDir,
}

impl Ca {
    pub(crate) async fn start() -> Ca {
        Self::start_with_resolver(None).await
    }

    /// As [`Ca::start`], with the CA asking `resolver` (instead of the
    /// test DNS server) for its DNS lookups.
    pub(crate) async fn start_with_resolver(resolver: Option<SocketAddr>) -> Ca {
        let dns = TestServer::start(TestServerConfig {
            http01: None,
            tls_alpn01: None,
            ..TestServerConfig::default()
        })
        .await
        .expect("test DNS server starts");
        let dir = tempfile::tempdir().expect("tempdir");
        let http01_port = free_port();
        let tls_alpn01_port = free_port();
        let mut config = Config::defaults(true);
        config.data_dir = dir.path().join("ca");
        config.server.listen = "127.0.0.1:0".parse().expect("addr");
        config.server.http_listen = "127.0.0.1:0".parse().expect("addr");
        config.validation.dns_resolver = resolver.or(dns.dns_addr());
        config.validation.http01_port = http01_port;
        config.validation.tls_alpn01_port = tls_alpn01_port;
        let running = app::start(config, Overrides::default())
            .await
            .expect("the CA starts");
        Ca {
            running,
            dns,
            http01_port,
            tls_alpn01_port,
            dir,
        }
    }

    pub(crate) fn agent(&self) -> Agent {
        Agent::new(
            self.dir.path().join("cairn"),
            &self.running.directory_url,
            &self.running.root_pem,
        )
    }

    pub(crate) fn management(&self) -> SocketAddr {
        self.dns.management_addr().expect("management API")
    }

    /// The serials listed in the CRL of `issuer`, fetched with curl.
    pub(crate) async fn crl_serials(&self, issuer: &str) -> Vec<String> {
        let url = format!("http://{}/crl/{issuer}.crl", self.running.http_addr);
        let output = tokio::process::Command::new("curl")
            .args(["-sf", &url])
            .output()
            .await
            .expect("curl runs");
        assert!(output.status.success(), "GET {url} failed");
        let (_, crl) =
            x509_parser::revocation_list::CertificateRevocationList::from_der(&output.stdout)
                .expect("CRL parses");
        crl.iter_revoked_certificates()
            .map(|r| hex(r.raw_serial()))
            .collect()
    }
}

/// What the agent saved for `name`: the live links into the archive at
/// `version`, the modes, and the leaf's names. Returns the leaf's serial.
#[track_caller]
pub(crate) fn check_lineage(agent: &Agent, name: &str, version: u32, names: &[&str]) -> String {
    for kind in ["cert", "chain", "fullchain", "privkey"] {
        let link = agent.live(name, &format!("{kind}.pem"));
        let target =
            std::fs::read_link(&link).unwrap_or_else(|e| panic!("{}: {e}", link.display()));
        assert_eq!(
            target,
            Path::new("../../archive")
                .join(name)
                .join(format!("{kind}{version}.pem")),
            "{}",
            link.display()
        );
    }
    let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(
        mode(&agent.archive(name, &format!("privkey{version}.pem"))),
        0o600
    );
    assert_eq!(mode(&agent.config_dir.join("archive").join(name)), 0o700);
    let pem = std::fs::read_to_string(agent.live(name, "cert.pem")).expect("cert.pem");
    let fullchain = std::fs::read_to_string(agent.live(name, "fullchain.pem")).expect("fullchain");
    let chain = std::fs::read_to_string(agent.live(name, "chain.pem")).expect("chain");
    assert_eq!(fullchain, format!("{pem}{chain}"));
    let der = cairn_proto::pem::decode_one(&pem, "CERTIFICATE").expect("PEM");
    let (_, cert) = X509Certificate::from_der(&der).expect("parses");
    let mut sans: Vec<String> = cert
        .subject_alternative_name()
        .expect("SAN parses")
        .expect("SAN present")
        .value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(d) => (*d).to_owned(),
            other => format!("{other:?}"),
        })
        .collect();
    sans.sort();
    let mut want: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    assert_eq!(sans, want);
    let key = std::fs::read_to_string(agent.live(name, "privkey.pem")).expect("privkey");
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
    hex(cert.raw_serial())
}

/// Lowercase hex without leading zero octets.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes[start..].iter().map(|b| format!("{b:02x}")).collect()
}

/// A minimal static file server for a webroot: GET PATH → ROOT/PATH.
pub(crate) async fn serve_directory(root: PathBuf, port: u16) -> tokio::task::JoinHandle<()> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the webroot server");
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let root = root.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut len = 0;
                while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") && len < buf.len() {
                    match stream.read(&mut buf[len..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => len += n,
                    }
                }
                let request = String::from_utf8_lossy(&buf[..len]);
                let path = request.split_whitespace().nth(1).unwrap_or("/");
                let file = (!path.contains(".."))
                    .then(|| root.join(path.trim_start_matches('/')))
                    .and_then(|f| std::fs::read(f).ok());
                let response = match file {
                    Some(body) => {
                        let mut r = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        r.extend(body);
                        r
                    }
                    None => {
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            .to_vec()
                    }
                };
                let _ = stream.write_all(&response).await;
            });
        }
    })
}
