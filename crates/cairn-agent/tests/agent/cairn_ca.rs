//! `cairn` against cairn-ca: every solver, renewal, revocation, listing,
//! deletion and the account commands.

use std::os::unix::fs::PermissionsExt as _;

use crate::harness::{Ca, check_lineage, ok, serve_directory, text};

/// Standalone http-01, then the life of the lineage: renew when not due
/// (nothing happens), forced renewal with hooks (archive gets version 2,
/// live links move), listing, revocation (the CRL lists the serial) and
/// deletion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_issue_renew_list_revoke_delete() {
    let ca = Ca::start().await;
    let agent = ca.agent();
    let port = ca.http01_port.to_string();
    let names = ["std.example.com", "www.std.example.com"];
    let standalone = [
        "--standalone",
        "--http-01-address",
        "127.0.0.1",
        "--http-01-port",
        &port,
    ];
    let out = agent
        .certonly(&[&standalone[..], &["-d", names[0], "-d", names[1]]].concat())
        .await;
    let said = ok(&out);
    assert!(said.contains("std.example.com: validated"), "{said}");
    assert!(
        said.contains("live/std.example.com/fullchain.pem"),
        "{said}"
    );
    let first = check_lineage(&agent, names[0], 1, &names);
    let accounts = agent.config_dir.join("accounts");
    let account_file = walk(&accounts)
        .into_iter()
        .find(|p| p.ends_with("account.json"))
        .expect("account.json saved");
    assert_eq!(
        std::fs::metadata(&account_file)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let renewal = std::fs::read_to_string(agent.config_dir.join("renewal/std.example.com.toml"))
        .expect("renewal settings");
    assert!(renewal.contains("kind = \"standalone\""), "{renewal}");

    // certonly again for the same names: kept, not due.
    let said = ok(&agent
        .certonly(&[&standalone[..], &["-d", names[0], "-d", names[1]]].concat())
        .await);
    assert!(said.contains("not due for renewal"), "{said}");

    // renew: nothing due, exit 0, nothing changes.
    let said = ok(&agent.run(&["renew"]).await);
    assert!(said.contains("not due until"), "{said}");
    assert!(!agent.archive(names[0], "cert2.pem").exists());

    // Forced renewal with the three hooks.
    let log = ca.dir.path().join("hooks.log");
    let deploy = format!(
        "echo \"deploy $RENEWED_LINEAGE|$RENEWED_DOMAINS\" >> {}",
        log.display()
    );
    let pre = format!("echo pre >> {}", log.display());
    let post = format!("echo post >> {}", log.display());
    let said = ok(&agent
        .run(&[
            "renew",
            "--force-renewal",
            "--deploy-hook",
            &deploy,
            "--pre-hook",
            &pre,
            "--post-hook",
            &post,
        ])
        .await);
    assert!(said.contains("1 renewed"), "{said}");
    let renewed = check_lineage(&agent, names[0], 2, &names);
    assert_ne!(first, renewed);
    assert!(
        agent.archive(names[0], "cert1.pem").is_file(),
        "old versions are kept"
    );
    let hooks = std::fs::read_to_string(&log).expect("hooks ran");
    let lineage = agent.config_dir.join("live/std.example.com");
    assert_eq!(
        hooks,
        format!(
            "pre\ndeploy {}|std.example.com www.std.example.com\npost\n",
            lineage.display()
        )
    );

    // certificates --json
    let listed = ok(&agent.run(&["certificates", "--json"]).await);
    let json_start = listed.find('[').expect("JSON");
    let json_end = listed.rfind(']').expect("JSON") + 1;
    let listed: serde_json::Value =
        serde_json::from_str(&listed[json_start..json_end]).expect("JSON");
    assert_eq!(listed[0]["name"], "std.example.com");
    assert_eq!(listed[0]["domains"], serde_json::json!(names));
    assert_eq!(listed[0]["serial"], renewed.as_str());
    assert_eq!(listed[0]["valid"], true);
    assert!(listed[0]["days_left"].as_i64().expect("days") >= 88);
    let table = ok(&agent.run(&["certificates"]).await);
    assert!(
        table.contains("VALID: 89 days left") || table.contains("VALID: 88 days left"),
        "{table}"
    );

    // revoke: the CRL lists the serial.
    let said = ok(&agent
        .with_server(
            &["revoke"],
            &["--cert-name", names[0], "--reason", "keycompromise"],
        )
        .await);
    assert!(said.contains(&renewed), "{said}");
    let crl = ca.crl_serials("ecdsa-1").await;
    assert!(crl.contains(&renewed), "CRL {crl:?} lacks {renewed}");

    // delete
    ok(&agent.run(&["delete", "--cert-name", names[0]]).await);
    assert!(!agent.config_dir.join("live/std.example.com").exists());
    assert!(!agent.config_dir.join("archive/std.example.com").exists());
    assert!(
        !agent
            .config_dir
            .join("renewal/std.example.com.toml")
            .exists()
    );
    let out = agent.run(&["delete", "--cert-name", names[0]]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = ok(&agent.run(&["renew"]).await);
    assert!(said.contains("nothing to renew"), "{said}");
}

/// Webroot: the agent writes the key authorization where a web server
/// (here a tiny one on the CA's http-01 port) serves it, then removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webroot() {
    let ca = Ca::start().await;
    let agent = ca.agent();
    let root = ca.dir.path().join("www");
    std::fs::create_dir_all(&root).expect("webroot");
    let server = serve_directory(root.clone(), ca.http01_port).await;
    let root_arg = root.to_string_lossy().into_owned();
    ok(&agent
        .certonly(&[
            "--webroot",
            "-w",
            &root_arg,
            "-d",
            "web.example.com",
            "--key-type",
            "rsa2048",
        ])
        .await);
    server.abort();
    check_lineage(&agent, "web.example.com", 1, &["web.example.com"]);
    assert!(
        !root.join(".well-known").exists(),
        "challenge files are cleaned up"
    );
    let key = std::fs::read_to_string(agent.live("web.example.com", "privkey.pem")).expect("key");
    let key = cairn_proto::KeyPair::from_pkcs8_pem(&key).expect("key");
    assert_eq!(key.key_type(), cairn_proto::KeyType::Rsa2048);
}

