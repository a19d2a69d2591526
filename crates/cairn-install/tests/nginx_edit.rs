//! nginx edits on small configurations: block choice, deploy, enhance,
//! http-01, idempotence; with `CAIRN_NGINX` set, the real `nginx -t` checks
//! each result.
#![allow(clippy::unwrap_used)]

mod nginx_common;

use cairn_install::Config;
use nginx_common::Site;

#[test]
fn debian_default_gets_a_copy_for_an_unknown_name() {
    let site = Site::new(&[
        (
            "nginx.conf",
            "events {}\nhttp {\n    include sites-enabled/*;\n}\n",
        ),
        (
            "sites-enabled/default",
            "server {\n\tlisten 80 default_server;\n\tlisten [::]:80 default_server;\n\n\t# SSL configuration { \"x\n\troot html;\n\tindex index.html;\n\tserver_name _;\n\tlocation / {\n\t\ttry_files $uri $uri/ =404;\n\t}\n}\n",
        ),
    ]);
    let mut config = site.load();
    config
        .deploy(&["example.com".into()], &site.cert(), &site.settings())
        .unwrap();
    let text = site.changed(&config, "sites-enabled/default");
    println!("{text}");
    site.write_and_test(&config);
}
