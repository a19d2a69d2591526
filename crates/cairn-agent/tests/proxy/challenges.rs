//! How the proxy gets its certificates: http-01 alone on its HTTP
//! listener (tls-alpn-01 alone is the serving test's), stored where `cairn
//! certificates` finds them, and on-demand issuance behind an `ask` URL.

use std::sync::{Arc, Mutex};

use hyper::StatusCode;

use crate::harness::{Agent, Ca, ok};
use crate::support::{Proxy, serve, text_response, upstream};

/// Orders the CA has in its database.
fn ca_orders(ca: &Ca) -> i64 {
    let db = ca.dir.path().join("ca").join("cairn.db");
    let connection =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("the CA database opens");
    connection
        .query_row("SELECT count(*) FROM orders", [], |row| row.get(0))
        .expect("count")
}

/// http-01 answered by the proxy's own HTTP listener; the lineage is saved
/// in the agent's layout and listed by `cairn certificates`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http01_alone_and_the_agent_lists_the_certificate() {
    let ca = Ca::start().await;
    let up = upstream("one").await;
    let name = "http01.example.com";
    let proxy = Proxy::start(
        &ca,
        &[
            "--route",
            &format!("{name},www.{name}=http://{up}"),
            "--challenges",
            "http-01",
        ],
    )
    .await;
    let response = proxy.wait_until_served(name).await;
    assert_eq!(response.text().await.expect("body"), "upstream one saw /");
    let www = format!("www.{name}");
    let response = proxy
        .client(&[&www], true)
        .get(proxy.url(&www, "/x"))
        .send()
        .await
        .expect("the second name is in the certificate");
    assert_eq!(response.text().await.expect("body"), "upstream one saw /x");
    assert_eq!(ca_orders(&ca), 1);

    let agent = Agent::new(
        proxy.config_dir.clone(),
        &ca.running.directory_url,
        &ca.running.root_pem,
    );
    let listed = ok(&agent.run(&["certificates"]).await);
    assert!(listed.contains(name) && listed.contains(&www), "{listed}");
}

/// On-demand TLS: a name the `ask` endpoint allows gets a certificate
/// during its first handshake and reaches the catch-all upstream; a refused
/// name gets a failed handshake and the CA sees no new order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_demand_asks_before_ordering() {
    let ca = Ca::start().await;
    let up = upstream("catch-all").await;
    let asked = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&asked);
    let ask = serve(move |request| {
        let seen = Arc::clone(&seen);
        async move {
            let query = request.uri().query().unwrap_or("").to_owned();
            seen.lock().expect("asked").push(query.clone());
            if query == "domain=allowed.example.com" {
                text_response(StatusCode::OK, "yes")
            } else {
                text_response(StatusCode::NOT_FOUND, "no")
            }
        }
    })
    .await;
    let proxy = Proxy::start(
        &ca,
        &[
            "--route",
            &format!("*=http://{up}"),
            "--on-demand-ask",
            &format!("http://{ask}/check"),
        ],
    )
    .await;
    let before = ca_orders(&ca);

    let refused = proxy
        .client(&["refused.example.com"], false)
        .get(proxy.url("refused.example.com", "/"))
        .send()
        .await;
    assert!(refused.is_err(), "a refused name was served: {refused:?}");
    assert_eq!(
        ca_orders(&ca),
        before,
        "an order was placed for a refused name"
    );
    assert!(
        asked
            .lock()
            .expect("asked")
            .contains(&"domain=refused.example.com".to_owned())
    );

    let response = proxy
        .client(&["allowed.example.com"], true)
        .get(proxy.url("allowed.example.com", "/first"))
        .send()
        .await
        .expect("an allowed name is served at its first handshake");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.expect("body"),
        "upstream catch-all saw /first"
    );
    assert_eq!(ca_orders(&ca), before + 1);
}
