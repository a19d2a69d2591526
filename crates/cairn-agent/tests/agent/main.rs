//! The `cairn` binary end to end: against cairn-ca in this process (always
//! run), and against Pebble with its chaos on (`CAIRN_PEBBLE=1`).
//!
//! ```text
//! cargo test -p cairn-agent --test agent
//! CAIRN_BIND=1 cargo test -p cairn-agent --test agent rfc2136
//! CAIRN_PEBBLE=1 cargo test -p cairn-agent --test agent pebble -- --nocapture
//! ```

#[path = "../shared/bind.rs"]
mod bind;
mod cairn_ca;
mod harness;
mod install;
mod install_apache;
mod install_nginx;
mod install_nginx_pebble;
mod pebble;
#[path = "../shared/pebble.rs"]
mod pebble_peers;
