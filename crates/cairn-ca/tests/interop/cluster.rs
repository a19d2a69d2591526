//! cairn-ca scaled out, as an operator would run it: two `cairn-ca serve`
//! processes sharing one PostgreSQL schema and one data directory, behind
//! nginx, which terminates TLS and hands each request to the next node in
//! turn. certbot and lego then register, issue, renew and revoke through
//! it. Consecutive requests of one ACME exchange land on different nodes,
//! so a nonce from one must redeem at the other, an order made on one must
//! finalize on the other, and a revocation made on one must show in the
//! CRL the other serves.
//!
//! Runs when these are set, besides `CAIRN_CERTBOT` and/or `CAIRN_LEGO`:
//!
//! - `CAIRN_POSTGRES_URL=postgres://user@host:port/db` (a fresh schema is
//!   made in it for the run and dropped after);
//! - `CAIRN_NGINX=/usr/sbin/nginx`.
//!
//! Validation is real http-01: the nodes resolve every name to 127.0.0.1
//! through the in-process test DNS server and fetch the token from the
//! client's standalone server, whichever node took the challenge POST.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read as _, Seek as _};
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn_testkit::postgres::{FreshSchema, POSTGRES_URL_VAR};
use cairn_testkit::{TestServer, TestServerConfig};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::harness::{check_issued, free_port, peer};

/// Bounds on every wait, so a broken node or peer fails the test instead
/// of hanging it.
const START_LIMIT: Duration = Duration::from_secs(90);
const PEER_LIMIT: Duration = Duration::from_secs(240);
const TOOL_LIMIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certbot_and_lego_through_two_nodes_behind_nginx() {
    let certbot = peer("CAIRN_CERTBOT");
    let lego = peer("CAIRN_LEGO");
    // With the peers installed but no database, the note says so.
    let postgres_set = std::env::var(POSTGRES_URL_VAR).is_ok_and(|url| !url.is_empty());
    if !postgres_set {
        let peers_set = certbot.is_some() || lego.is_some();
        eprintln!(
            "cluster interop test not run: set {POSTGRES_URL_VAR}=postgres://user@host:port/db{}",
            if peers_set {
                " (CAIRN_CERTBOT/CAIRN_LEGO are set, but the nodes need a shared PostgreSQL database)"
            } else {
                ""
            }
        );
        return;
    }
    if certbot.is_none() && lego.is_none() {
        return;
    }
    let Some(nginx) = peer("CAIRN_NGINX") else {
        return;
    };
    let schema = FreshSchema::create()
        .await
        .expect("the variable is set, so a fresh schema is made or the test panics");
    // Every name resolves to 127.0.0.1, where certbot and lego answer
    // http-01 themselves.
    let dns = TestServer::start(TestServerConfig {
        http01: None,
        tls_alpn01: None,
        ..TestServerConfig::default()
    })
    .await
    .expect("test DNS server starts");

    let started = Instant::now();
    tokio::task::block_in_place(|| {
        let cluster = Cluster::start(schema.database_url(), &dns, &nginx);
        eprintln!("cluster up in {:?}", started.elapsed());
        if let Some(certbot) = &certbot {
            certbot_register_issue_renew_revoke(&cluster, certbot);
        }
        if let Some(lego) = &lego {
            lego_run_and_renew(&cluster, lego);
        }
        cluster.assert_requests_were_spread(certbot.is_some(), lego.is_some());
    });
    eprintln!("cluster interop test took {:?}", started.elapsed());
}

