//! `cairn`: the ACME agent.
#![forbid(unsafe_code)]

fn main() {}
