//! The storage conformance suite: what the CA relies on from any
//! [`cairn_store::Storage`], as tests that take an `Arc<dyn Storage>`.
//!
//! `suite` holds the tests and the `conformance_tests!` macro that makes
//! them `#[tokio::test]`s for one backend; each backend's module (`sqlite`,
//! `postgres`) invokes it with a function that opens a fresh store, and adds
//! the tests only it can run (reopening a file, a crashed process, query
//! plans).
#![allow(clippy::unwrap_used)]

mod fixtures;
#[macro_use]
mod suite;
mod postgres;
mod sqlite;
