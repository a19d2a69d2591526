//! The Apache corpus (tests/corpus/apache, see its README.md): every file
//! parses and prints back byte for byte; deploying and enhancing each case
//! only adds marked lines (or replaces certificate lines), a second run
//! changes nothing, and — with `CAIRN_APACHE` set — the real
//! `apache2ctl -t` accepts every case before and after.

mod apache_support;

use apache_support::{apply, cases, names, stage};
use cairn_install::{Config, Enhancement, MARKER, WebServer};

#[test]
fn corpus_has_enough_cases() {
    assert!(cases().len() >= 30, "{} cases", cases().len());
}

#[test]
fn every_corpus_file_prints_back_byte_for_byte() {
    let mut files = 0;
    for case in cases() {
        let staged = stage(&case);
        let config = staged
            .apache()
            .load_config()
            .unwrap_or_else(|e| panic!("{}: {e}", case.display()));
        let originals = config.originals();
        let printed = config.printed();
        assert!(
            originals.len() >= 2,
            "{}: only {} files read",
            case.display(),
            originals.len()
        );
        for (path, bytes) in &originals {
            assert_eq!(&printed[path], bytes, "{}", path.display());
            files += 1;
        }
    }
    assert!(files > 300, "{files} files");
}

#[test]
fn deploy_and_enhance_add_only_marked_lines_and_are_idempotent() {
    for case in cases() {
        let staged = stage(&case);
        let names = names(&case);
        let settings = staged.settings();
        let run = || {
            let mut config = staged.apache().load_config().expect("load");
            config
                .deploy(&names, &staged.cert(), &settings)
                .unwrap_or_else(|e| panic!("{}: deploy: {e}", case.display()));
            for what in [Enhancement::Redirect, Enhancement::Hsts, Enhancement::Uir] {
                config
                    .enhance(&names, what, &settings)
                    .unwrap_or_else(|e| panic!("{}: {what:?}: {e}", case.display()));
            }
            config.changes()
        };
        let first = run();
        assert!(!first.is_empty(), "{}: nothing changed", case.display());
        for (path, change) in &first.files {
            let after = String::from_utf8(change.after.clone()).expect("utf-8");
            let Some(before) = &change.before else {
                continue;
            };
            let before = String::from_utf8(before.clone()).expect("utf-8");
            check_marked(&case.display().to_string(), path, &before, &after);
        }
        apply(&first);
        let second = run();
        assert!(
            second.is_empty(),
            "{}: second run changed {:?}",
            case.display(),
            second.files.keys().collect::<Vec<_>>()
        );
    }
}

/// Every line the edit added is the marker or follows a marker line (or a
/// line of a section that one marks); every line removed is a certificate
/// line that was replaced.
fn check_marked(case: &str, path: &std::path::Path, before: &str, after: &str) {
    let diff = similar::TextDiff::from_lines(before, after);
    let mut marked = false;
    for change in diff.iter_all_changes() {
        let line = change.value().trim();
        match change.tag() {
            similar::ChangeTag::Equal => marked = false,
            similar::ChangeTag::Delete => {
                assert!(
                    ["SSLCertificateFile", "SSLCertificateKeyFile", "SSLEngine"]
                        .iter()
                        .any(|d| line.starts_with(d))
                        || line.is_empty(),
                    "{case}: {} lost {line:?}",
                    path.display()
                );
            }
            similar::ChangeTag::Insert => {
                if line == MARKER {
                    marked = true;
                } else {
                    assert!(
                        marked || line.is_empty(),
                        "{case}: {}: unmarked {line:?}",
                        path.display()
                    );
                }
            }
        }
    }
}

#[test]
#[cfg_attr(not(peer_apache), ignore = "needs CAIRN_APACHE")]
fn apache2ctl_accepts_every_case_before_and_after() {
    for case in cases() {
        for http01 in [false, true] {
            let staged = stage(&case);
            let apache = staged.apache();
            apache
                .config_test()
                .unwrap_or_else(|e| panic!("{} as written: {e}", case.display()));
            let names = names(&case);
            let settings = staged.settings();
            let mut config = apache.load_config().expect("load");
            if http01 {
                let challenges = staged.dir.path().join("challenges");
                std::fs::create_dir_all(&challenges).expect("mkdir");
                config
                    .serve_http01(&names, &challenges, &settings)
                    .expect("serve_http01");
            } else {
                config
                    .deploy(&names, &staged.cert(), &settings)
                    .expect("deploy");
                for what in [Enhancement::Redirect, Enhancement::Hsts, Enhancement::Uir] {
                    config.enhance(&names, what, &settings).expect("enhance");
                }
            }
            apply(&config.changes());
            if let Err(e) = apache.config_test() {
                let mut files = String::new();
                for (path, change) in &config.changes().files {
                    files.push_str(&format!(
                        "==> {}\n{}\n",
                        path.display(),
                        String::from_utf8_lossy(&change.after)
                    ));
                }
                panic!(
                    "{} after the edit (http01={http01}): {e}\n{files}",
                    case.display()
                );
            }
        }
    }
}
