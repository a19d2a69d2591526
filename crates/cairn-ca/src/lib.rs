//! Cairn's ACME certificate authority, one module per Boulder component:
//! `wfe` (HTTP API), `ra` (registration authority), `va` (validation
//! authority), `signer` (certificates and CRLs), `nonce`, `policy`; storage
//! is the `cairn-store` crate. `app` wires the concrete parts.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod clock;
pub mod config;
pub mod error;
pub mod nonce;
pub mod policy;
pub mod ra;
pub mod signer;
pub mod va;
pub mod wfe;

pub use error::{CaError, CaResult};
