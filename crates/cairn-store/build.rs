//! Rebuild when a migration is added or changed: `sqlx::migrate!` embeds
//! each backend's directory. Cargo scans a directory named here for any
//! change in it.
fn main() {
    println!("cargo:rerun-if-changed=migrations/sqlite");
    println!("cargo:rerun-if-changed=migrations/postgres");
}
