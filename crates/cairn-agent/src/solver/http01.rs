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
            self.server = Some(tokio::spawn(serve(listener, responses)));
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

async fn serve(listener: tokio::net::TcpListener, responses: Responses) {
    let limits = super::RESPONDER_LIMITS;
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
