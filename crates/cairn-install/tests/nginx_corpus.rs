//! The nginx corpus (tests/corpus/nginx/, one directory per configuration,
//! see its README.md): every file parses and prints back byte for byte;
//! deploying a certificate (plus redirect and HSTS) to each works and a
//! second run changes nothing; with `CAIRN_NGINX` set the real `nginx -t`
//! accepts each configuration before and after.
#![allow(clippy::unwrap_used)]

mod nginx_common;

use std::path::{Path, PathBuf};

use cairn_install::nginx::{NginxConfig, parse};
use cairn_install::{Config, Enhancement, WebServer};
use nginx_common::Site;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/nginx")
}

fn cases() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.file_name().is_some_and(|n| n != "NGINX_MIN_VERSION") {
            out.push(p);
        }
    }
}

#[test]
fn corpus_has_thirty_cases() {
    assert!(cases().len() >= 30, "{} cases", cases().len());
}

#[test]
fn every_file_prints_back_byte_for_byte() {
    let mut all = Vec::new();
    for case in cases() {
        files(&case, &mut all);
    }
    assert!(all.len() > 40);
    for path in all {
        let bytes = std::fs::read(&path).unwrap();
        let doc = parse(bytes.clone()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(doc.print(), bytes, "{}", path.display());
    }
}

/// A copy of `case` in a temp dir, `/etc/nginx/` rewritten to it, with a
/// test certificate as `cert.pem`/`key.pem` for the cases that name one.
fn copy_case(case: &Path) -> Site {
    let mut list = Vec::new();
    files(case, &mut list);
    let site = Site::new(&[]);
    let root = format!("{}/", site.root().display());
    for path in list {
        let rel = path.strip_prefix(case).unwrap();
        let target = site.root().join(rel);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        let text = std::fs::read(&path).unwrap();
        let text = String::from_utf8(text)
            .unwrap()
            .replace("/etc/nginx/", &root);
        std::fs::write(target, text).unwrap();
    }
    let cert = site.cert();
    std::fs::copy(&cert.fullchain, site.root().join("cert.pem")).unwrap();
    std::fs::copy(&cert.key, site.root().join("key.pem")).unwrap();
    site
}

/// Whether the nginx under test is at least the case's
/// `NGINX_MIN_VERSION` (for `http2 on;`, 1.25.1).
fn nginx_is_new_enough(case: &Path, nginx: &str) -> bool {
    let Ok(min) = std::fs::read_to_string(case.join("NGINX_MIN_VERSION")) else {
        return true;
    };
    let out = std::process::Command::new(nginx)
        .arg("-v")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    let have = text.trim().rsplit('/').next().unwrap_or_default();
    let key = |v: &str| -> Vec<u32> {
        v.trim()
            .split('.')
            .map(|n| n.parse().unwrap_or(0))
            .collect()
    };
    key(have) >= key(&min)
}

fn deploy_case(case: &Path, nginx: Option<&str>) {
    let site = copy_case(case);
    let check = nginx.filter(|n| nginx_is_new_enough(case, n));
    if check.is_some() {
        site.nginx()
            .config_test()
            .unwrap_or_else(|e| panic!("{}: before: {e}", case.display()));
    }
    let config =
        NginxConfig::load(&site.conf()).unwrap_or_else(|e| panic!("{}: {e}", case.display()));
    let name = config
        .server_names()
        .into_iter()
        .find(|n| !n.starts_with('*'))
        .unwrap_or_else(|| "corpus.test".to_owned());
    let (cert, settings) = (site.cert(), site.settings());
    let run = |config: &mut NginxConfig| {
        config
            .deploy(std::slice::from_ref(&name), &cert, &settings)
            .unwrap_or_else(|e| panic!("{}: {name}: {e}", case.display()));
        for what in [Enhancement::Redirect, Enhancement::Hsts] {
            config
                .enhance(std::slice::from_ref(&name), what, &settings)
                .unwrap_or_else(|e| panic!("{}: {name}: {what:?}: {e}", case.display()));
        }
    };
    let mut config = config;
    run(&mut config);
    assert!(
        !config.changes().is_empty(),
        "{}: nothing changed for {name}",
        case.display()
    );
    for (path, change) in &config.changes().files {
        std::fs::write(path, &change.after).unwrap();
    }
    std::fs::write(&settings.options_file, site.nginx().options_file_contents()).unwrap();
    if check.is_some()
        && let Err(e) = site.nginx().config_test()
    {
        {
            let mut listing = String::new();
            for (path, change) in &config.changes().files {
                listing.push_str(&format!(
                    "==> {}\n{}\n",
                    path.display(),
                    String::from_utf8_lossy(&change.after)
                ));
            }
            panic!("{}: after deploying {name}: {e}\n{listing}", case.display());
        }
    }
    let mut again = NginxConfig::load(&site.conf()).unwrap();
    run(&mut again);
    assert!(
        again.changes().is_empty(),
        "{}: second run changed {:?}",
        case.display(),
        again.changes().files.keys()
    );
}

#[test]
fn deploy_on_every_case_is_idempotent() {
    for case in cases() {
        deploy_case(&case, None);
    }
}

#[test]
#[cfg_attr(not(peer_nginx), ignore = "needs CAIRN_NGINX")]
fn every_deployed_case_passes_nginx_t() {
    let nginx = std::env::var("CAIRN_NGINX").expect("CAIRN_NGINX names the nginx binary");
    for case in cases() {
        deploy_case(&case, Some(&nginx));
    }
}
