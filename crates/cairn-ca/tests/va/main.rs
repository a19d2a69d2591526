//! The validation authority against real sockets on 127.0.0.1: a fake
//! DNS server, HTTP and TLS responders, and `NetworkValidator` in between.
#![allow(clippy::unwrap_used)]

mod caa;
mod dns01;
mod http01;
mod support;
mod tls_alpn01;
