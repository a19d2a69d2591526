//! `cairn run --nginx` and friends against a real nginx in a private prefix
//! (cairn-testkit's launcher), with cairn-ca in this process as the CA.
//! Needs `CAIRN_NGINX` (scripts/install-peers prints it).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cairn_testkit::webserver::nginx::Nginx;

use crate::harness::{Agent, Ca, ok, text};
use crate::install::{ctl_wrapper, files_under, http_get, https_get, overhead_ms};

pub(crate) const NAME: &str = "site.example.com";
/// What nginx writes while it runs: not part of its configuration.
const RUNTIME: &[&str] = &["logs", "temp", "config-tests"];

pub(crate) struct Site {
    pub(crate) nginx: Nginx,
    pub(crate) ctl: PathBuf,
    _dir: tempfile::TempDir,
}

impl Site {
    /// nginx serving NAME over plain HTTP on the CA's http-01 port.
    pub(crate) fn start(http_port: u16) -> Site {
        let dir = tempfile::tempdir().expect("tempdir");
        let prefix = dir.path().join("nginx");
        std::fs::create_dir(&prefix).expect("mkdir");
        let body = format!(
            "# The site cairn makes HTTPS. {{braces}} and \"quotes\" in a comment stay.\n\
             server {{\n    listen 127.0.0.1:{http_port};\n    server_name {NAME};\n    \
             root {{prefix}}/html;\n}}\n"
        );
        let nginx = Nginx::start(&prefix, &body).expect("nginx starts");
        let ctl = ctl_wrapper(dir.path(), nginx.program(), &prefix_args(&nginx), &[], None);
        Site {
            nginx,
            ctl,
            _dir: dir,
        }
    }

    fn prefix(&self) -> &Path {
        self.nginx.prefix()
    }

    pub(crate) fn files(&self) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
        files_under(self.prefix(), RUNTIME)
    }

    /// The installer flags for this nginx, with `ctl` as --nginx-ctl.
    pub(crate) fn flags(&self, ctl: &Path, http_port: u16) -> Vec<String> {
        [
            "--nginx",
            "--nginx-server-root",
            &self.prefix().to_string_lossy(),
            "--nginx-ctl",
            &ctl.to_string_lossy(),
            "--nginx-sleep-seconds",
            "0.2",
            "--http-01-port",
            &http_port.to_string(),
            "--https-port",
            &self.nginx.https_port().to_string(),
        ]
        .map(String::from)
        .to_vec()
    }
}

/// `-p PREFIX -e ERROR_LOG`: cairn passes `-c CONF` itself.
fn prefix_args(nginx: &Nginx) -> Vec<String> {
    vec![
        "-p".into(),
        nginx.prefix().to_string_lossy().into_owned(),
        "-e".into(),
        nginx.error_log().to_string_lossy().into_owned(),
    ]
}

pub(crate) async fn run(
    agent: &Agent,
    command: &[&str],
    flags: &[String],
    extra: &[&str],
) -> std::process::Output {
    let mut args: Vec<&str> = command.to_vec();
    args.extend(flags.iter().map(String::as_str));
    args.extend(extra);
    if command[0] == "run" {
        agent.with_server(&args, &[]).await
    } else {
        agent.run(&args).await
    }
}

/// The served certificate's serial, once it is `wanted` (or is not `old`).
async fn wait_for_serial(port: u16, roots: &Path, old: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (serial, _) = https_get(port, NAME, roots).await;
        if serial != old || Instant::now() > deadline {
            return serial;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(peer_nginx), ignore = "needs CAIRN_NGINX")]
