//! The standalone http-01 solver: a tiny HTTP server that answers
//! `/.well-known/acme-challenge/<token>` for the tokens of this run only
//! (RFC 8555 §8.3), and 404 for anything else.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use cairn_client::PreparedChallenge;
use cairn_proto::challenge::HTTP01_PATH_PREFIX;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;

/// Token → key authorization.
type Responses = Arc<Mutex<HashMap<String, String>>>;

#[derive(Debug)]
pub(crate) struct Standalone {
    address: SocketAddr,
    responses: Responses,
    server: Option<JoinHandle<()>>,
}

impl Standalone {
    pub(crate) fn new(address: SocketAddr) -> Self {
        Self {
            address,
            responses: Responses::default(),
            server: None,
        }
    }

    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    pub(crate) async fn present(&mut self, challenges: &[PreparedChallenge]) -> Result<()> {
        {
            let mut responses = self.responses.lock().unwrap_or_else(|e| e.into_inner());
            for challenge in challenges {
                responses.insert(
                    challenge.token.as_str().to_owned(),
                    challenge.key_authorization.clone(),
                );
            }
        }
        if self.server.is_none() {
            let listener = super::bind(self.address, "the standalone http-01 server").await?;
            let responses = Arc::clone(&self.responses);
            self.server = Some(tokio::spawn(serve(
                listener,
                responses,
                super::RESPONDER_LIMITS,
            )));
        }
        Ok(())
    }

    pub(crate) fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
        self.responses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    responses: Responses,
    limits: cairn_serve::Limits,
) {
    let gate = cairn_serve::Gate::new(limits.max_connections);
    let builder = cairn_serve::http_builder(&limits);
    loop {
        let pass = gate.enter().await;
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::debug!("http-01 accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let responses = Arc::clone(&responses);
        let builder = builder.clone();
        tokio::spawn(async move {
            let _pass = pass;
            let service = service_fn(move |request| {
                let responses = Arc::clone(&responses);
                async move { Ok::<_, Infallible>(respond(&request, &responses, peer)) }
            });
            let (stream, activity) = cairn_serve::Watched::new(stream);
            let connection = async {
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            };
            cairn_serve::until_idle(&activity, limits.idle_timeout, connection).await;
        });
    }
}

fn respond(
    request: &Request<Incoming>,
    responses: &Responses,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    let answer = if matches!(*request.method(), Method::GET | Method::HEAD) {
        path.strip_prefix(HTTP01_PATH_PREFIX).and_then(|token| {
            responses
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(token)
                .cloned()
        })
    } else {
        None
    };
    tracing::debug!(%peer, method = %request.method(), path, found = answer.is_some(), "http-01 request");
    let mut response = match answer {
        Some(key_authorization) => Response::new(Full::new(Bytes::from(key_authorization))),
        None => {
            let mut response = Response::new(Full::new(Bytes::from_static(b"not found\n")));
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        }
    };
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    response
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// A client that trickles its request headers is cut off after the
    /// header timeout, while another gets its answer meanwhile.
    #[tokio::test]
    async fn trickling_clients_are_cut_off_and_others_answered() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let responses = Responses::default();
        responses
            .lock()
            .unwrap()
            .insert("tok".into(), "tok.thumb".into());
        let limits = cairn_serve::Limits {
            header_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(5),
            max_connections: 16,
        };
        let server = tokio::spawn(serve(listener, responses, limits));

        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHo")
            .await
            .unwrap();
        let started = Instant::now();

        let mut fast = tokio::net::TcpStream::connect(addr).await.unwrap();
        fast.write_all(
            b"GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: a.example\r\n\
              Connection: close\r\n\r\n",
        )
        .await
        .unwrap();
        let mut answer = String::new();
        fast.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("tok.thumb"), "{answer}");

        // The slow one: closed (an answer, then EOF) well before 10 s.
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut rest));
        assert!(closed.await.is_ok(), "still open");
        assert!(started.elapsed() >= Duration::from_millis(900));
        server.abort();
    }
}
