//! Placeholder: the SQLite backend is being written.

/// The SQLite backend.
#[derive(Debug)]
pub struct SqliteStore;
