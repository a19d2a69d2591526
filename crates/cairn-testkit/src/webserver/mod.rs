//! Private instances of real web servers for tests: each writes its whole
//! config root into a temp dir, listens on loopback ports, runs in the
//! foreground and stops when its handle is dropped. Each needs its peer
//! variable (`CAIRN_NGINX`, `CAIRN_APACHE`, `CAIRN_CADDY`); tests using them
//! are `#[cfg_attr(not(peer_nginx), ignore = "needs CAIRN_NGINX")]`-style.

pub mod apache;
pub mod caddy;
pub mod nginx;
