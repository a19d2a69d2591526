//! Two `cairn proxy` processes on one configuration directory, as two
//! servers behind one address share it: the per-name file lock lets one of
//! them order while the other waits, then loads what the first stored.

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_client::lineage::{CertName, ConfigDir};
use hyper::StatusCode;
use hyper::header::HOST;
use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::harness::{Ca, free_port, hex};
use crate::support::{Proxy, serve_at, text_response, tls_connect, upstream};

/// Both processes start while the test holds the name's lock, so both
/// find no certificate and wait for the lock at once; when it is released
/// one orders (answering http-01 through the front below) and the other
/// loads the stored certificate. The CA sees one order for the name, both
/// serve the upstream with the certificate of that order, and the
/// archive holds one version.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_sharing_a_directory_make_one_order() {
    let ca = Ca::start().await;
    let up = upstream("shared").await;
    let name = "shared.example.com";
    let config_dir = ca.dir.path().join("proxy");
    let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let http = [loopback(free_port()), loopback(free_port())];
    let answered = challenge_front(loopback(ca.http01_port), http).await;

    std::fs::create_dir_all(&config_dir).expect("mkdir");
    let lineage = CertName::default_for(name).expect("a lineage name");
    let held = ConfigDir::new(config_dir.clone())
        .lock(&lineage)
        .expect("the test takes the lock first");

    let args = |i: usize| -> Vec<String> {
        [
            "proxy",
            "--server",
            &ca.running.directory_url,
            "--ca-bundle",
            &ca.running.root_pem.to_string_lossy(),
            "--agree-tos",
            "-m",
            "admin@example.com",
            "--http-listen",
            &http[i].to_string(),
            "--https-listen",
            &loopback(free_port()).to_string(),
            "--control-socket",
            &config_dir.join(format!("proxy-{i}.sock")).to_string_lossy(),
            "--config-dir",
            &config_dir.to_string_lossy(),
            "--challenges",
            "http-01",
            "--route",
            &format!("{name}=http://{up}"),
        ]
        .into_iter()
        .map(str::to_owned)
        .collect()
    };
    let (args_one, args_two) = (args(0), args(1));
    let (one, two) = tokio::join!(
        Proxy::spawn(&args_one, &config_dir, &ca.running.root_pem),
        Proxy::spawn(&args_two, &config_dir, &ca.running.root_pem),
    );
    let lock_file = config_dir.join("locks").join(format!("{lineage}.lock"));
    wait_until_both_wait(&lock_file).await;
    drop(held);

    let mut serials = Vec::new();
    for proxy in [&one, &two] {
        let response = proxy.wait_until_served(name).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.text().await.expect("body"),
            "upstream shared saw /"
        );
        serials.push(served_serial(proxy, name).await);
    }
    assert_eq!(
        serials[0], serials[1],
        "the two processes serve different certificates"
    );

    let orders = orders_for(&ca, name);
    assert_eq!(orders.len(), 1, "orders for {name}: {orders:?}");
    assert_eq!(orders[0].as_deref(), Some(serials[0].as_str()));

    // Which one ordered: it alone answered the CA; the other loaded.
    let (orderer, loader) = roles(&one, &two).await;
    let answered = answered.lock().expect("answered").clone();
    assert!(!answered.is_empty(), "the CA never reached a backend");
    assert!(
        answered.iter().all(|a| *a == orderer.http),
        "challenges answered by {answered:?}, the order placed by {}",
        orderer.http
    );
    assert!(!said(loader, "order placed"), "{} ordered too", loader.http);
    let versions = std::fs::read_dir(config_dir.join("archive").join(name))
        .expect("archive")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("cert"))
        .count();
    assert_eq!(versions, 1, "one certificate version in the archive");
}

