//! A real nginx (`CAIRN_NGINX`) in a temp prefix on loopback ports: the
//! `Nginx` web server's config test and graceful reload, and the edits
//! doing what they say — after deploy + reload the certificate is served
//! over HTTPS, after the redirect plain HTTP answers 301.
#![allow(clippy::unwrap_used)]

mod nginx_common;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use cairn_install::{Enhancement, Error, WebServer};
use nginx_common::Site;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx in the foreground, stopped (gracefully) on drop.
struct Running {
    child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        // SIGQUIT to the master: a graceful stop that needs no readable
        // configuration (the test leaves a broken one behind).
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "-D", "-"])
        .args(args)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Retries `check` for a few seconds (workers take a moment after reload).
fn eventually(what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match check() {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => panic!("{what}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

#[test]
#[cfg_attr(not(peer_nginx), ignore = "needs CAIRN_NGINX")]
fn deploy_reload_serves_https_and_redirects() {
    let ctl = std::env::var("CAIRN_NGINX").expect("CAIRN_NGINX names the nginx binary");
    let (http, https) = (free_port(), free_port());
    let conf = format!(
        "pid nginx.pid;\nerror_log logs/error.log;\nevents {{ worker_connections 64; }}\nhttp {{\n    access_log off;\n    # the site {{ \"quoted\" }}\n    server {{\n        listen 127.0.0.1:{http};\n        server_name localhost;\n        location / {{ return 200 \"hello from nginx\\n\"; }}\n    }}\n}}\n"
    );
    let site = Site::new(&[("nginx.conf", &conf)]);
    std::fs::create_dir_all(site.root().join("logs")).unwrap();
    let nginx = site.nginx().with_sleep(Duration::from_millis(200));
    nginx.config_test().unwrap();
    let child = Command::new(&ctl)
        .arg("-c")
        .arg(site.conf())
        .arg("-p")
        .arg(site.root())
        .args(["-g", "daemon off;"])
        .spawn()
        .unwrap();
    let _running = Running { child };
    let plain = format!("http://127.0.0.1:{http}/");
    eventually("nginx answers on HTTP", || {
        let (out, err) = curl(&[&plain]);
        out.contains("hello from nginx").then_some(()).ok_or(err)
    });

    let mut settings = site.settings();
    settings.http_port = http;
    settings.https_port = https;
    let cert = site.cert();
    let mut config = nginx.load().unwrap();
    config
        .deploy(&["localhost".to_owned()], &cert, &settings)
        .unwrap();
    config
        .enhance(&["localhost".to_owned()], Enhancement::Redirect, &settings)
        .unwrap();
    for (path, change) in &config.changes().files {
        std::fs::write(path, &change.after).unwrap();
    }
    std::fs::write(&settings.options_file, nginx.options_file_contents()).unwrap();
    nginx.config_test().unwrap();
    nginx.reload().unwrap();

    let resolve = format!("localhost:{https}:127.0.0.1");
    let secure = format!("https://localhost:{https}/");
    let ca = cert.fullchain.to_str().unwrap().to_owned();
    eventually("HTTPS with the deployed certificate", || {
        let (out, err) = curl(&["--cacert", &ca, "--resolve", &resolve, &secure]);
        out.contains("hello from nginx")
            .then_some(())
            .ok_or(format!("{out}{err}"))
    });
    let http_host = format!("localhost:{http}:127.0.0.1");
    let plain_named = format!("http://localhost:{http}/x?y=1");
    eventually("HTTP redirects to HTTPS", || {
        let (out, err) = curl(&["--resolve", &http_host, &plain_named]);
        let location = format!("location: https://localhost:{https}/x?y=1");
        (out.starts_with("HTTP/1.1 301") && out.to_ascii_lowercase().contains(&location))
            .then_some(())
            .ok_or(format!("{out}{err}"))
    });

    // A broken file: the config test says so, quoting nginx.
    std::fs::write(
        site.conf(),
        conf.replace("access_log off;", "access_log off"),
    )
    .unwrap();
    let err = nginx.config_test().unwrap_err();
    let Error::ConfigTest { output, .. } = &err else {
        panic!("{err}");
    };
    assert!(output.contains("nginx.conf"), "{output}");
}

#[test]
fn a_missing_ctl_is_a_readable_error() {
    let site = Site::new(&[("nginx.conf", "events {}\n")]);
    let nginx = site.nginx().with_ctl(site.root().join("no-such-nginx"));
    let err = nginx.config_test().unwrap_err();
    assert!(matches!(err, Error::Command { .. }), "{err}");
    assert!(err.to_string().contains("--nginx-ctl"), "{err}");
    let err = nginx.reload().unwrap_err();
    assert!(err.to_string().contains("no-such-nginx"), "{err}");
}
