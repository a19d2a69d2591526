//! Shared pieces of the installer tests (`install_nginx.rs`,
//! `install_apache.rs`): what a real server serves, over HTTPS checked
//! against the CA's root and over plain HTTP, and snapshots of its files.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::harness::hex;

/// What an HTTPS GET of `/` for `name` on `127.0.0.1:port` returns, with
/// the chain checked against `roots_pem`: the leaf's serial and the whole
/// response (status line, headers, body).
pub(crate) async fn https_get(port: u16, name: &str, roots_pem: &Path) -> (String, String) {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read_to_string(roots_pem).expect("roots");
    for der in cairn_proto::pem::decode_all(&pem, "CERTIFICATE") {
        roots.add(der.into()).expect("a root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the HTTPS port");
    let mut tls = connector
        .connect(ServerName::try_from(name.to_owned()).expect("name"), tcp)
        .await
        .unwrap_or_else(|e| panic!("TLS to {name} on port {port} with the CA's root: {e}"));
    let leaf = tls.get_ref().1.peer_certificates().expect("a chain")[0].clone();
    let (_, cert) = X509Certificate::from_der(&leaf).expect("parses");
    let serial = hex(cert.raw_serial());
    tls.write_all(
        format!("GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    (serial, String::from_utf8_lossy(&response).into_owned())
}

/// The response to a plain HTTP GET of `/` for `name` on `127.0.0.1:port`.
pub(crate) async fn http_get(port: u16, name: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the HTTP port");
    tcp.write_all(
        format!("GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut response = Vec::new();
    let _ = tcp.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).into_owned()
}

/// Every file under `dir` (links followed), with its bytes, leaving out
/// the directories named in `skip` (logs, pid files, temp).
pub(crate) fn files_under(dir: &Path, skip: &[&str]) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if skip.contains(&name) {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.insert(path, bytes);
            }
        }
    }
    out
}

/// A control-program wrapper: runs `program` with `fixed` arguments first,
/// then the ones cairn passes. With `fail_test_at: Some(n)`, the n-th
/// config test (`-t` or `configtest`) fails as if the configuration were
/// broken: a failure injected after cairn's edit.
pub(crate) fn ctl_wrapper(
    dir: &Path,
    program: &Path,
    fixed: &[String],
    env: &[(String, String)],
    fail_test_at: Option<u32>,
) -> PathBuf {
    let counter = dir.join("config-tests");
    let fail = fail_test_at.map_or(String::new(), |n| {
        format!(
            "for a in \"$@\"; do\n  case \"$a\" in -t|configtest)\n    n=$(cat '{c}' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '{c}'\n    if [ $n -eq {n} ]; then echo 'injected failure: the configuration test fails once' >&2; exit 1; fi;;\n  esac\ndone\n",
            c = counter.display()
        )
    });
    let exports: String = env
        .iter()
        .map(|(k, v)| format!("export {k}='{v}'\n"))
        .collect();
    let quoted: Vec<String> = fixed.iter().map(|a| format!("'{a}'")).collect();
    let script = format!(
        "#!/bin/sh\n{exports}{fail}exec '{}' {} \"$@\"\n",
        program.display(),
        quoted.join(" ")
    );
    let path = dir.join(if fail_test_at.is_some() {
        "ctl-failing"
    } else {
        "ctl"
    });
    std::fs::write(&path, script).expect("write the wrapper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// The `cairn_ms=` figure cairn logs (with `-v`) for a configuration change.
pub(crate) fn overhead_ms(output: &str) -> Option<f64> {
    // Without the terminal colours around `=`.
    let mut plain = String::with_capacity(output.len());
    let mut chars = output.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    let output = plain.as_str();
    let at = output.find("cairn_ms=")? + "cairn_ms=".len();
    output[at..]
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()?
        .parse()
        .ok()
}