/// certbot's whole life cycle through the load balancer; the revoked
/// serial must then be in the CRL that both nodes serve.
fn certbot_register_issue_renew_revoke(cluster: &Cluster, program: &Path) {
    let home = cluster.work("certbot");
    let names = ["cluster-cb.example.com", "www.cluster-cb.example.com"];
    let live = |file: &str| home.join("config/live").join(names[0]).join(file);
    let port = cluster.http01_port.to_string();
    let standalone = [
        "--standalone",
        "--http-01-address",
        "127.0.0.1",
        "--http-01-port",
        port.as_str(),
    ];
    let certbot = || {
        let mut command = Command::new(program);
        command
            .env("REQUESTS_CA_BUNDLE", &cluster.lb_ca_pem)
            .arg("--config-dir")
            .arg(home.join("config"))
            .arg("--work-dir")
            .arg(home.join("work"))
            .arg("--logs-dir")
            .arg(home.join("logs"))
            .args(["--non-interactive", "--server", &cluster.directory_url()]);
        command
    };

    run_within(
        PEER_LIMIT,
        certbot().args([
            "register",
            "--agree-tos",
            "-m",
            "admin@example.com",
            "--no-eff-email",
        ]),
    );
    run_within(
        PEER_LIMIT,
        certbot()
            .arg("certonly")
            .args(standalone)
            .args(["-d", names[0], "-d", names[1]]),
    );
    let first = check_issued(
        &cluster.root_pem(),
        &live("cert.pem"),
        &live("chain.pem"),
        &names,
    );
    run_within(
        PEER_LIMIT,
        certbot()
            .arg("renew")
            // certbot sleeps up to 8 minutes before a non-interactive renewal.
            .arg("--no-random-sleep-on-renew")
            .arg("--force-renewal")
            .args(standalone),
    );
    let renewed = check_issued(
        &cluster.root_pem(),
        &live("cert.pem"),
        &live("chain.pem"),
        &names,
    );
    assert_ne!(first, renewed, "renewal must issue a new certificate");
    run_within(
        PEER_LIMIT,
        certbot().arg("revoke").args([
            "--cert-name",
            names[0],
            "--reason",
            "keycompromise",
            "--no-delete-after-revoke",
        ]),
    );

    // Relying software follows the leaf's CRL URL, which must point at the
    // load balancer's plain-HTTP side. Two fetches in a row go to the two
    // nodes: each must list the serial the other node may have revoked.
    let crl_url = crl_url(&live("cert.pem"));
    assert!(
        crl_url.starts_with(&format!("{}/", cluster.public_http_url())),
        "the leaf's CRL URL {crl_url} is not under public_http_url"
    );
    for fetch in 1..=2 {
        let listed = cluster.crl_serials(&crl_url, &live("chain.pem"), fetch);
        assert!(
            listed.contains(&renewed),
            "CRL fetch {fetch} of {crl_url} lacks the revoked serial {renewed}: {listed:?}"
        );
    }
    let served_by: Vec<String> = cluster
        .nginx
        .requests("publication.log")
        .into_iter()
        .map(|request| request.node)
        .collect();
    assert!(
        served_by.len() == 2 && served_by[0] != served_by[1],
        "the two CRL fetches must reach both nodes: {served_by:?}"
    );
}

/// lego issues, then renews (a 90-day certificate is always within
/// `--days 90` of its end).
fn lego_run_and_renew(cluster: &Cluster, program: &Path) {
    let home = cluster.work("lego");
    let names = ["cluster-lego.example.com", "www.cluster-lego.example.com"];
    let port = format!("127.0.0.1:{}", cluster.http01_port);
    let lego = || {
        let mut command = Command::new(program);
        command
            .env("LEGO_CA_CERTIFICATES", &cluster.lb_ca_pem)
            .args(["--server", &cluster.directory_url()])
            .args(["--email", "admin@example.com", "--accept-tos"])
            .arg("--path")
            .arg(&home)
            .args(["--http", "--http.port", port.as_str()]);
        for name in names {
            command.args(["--domains", name]);
        }
        command
    };
    let certs = home.join("certificates");
    let check = || {
        let leaf = split_leaf(&certs.join(format!("{}.crt", names[0])));
        check_issued(
            &cluster.root_pem(),
            &leaf,
            &certs.join(format!("{}.issuer.crt", names[0])),
            &names,
        )
    };

    run_within(PEER_LIMIT, lego().arg("run"));
    let first = check();
    run_within(
        PEER_LIMIT,
        lego().args(["renew", "--days", "90", "--no-random-sleep"]),
    );
    let renewed = check();
    assert_ne!(first, renewed, "renewal must issue a new certificate");
}

