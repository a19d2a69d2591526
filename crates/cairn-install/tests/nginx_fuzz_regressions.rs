//! Inputs the fuzzer (fuzz/fuzz_targets/nginx_parse.rs) once crashed on,
//! run through the same steps: they must give a result or a clear error,
//! never a panic, and every edit must parse.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use cairn_install::nginx::{NginxConfig, parse};
use cairn_install::{CertPaths, Config, Enhancement, Settings};

fn run(data: &[u8]) {
    let mut config = NginxConfig::from_source(Path::new("/fuzz/nginx.conf"), data).unwrap();
    let cert = CertPaths {
        fullchain: PathBuf::from("/live/a b/fullchain.pem"),
        key: PathBuf::from("/live/a b/privkey.pem"),
        cert: PathBuf::from("/live/a b/cert.pem"),
        chain: PathBuf::from("/live/a b/chain.pem"),
    };
    let settings = Settings {
        https_port: 443,
        http_port: 80,
        options_file: PathBuf::from("/fuzz/options-ssl-nginx.conf"),
    };
    let mut names = config.server_names();
    names.truncate(3);
    names.push("fuzz.test".to_owned());
    let _ = config.deploy(&names, &cert, &settings);
    for what in [Enhancement::Redirect, Enhancement::Hsts, Enhancement::Uir] {
        let _ = config.enhance(&names, what, &settings);
    }
    let _ = config.serve_http01(&names, Path::new("/challenges"), &settings);
    for change in config.changes().files.values() {
        assert!(
            parse(change.after.clone()).is_ok(),
            "an edit does not parse"
        );
    }
}

/// Two `listen 443` lines (one `quic`) and a garbled directive: deploy
/// once spliced overlapping spans and panicked.
#[test]
fn overlapping_edits_are_made_once_or_refused() {
    run(include_bytes!("fuzz-regressions/nginx-overlapping-edits"));
}

/// A byte that is not UTF-8 after the `}` of the block a new HTTPS block
/// is copied from: its place was once counted on a lossy UTF-8 copy of the
/// line (U+FFFD is three bytes), so the new block landed two bytes too far,
/// its closing marker comment swallowed the next block's `{` and the edit
/// did not parse ("unexpected }").
#[test]
fn new_block_goes_after_a_line_that_is_not_utf8() {
    run(include_bytes!(
        "fuzz-regressions/nginx-non-utf8-after-block"
    ));
}

/// A directive that starts on the line of the `}` of the block a new
/// HTTPS block is copied from and goes on below (`} sevrre` / `{ ... }`):
/// the new block was inserted at the end of that line, into the directive,
/// whose own `{` then came after the new block ("unexpected {").
#[test]
fn new_block_goes_before_a_directive_begun_after_the_close() {
    run(include_bytes!(
        "fuzz-regressions/nginx-directive-after-block-close"
    ));
}
