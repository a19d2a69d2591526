//! lego (Debian): http-01, tls-alpn-01, and dns-01 with a wildcard through
//! its `exec` provider, which sets TXT records in the test DNS server.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{Ca, check_issued, peer, run};

fn lego(program: &Path, ca: &Ca, home: &Path, names: &[&str]) -> Command {
    let mut command = Command::new(program);
    command
        .env("LEGO_CA_CERTIFICATES", ca.root_pem())
        .args([
            "--server",
            ca.directory(),
            "--email",
            "admin@example.com",
            "--accept-tos",
        ])
        .arg("--path")
        .arg(home);
    for name in names {
        command.args(["--domains", name]);
    }
    command
}

/// lego writes the leaf and its chain into one `.crt`, the chain alone into
/// `.issuer.crt`; the leaf file is named after the first domain.
fn check(ca: &Ca, home: &Path, names: &[&str]) {
    let base = names[0].replace('*', "_");
    let certs = home.join("certificates");
    let leaf = split_leaf(&certs.join(format!("{base}.crt")));
    check_issued(
        ca.root_pem(),
        &leaf,
        &certs.join(format!("{base}.issuer.crt")),
        names,
    );
}

fn split_leaf(bundle: &Path) -> PathBuf {
    let text = std::fs::read_to_string(bundle).expect("lego certificate");
    let der = cairn_proto::pem::decode_one(&text, "CERTIFICATE").expect("a certificate");
    let leaf = bundle.with_extension("leaf.pem");
    std::fs::write(&leaf, cairn_proto::pem::encode("CERTIFICATE", &der)).expect("write leaf");
    leaf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_http01() {
    let Some(program) = peer("CAIRN_LEGO") else {
        return;
    };
    let ca = Ca::start().await;
    let home = ca.work("lego");
    let port = format!("127.0.0.1:{}", ca.http01_port);
    let names = ["lh.example.com", "www.lh.example.com"];
    tokio::task::spawn_blocking(move || {
        run(lego(&program, &ca, &home, &names).args([
            "--http",
            "--http.port",
            port.as_str(),
            "run",
        ]));
        check(&ca, &home, &names);
    })
    .await
    .expect("lego");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_tls_alpn01() {
    let Some(program) = peer("CAIRN_LEGO") else {
        return;
    };
    let ca = Ca::start().await;
    let home = ca.work("lego");
    let port = format!("127.0.0.1:{}", ca.tls_alpn01_port);
    let names = ["lt.example.com"];
    tokio::task::spawn_blocking(move || {
        run(lego(&program, &ca, &home, &names).args(["--tls", "--tls.port", port.as_str(), "run"]));
        check(&ca, &home, &names);
    })
    .await
    .expect("lego");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_dns01_with_a_wildcard() {
    let Some(program) = peer("CAIRN_LEGO") else {
        return;
    };
    let ca = Ca::start().await;
    let home = ca.work("lego");
    let hook = home.join("dns-hook.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\n# lego exec provider: present|cleanup FQDN VALUE\n\
             case \"$1\" in\n\
               present) curl -sf -X POST -d \"{{\\\"host\\\":\\\"$2\\\",\\\"value\\\":\\\"$3\\\"}}\" http://{m}/set-txt ;;\n\
               cleanup) curl -sf -X POST -d \"{{\\\"host\\\":\\\"$2\\\"}}\" http://{m}/clear-txt ;;\n\
             esac\n",
            m = ca.management()
        ),
    )
    .expect("hook");
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let resolver = ca.dns.dns_addr().expect("dns").to_string();
    let names = ["ld.example.com", "*.ld.example.com"];
    tokio::task::spawn_blocking(move || {
        run(lego(&program, &ca, &home, &names)
            .env("EXEC_PATH", &hook)
            .env("EXEC_SEQUENCE_INTERVAL", "1")
            .env("EXEC_POLLING_INTERVAL", "1")
            .env("EXEC_PROPAGATION_TIMEOUT", "30")
            .args([
                "--dns",
                "exec",
                "--dns.resolvers",
                resolver.as_str(),
                "--dns.disable-cp",
                "run",
            ]));
        check(&ca, &home, &names);
    })
    .await
    .expect("lego");
}