/// Two CA nodes and the nginx in front of them, all in one temporary
/// directory. Fields drop in order: nginx and the nodes stop before the
/// directory goes.
struct Cluster {
    nginx: Nginx,
    nodes: [Node; 2],
    lb_port: u16,
    lb_http_port: u16,
    /// The CA that issued nginx's certificate: what certbot and lego trust.
    lb_ca_pem: PathBuf,
    data_dir: PathBuf,
    http01_port: u16,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Migrates the schema once, starts both nodes at the same time on one
    /// data directory (the first makes the keys, the other loads them),
    /// then nginx in front of them.
    fn start(database_url: &str, dns: &TestServer, nginx: &Path) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().join("ca-data");
        let lb_port = free_port();
        let lb_http_port = free_port();
        let http01_port = free_port();
        let settings = NodeSettings {
            data_dir: &data_dir,
            database_url,
            public_url: format!("https://127.0.0.1:{lb_port}"),
            public_http_url: format!("http://127.0.0.1:{lb_http_port}"),
            http01_port,
            dns: dns.dns_addr().expect("the test DNS server listens"),
        };
        let configs = ["node-1", "node-2"].map(|name| settings.write(dir.path(), name));
        run_within(
            START_LIMIT,
            Command::new(env!("CARGO_BIN_EXE_cairn-ca"))
                .arg("migrate")
                .arg("--config")
                .arg(&configs[0].path),
        );
        let mut nodes = configs.map(|config| Node::spawn(dir.path(), config));
        for node in &mut nodes {
            node.wait_until_ready();
        }
        assert_eq!(
            nodes[0].directory(),
            nodes[1].directory(),
            "both nodes must name the same public URLs"
        );

        let lb_ca_pem = dir.path().join("lb-ca.pem");
        let mut nginx = Nginx::start(
            nginx,
            &dir.path().join("nginx"),
            &lb_ca_pem,
            lb_port,
            lb_http_port,
            &nodes,
        );
        let directory_url = format!("https://127.0.0.1:{lb_port}/directory");
        wait_until(START_LIMIT, "nginx answers the ACME directory", || {
            nginx.exited() || curl(&directory_url, Some(&lb_ca_pem)).is_some()
        });
        nginx.assert_running();
        Cluster {
            nginx,
            nodes,
            lb_port,
            lb_http_port,
            lb_ca_pem,
            data_dir,
            http01_port,
            dir,
        }
    }

    fn directory_url(&self) -> String {
        format!("https://127.0.0.1:{}/directory", self.lb_port)
    }

    fn public_http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.lb_http_port)
    }

    fn root_pem(&self) -> PathBuf {
        self.data_dir.join("root.pem")
    }

    fn work(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(&path).expect("work dir");
        path
    }

    /// The serials (lowercase hex) a CRL lists, fetched with curl and read
    /// with `openssl crl`, which also checks its signature by the issuer
    /// in `chain_pem`.
    fn crl_serials(&self, url: &str, chain_pem: &Path, fetch: u32) -> Vec<String> {
        let der = curl(url, Some(&self.lb_ca_pem)).unwrap_or_else(|| panic!("GET {url} failed"));
        let file = self.dir.path().join(format!("crl-{fetch}.der"));
        std::fs::write(&file, der).expect("write CRL");
        let text = run_within(
            TOOL_LIMIT,
            Command::new("openssl")
                .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
                .arg(&file)
                .arg("-CAfile")
                .arg(chain_pem),
        );
        assert!(text.contains("verify OK"), "openssl crl: {text}");
        text.lines()
            .filter_map(|line| line.trim().strip_prefix("Serial Number: "))
            .map(without_zero_octets)
            .collect()
    }

    /// Both nodes served ACME POSTs, and each client's requests reached
    /// both nodes. nginx logs a request when it ends, so only a client
    /// that sends one request at a time (certbot) shows nginx's order;
    /// there consecutive requests must alternate. lego polls
    /// authorizations in parallel, so its lines may come out of order.
    fn assert_requests_were_spread(&self, certbot_ran: bool, lego_ran: bool) {
        for node in &self.nodes {
            let posts = node.acme_posts();
            eprintln!("{} served {} ACME POSTs", node.name, posts.len());
            assert!(
                posts.iter().any(|path| path.starts_with("/acme/")),
                "{} served no ACME POST; its log:\n{}",
                node.name,
                node.log()
            );
        }
        let requests = self.nginx.requests("acme.log");
        for (client, ran, agent) in [
            ("certbot", certbot_ran, "Certbot"),
            ("lego", lego_ran, "lego"),
        ] {
            if !ran {
                continue;
            }
            let nodes: Vec<&str> = requests
                .iter()
                .filter(|request| request.agent.contains(agent))
                .map(|request| request.node.as_str())
                .collect();
            let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
            for node in &nodes {
                *per_node.entry(node).or_default() += 1;
            }
            eprintln!("{client}'s requests per node: {per_node:?}");
            assert_eq!(per_node.len(), 2, "{client} reached {per_node:?}");
            if client == "certbot" {
                for (i, pair) in nodes.windows(2).enumerate() {
                    assert_ne!(
                        pair[0],
                        pair[1],
                        "certbot's requests {i} and {} went to the same node; \
                         nginx must balance per request",
                        i + 1
                    );
                }
            }
        }
    }
}

