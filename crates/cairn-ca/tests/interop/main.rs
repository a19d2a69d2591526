//! Interop with ACME clients nobody here wrote: certbot (PyPI) and lego
//! (Debian), against cairn-ca running in this process with real validation
//! over loopback. Each peer runs when its variable names it (`.ci/run` sets
//! them through `scripts/install-peers`):
//!
//! - `CAIRN_CERTBOT=/path/to/certbot`
//! - `CAIRN_LEGO=/path/to/lego`
//!
//! A variable that is set but names no program fails the test; an unset one
//! prints that the test did not run.

mod caddy;
mod certbot;
mod cluster;
mod harness;
mod lego;
