//! DESIGN: "A 2xx answer means durable: what the client was told exists
//! survives `kill -9`." The real `cairn-ca` binary issues a certificate,
//! is killed with SIGKILL, and starts again on the same data directory
//! and ports: the certificate downloads the same and the account works.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn_client::{Account, AcmeClient};
use cairn_proto::objects::{AccountStatus, ChallengeType, NewAccount, NewOrder, OrderStatus};

use crate::harness::{client_options, dns, http_client, new_key};

/// How long the binary may take to start (it makes its keys the first time).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A `cairn-ca serve` child process, killed on drop.
struct CaProcess {
    child: Child,
    log: PathBuf,
}

impl CaProcess {
    /// Starts `cairn-ca serve --config <config>`; output goes to `log`.
    fn spawn(config: &Path, log: PathBuf) -> Self {
        let out = std::fs::File::create(&log).expect("a log file");
        let err = out.try_clone().expect("the log file again");
        let child = Command::new(env!("CARGO_BIN_EXE_cairn-ca"))
            .arg("serve")
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("cairn-ca starts");
        Self { child, log }
    }

    /// Waits until the directory answers over HTTPS trusting `root.pem`.
    async fn wait_ready(&mut self, directory_url: &str, root_pem: &Path) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("the child's status") {
                panic!("cairn-ca exited with {status}:\n{}", self.log());
            }
            if let Ok(pem) = std::fs::read(root_pem)
                && reqwest::Certificate::from_pem_bundle(&pem).is_ok_and(|c| c.len() == 2)
            {
                let reply = http_client(&pem).get(directory_url).send().await;
                if reply.is_ok_and(|r| r.status().is_success()) {
                    return;
                }
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "cairn-ca did not answer at {directory_url} within {START_TIMEOUT:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL, as `kill -9`: no shutdown code runs.
    fn kill_9(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("the child is reaped");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for CaProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port free a moment ago (bound, then released).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

#[tokio::test(flavor = "multi_thread")]
async fn issued_certificate_and_account_survive_kill_9() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data_dir = dir.path().join("data");
    let (api_port, http_port) = (free_port(), free_port());
    let config = dir.path().join("cairn-ca.toml");
    let data_dir_toml = toml::Value::from(data_dir.to_str().expect("a UTF-8 path"));
    std::fs::write(
        &config,
        format!(
            "dev = true\n\
             data_dir = {data_dir}\n\
             [server]\n\
             listen = \"127.0.0.1:{api_port}\"\n\
             http_listen = \"127.0.0.1:{http_port}\"\n\
             [testing]\n\
             always_valid = true\n",
            data_dir = data_dir_toml,
        ),
    )
    .expect("the config file");
    let directory_url = format!("https://127.0.0.1:{api_port}/directory");
    let root_pem_path = data_dir.join("root.pem");

    let mut ca = CaProcess::spawn(&config, dir.path().join("first.log"));
    ca.wait_ready(&directory_url, &root_pem_path).await;
    let root_pem = std::fs::read(&root_pem_path).expect("root.pem");

    let client = AcmeClient::new(&directory_url, client_options(&root_pem))
        .await
        .expect("the directory");
    let new = NewAccount {
        terms_of_service_agreed: Some(true),
        contact: vec!["mailto:ops@example.com".into()],
        ..NewAccount::default()
    };
    let (account, _) = Account::create(&client, new_key(), &new, None)
        .await
        .expect("newAccount");
    let names = dns(&["durable.test"]);
    let mut order = account
        .new_order(&NewOrder::new(names.clone()))
        .await
        .expect("newOrder");
    for authz in order.authorizations().await.expect("authorizations") {
        let challenge = authz
            .prepare(&account, &ChallengeType::Http01)
            .expect("http-01");
        account.respond(&challenge.url).await.expect("respond");
        account
            .poll_authorization(&authz.url)
            .await
            .expect("valid (always_valid)");
    }
    order.poll_ready().await.expect("ready");
    order
        .finalize(&cairn_client::csr(&names, &new_key()).expect("a CSR"))
        .await
        .expect("finalize");
    order.poll_valid().await.expect("valid");
    let certificate_url = order
        .state()
        .certificate
        .clone()
        .expect("a certificate URL");
    let before = order.certificate().await.expect("the certificate");
    let credentials = account.credentials();

    ca.kill_9();
    let mut ca = CaProcess::spawn(&config, dir.path().join("second.log"));
    ca.wait_ready(&directory_url, &root_pem_path).await;
    assert_eq!(
        std::fs::read(&root_pem_path).expect("root.pem"),
        root_pem,
        "the same roots after the restart"
    );

    let client = AcmeClient::new(&directory_url, client_options(&root_pem))
        .await
        .expect("the directory after the restart");
    let account = Account::from_credentials(&client, credentials).expect("the saved account");
    let order = account
        .order(order.url())
        .await
        .expect("the order is still there");
    assert_eq!(order.state().status, OrderStatus::Valid);
    assert_eq!(
        order.state().certificate.as_deref(),
        Some(certificate_url.as_str())
    );
    let after = order
        .certificate()
        .await
        .expect("the certificate downloads");
    assert_eq!(after.pem, before.pem, "the same certificate chain");
    assert_eq!(after.alternates, before.alternates);

    let info = account.info().await.expect("the account works");
    assert_eq!(info.status, AccountStatus::Valid);
    assert_eq!(info.contact, ["mailto:ops@example.com"]);
    account
        .new_order(&NewOrder::new(dns(&["after.durable.test"])))
        .await
        .expect("the account can still order");
    drop(ca);
}