/// What the two nodes' configuration files share.
struct NodeSettings<'a> {
    data_dir: &'a Path,
    database_url: &'a str,
    public_url: String,
    public_http_url: String,
    http01_port: u16,
    dns: std::net::SocketAddr,
}

/// One node's configuration file and the ports it names.
struct NodeConfig {
    name: &'static str,
    path: PathBuf,
    api_port: u16,
    http_port: u16,
}

impl NodeSettings<'_> {
    /// Writes `<dir>/<name>.toml`: dev settings (loopback validation),
    /// its own listeners, plain HTTP behind the proxy, the shared rest.
    fn write(&self, dir: &Path, name: &'static str) -> NodeConfig {
        let api_port = free_port();
        let http_port = free_port();
        let text = format!(
            "dev = true\n\
             data_dir = {data_dir}\n\
             database = {database}\n\
             \n\
             [server]\n\
             listen = '127.0.0.1:{api_port}'\n\
             http_listen = '127.0.0.1:{http_port}'\n\
             public_url = {public_url}\n\
             public_http_url = {public_http_url}\n\
             tls = false\n\
             nonces = 'shared'\n\
             \n\
             [validation]\n\
             http01_port = {http01_port}\n\
             dns_resolver = '{dns}'\n",
            data_dir = toml_literal(&self.data_dir.display().to_string()),
            database = toml_literal(self.database_url),
            public_url = toml_literal(&self.public_url),
            public_http_url = toml_literal(&self.public_http_url),
            http01_port = self.http01_port,
            dns = self.dns,
        );
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).expect("write node config");
        NodeConfig {
            name,
            path,
            api_port,
            http_port,
        }
    }
}

/// A TOML literal string: no escapes, so it must hold no `'`.
fn toml_literal(text: &str) -> String {
    assert!(
        !text.contains('\'') && !text.contains('\n'),
        "cannot quote {text:?}"
    );
    format!("'{text}'")
}

/// A `cairn-ca serve` process, logging JSON lines to a file.
struct Node {
    name: &'static str,
    api_port: u16,
    http_port: u16,
    log_path: PathBuf,
    process: KillOnDrop,
}

