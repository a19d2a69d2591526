//! Automatic HTTPS in a few lines: `cargo run -p cairn-tls --example hello
//! -- NAME DIRECTORY_URL` serves "hello" on :443 (and http-01 on :80) with
//! a certificate the manager obtains and renews itself.
use cairn_tls::{CaConfig, TlsManager};
use hyper::{Response, service::service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (name, ca) = (
        args.next().ok_or("NAME")?,
        args.next().ok_or("DIRECTORY_URL")?,
    );
    let manager = TlsManager::builder("cairn-tls-hello")
        .certificate([name])
        .ca(CaConfig::new(ca))
        .build()?;
    manager.start();
    let http = tokio::net::TcpListener::bind("[::]:80").await?;
    let acme = manager.http01_service(cairn_tls::NotFound);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = http.accept().await {
            let conn = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tcp), acme.clone())
                .into_owned();
            tokio::spawn(conn);
        }
    });
    let https = tokio::net::TcpListener::bind("[::]:443").await?;
    loop {
        let (tcp, _) = https.accept().await?;
        let manager = manager.clone();
        tokio::spawn(async move {
            let Ok(tls) = manager.accept(tcp).await else {
                return;
            };
            let hello = service_fn(|_req| async {
                Ok::<_, hyper::Error>(Response::new("hello\n".to_owned()))
            });
            let _ = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), hello)
                .await;
        });
    }
}