/// What sits in front of servers that share a directory, reduced to
/// http-01: on the port where the CA validates, it asks each backend for
/// the challenge path and passes on the first 200, so the CA reaches
/// whichever process placed the order. Returns the backends that answered.
async fn challenge_front(
    addr: SocketAddr,
    backends: [SocketAddr; 2],
) -> Arc<Mutex<Vec<SocketAddr>>> {
    let answered = Arc::new(Mutex::new(Vec::new()));
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let seen = Arc::clone(&answered);
    serve_at(addr, move |request| {
        let (client, seen) = (client.clone(), Arc::clone(&seen));
        async move {
            let host = request
                .headers()
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let path = request.uri().path().to_owned();
            for backend in backends {
                let response = client
                    .get(format!("http://{backend}{path}"))
                    .header(HOST, &host)
                    .send()
                    .await;
                if let Ok(response) = response
                    && response.status() == StatusCode::OK
                {
                    let body = response.text().await.unwrap_or_default();
                    seen.lock().expect("answered").push(backend);
                    return text_response(StatusCode::OK, &body);
                }
            }
            text_response(StatusCode::NOT_FOUND, "no backend knows this token")
        }
    })
    .await;
    answered
}

/// Waits until two processes wait for the lock on `file`: Linux lists a
/// blocked flock request in /proc/locks as `N: -> FLOCK ADVISORY WRITE
/// PID MAJOR:MINOR:INODE ...`.
async fn wait_until_both_wait(file: &Path) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        // The processes create the file if the test's lock has not yet.
        let inode = std::fs::metadata(file).expect("the lock file").ino();
        let locks = std::fs::read_to_string("/proc/locks").expect("/proc/locks");
        let waiting = locks
            .lines()
            .filter(|line| line.split_whitespace().nth(1) == Some("->"))
            .filter_map(|line| line.split_whitespace().nth(6)?.rsplit(':').next())
            .filter(|ino| ino.parse::<u64>().ok() == Some(inode))
            .count();
        if waiting >= 2 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{waiting} process(es) wait for {} after 30 s:\n{locks}",
            file.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The serial of the leaf `proxy` serves for `name`, in hex without
/// leading zeros (as [`orders_for`] gives it).
async fn served_serial(proxy: &Proxy, name: &str) -> String {
    let tls = tls_connect(proxy, name, &[b"http/1.1"]).await;
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .expect("a leaf")
        .clone();
    let (_, certificate) = X509Certificate::from_der(&leaf).expect("the leaf parses");
    hex(certificate.raw_serial())
        .trim_start_matches('0')
        .to_owned()
}

/// The certificate serial of each order the CA has for `name` (hex
/// without leading zeros; `None` while not issued).
fn orders_for(ca: &Ca, name: &str) -> Vec<Option<String>> {
    let db = ca.dir.path().join("ca").join("cairn.db");
    let connection =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("the CA database opens");
    let mut statement = connection
        .prepare("SELECT identifiers, certificate_serial FROM orders ORDER BY id")
        .expect("query");
    statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?))
        })
        .expect("orders")
        .map(|row| row.expect("row"))
        .filter(|(identifiers, _)| identifiers.contains(&format!("\"{name}\"")))
        .map(|(_, serial)| serial.map(|s| s.trim_start_matches('0').to_ascii_lowercase()))
        .collect()
}

/// (the process that placed the order, the one that loaded it), once
/// both have said so.
async fn roles<'a>(one: &'a Proxy, two: &'a Proxy) -> (&'a Proxy, &'a Proxy) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        for (orderer, loader) in [(one, two), (two, one)] {
            if said(orderer, "order placed") && said(loader, "using the stored certificate") {
                return (orderer, loader);
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not one process ordering and the other loading:\n{:#?}\n{:#?}",
            one.lines.lock().expect("lines"),
            two.lines.lock().expect("lines")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn said(proxy: &Proxy, text: &str) -> bool {
    proxy
        .lines
        .lock()
        .expect("lines")
        .iter()
        .any(|line| line.contains(text))
}