impl Node {
    fn spawn(dir: &Path, config: NodeConfig) -> Node {
        let log_path = dir.join(format!("{}.log", config.name));
        let log = File::create(&log_path).expect("node log");
        let process = Command::new(env!("CARGO_BIN_EXE_cairn-ca"))
            .arg("serve")
            .arg("--config")
            .arg(&config.path)
            // One JSON event per request (target cairn::request, at info,
            // whatever CAIRN_LOG the test runs with): which node served what.
            .arg("--log-json")
            .env("CAIRN_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("cairn-ca starts");
        Node {
            name: config.name,
            api_port: config.api_port,
            http_port: config.http_port,
            log_path,
            process: KillOnDrop(process),
        }
    }

    /// Waits until the node serves its directory; fails at once, with
    /// its log, if it exits.
    fn wait_until_ready(&mut self) {
        let url = self.directory_url();
        let process = &mut self.process;
        wait_until(START_LIMIT, &format!("{} serves {url}", self.name), || {
            process.exited() || curl(&url, None).is_some()
        });
        assert!(
            !self.process.exited(),
            "{} exited; its log:\n{}",
            self.name,
            self.log()
        );
    }

    /// Straight to the node, not through nginx.
    fn directory_url(&self) -> String {
        format!("http://127.0.0.1:{}/directory", self.api_port)
    }

    fn directory(&self) -> serde_json::Value {
        let body = curl(&self.directory_url(), None).expect("the node serves its directory");
        serde_json::from_slice(&body).expect("the directory is JSON")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The paths of the POST requests this node logged (`cairn::request`).
    fn acme_posts(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|event| event["target"] == "cairn::request")
            .filter(|event| event["fields"]["method"] == "POST")
            .filter_map(|event| event["fields"]["path"].as_str().map(str::to_owned))
            .collect()
    }
}

/// nginx in one process (`master_process off`: one round-robin sequence
/// for all requests, and killing it leaves no workers behind), with every
/// file it writes under `prefix`.
struct Nginx {
    prefix: PathBuf,
    process: KillOnDrop,
}

impl Nginx {
    /// Makes a CA and a certificate for 127.0.0.1 signed by it (the CA goes
    /// to `ca_pem`), writes the configuration and starts nginx: TLS on
    /// `lb_port` to the nodes' API ports, plain HTTP on `lb_http_port` to
    /// their CRL and issuer listeners.
    fn start(
        program: &Path,
        prefix: &Path,
        ca_pem: &Path,
        lb_port: u16,
        lb_http_port: u16,
        nodes: &[Node; 2],
    ) -> Nginx {
        for sub in ["", "logs", "tmp"] {
            std::fs::create_dir_all(prefix.join(sub)).expect("nginx dirs");
        }
        let (ca, cert, key) = loopback_certificate();
        std::fs::write(ca_pem, ca).expect("write LB CA");
        std::fs::write(prefix.join("lb.pem"), cert).expect("write LB certificate");
        let key_path = prefix.join("lb.key");
        std::fs::write(&key_path, key).expect("write LB key");
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))
            .expect("chmod LB key");

        let servers = |port: fn(&Node) -> u16| -> String {
            nodes
                .iter()
                .map(|node| format!("        server 127.0.0.1:{};\n", port(node)))
                .collect()
        };
        let p = prefix.display();
        let conf = format!(
            r#"master_process off;
pid {p}/nginx.pid;
error_log {p}/logs/error.log info;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {p}/tmp/body;
    proxy_temp_path {p}/tmp/proxy;
    fastcgi_temp_path {p}/tmp/fastcgi;
    uwsgi_temp_path {p}/tmp/uwsgi;
    scgi_temp_path {p}/tmp/scgi;
    log_format upstream '$upstream_addr $request_method $uri $status "$http_user_agent"';

    # Round robin with no upstream keepalive: every request picks the next
    # node. A request is retried on the other node only if it never
    # reached the first (the default: never for a POST that was sent).
    upstream cairn_acme {{
{acme_servers}    }}
    upstream cairn_publication {{
{publication_servers}    }}

    server {{
        listen 127.0.0.1:{lb_port} ssl;
        ssl_certificate {p}/lb.pem;
        ssl_certificate_key {p}/lb.key;
        access_log {p}/logs/acme.log upstream;
        location / {{
            proxy_pass http://cairn_acme;
            proxy_next_upstream error timeout;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-For $remote_addr;
        }}
    }}
    server {{
        listen 127.0.0.1:{lb_http_port};
        access_log {p}/logs/publication.log upstream;
        location / {{
            proxy_pass http://cairn_publication;
            proxy_set_header Host $http_host;
        }}
    }}
}}
"#,
            acme_servers = servers(|n| n.api_port),
            publication_servers = servers(|n| n.http_port),
        );
        let conf_path = prefix.join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");

        let log = File::create(prefix.join("logs/stderr.log")).expect("nginx stderr");
        let process = Command::new(program)
            .arg("-p")
            .arg(prefix)
            // Without -e nginx first opens its built-in /var/log path.
            .arg("-e")
            .arg(prefix.join("logs/error.log"))
            .arg("-c")
            .arg(&conf_path)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        Nginx {
            prefix: prefix.to_owned(),
            process: KillOnDrop(process),
        }
    }

    fn exited(&mut self) -> bool {
        self.process.exited()
    }

    fn assert_running(&mut self) {
        assert!(
            !self.exited(),
            "nginx exited:\n{}\n{}",
            std::fs::read_to_string(self.prefix.join("logs/stderr.log")).unwrap_or_default(),
            std::fs::read_to_string(self.prefix.join("logs/error.log")).unwrap_or_default()
        );
    }

    /// The requests in access log `name` that reached a node, in the
    /// order they ended.
    fn requests(&self, name: &str) -> Vec<Proxied> {
        std::fs::read_to_string(self.prefix.join("logs").join(name))
            .expect("nginx access log")
            .lines()
            .filter_map(|line| {
                let (node, rest) = line.split_once(' ')?;
                let (_, agent) = rest.split_once('"')?;
                Some(Proxied {
                    node: node.to_owned(),
                    agent: agent.trim_end_matches('"').to_owned(),
                })
            })
            .filter(|request| request.node != "-")
            .collect()
    }
}

