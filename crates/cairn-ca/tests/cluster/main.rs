//! Several cairn-ca nodes on one PostgreSQL database, as a scaled-out CA
//! runs: what one node does, the others see, and racing requests spread
//! over the nodes keep the CA's promises.
//!
//! The nodes run in this process, each with its own connection pool, and
//! share a fresh schema of the server named by `CAIRN_POSTGRES_URL` (unset:
//! the tests say "not run" and pass; `.ci/run` sets it). The nodes listen
//! on one port of different loopback addresses (127.0.0.1, 127.0.0.2),
//! behind one public URL, `http://acme.test:PORT`; each client is pinned to
//! a node by resolving `acme.test` to that node's address.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;
mod nodes;
