//! `cairn-ca migrate`: applies the schema and exits; bad database URLs are
//! refused with a readable message that does not show the password.

use std::process::Command;

fn cairn_ca(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cairn-ca"))
        .args(args)
        .output()
        .expect("cairn-ca runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn migrate_creates_a_sqlite_database_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sub").join("ca.db");
    let url = format!("sqlite:{}", db.display());
    for _ in 0..2 {
        let (code, stdout, stderr) = cairn_ca(&["migrate", "--database", &url]);
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert!(stdout.contains("up to date"), "{stdout}");
    }
    assert!(db.is_file());
}

#[test]
fn migrate_refuses_an_unknown_database_without_echoing_the_password() {
    let (code, _, stderr) = cairn_ca(&["migrate", "--database", "mysql://ca:hunter2@db/ca"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("postgres://"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn migrate_says_why_postgres_is_unreachable() {
    // A closed port on loopback: connection refused, quickly.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://ca:hunter2@127.0.0.1:{port}/cairn");
    let (code, _, stderr) = cairn_ca(&["migrate", "--database", &url]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("database"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// With PostgreSQL: migrate on a fresh schema, twice.
#[tokio::test]
async fn migrate_applies_the_postgres_schema() {
    let Some(schema) = cairn_testkit::postgres::FreshSchema::create().await else {
        return;
    };
    for _ in 0..2 {
        let (code, stdout, stderr) = cairn_ca(&["migrate", "--database", schema.database_url()]);
        assert_eq!(code, 0, "{stdout}{stderr}");
    }
}

#[test]
fn check_config_does_not_print_the_database_password() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ca.toml");
    std::fs::write(
        &file,
        "database = \"postgres://ca:hunter2@db:5432/cairn\"\n\
         [validation]\n\
         caa_identities = [\"ca.test\"]\n",
    )
    .unwrap();
    let (code, stdout, stderr) = cairn_ca(&["check-config", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("postgres://ca:***@db:5432/cairn"),
        "{stdout}"
    );
    assert!(!stdout.contains("hunter2"), "{stdout}");
}
