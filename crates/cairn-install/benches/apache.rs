//! Apache: parse + choose + deploy on 1,000 virtual hosts across 100
//! included files (issue 11: < 50 ms).
//!
//! `cargo bench -p cairn-install --bench apache`
use std::path::{Path, PathBuf};

use cairn_install::apache::Apache;
use cairn_install::{CertPaths, Config, Settings};
use criterion::{Criterion, criterion_group, criterion_main};

const FILES: usize = 100;
const PER_FILE: usize = 10;

/// A Debian-shaped root with `FILES` site files of `PER_FILE` vhosts each.
fn big_root(dir: &Path) -> PathBuf {
    let root = dir.join("apache2");
    for sub in ["sites-enabled", "mods-enabled", "mods-available"] {
        std::fs::create_dir_all(root.join(sub)).expect("mkdir");
    }
    std::fs::write(
        root.join("apache2.conf"),
        "DefaultRuntimeDir /run/apache2\nIncludeOptional mods-enabled/*.load\n\
         IncludeOptional mods-enabled/*.conf\nListen 80\n<IfModule ssl_module>\n\tListen 443\n</IfModule>\n\
         <Directory />\n\tRequire all denied\n</Directory>\nIncludeOptional sites-enabled/*.conf\n",
    )
    .expect("write");
    std::fs::write(
        root.join("mods-enabled/mpm_event.load"),
        "LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so\n",
    )
    .expect("write");
    let available =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/apache/_mods-available");
    for entry in std::fs::read_dir(available).expect("read_dir") {
        let entry = entry.expect("entry");
        std::fs::copy(
            entry.path(),
            root.join("mods-available").join(entry.file_name()),
        )
        .expect("copy");
    }
    for f in 0..FILES {
        let mut text = format!("# customers {f}\n");
        for v in 0..PER_FILE {
            let n = f * PER_FILE + v;
            text.push_str(&format!(
                "<VirtualHost *:80>\n\tServerName site{n}.example.com\n\tServerAlias www.site{n}.example.com *.site{n}.example.net\n\
                 \tDocumentRoot /var/www/site{n}\n\t<Directory /var/www/site{n}>\n\t\tAllowOverride All\n\t\tRequire all granted\n\t</Directory>\n\
                 \tErrorLog ${{APACHE_LOG_DIR}}/site{n}-error.log\n\tCustomLog ${{APACHE_LOG_DIR}}/site{n}-access.log combined\n</VirtualHost>\n\n"
            ));
        }
        std::fs::write(
            root.join(format!("sites-enabled/{f:03}-customers.conf")),
            text,
        )
        .expect("write");
    }
    root
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = big_root(dir.path());
    let apache = Apache::new(&root);
    let cert = CertPaths {
        fullchain: PathBuf::from("/etc/cairn/live/x/fullchain.pem"),
        key: PathBuf::from("/etc/cairn/live/x/privkey.pem"),
        cert: PathBuf::from("/etc/cairn/live/x/cert.pem"),
        chain: PathBuf::from("/etc/cairn/live/x/chain.pem"),
    };
    let settings = Settings {
        https_port: 443,
        http_port: 80,
        options_file: root.join("options-ssl-apache.conf"),
    };
    let names = vec!["www.site777.example.com".to_owned()];
    c.bench_function("apache: parse 1,000 vhosts in 100 files", |b| {
        b.iter(|| apache.load_config().expect("load"));
    });
    let config = apache.load_config().expect("load");
    c.bench_function("apache: choose among 1,000 vhosts", |b| {
        b.iter(|| {
            config
                .vhost_for("www.site777.example.com", 80)
                .expect("choose")
        });
    });
    c.bench_function("apache: parse + choose + deploy, 1,000 vhosts", |b| {
        b.iter(|| {
            let mut config = apache.load_config().expect("load");
            config.deploy(&names, &cert, &settings).expect("deploy");
            assert!(!config.changes().is_empty());
        });
    });
}

criterion_group!(apache, benches);
criterion_main!(apache);
