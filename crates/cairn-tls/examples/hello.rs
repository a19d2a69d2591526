//! Automatic HTTPS: `cargo run -p cairn-tls --example hello -- NAME DIRECTORY_URL`
//! serves "hello" on :443 with a certificate it obtains (tls-alpn-01 on the
//! same port) and renews by itself.
use cairn_tls::{CaConfig, Challenge, TlsManager};
use hyper::{Response, service::service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [name, ca] = &args[..] else {
        return Err("usage: hello NAME DIRECTORY_URL".into());
    };
    let manager = TlsManager::builder("cairn-tls-hello")
        .certificate([name])
        .ca(CaConfig::new(ca))
        .challenges(&[Challenge::TlsAlpn01])
        .build()?;
    manager.start();
    let listener = tokio::net::TcpListener::bind("[::]:443").await?;
    loop {
        let (tcp, _) = listener.accept().await?;
        let manager = manager.clone();
        tokio::spawn(async move {
            let Ok(tls) = manager.accept(tcp).await else {
                return;
            };
            let hello = service_fn(|_| async {
                Ok::<_, hyper::Error>(Response::new("hello\n".to_owned()))
            });
            let server = Builder::new(TokioExecutor::new());
            let _ = server.serve_connection(TokioIo::new(tls), hello).await;
        });
    }
}
