//! The `cairn-load` binary against a cairn-ca running in this process on
//! ephemeral loopback ports: always-valid issuance, the server's cost
//! (the server's PID is this test's own), real http-01 and dns-01
//! validation through cairn-testkit's DNS, and a run where every order
//! fails.

use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cairn_ca::app::{self, Overrides, RunningCa};
use cairn_ca::config::Config;
use cairn_ca::signer::{Pki, PkiOptions};
use cairn_testkit::{TestServer, TestServerConfig};
use serde_json::Value;
use tempfile::TempDir;

/// The endpoints every successful run times.
const ENDPOINTS: [&str; 7] = [
    "new_order",
    "authorization",
    "challenge",
    "order",
    "finalize",
    "certificate",
    "issuance",
];

/// A CA and the challenge test server its validation resolves names through.
struct Ca {
    running: RunningCa,
    testkit: TestServer,
    _data_dir: TempDir,
}

impl Ca {
    async fn start(tweak: impl FnOnce(&mut Config, &TestServer)) -> Self {
        let testkit = TestServer::start(TestServerConfig {
            http01: None,
            tls_alpn01: None,
            ..TestServerConfig::default()
        })
        .await
        .expect("the challenge test server starts");
        let data_dir = tempfile::tempdir().expect("a temporary directory");
        let mut config = Config::defaults(true);
        config.data_dir = data_dir.path().join("ca");
        config.server.listen = "127.0.0.1:0".parse().expect("address");
        config.server.http_listen = "127.0.0.1:0".parse().expect("address");
        config.validation.dns_resolver = testkit.dns_addr();
        config.validation.timeout_seconds = 5;
        tweak(&mut config, &testkit);
        install_pki(&config.data_dir);
        let running = app::start(config, Overrides::default())
            .await
            .expect("the CA starts");
        Self {
            running,
            testkit,
            _data_dir: data_dir,
        }
    }

    /// Runs `cairn-load` against this CA with `args` after the directory
    /// and CA bundle; returns its exit status success and stdout.
    async fn load(&self, args: &[&str]) -> (bool, String) {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_cairn-load"))
            .arg("--directory")
            .arg(&self.running.directory_url)
            .arg("--ca-bundle")
            .arg(&self.running.root_pem)
            .args(args)
            .output()
            .await
            .expect("cairn-load runs");
        let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
        let stderr = String::from_utf8_lossy(&output.stderr);
        eprintln!("cairn-load {args:?}: {}\n{stdout}\n{stderr}", output.status);
        (output.status.success(), stdout)
    }
}

fn json(stdout: &str) -> Value {
    assert_eq!(stdout.lines().count(), 1, "one JSON object: {stdout}");
    serde_json::from_str(stdout).expect("the output is JSON")
}

