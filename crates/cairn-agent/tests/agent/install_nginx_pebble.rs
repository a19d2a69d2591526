//! `cairn run --nginx` against Pebble instead of cairn-ca: a real nginx in
//! a private prefix (the nginx tests' [`Site`]) listening on the port
//! Pebble validates http-01 on, Pebble refusing nonces at random
//! (`PEBBLE_WFE_NONCEREJECT`), pebble-challtestsrv as its DNS (every name
//! is 127.0.0.1). Needs `CAIRN_NGINX` and `CAIRN_PEBBLE=1`.

use crate::harness::{check_lineage, ok};
use crate::install::{files_under, https_get};
use crate::install_nginx::{NAME, Site, run};
use crate::pebble_peers::{Peers, Ports};

/// The share of good nonces Pebble refuses with `badNonce`: Pebble's own
/// default is 5 %; a run sends about ten POSTs, so at 50 % one is all but
/// certainly refused, and the agent's retries must get it through.
const NONCE_REJECT: u8 = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(all(peer_nginx, peer_pebble)),
    ignore = "needs CAIRN_NGINX and CAIRN_PEBBLE=1"
)]
async fn nginx_run_against_pebble_with_bad_nonces_serves_https_and_a_second_run_changes_nothing() {
    let peers = Peers::start_with_nonce_reject(Ports::new(6), None, Some(NONCE_REJECT))
        .expect("CAIRN_PEBBLE=1");
    let agent = peers.agent();
    // Pebble's http-01 validations go to NAME (127.0.0.1 by challtestsrv)
    // on its configured `httpPort`: that is where nginx listens.
    let http01 = peers.ports.http01;
    let site = Site::start(http01);
    let flags = site.flags(&site.ctl, http01);
    let https = site.nginx.https_port();
    let roots = peers.roots().await;
    let root = peers.dir.path().join("pebble-root.pem");
    std::fs::write(&root, &roots[0]).expect("write the root");

    let command = ["run", "-vv", "--agree-tos", "-m", "admin@example.com"];
    let first = run(&agent, &command, &flags, &["-d", NAME]).await;
    let out = ok(&first);
    assert!(
        out.contains("now serves site.example.com over HTTPS"),
        "{out}"
    );
    let retried = out
        .lines()
        .filter(|l| l.contains("badNonce; retrying"))
        .count();
    eprintln!("badNonce refusals retried in the first run: {retried}");
    assert!(
        retried > 0,
        "Pebble refused no nonce: is PEBBLE_WFE_NONCEREJECT={NONCE_REJECT} in effect?"
    );
    let issued = check_lineage(&agent, NAME, 1, &[NAME]);

    // HTTPS with a chain to Pebble's root, serving the certificate issued.
    let (serial, response) = https_get(https, NAME, &root).await;
    assert_eq!(serial, issued, "nginx serves the certificate cairn saved");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("hello from nginx"), "{response}");
    let site_file = std::fs::read_to_string(site.nginx.site_path()).expect("site");
    assert!(site_file.contains("# managed by cairn"), "{site_file}");
    assert!(!site_file.contains("acme-challenge"), "{site_file}");

    // The same command again changes no byte: not nginx's files, not the
    // certificate lineage and its renewal config.
    let installed = site.files();
    let saved = || {
        let mut files = files_under(&agent.config_dir.join("archive"), &[]);
        files.extend(files_under(&agent.config_dir.join("renewal"), &[]));
        files
    };
    let lineage = saved();
    ok(&run(&agent, &command, &flags, &["-d", NAME]).await);
    assert_eq!(
        site.files(),
        installed,
        "a second run changed nginx's files"
    );
    assert_eq!(saved(), lineage, "a second run changed the lineage");
    let changes = ok(&run(&agent, &["config_changes"], &flags[..1], &[]).await);
    assert!(
        changes.contains("nginx checkpoint 1") && !changes.contains("checkpoint 2"),
        "{changes}"
    );
    let (still, _) = https_get(https, NAME, &root).await;
    assert_eq!(still, serial);
}
