//! Parsing, choosing and editing large configurations (issue: 1,000 server
//! blocks across 100 included files in < 50 ms).
//!
//! `cargo bench -p cairn-install --bench parse -- nginx`
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use cairn_install::nginx::NginxConfig;
use cairn_install::{CertPaths, Config, Enhancement, Settings};
use criterion::{Criterion, criterion_group, criterion_main};

/// Writes an nginx configuration of `files` included files with
/// `per_file` server blocks each (maps, locations, comments, IPv6 listens,
/// wildcard and regex names among them) and returns the main file.
fn nginx_site(dir: &Path, files: usize, per_file: usize) -> PathBuf {
    let mut main = String::from(
        "worker_processes auto;\nevents { worker_connections 1024; }\nhttp {\n    include mime.types;\n    map $http_upgrade $connection_upgrade { default upgrade; '' close; }\n    include sites-enabled/*.conf;\n}\n",
    );
    main.push_str("# end\n");
    std::fs::write(dir.join("nginx.conf"), main).unwrap();
    std::fs::write(
        dir.join("mime.types"),
        "types { text/html html; text/css css; }\n",
    )
    .unwrap();
    let sites = dir.join("sites-enabled");
    std::fs::create_dir_all(&sites).unwrap();
    for f in 0..files {
        let mut text = format!("# site group {f} {{ with braces }}\n");
        for s in 0..per_file {
            let n = f * per_file + s;
            let names = match n % 10 {
                0 => format!("*.wild{n}.example.com"),
                1 => format!("~^r{n}\\.example\\.(com|net)$"),
                _ => format!("site{n}.example.com www.site{n}.example.com"),
            };
            text.push_str(&format!(
                "server {{\n    listen 80;\n    listen [::]:80;\n    server_name {names};\n    root /srv/site{n};\n    # \"quoted\" comment {{\n    location / {{\n        try_files $uri $uri/ =404;\n    }}\n    location ~ \\.php$ {{\n        fastcgi_pass unix:/run/php/fpm.sock;\n    }}\n}}\n"
            ));
        }
        std::fs::write(sites.join(format!("{f:03}.conf")), text).unwrap();
    }
    dir.join("nginx.conf")
}

fn nginx(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let conf = nginx_site(dir.path(), 100, 10);
    let cert = CertPaths {
        fullchain: dir.path().join("live/fullchain.pem"),
        key: dir.path().join("live/privkey.pem"),
        cert: dir.path().join("live/cert.pem"),
        chain: dir.path().join("live/chain.pem"),
    };
    let settings = Settings {
        https_port: 443,
        http_port: 80,
        options_file: dir.path().join("options-ssl-nginx.conf"),
    };
    let names = vec!["site555.example.com".to_owned()];
    c.bench_function("nginx parse 1000 server blocks in 100 files", |b| {
        b.iter(|| NginxConfig::load(&conf).unwrap());
    });
    c.bench_function(
        "nginx parse + choose + deploy + redirect (1000 blocks, 100 files)",
        |b| {
            b.iter(|| {
                let mut config = NginxConfig::load(&conf).unwrap();
                config.deploy(&names, &cert, &settings).unwrap();
                config
                    .enhance(&names, Enhancement::Redirect, &settings)
                    .unwrap();
                let changes = config.changes();
                assert_eq!(changes.files.len(), 1);
                changes
            });
        },
    );
}

criterion_group!(parse, nginx);
criterion_main!(parse);