/// Manual hooks, http-01 and dns-01 with a wildcard: certbot-style shell
/// hooks drive cairn-testkit's management API, and see certbot's variables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_hooks_http01_and_dns01_wildcard() {
    let ca = Ca::start().await;
    let agent = ca.agent();
    // http-01 is answered by cairn-testkit's own responder: move the CA
    // onto it by starting one on the CA's port.
    let responder = cairn_testkit::TestServer::start(cairn_testkit::TestServerConfig {
        dns: None,
        tls_alpn01: None,
        http01: Some(
            format!("127.0.0.1:{}", ca.http01_port)
                .parse()
                .expect("addr"),
        ),
        ..cairn_testkit::TestServerConfig::default()
    })
    .await
    .expect("http-01 responder");
    let http_management = responder.management_addr().expect("management");
    let env_log = ca.dir.path().join("env.log");
    let auth = format!(
        "echo \"$CERTBOT_DOMAIN|$CERTBOT_TOKEN|$CERTBOT_REMAINING_CHALLENGES|$CERTBOT_ALL_DOMAINS\" >> {log}; \
         curl -sf -d \"{{\\\"token\\\":\\\"$CERTBOT_TOKEN\\\",\\\"content\\\":\\\"$CERTBOT_VALIDATION\\\"}}\" \
         http://{http_management}/add-http01 && echo provisioned-$CERTBOT_DOMAIN",
        log = env_log.display()
    );
    let cleanup = format!(
        "echo \"cleanup $CERTBOT_DOMAIN $CERTBOT_AUTH_OUTPUT\" >> {log}; \
         curl -sf -d \"{{\\\"token\\\":\\\"$CERTBOT_TOKEN\\\"}}\" http://{http_management}/del-http01",
        log = env_log.display()
    );
    ok(&agent
        .certonly(&[
            "--manual",
            "--manual-auth-hook",
            &auth,
            "--manual-cleanup-hook",
            &cleanup,
            "-d",
            "m1.example.com",
            "-d",
            "m2.example.com",
        ])
        .await);
    check_lineage(
        &agent,
        "m1.example.com",
        1,
        &["m1.example.com", "m2.example.com"],
    );
    let log = std::fs::read_to_string(&env_log).expect("hooks ran");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 4, "{log}");
    let fields: Vec<&str> = lines[0].split('|').collect();
    assert_eq!(fields[0], "m1.example.com");
    assert_eq!(fields[1].len(), 43, "a base64url token: {log}");
    assert_eq!(fields[2], "1");
    assert_eq!(fields[3], "m1.example.com,m2.example.com");
    assert!(
        lines[1].starts_with("m2.example.com|") && lines[1].contains("|0|"),
        "{log}"
    );
    assert_eq!(
        lines[2],
        "cleanup m1.example.com provisioned-m1.example.com"
    );

    // dns-01 for a name and its wildcard through /set-txt on the CA's DNS.
    let dns_management = ca.management();
    let auth = format!(
        "curl -sf -d \"{{\\\"host\\\":\\\"_acme-challenge.$CERTBOT_DOMAIN.\\\",\\\"value\\\":\\\"$CERTBOT_VALIDATION\\\"}}\" \
         http://{dns_management}/set-txt"
    );
    let cleanup = format!(
        "curl -sf -d \"{{\\\"host\\\":\\\"_acme-challenge.$CERTBOT_DOMAIN.\\\"}}\" http://{dns_management}/clear-txt"
    );
    ok(&agent
        .certonly(&[
            "--manual",
            "--preferred-challenges",
            "dns",
            "--manual-auth-hook",
            &auth,
            "--manual-cleanup-hook",
            &cleanup,
            "-d",
            "*.wild.example.com",
            "-d",
            "wild.example.com",
        ])
        .await);
    check_lineage(
        &agent,
        "wild.example.com",
        1,
        &["*.wild.example.com", "wild.example.com"],
    );
}

