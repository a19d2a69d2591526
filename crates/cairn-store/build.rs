//! Rebuild when a migration is added or changed: `sqlx::migrate!` embeds
//! the PostgreSQL directory, and the SQLite list in `src/sqlite/migrate.rs`
//! (checked against its directory by a test) embeds each file. Cargo scans
//! a directory named here for any change in it.
fn main() {
    println!("cargo:rerun-if-changed=migrations/sqlite");
    println!("cargo:rerun-if-changed=migrations/postgres");
}