async fn nginx_run_serves_https_redirects_and_renews_and_rolls_back() {
    let ca = Ca::start().await;
    let agent = ca.agent();
    let site = Site::start(ca.http01_port);
    let flags = site.flags(&site.ctl, ca.http01_port);
    let original = site.files();
    let https = site.nginx.https_port();
    let roots = ca.running.root_pem.clone();

    let out = ok(&run(
        &agent,
        &["run", "-v", "--agree-tos", "-m", "admin@example.com"],
        &flags,
        &["-d", NAME, "--redirect", "--hsts"],
    )
    .await);
    assert!(
        out.contains("now serves site.example.com over HTTPS"),
        "{out}"
    );
    let overhead = overhead_ms(&out).expect("cairn logs its overhead");
    eprintln!(
        "cairn's own time for the nginx install (besides nginx -t and reload): {overhead:.1} ms"
    );

    // HTTPS with a chain to the CA's root; HSTS; http → 301 to https.
    let (serial, response) = https_get(https, NAME, &roots).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("hello from nginx"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("strict-transport-security: max-age="),
        "{response}"
    );
    let plain = http_get(ca.http01_port, NAME).await;
    assert!(plain.starts_with("HTTP/1.1 301"), "{plain}");
    assert!(
        plain
            .to_ascii_lowercase()
            .contains("location: https://site.example.com"),
        "{plain}"
    );

    // Every line cairn added is marked; the user's comment is intact; the
    // temporary http-01 location is gone.
    let installed = site.files();
    let site_file = std::fs::read_to_string(site.nginx.site_path()).expect("site");
    assert!(
        site_file.contains("{braces} and \"quotes\" in a comment stay."),
        "{site_file}"
    );
    assert!(site_file.contains("# managed by cairn"), "{site_file}");
    assert!(!site_file.contains("acme-challenge"), "{site_file}");
    let renewal = std::fs::read_to_string(agent.config_dir.join(format!("renewal/{NAME}.toml")))
        .expect("renewal config");
    assert!(
        renewal.contains("[installer]") && renewal.contains("redirect = true"),
        "{renewal}"
    );

    // The same command again changes no byte.
    ok(&run(
        &agent,
        &["run", "--agree-tos", "-m", "admin@example.com"],
        &flags,
        &["-d", NAME, "--redirect", "--hsts"],
    )
    .await);
    assert_eq!(site.files(), installed, "a second run changed files");
    let changes = ok(&run(&agent, &["config_changes"], &flags[..1], &[]).await);
    assert!(
        changes.contains("nginx checkpoint 1") && !changes.contains("checkpoint 2"),
        "{changes}"
    );

    // A forced renewal: the served serial changes, the files do not.
    ok(&agent
        .run(&["renew", "--force-renewal", "--cert-name", NAME])
        .await);
    let renewed = wait_for_serial(https, &roots, &serial).await;
    assert_ne!(renewed, serial, "nginx still serves the old certificate");
    assert_eq!(site.files(), installed);

    // --dry-run shows a diff and writes nothing.
    let diff = ok(&run(
        &agent,
        &["enhance", "--dry-run"],
        &flags,
        &["--uir", "--cert-name", NAME],
    )
    .await);
    assert!(
        diff.contains("+++ ") && diff.contains("upgrade-insecure-requests"),
        "{diff}"
    );
    assert_eq!(site.files(), installed);

    // Rollback puts every byte back; nginx serves plain HTTP again.
    let out = ok(&run(&agent, &["rollback"], &flags[..7], &["--checkpoints", "1"]).await);
    assert!(out.contains("Rolled back checkpoint 1"), "{out}");
    assert_eq!(site.files(), original);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let plain = http_get(ca.http01_port, NAME).await;
    assert!(plain.starts_with("HTTP/1.1 200"), "{plain}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(peer_nginx), ignore = "needs CAIRN_NGINX")]
async fn nginx_broken_config_is_refused_and_a_failed_test_after_the_edit_restores_every_byte() {
    let ca = Ca::start().await;
    let agent = ca.agent();
    let site = Site::start(ca.http01_port);
    let flags = site.flags(&site.ctl, ca.http01_port);
    let https = site.nginx.https_port();
    let roots = ca.running.root_pem.clone();

    // A syntax error in an included file: refused, quoting nginx, nothing changed.
    let broken = site.prefix().join("sites-enabled/zz-broken");
    std::fs::write(
        &broken,
        "server {\n    listen 127.0.0.1:1;\n    bogus_directive on\n",
    )
    .expect("plant");
    let before = site.files();
    let failed = run(
        &agent,
        &["run", "--agree-tos", "-m", "admin@example.com"],
        &flags,
        &["-d", NAME],
    )
    .await;
    assert!(!failed.status.success());
    let message = text(&failed);
    assert!(
        message.contains("zz-broken"),
        "nginx's message is quoted: {message}"
    );
    assert_eq!(site.files(), before, "a refused run changed files");
    std::fs::remove_file(&broken).expect("unplant");

    // A good install, then an enhancement whose test after the edit fails.
    ok(&run(
        &agent,
        &["run", "--agree-tos", "-m", "admin@example.com"],
        &flags,
        &["-d", NAME],
    )
    .await);
    let installed = site.files();
    let (serial, _) = https_get(https, NAME, &roots).await;
    let failing = ctl_wrapper(
        site._dir.path(),
        site.nginx.program(),
        &prefix_args(&site.nginx),
        &[],
        Some(2),
    );
    let failing_flags = site.flags(&failing, ca.http01_port);
    let failed = run(
        &agent,
        &["enhance"],
        &failing_flags,
        &["--redirect", "--cert-name", NAME],
    )
    .await;
    assert!(!failed.status.success());
    assert!(
        text(&failed).contains("injected failure"),
        "{}",
        text(&failed)
    );
    assert_eq!(
        site.files(),
        installed,
        "every file is restored byte for byte"
    );
    // nginx still serves the old configuration: HTTPS with the same
    // certificate, plain HTTP without a redirect.
    let (still, _) = https_get(https, NAME, &roots).await;
    assert_eq!(still, serial);
    let plain = http_get(ca.http01_port, NAME).await;
    assert!(plain.starts_with("HTTP/1.1 200"), "{plain}");
    let changes = ok(&run(&agent, &["config_changes"], &flags[..1], &[]).await);
    assert!(
        !changes.contains("checkpoint 2"),
        "a failed change leaves no checkpoint: {changes}"
    );
}
