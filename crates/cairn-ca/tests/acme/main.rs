//! RFC 8555 conformance of the CA, end to end. Each test starts its own CA
//! in this process on ephemeral loopback ports, with the in-process
//! challenge test server (`cairn-testkit`) as DNS, http-01 and tls-alpn-01
//! peer, and validation for real between them (see [`harness`]). Requests
//! come from `cairn-client`, or are built by hand where the wire itself is
//! under test.
//!
//! By RFC 8555 section:
//!
//! - `requests`: §6.2–§6.5, what every request must get right
//! - `directory`: §7.1.1, §7.2, and the headers of §6.5 and §7.1
//! - `accounts`: §7.3, §7.1.2.1
//! - `orders`: §7.4 newOrder, §7.1.3, §7.1.4, §7.1.6
//! - `validation`: §7.5.1, §8.3, §8.4, RFC 8737, RFC 8738, CAA
//! - `reuse`: authorization reuse (§7.4; 30 days by default)
//! - `finalize`: §7.4 finalize
//! - `certificates`: §7.4.2
//! - `revocation`: §7.6 and the CRL it shows up in
//! - `durability`: the real binary, `kill -9`, restarted (DESIGN: a 2xx is durable)
//! - `pkilint`: leaves linted against the Baseline Requirements (with `CAIRN_PKILINT`)
#![allow(clippy::unwrap_used)]

mod accounts;
mod ari;
mod caa;
mod certificates;
mod directory;
mod durability;
mod finalize;
mod harness;
mod migrate;
mod orders;
mod pki;
mod pkilint;
mod recording_store;
mod requests;
mod reuse;
mod revocation;
mod slow_clients;
mod validation;
