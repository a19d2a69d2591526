//! `cairn run --apache` against a real Apache httpd in a private server
//! root (cairn-testkit's launcher), with cairn-ca in this process as the
//! CA. Needs `CAIRN_APACHE` (scripts/install-peers prints it).

use std::time::{Duration, Instant};

use cairn_testkit::webserver::apache::{Apache, DEFAULT_MODULES};

use crate::harness::{Ca, ok};
use crate::install::{files_under, http_get, https_get};

const NAME: &str = "apache.example.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(peer_apache), ignore = "needs CAIRN_APACHE")]
async fn apache_run_serves_https_redirects_and_renews() {
    let ca = Ca::start().await;
    let agent = ca.agent();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("apache2");
    std::fs::create_dir(&root).expect("mkdir");
    // The CA validates on its own port: the site listens there too.
    let http = ca.http01_port;
    let body = format!(
        "Listen 127.0.0.1:{http}\n\
         # The site cairn makes HTTPS; this comment stays.\n\
         <VirtualHost 127.0.0.1:{http}>\n    ServerName {NAME}\n    DocumentRoot {{root}}/html\n    \
         <Directory {{root}}/html>\n        Require all granted\n    </Directory>\n</VirtualHost>\n"
    );
    let mut modules = DEFAULT_MODULES.to_vec();
    modules.extend(["ssl", "socache_shmcb", "headers", "rewrite"]);
    let ctl = std::path::PathBuf::from(std::env::var("CAIRN_APACHE").expect("CAIRN_APACHE"));
    let apache = Apache::start_with(&ctl, &root, &body, &modules).expect("apache starts");
    let https = apache.https_port();
    let roots = ca.running.root_pem.clone();
    let runtime = ["logs", "run", "lock"];

    let flags = [
        "--apache",
        "--apache-server-root",
        &apache.root().to_string_lossy(),
        "--apache-ctl",
        &apache.ctl().to_string_lossy(),
        "--http-01-port",
        &http.to_string(),
        "--https-port",
        &https.to_string(),
    ]
    .map(String::from);
    let mut args = vec![
        "run",
        "--agree-tos",
        "-m",
        "admin@example.com",
        "-d",
        NAME,
        "--redirect",
    ];
    args.extend(flags.iter().map(String::as_str));
    ok(&agent.with_server(&args, &[]).await);

    let (serial, response) = https_get(https, NAME, &roots).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("hello from apache"), "{response}");
    let plain = http_get(http, NAME).await;
    assert!(plain.starts_with("HTTP/1.1 301"), "{plain}");
    assert!(
        plain
            .to_ascii_lowercase()
            .contains("location: https://apache.example.com"),
        "{plain}"
    );
    let site = std::fs::read_to_string(apache.site_path()).expect("site");
    assert!(
        site.contains("# The site cairn makes HTTPS; this comment stays."),
        "{site}"
    );

    // A second run changes no byte.
    let installed = files_under(apache.root(), &runtime);
    ok(&agent.with_server(&args, &[]).await);
    assert_eq!(files_under(apache.root(), &runtime), installed);

    // A forced renewal: Apache serves the new certificate after a graceful reload.
    ok(&agent
        .run(&["renew", "--force-renewal", "--cert-name", NAME])
        .await);
    let deadline = Instant::now() + Duration::from_secs(10);
    let renewed = loop {
        let (now, _) = https_get(https, NAME, &roots).await;
        if now != serial || Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_ne!(renewed, serial, "Apache still serves the old certificate");
    assert_eq!(files_under(apache.root(), &runtime), installed);
}
