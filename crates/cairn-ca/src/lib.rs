//! Cairn's ACME certificate authority, one module per Boulder component:
//! `wfe` (HTTP API), `ra` (registration authority), `va` (validation
//! authority), `signer` (certificates and CRLs), `nonce`, `policy`; storage
//! is the `cairn-store` crate. `main.rs` wires the concrete parts.
#![forbid(unsafe_code)]

pub mod clock;
pub mod error;
pub mod signer;
pub mod va;

pub use error::{CaError, CaResult};
