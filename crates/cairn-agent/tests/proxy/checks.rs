//! `cairn proxy check-config`: the shipped example passes, mistakes are
//! named with their file and site, and `cairn proxy` refuses to start on them.

use crate::harness::{Agent, ok, text};

fn agent(dir: &std::path::Path) -> Agent {
    Agent::new(
        dir.to_owned(),
        "https://127.0.0.1:1/dir",
        &dir.join("none.pem"),
    )
}

#[tokio::test]
async fn the_shipped_example_passes_and_mistakes_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = agent(dir.path());
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../dist/proxy.example.toml");
    let said = ok(&agent
        .run(&["proxy", "check-config", "--config", example])
        .await);
    assert!(said.contains("OK (2 site(s), 3 name(s)"), "{said}");

    let cases = [
        (
            "[[site]]\nnames = [\"a.example\"]\nupstream = \"http://127.0.0.1:1\"\ntimeout = 3\n",
            "unknown field `timeout`",
        ),
        (
            "[[site]]\nnames = [\"a.example\"]\nupstream = \"https://127.0.0.1:1\"\n",
            "[[site]] #1 (a.example)",
        ),
        (
            "[[site]]\nnames = [\"*.a.example\"]\nupstream = \"http://127.0.0.1:1\"\n",
            "wildcard name needs dns-01",
        ),
        (
            "[[site]]\nnames = [\"*\"]\nupstream = \"http://127.0.0.1:1\"\n",
            "catch-all",
        ),
        (
            "[limits]\nmax_connections = 0\n[[site]]\nnames = [\"a.example\"]\nupstream = \"http://127.0.0.1:1\"\n",
            "max_connections",
        ),
    ];
    for (i, (body, want)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&file, body).expect("write");
        let file = file.to_string_lossy().into_owned();
        let out = agent
            .run(&["proxy", "check-config", "--config", &file])
            .await;
        assert_eq!(out.status.code(), Some(1), "{body}");
        let said = text(&out);
        assert!(
            said.contains(want) && said.contains(&file),
            "{body}: {said}"
        );
        // The proxy itself refuses the same file before binding anything.
        let out = agent
            .run(&[
                "proxy",
                "--config",
                &file,
                "--http-listen",
                "127.0.0.1:0",
                "--https-listen",
                "127.0.0.1:0",
            ])
            .await;
        assert_eq!(out.status.code(), Some(1), "{body}");
        assert!(text(&out).contains(want), "{}", text(&out));
    }
}