/// Standalone tls-alpn-01 on the CA's tls-alpn-01 port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_alpn01_standalone() {
    let ca = Ca::start().await;
    let agent = ca.agent();
    let port = ca.tls_alpn01_port.to_string();
    let said = ok(&agent
        .certonly(&[
            "--tls-alpn",
            "--tls-alpn-01-address",
            "127.0.0.1",
            "--tls-alpn-01-port",
            &port,
            "-d",
            "alpn.example.com",
            "--cert-name",
            "alpn",
            "--dry-run",
        ])
        .await);
    assert!(said.contains("dry run was successful"), "{said}");
    assert!(!agent.config_dir.join("live").exists() && !agent.config_dir.join("renewal").exists());
    ok(&agent
        .certonly(&[
            "--tls-alpn",
            "--tls-alpn-01-address",
            "127.0.0.1",
            "--tls-alpn-01-port",
            &port,
            "-d",
            "alpn.example.com",
            "--cert-name",
            "alpn",
            "--key-type",
            "ecdsa-p384",
            "--issuer-roots",
            &agent.ca_bundle.to_string_lossy(),
        ])
        .await);
    check_lineage(&agent, "alpn", 1, &["alpn.example.com"]);
    let renewal =
        std::fs::read_to_string(agent.config_dir.join("renewal/alpn.toml")).expect("saved");
    assert!(renewal.contains("kind = \"tls-alpn\""), "{renewal}");
}

/// A failed validation says which name, the problem type, the CA's detail
/// and what to try; usage errors exit 2; nothing is saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_explained_and_exit_codes_hold() {
    let ca = Ca::start().await;
    let agent = ca.agent();
    // Listen where the CA does not look.
    let wrong_port = crate::harness::free_port().to_string();
    let out = agent
        .certonly(&[
            "--standalone",
            "--http-01-address",
            "127.0.0.1",
            "--http-01-port",
            &wrong_port,
            "-d",
            "fail.example.com",
        ])
        .await;
    assert_eq!(out.status.code(), Some(1));
    let said = text(&out);
    assert!(
        said.contains("validating fail.example.com failed"),
        "{said}"
    );
    assert!(
        said.contains("dns:fail.example.com is invalid: connection"),
        "{said}"
    );
    assert!(said.contains("what to try:"), "{said}");
    assert!(!agent.config_dir.join("live/fail.example.com").exists());
    assert!(
        !agent
            .config_dir
            .join("renewal/fail.example.com.toml")
            .exists()
    );

    for args in [
        &["certonly", "-d", "a.example.com"][..],
        &["certonly", "--standalone", "-d", "a..example.com"],
        &[
            "certonly",
            "--standalone",
            "-d",
            "a.example.com",
            "--cert-name",
            "../etc",
        ],
        &[
            "certonly",
            "--standalone",
            "--manual",
            "-d",
            "a.example.com",
        ],
        &["certonly", "--manual", "-d", "a.example.com"],
        &["revoke"],
        &["bogus"],
    ] {
        let out = agent.run(args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
    }
    let help = ok(&agent.run(&["--help"]).await);
    assert!(
        help.contains("Exit status") && help.contains("3  renew"),
        "{help}"
    );
}

/// register, account show / update / rollover-key / deactivate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_commands() {
    let ca = Ca::start().await;
    let agent = ca.agent();
    ok(&agent
        .with_server(&["register"], &["--agree-tos", "-m", "one@example.com"])
        .await);
    let out = agent.with_server(&["register"], &["--agree-tos"]).await;
    assert_eq!(out.status.code(), Some(2), "a second account is refused");
    let shown = ok(&agent.with_server(&["account", "show"], &[]).await);
    assert!(
        shown.contains("mailto:one@example.com") && shown.contains("valid"),
        "{shown}"
    );
    ok(&agent
        .with_server(&["account", "update"], &["--email", "two@example.com"])
        .await);
    let shown = ok(&agent.with_server(&["account", "show"], &[]).await);
    assert!(shown.contains("mailto:two@example.com"), "{shown}");
    let said = ok(&agent
        .with_server(&["account", "rollover-key"], &["--key-type", "ecdsa-p384"])
        .await);
    assert!(said.contains("Rolled the account"), "{said}");
    let shown = ok(&agent.with_server(&["account", "show"], &[]).await);
    assert!(shown.contains("ecdsa-p384"), "{shown}");
    // The rolled-over account still orders certificates.
    let port = ca.http01_port.to_string();
    ok(&agent
        .certonly(&[
            "--standalone",
            "--http-01-address",
            "127.0.0.1",
            "--http-01-port",
            &port,
            "-d",
            "acct.example.com",
        ])
        .await);
    ok(&agent.with_server(&["account", "deactivate"], &[]).await);
    let out = agent.with_server(&["account", "show"], &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("no account"), "{}", text(&out));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// dns-01 by RFC 2136 UPDATE with TSIG against a real BIND9 (`named` from