/// One line of an nginx access log: the node that answered (`-` if none)
/// and the client's User-Agent.
struct Proxied {
    node: String,
    agent: String,
}

/// openssl's uppercase hex serial as the harness writes serials:
/// lowercase, leading zero octets dropped.
fn without_zero_octets(serial: &str) -> String {
    let mut serial = serial.trim();
    while let Some(rest) = serial.strip_prefix("00") {
        serial = rest;
    }
    serial.to_ascii_lowercase()
}

/// A throw-away CA and a server certificate for 127.0.0.1 it signed, as
/// PEM: (CA certificate, server certificate, server key).
fn loopback_certificate() -> (String, String, String) {
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Cairn cluster test load balancer CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::from_params(&ca_params, &ca_key);

    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("LB key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("LB params");
    params.subject_alt_names = vec![SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST))];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let cert = params.signed_by(&key, &issuer).expect("LB certificate");
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

/// The first URI of a certificate's CRL distribution points.
fn crl_url(leaf_pem: &Path) -> String {
    let pem = std::fs::read_to_string(leaf_pem).expect("leaf readable");
    let der = cairn_proto::pem::decode_one(&pem, "CERTIFICATE").expect("leaf PEM");
    let (_, cert) = X509Certificate::from_der(&der).expect("leaf parses");
    let points = cert
        .extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::CRLDistributionPoints(points) => Some(points),
            _ => None,
        })
        .expect("the leaf has CRL distribution points");
    points
        .iter()
        .filter_map(|point| match &point.distribution_point {
            Some(DistributionPointName::FullName(names)) => Some(names),
            _ => None,
        })
        .flatten()
        .find_map(|name| match name {
            GeneralName::URI(uri) => Some((*uri).to_owned()),
            _ => None,
        })
        .expect("a CRL distribution point with a URI")
}

/// lego writes the leaf and its chain into one `.crt`: the leaf alone.
fn split_leaf(bundle: &Path) -> PathBuf {
    let text = std::fs::read_to_string(bundle).expect("lego certificate");
    let der = cairn_proto::pem::decode_one(&text, "CERTIFICATE").expect("a certificate");
    let leaf = bundle.with_extension("leaf.pem");
    std::fs::write(&leaf, cairn_proto::pem::encode("CERTIFICATE", &der)).expect("write leaf");
    leaf
}

/// GET with curl (trusting `ca_pem` for https); the body, or `None` on
/// any failure.
fn curl(url: &str, ca_pem: Option<&Path>) -> Option<Vec<u8>> {
    let mut command = Command::new("curl");
    command.args(["-sf", "--max-time", "5"]);
    if let Some(ca_pem) = ca_pem {
        command.arg("--cacert").arg(ca_pem);
    }
    let output = command
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("curl runs");
    output.status.success().then_some(output.stdout)
}

/// Polls `done` every 200 ms; panics once `limit` has passed.
fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "gave up after {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `command` to its end within `limit` and returns its combined
/// output; panics with that output when it fails or overruns (and then
/// kills it).
fn run_within(limit: Duration, command: &mut Command) -> String {
    let mut output = tempfile::tempfile().expect("output file");
    let mut child = KillOnDrop(
        command
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("output handle"))
            .stderr(output.try_clone().expect("output handle"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}")),
    );
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait for the child") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut text = String::new();
    output.rewind().expect("rewind output");
    output.read_to_string(&mut text).expect("read output");
    match status {
        Some(status) if status.success() => text,
        Some(status) => panic!("{command:?} failed ({status}):\n{text}"),
        None => panic!("{command:?} did not finish within {limit:?}:\n{text}"),
    }
}

/// A child process killed (and reaped) when dropped, panics included.
struct KillOnDrop(Child);

impl KillOnDrop {
    fn exited(&mut self) -> bool {
        !matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
