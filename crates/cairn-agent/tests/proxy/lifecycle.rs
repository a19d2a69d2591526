//! The process over time: reload under traffic (control socket and
//! SIGHUP), drain on SIGTERM, and slow clients that must not starve others.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::harness::{Ca, ok};
use crate::support::{Proxy, upstream};

fn site_file(name: &str, upstream: std::net::SocketAddr) -> String {
    format!("[[site]]\nnames = [\"{name}\"]\nupstream = \"http://{upstream}\"\n")
}

/// Requests keep going (HTTP/1.1 and HTTP/2, new and kept-alive
/// connections) while the configuration is reloaded twice, by `cairn proxy
/// reload` and by SIGHUP: none fails, and the new upstream answers after
/// each. A broken file is refused and the running configuration kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reload_under_traffic_drops_nothing() {
    let ca = Ca::start().await;
    let (one, two) = (upstream("one").await, upstream("two").await);
    let name = "reload.example.com";
    let file = ca.dir.path().join("proxy.toml");
    std::fs::write(&file, site_file(name, one)).expect("write");
    let proxy = Proxy::start(&ca, &["--config", &file.to_string_lossy()]).await;
    proxy.wait_until_served(name).await;

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for (i, http2) in [false, true, false, true].into_iter().enumerate() {
        // Half the workers open a new connection for every request.
        let client = proxy.client_with(&[name], http2, i < 2);
        let url = proxy.url(name, "/");
        let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
        workers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => {
                        let _ = r.text().await;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => failures.push(format!("status {}", r.status())),
                    Err(e) => failures.push(format!("{e:?}")),
                }
            }
            failures
        }));
    }
    let client = proxy.client(&[name], false);
    let body = |client: reqwest::Client, url: String| async move {
        client
            .get(url)
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("body")
    };
    assert_eq!(
        body(client.clone(), proxy.url(name, "/")).await,
        "upstream one saw /"
    );

    // 1. cairn proxy reload (control socket).
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(&file, site_file(name, two)).expect("write");
    let agent = crate::harness::Agent::new(
        proxy.config_dir.clone(),
        &ca.running.directory_url,
        &ca.running.root_pem,
    );
    let said = ok(&agent
        .run(&[
            "proxy",
            "reload",
            "--control-socket",
            &proxy.control_socket.to_string_lossy(),
        ])
        .await);
    assert!(
        said.contains("reloaded: 1 site(s): reload.example.com"),
        "{said}"
    );
    assert_eq!(
        body(client.clone(), proxy.url(name, "/")).await,
        "upstream two saw /"
    );

    // 2. A broken file: refused, the running configuration stays.
    std::fs::write(&file, "[[site]]\nnames = [\"x\"]\nupstrem = 1\n").expect("write");
    let out = agent
        .run(&[
            "proxy",
            "reload",
            "--control-socket",
            &proxy.control_socket.to_string_lossy(),
        ])
        .await;
    assert!(!out.status.success());
    let said = crate::harness::text(&out);
    assert!(
        said.contains("upstrem") && said.contains("previous configuration"),
        "{said}"
    );
    assert_eq!(
        body(client.clone(), proxy.url(name, "/")).await,
        "upstream two saw /"
    );

    // 3. SIGHUP.
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(&file, site_file(name, one)).expect("write");
    proxy.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while body(client.clone(), proxy.url(name, "/")).await != "upstream one saw /" {
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for worker in workers {
        failures.extend(worker.await.expect("worker"));
    }
    let done = done.load(Ordering::Relaxed);
    eprintln!(
        "{done} requests during the reloads, {} failed",
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:?}");
    assert!(done > 20, "only {done} requests");
}

/// SIGTERM: a request in flight finishes with its answer, new connections
/// are refused, and the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_drains_in_flight_requests() {
    let ca = Ca::start().await;
    let up = upstream("one").await;
    let name = "drain.example.com";
    let mut proxy = Proxy::start(&ca, &["--route", &format!("{name}=http://{up}")]).await;
    proxy.wait_until_served(name).await;
    let client = proxy.client(&[name], false);
    let url = proxy.url(name, "/slow?ms=1500");
    let in_flight = tokio::spawn(async move { client.get(url).send().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.signal("TERM");
    proxy.wait_for_line("stopping").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        tokio::net::TcpStream::connect(proxy.https).await.is_err(),
        "still accepting after SIGTERM"
    );
    let response = in_flight
        .await
        .expect("task")
        .expect("the in-flight request finished");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.expect("body"),
        "slow answer after 1500 ms"
    );
    let status = tokio::time::timeout(Duration::from_secs(10), proxy.child.wait())
        .await
        .expect("exits after draining")
        .expect("status");
    assert!(status.success(), "{status}");
}

/// 1,000 sockets trickling one byte a second (half plain-HTTP request
/// headers, half a TLS ClientHello) do not keep a normal client from being
/// served, and the proxy closes them once the header timeout passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_clients_are_cut_off_and_do_not_starve_others() {
    let ca = Ca::start().await;
    let up = upstream("one").await;
    let name = "slow-clients.example.com";
    let proxy = Proxy::start(
        &ca,
        &[
            "--route",
            &format!("{name}=http://{up}"),
            "--header-timeout",
            "3",
            "--max-connections",
            "4000",
        ],
    )
    .await;
    proxy.wait_until_served(name).await;

    let closed = Arc::new(AtomicUsize::new(0));
    let mut slow = Vec::new();
    for i in 0..1000 {
        let addr = if i % 2 == 0 { proxy.http } else { proxy.https };
        let closed = Arc::clone(&closed);
        slow.push(tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let bytes: &[u8] = if i % 2 == 0 {
                b"GET / HTTP/1.1\r\nHost: slow-clients.example.com\r\nX-Pad: aaaaaaaaaaaaaaaa"
            } else {
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03aaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            };
            let started = Instant::now();
            for byte in bytes {
                if stream.write_all(&[*byte]).await.is_err() {
                    break;
                }
                // A closed connection reads as 0 (or an error) at once.
                let mut buf = [0u8; 512];
                match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await {
                    Ok(Ok(0) | Err(_)) => break,
                    Ok(Ok(_)) => {
                        // An error answer (408 or an alert), then the close.
                        let _ = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf))
                            .await;
                        break;
                    }
                    Err(_) => {}
                }
            }
            let lasted = started.elapsed();
            if lasted < Duration::from_secs(15) {
                closed.fetch_add(1, Ordering::Relaxed);
            }
            lasted
        }));
    }
    // While they trickle, a normal client is served promptly, each time
    // on a new connection.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for _ in 0..5 {
        let client = proxy.client(&[name], false);
        let started = Instant::now();
        let response = client
            .get(proxy.url(name, "/"))
            .send()
            .await
            .expect("served while 1,000 clients trickle");
        assert_eq!(response.status(), 200);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut longest = Duration::ZERO;
    for task in slow {
        longest = longest.max(task.await.expect("slow client"));
    }
    eprintln!(
        "slow clients closed: {} of 1000, the longest after {longest:?}",
        closed.load(Ordering::Relaxed)
    );
    assert_eq!(closed.load(Ordering::Relaxed), 1000);
    assert!(longest < Duration::from_secs(8), "{longest:?}");
}