/// Debian's bind9), authoritative for `test.` and the CA's resolver. Runs
/// with `CAIRN_BIND` set; then a missing `named` fails it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(peer_bind), ignore = "needs CAIRN_BIND=1 (and bind9)")]
async fn dns_rfc2136_with_tsig_against_bind9() {
    let bind = crate::bind::Bind::start().await;
    let port = bind.port;
    let ca = Ca::start_with_resolver(Some(bind.addr())).await;
    let agent = ca.agent();
    let credentials_path = bind.credentials();
    let credentials = credentials_path.to_string_lossy().into_owned();
    let names = ["*.rfc.test", "rfc.test"];
    let out = agent
        .certonly(&[
            "--dns-rfc2136",
            "--dns-rfc2136-credentials",
            &credentials,
            "--dns-rfc2136-propagation-seconds",
            "0",
            "-d",
            names[0],
            "-d",
            names[1],
        ])
        .await;
    let said = ok(&out);
    assert!(said.contains("DNS UPDATE to 127.0.0.1"), "{said}");
    check_lineage(&agent, "rfc.test", 1, &names);
    // The TXT records were removed again: BIND answers no TXT data.
    let dig = tokio::process::Command::new("dig")
        .args([
            "+short",
            "-p",
            &port.to_string(),
            "@127.0.0.1",
            "TXT",
            "_acme-challenge.rfc.test",
        ])
        .output()
        .await;
    if let Ok(dig) = dig {
        assert!(
            String::from_utf8_lossy(&dig.stdout).trim().is_empty(),
            "TXT left behind"
        );
    }

    // A wrong secret is refused with a message about the key.
    bind.write_credentials(&credentials_path, "d3Jvbmc=");
    let out = agent
        .certonly(&[
            "--dns-rfc2136",
            "--dns-rfc2136-credentials",
            &credentials,
            "--dns-rfc2136-propagation-seconds",
            "0",
            "-d",
            "bad.rfc.test",
        ])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("dns_rfc2136_secret"), "{}", text(&out));
}

/// RFC 9773: once the CA's renewal information says a certificate should be
/// replaced now (here: it was revoked), `cairn renew` renews it before the
/// lifetime rule would, and the new order names the old one in `replaces`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ari_window_in_the_past_renews_and_sends_replaces() {
    let ca = Ca::start().await;
    let agent = ca.agent();
    let port = ca.http01_port.to_string();
    let standalone = [
        "--standalone",
        "--http-01-address",
        "127.0.0.1",
        "--http-01-port",
        port.as_str(),
    ];
    let name = "ari.example.com";
    ok(&agent
        .certonly(&[&standalone[..], &["-d", name]].concat())
        .await);
    let said = ok(&agent.run(&["renew"]).await);
    assert!(said.contains("not due until"), "{said}");

    let first_pem = std::fs::read_to_string(agent.archive(name, "cert1.pem")).expect("cert1");
    let first_der = cairn_proto::pem::decode_one(&first_pem, "CERTIFICATE").expect("a certificate");
    let first_id = cairn_ca::signer::leaf_ari_cert_id(&first_der)
        .expect("ARI id")
        .to_string();
    ok(&agent
        .run(&["revoke", "--cert-name", name, "--reason", "superseded"])
        .await);

    ok(&agent.run(&["renew"]).await);
    let second = agent.archive(name, "cert2.pem");
    assert!(
        second.exists(),
        "renew did not replace the certificate ARI says to replace now"
    );
    let second_pem = std::fs::read_to_string(&second).expect("cert2");
    let second_der =
        cairn_proto::pem::decode_one(&second_pem, "CERTIFICATE").expect("a certificate");
    let serial = cairn_ca::signer::serial_hex(
        &cairn_ca::signer::certificate_serial(&second_der).expect("serial"),
    );
    let store = ca.running.wfe.ra.store();
    let cert = store
        .certificate(&serial)
        .await
        .expect("read")
        .expect("the CA has the new certificate");
    let order = store
        .order(cert.order_id.expect("an order"))
        .await
        .expect("read")
        .expect("the order");
    assert_eq!(order.replaces.as_deref(), Some(first_id.as_str()));
}
