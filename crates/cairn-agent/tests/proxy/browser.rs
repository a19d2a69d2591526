//! A real browser: headless Chromium, trusting only the CA root through an
//! NSS database, loads a page through the proxy with no certificate error.

use crate::harness::Ca;
use crate::support::{Proxy, upstream};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(not(peer_chromium), ignore = "needs CAIRN_CHROMIUM and CAIRN_CERTUTIL")]
async fn chromium_loads_the_page_with_no_certificate_error() {
    let ca = Ca::start().await;
    let up = upstream("for-chromium").await;
    let name = "browser.example.com";
    let proxy = Proxy::start(&ca, &["--route", &format!("{name}=http://{up}")]).await;
    proxy.wait_until_served(name).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = ca.running.root_pem.clone();
    let url = proxy.url(name, "/from-chromium");
    let dom = tokio::task::spawn_blocking(move || {
        let chromium = cairn_testkit::browser::Chromium::new(dir.path(), &[&root])
            .expect("Chromium with the CA root in its NSS database");
        chromium.dump_dom(&url, &[name])
    })
    .await
    .expect("task")
    .expect("Chromium loads the page without a certificate error");
    assert!(
        dom.contains("upstream for-chromium saw /from-chromium"),
        "{dom}"
    );
}
