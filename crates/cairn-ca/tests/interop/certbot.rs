//! certbot (PyPI): standalone http-01, forced renewal, preferred chain, and
//! revocation, as its users run it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{Ca, check_issued, peer, run};

/// certbot with its directories kept inside the test's own folder.
fn certbot(program: &Path, ca: &Ca, home: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .env("REQUESTS_CA_BUNDLE", ca.root_pem())
        .arg("--config-dir")
        .arg(home.join("config"))
        .arg("--work-dir")
        .arg(home.join("work"))
        .arg("--logs-dir")
        .arg(home.join("logs"))
        .args(["--non-interactive", "--server", ca.directory()]);
    command
}

fn live(home: &Path, name: &str, file: &str) -> PathBuf {
    home.join("config/live").join(name).join(file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certbot_standalone_issue_renew_and_revoke() {
    let Some(program) = peer("CAIRN_CERTBOT") else {
        return;
    };
    let ca = Ca::start().await;
    let home = ca.work("certbot");
    let port = ca.http01_port.to_string();
    let names = ["cb.example.com", "www.cb.example.com"];

    let program2 = program.clone();
    let (ca, home) = tokio::task::spawn_blocking(move || {
        let standalone = [
            "--standalone",
            "--http-01-address",
            "127.0.0.1",
            "--http-01-port",
            port.as_str(),
        ];
        run(certbot(&program2, &ca, &home)
            .arg("certonly")
            .args(standalone)
            .args(["--agree-tos", "-m", "admin@example.com", "--no-eff-email"])
            .args(["-d", names[0], "-d", names[1]]));
        let first = check_issued(
            ca.root_pem(),
            &live(&home, names[0], "cert.pem"),
            &live(&home, names[0], "chain.pem"),
            &names,
        );

        run(certbot(&program2, &ca, &home)
            .arg("renew")
            // certbot sleeps up to 8 minutes before a non-interactive renewal.
            .arg("--no-random-sleep-on-renew")
            .arg("--force-renewal")
            .args(standalone));
        let renewed = check_issued(
            ca.root_pem(),
            &live(&home, names[0], "cert.pem"),
            &live(&home, names[0], "chain.pem"),
            &names,
        );
        assert_ne!(first, renewed, "renewal must issue a new certificate");
        assert!(
            home.join("config/archive")
                .join(names[0])
                .join("cert2.pem")
                .is_file()
        );

        run(certbot(&program2, &ca, &home).arg("revoke").args([
            "--cert-name",
            names[0],
            "--reason",
            "keycompromise",
            "--no-delete-after-revoke",
        ]));
        (ca, (home, renewed))
    })
    .await
    .expect("certbot steps");
    let (_, revoked) = home;
    let listed = tokio::task::spawn_blocking(move || ca.crl_serials("ecdsa-1"))
        .await
        .expect("CRL");
    assert!(
        listed.contains(&revoked),
        "CRL {listed:?} lacks the revoked serial {revoked}"
    );
}

/// `--preferred-chain` picks the alternate chain (the ECDSA intermediate
/// cross-signed by the RSA root) by its root's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certbot_preferred_chain_selects_the_cross_signed_chain() {
    let Some(program) = peer("CAIRN_CERTBOT") else {
        return;
    };
    let ca = Ca::start().await;
    let home = ca.work("certbot");
    let rsa_root_cn = root_common_names(ca.root_pem())
        .into_iter()
        .find(|cn| cn.contains("RSA"))
        .expect("RSA root");
    let port = ca.http01_port.to_string();
    tokio::task::spawn_blocking(move || {
        run(certbot(&program, &ca, &home)
            .arg("certonly")
            .args([
                "--standalone",
                "--http-01-address",
                "127.0.0.1",
                "--http-01-port",
                port.as_str(),
            ])
            .args(["--agree-tos", "-m", "admin@example.com", "--no-eff-email"])
            .args(["--preferred-chain", rsa_root_cn.as_str()])
            .args(["-d", "chain.example.com"]));
        let chain = std::fs::read_to_string(live(&home, "chain.example.com", "chain.pem"))
            .expect("chain.pem");
        let certs = cairn_proto::pem::decode_all(&chain, "CERTIFICATE");
        let top = certs.last().expect("a chain");
        let (_, top) =
            <x509_parser::certificate::X509Certificate<'_> as x509_parser::prelude::FromDer<
                '_,
                _,
            >>::from_der(top)
            .expect("parses");
        assert!(
            top.issuer().to_string().contains(&rsa_root_cn),
            "chain ends under {}",
            top.issuer()
        );
        check_issued(
            ca.root_pem(),
            &live(&home, "chain.example.com", "cert.pem"),
            &live(&home, "chain.example.com", "chain.pem"),
            &["chain.example.com"],
        );
    })
    .await
    .expect("certbot steps");
}

fn root_common_names(root_pem: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(root_pem).expect("root.pem");
    cairn_proto::pem::decode_all(&text, "CERTIFICATE")
        .iter()
        .map(|der| {
            let (_, cert) =
                <x509_parser::certificate::X509Certificate<'_> as x509_parser::prelude::FromDer<
                    '_,
                    _,
                >>::from_der(der)
                .expect("root parses");
            cert.subject()
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .expect("root has a CN")
                .to_owned()
        })
        .collect()
}