/// Every endpoint has ordered percentiles and as many samples as expected.
fn assert_latencies(report: &Value, orders: u64, names_per_order: u64) {
    let latency = &report["latency_ms"];
    for endpoint in ENDPOINTS {
        let l = &latency[endpoint];
        let (p50, p90, p99) = (
            l["p50"].as_f64().unwrap_or(-1.0),
            l["p90"].as_f64().unwrap_or(-1.0),
            l["p99"].as_f64().unwrap_or(-1.0),
        );
        assert!(
            0.0 < p50 && p50 <= p90 && p90 <= p99,
            "{endpoint}: {l} in {report}"
        );
    }
    let count = |e: &str| latency[e]["count"].as_u64().expect("a count");
    assert_eq!(count("new_order"), orders);
    assert_eq!(count("challenge"), orders * names_per_order);
    assert!(count("authorization") >= orders * names_per_order);
    assert_eq!(count("finalize"), orders);
    assert_eq!(count("certificate"), orders);
    assert_eq!(count("issuance"), orders);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_valid_issues_every_order_and_times_each_endpoint() {
    let ca = Ca::start(|config, _| config.testing.always_valid = true).await;
    let (ok, stdout) = ca
        .load(&[
            "--challenge",
            "none",
            "--accounts",
            "2",
            "--orders",
            "10",
            "--concurrency",
            "4",
            "--json",
        ])
        .await;
    assert!(ok);
    let report = json(&stdout);
    assert_eq!(report["issued"], 10, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    assert!(report["seconds"].as_f64().expect("seconds") > 0.0);
    assert!(report["per_second"].as_f64().expect("per_second") > 0.0);
    assert_eq!(report["errors"], serde_json::json!({}));
    assert!(report["client_cpu_seconds"].as_f64().is_some(), "{report}");
    assert!(report.get("server_cpu_seconds").is_none(), "{report}");
    assert_latencies(&report, 10, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_pid_reports_the_servers_cpu_and_memory() {
    let ca = Ca::start(|config, _| config.testing.always_valid = true).await;
    let pid = std::process::id().to_string();
    let (ok, stdout) = ca
        .load(&[
            "--challenge",
            "none",
            "--accounts",
            "2",
            "--orders",
            "10",
            "--concurrency",
            "4",
            "--server-pid",
            &pid,
            "--json",
        ])
        .await;
    assert!(ok);
    let report = json(&stdout);
    assert_eq!(report["issued"], 10, "{report}");
    assert_eq!(
        report["server_pid"].as_u64(),
        Some(u64::from(std::process::id()))
    );
    let cpu = report["server_cpu_seconds"].as_f64().expect("server CPU");
    assert!(cpu > 0.0, "{report}");
    let per_issuance = report["server_cpu_ms_per_issuance"]
        .as_f64()
        .expect("server CPU per issuance");
    assert!((per_issuance - cpu * 100.0).abs() < 0.01, "{report}");
    assert!(report["server_peak_rss_bytes"].as_u64().expect("peak RSS") > 1024 * 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_tokens_are_served_by_the_load_generator() {
    let port = free_port();
    let ca = Ca::start(|config, _| config.validation.http01_port = port).await;
    let listen = format!("127.0.0.1:{port}");
    let (ok, stdout) = ca
        .load(&[
            "--challenge",
            "http-01",
            "--http01-listen",
            &listen,
            "--accounts",
            "2",
            "--orders",
            "4",
            "--names-per-order",
            "2",
            "--concurrency",
            "2",
            "--json",
        ])
        .await;
    assert!(ok);
    let report = json(&stdout);
    assert_eq!(report["issued"], 4, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    assert_latencies(&report, 4, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns01_records_are_set_through_the_management_api() {
    let ca = Ca::start(|_, _| {}).await;
    let management = format!(
        "http://{}",
        ca.testkit
            .management_addr()
            .expect("the management API is on")
    );
    let (ok, stdout) = ca
        .load(&[
            "--challenge",
            "dns-01",
            "--dns-management",
            &management,
            "--accounts",
            "1",
            "--orders",
            "3",
            "--concurrency",
            "3",
            "--json",
        ])
        .await;
    assert!(ok);
    let report = json(&stdout);
    assert_eq!(report["issued"], 3, "{report}");
    assert_latencies(&report, 3, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_order_failing_is_reported_by_problem_type_and_exits_non_zero() {
    // Real validation against a port nothing listens on.
    let port = free_port();
    let ca = Ca::start(|config, _| config.validation.http01_port = port).await;
    let (ok, stdout) = ca
        .load(&[
            "--challenge",
            "none",
            "--accounts",
            "1",
            "--orders",
            "3",
            "--concurrency",
            "3",
            "--json",
        ])
        .await;
    assert!(!ok, "every order failed, yet the exit status is success");
    let report = json(&stdout);
    assert_eq!(report["issued"], 0, "{report}");
    assert_eq!(report["failed"], 3, "{report}");
    let errors = report["errors"].as_object().expect("errors");
    assert_eq!(errors.values().filter_map(Value::as_u64).sum::<u64>(), 3);
    assert!(
        errors
            .keys()
            .all(|kind| kind.starts_with("urn:ietf:params:acme:error:")),
        "{report}"
    );
    let example = report["error_examples"].as_object().expect("examples");
    assert!(
        example
            .values()
            .all(|m| m.as_str().is_some_and(|m| m.contains("load.test"))),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_text_report_is_a_table() {
    let ca = Ca::start(|config, _| config.testing.always_valid = true).await;
    let (ok, stdout) = ca
        .load(&["--challenge", "none", "--accounts", "1", "--orders", "2"])
        .await;
    assert!(ok);
    assert!(stdout.starts_with("2 issued, 0 failed in "), "{stdout}");
    for endpoint in ENDPOINTS {
        assert!(
            stdout.lines().any(|line| line.starts_with(endpoint)),
            "no {endpoint} row in {stdout}"
        );
    }
}

/// A loopback port free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("an ephemeral port")
        .port()
}

/// The CA's key hierarchy, made once for every test (an RSA-4096 root
/// takes seconds): file name, mode, contents.
fn pki_files() -> &'static [(String, u32, Vec<u8>)] {
    static FILES: OnceLock<Vec<(String, u32, Vec<u8>)>> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        Pki::load_or_create(&PkiOptions {
            data_dir: dir.path().to_owned(),
            crl_base_url: "http://127.0.0.1:14080".into(),
            api_hostnames: Config::defaults(true).server.hostnames,
        })
        .expect("a CA key hierarchy");
        std::fs::read_dir(dir.path().join("pki"))
            .expect("pki/")
            .map(|entry| {
                let entry = entry.expect("a directory entry");
                let mode = entry.metadata().expect("metadata").permissions().mode();
                let name = entry.file_name().into_string().expect("a UTF-8 name");
                (name, mode, std::fs::read(entry.path()).expect("readable"))
            })
            .collect()
    })
}

fn install_pki(data_dir: &Path) {
    let pki: PathBuf = data_dir.join("pki");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&pki)
        .expect("pki/");
    for (name, mode, contents) in pki_files() {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(*mode)
            .open(pki.join(name))
            .expect("a new file in pki/");
        std::io::Write::write_all(&mut file, contents).expect("written");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_finishing_orders_ends_the_run_as_stalled() {
    // Validation connects to a listener that never answers, so each order
    // hangs for the CA's 3 s validation timeout, longer than the 1 s stall.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
    let port = silent.local_addr().expect("its address").port();
    let ca = Ca::start(|config, _| {
        config.validation.http01_port = port;
        config.validation.timeout_seconds = 3;
    })
    .await;
    let (ok, stdout) = ca
        .load(&[
            "--challenge",
            "none",
            "--accounts",
            "1",
            "--orders",
            "10",
            "--concurrency",
            "1",
            "--stall-seconds",
            "1",
            "--json",
        ])
        .await;
    drop(silent);
    assert!(!ok, "a stalled run exits with success");
    let report = json(&stdout);
    assert_eq!(report["stalled_for_seconds"], 1, "{report}");
    assert_eq!(report["issued"], 0, "{report}");
    let failed = report["failed"].as_u64().expect("failed");
    let not_started = report["not_started"].as_u64().expect("not_started");
    assert!(failed >= 1 && not_started >= 1, "{report}");
    assert_eq!(failed + not_started, 10, "{report}");
}
