//! A real BIND 9 (`named` from Debian's bind9) on a loopback port of its
//! own, authoritative for `test.` and accepting RFC 2136 UPDATEs of TXT
//! records signed with one TSIG key. Shared by the agent's and the proxy's
//! tests (`#[path]`-included); their tests using it are gated on
//! `CAIRN_BIND` (cfg `peer_bind`), and then a missing `named` fails.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The TSIG key's secret (base64 of 32 bytes).
pub(crate) const SECRET: &str = "Y2Fpcm4tdHNpZy10ZXN0LXNlY3JldC0zMi1ieXRlcyE=";

/// A running `named`, killed on drop.
pub(crate) struct Bind {
    pub(crate) port: u16,
    pub(crate) work: tempfile::TempDir,
    _child: tokio::process::Child,
}

impl Bind {
    /// Starts `named` for zone `test.` on a free loopback port and waits
    /// until it listens.
    pub(crate) async fn start() -> Bind {
        let named = find_named();
        let work = tempfile::tempdir().expect("tempdir");
        let port = crate::harness::free_port();
        let conf = format!(
            r#"options {{
    directory "{dir}";
    pid-file "{dir}/named.pid";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
}};
controls {{ }};
key "cairn-key." {{ algorithm hmac-sha256; secret "{SECRET}"; }};
zone "test" {{
    type primary;
    file "{dir}/test.zone";
    update-policy {{ grant cairn-key. zonesub TXT; }};
}};
"#,
            dir = work.path().display()
        );
        std::fs::write(work.path().join("named.conf"), conf).expect("write");
        std::fs::write(
            work.path().join("test.zone"),
            "$TTL 60\n@ IN SOA ns.test. admin.test. 1 60 60 600 60\n@ IN NS ns.test.\nns IN A 127.0.0.1\n",
        )
        .expect("write");
        let log_path = work.path().join("named.log");
        let log = std::fs::File::create(&log_path).expect("log");
        let mut child = tokio::process::Command::new(named)
            .arg("-g")
            .arg("-c")
            .arg(work.path().join("named.conf"))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("named starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "named exited with {status}:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "named does not listen");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Bind {
            port,
            work,
            _child: child,
        }
    }

    /// Where BIND answers DNS (for the CA's resolver).
    pub(crate) fn addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// Writes certbot-dns-rfc2136 credentials for this server with
    /// `secret` to `path`.
    pub(crate) fn write_credentials(&self, path: &Path, secret: &str) {
        std::fs::write(
            path,
            format!(
                "dns_rfc2136_server = 127.0.0.1\ndns_rfc2136_port = {port}\n\
                 dns_rfc2136_name = cairn-key.\ndns_rfc2136_secret = {secret}\n\
                 dns_rfc2136_algorithm = HMAC-SHA256\n",
                port = self.port
            ),
        )
        .expect("write");
    }

    /// [`Bind::write_credentials`] with the right secret, in BIND's
    /// directory; returns the path.
    pub(crate) fn credentials(&self) -> PathBuf {
        let path = self.work.path().join("rfc2136.ini");
        self.write_credentials(&path, SECRET);
        path
    }
}

/// `named` on this machine; the tests calling this run only with
/// `CAIRN_BIND` set, so a missing one fails them.
fn find_named() -> PathBuf {
    ["/usr/sbin/named", "/usr/bin/named"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect("CAIRN_BIND is set but named is missing: apt-get install -y bind9")
}
