//! `cairn proxy` end to end: the real binary against cairn-ca in this
//! process (its harness is the agent tests' own), an upstream in this
//! process, and clients that trust only the CA's root.
//!
//! ```text
//! cargo test -p cairn-agent --test proxy
//! CAIRN_CHROMIUM=/usr/bin/chromium CAIRN_CERTUTIL=/usr/bin/certutil \
//!     cargo test -p cairn-agent --test proxy chromium
//! CAIRN_BIND=1 cargo test -p cairn-agent --test proxy rfc2136
//! CAIRN_PEBBLE=1 cargo test -p cairn-agent --test proxy pebble
//! CAIRN_PEBBLE=1 CAIRN_BIND=1 cargo test -p cairn-agent --test proxy pebble_dns01
//! ```

#[path = "../shared/bind.rs"]
mod bind;
mod browser;
mod challenges;
mod checks;
#[allow(dead_code, unreachable_pub)]
#[path = "../agent/harness.rs"]
mod harness;
mod lifecycle;
#[allow(dead_code)]
#[path = "../shared/pebble.rs"]
mod pebble_peers;
mod peers;
mod serving;
mod shared_directory;
mod support;
