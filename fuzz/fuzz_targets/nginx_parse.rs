//! The nginx parser and editor on arbitrary bytes: parsing never panics,
//! what parses prints back byte for byte, and deploying, enhancing and
//! serving http-01 on it never panics nor produces a file that does not
//! parse.
#![no_main]

use std::path::{Path, PathBuf};

use cairn_install::nginx::{NginxConfig, parse};
use cairn_install::{CertPaths, Config, Enhancement, Error, Settings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = parse(data) else {
        return;
    };
    assert_eq!(doc.print(), data, "print differs from the input");
    let Ok(mut config) = NginxConfig::from_source(Path::new("/fuzz/nginx.conf"), data) else {
        return;
    };
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
    let check = |r: Result<(), Error>| {
        if let Err(Error::Syntax { message, .. }) = &r {
            assert!(!message.contains("cairn's own edit"), "{message}");
        }
    };
    check(config.deploy(&names, &cert, &settings));
    for what in [Enhancement::Redirect, Enhancement::Hsts, Enhancement::Uir] {
        check(config.enhance(&names, what, &settings));
    }
    check(config.serve_http01(&names, Path::new("/challenges"), &settings));
    for change in config.changes().files.values() {
        assert!(parse(change.after.clone()).is_ok(), "an edit does not parse");
    }
});
