//! nginx edits on small configurations: block choice, deploy, enhance,
//! http-01, idempotence, errors; with `CAIRN_NGINX` set, the real
//! `nginx -t` checks each edited result.
#![allow(clippy::unwrap_used)]

mod nginx_common;

use cairn_install::{Config, Enhancement, Error, MARKER};
use nginx_common::Site;

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn one(conf: &str) -> Site {
    Site::new(&[("nginx.conf", conf)])
}

/// `file:line` of the block chosen for `name` on port 80, as `line`.
fn chosen_line(site: &Site, name: &str) -> usize {
    let place = site.load().block_for(name, 80).unwrap().unwrap();
    place.rsplit(':').next().unwrap().parse().unwrap()
}

const CHOICE: &str = "events {}
http {
    server { listen 80; server_name ~^www\\.(?<d>.+)$; }
    server { listen 80; server_name www.example.*; }
    server { listen 80; server_name *.example.com; }
    server { listen 80; server_name *.www.example.com; }
    server { listen 80; server_name www.example.com; }
    server { listen 80 default_server; server_name _; }
    server { listen 80; server_name ~^(.+)\\.example\\.net$; }
    server { listen 8080; server_name other.example.org; }
}
";

#[test]
fn choice_exact_beats_wildcards_and_regexes() {
    assert_eq!(chosen_line(&one(CHOICE), "www.example.com"), 7);
    assert_eq!(chosen_line(&one(CHOICE), "WWW.Example.COM"), 7);
}

#[test]
fn choice_longest_leading_wildcard() {
    assert_eq!(chosen_line(&one(CHOICE), "a.www.example.com"), 6);
    assert_eq!(chosen_line(&one(CHOICE), "a.example.com"), 5);
}

#[test]
fn choice_trailing_wildcard_beats_regex() {
    assert_eq!(chosen_line(&one(CHOICE), "www.example.org"), 4);
}

#[test]
fn choice_first_regex_in_file_order() {
    assert_eq!(chosen_line(&one(CHOICE), "www.foo.org"), 3);
    assert_eq!(chosen_line(&one(CHOICE), "shop.example.net"), 9);
}

#[test]
fn choice_default_server_when_no_name_matches() {
    assert_eq!(chosen_line(&one(CHOICE), "unknown.test"), 8);
    // Only blocks listening on the port count.
    assert_eq!(chosen_line(&one(CHOICE), "other.example.org"), 8);
    let place = one(CHOICE)
        .load()
        .block_for("other.example.org", 8080)
        .unwrap()
        .unwrap();
    assert!(place.ends_with(":10"), "{place}");
}

#[test]
fn choice_first_block_is_the_default_without_default_server() {
    let site = one(
        "events {}\nhttp {\n  server { server_name a.test; }\n  server { server_name b.test; }\n}\n",
    );
    assert_eq!(chosen_line(&site, "c.test"), 3);
    assert_eq!(chosen_line(&site, "b.test"), 4);
}

#[test]
fn same_name_twice_on_one_listen_is_ambiguous() {
    let site = Site::new(&[
        (
            "nginx.conf",
            "events {}\nhttp {\n  server { listen 80; server_name a.test; }\n  include conf.d/*.conf;\n}\n",
        ),
        (
            "conf.d/x.conf",
            "\nserver {\n  listen 80;\n  server_name A.test b.test;\n}\n",
        ),
    ]);
    let mut config = site.load();
    let err = config
        .deploy(&names(&["a.test"]), &site.cert(), &site.settings())
        .unwrap_err();
    let Error::Ambiguous { candidates, .. } = &err else {
        panic!("{err}");
    };
    assert!(candidates[0].ends_with("nginx.conf:3"), "{candidates:?}");
    assert!(candidates[1].ends_with("conf.d/x.conf:2"), "{candidates:?}");
    assert!(
        err.to_string()
            .contains("a.test is served by several nginx blocks"),
        "{err}"
    );
    // On different addresses it is no conflict: the wildcard address wins.
    let site = one(
        "events {}\nhttp {\n  server { listen 127.0.0.1:80; server_name a.test; }\n  server { listen 80; server_name a.test; }\n}\n",
    );
    assert_eq!(chosen_line(&site, "a.test"), 4);
}

#[test]
fn deploy_adds_tls_to_the_http_block_and_is_idempotent() {
    let conf = "worker_processes 1;\nevents {}\nhttp {\n    # a { comment \" with ' quotes\n    map $http_upgrade $c { default \"}\"; '' close; }\n    server {\n        listen 80;\n        listen [::]:80;\n        server_name example.com www.example.com;\n        root html;\n    }\n}\n";
    let site = one(conf);
    let (cert, settings) = (site.cert(), site.settings());
    let mut config = site.load();
    config
        .deploy(
            &names(&["example.com", "www.example.com"]),
            &cert,
            &settings,
        )
        .unwrap();
    let text = site.changed(&config, "nginx.conf");
    let key = cert.key.display();
    let full = cert.fullchain.display();
    let options = settings.options_file.display();
    let expected = format!(
        "worker_processes 1;\nevents {{}}\nhttp {{\n    # a {{ comment \" with ' quotes\n    map $http_upgrade $c {{ default \"}}\"; '' close; }}\n    server {{\n        listen 80;\n        listen [::]:80;\n        server_name example.com www.example.com;\n        root html;\n        listen 443 ssl; {MARKER}\n        listen [::]:443 ssl; {MARKER}\n        ssl_certificate \"{full}\"; {MARKER}\n        ssl_certificate_key \"{key}\"; {MARKER}\n        include {options}; {MARKER}\n    }}\n}}\n"
    );
    assert_eq!(text, expected);
    site.write_and_test(&config);
    // Again, from what was written: no change at all.
    let mut again = site.load();
    again
        .deploy(
            &names(&["example.com", "www.example.com"]),
            &cert,
            &settings,
        )
        .unwrap();
    assert!(again.changes().is_empty(), "{:?}", again.changes());
}

#[test]
fn deploy_reuses_an_https_block_and_replaces_its_certificate() {
    let conf = "events {}\nhttp {\n\tserver {\n\t\tlisten 80;\n\t\tserver_name a.test;\n\t}\n\tserver {\n\t\tlisten 443 ssl http2;\n\t\tserver_name a.test;\n\t\tssl_certificate old.pem; # mine\n\t\tssl_certificate_key old.key;\n\t\tssl_protocols TLSv1.2;\n\t}\n}\n";
    let site = one(conf);
    std::fs::write(
        site.root().join("old.pem"),
        std::fs::read(site.cert().fullchain).unwrap(),
    )
    .unwrap();
    std::fs::write(
        site.root().join("old.key"),
        std::fs::read(site.cert().key).unwrap(),
    )
    .unwrap();
    let mut config = site.load();
    config
        .deploy(&names(&["a.test"]), &site.cert(), &site.settings())
        .unwrap();
    let text = site.changed(&config, "nginx.conf");
    let full = site.cert().fullchain.display().to_string();
    assert!(
        text.contains(&format!(
            "\t\tssl_certificate \"{full}\"; # mine {MARKER}\n"
        )),
        "{text}"
    );
    assert_eq!(
        text.matches("listen").count(),
        2,
        "no second listen: {text}"
    );
    // The block sets ssl_protocols itself: the options file is not included.
    assert!(!text.contains("options-ssl-nginx.conf"), "{text}");
    site.write_and_test(&config);
    let mut again = site.load();
    again
        .deploy(&names(&["a.test"]), &site.cert(), &site.settings())
        .unwrap();
    assert!(again.changes().is_empty());
}

#[test]
fn deploy_to_a_one_line_block_without_listen() {
    let site = one("events {}\nhttp { server { server_name a.test; } }\n");
    let mut config = site.load();
    config
        .deploy(&names(&["a.test"]), &site.cert(), &site.settings())
        .unwrap();
    let text = site.changed(&config, "nginx.conf");
    // The implicit `listen 80` is kept explicitly.
    assert!(
        text.contains(&format!(
            "    listen 80; {MARKER}\n    listen 443 ssl; {MARKER}\n"
        )),
        "{text}"
    );
    assert!(
        !text.contains("[::]"),
        "no IPv6 listen for a block without one: {text}"
    );
    site.write_and_test(&config);
}

#[test]
fn deploy_creates_a_block_in_http_when_nothing_listens_on_80() {
    let site =
        one("events {}\nhttp {\n  server {\n    listen 8080;\n    server_name a.test;\n  }\n}\n");
    let mut config = site.load();
    config
        .deploy(&names(&["b.test"]), &site.cert(), &site.settings())
        .unwrap();
    let text = site.changed(&config, "nginx.conf");
    assert!(text.contains(&format!("  server {{ {MARKER}\n      listen 443 ssl; {MARKER}\n      server_name b.test; {MARKER}\n")), "{text}");
    assert!(text.ends_with(&format!("  }} {MARKER}\n}}\n")), "{text}");
    site.write_and_test(&config);
    let mut again = site.load();
    again
        .deploy(&names(&["b.test"]), &site.cert(), &site.settings())
        .unwrap();
    assert!(again.changes().is_empty());
}

#[test]
fn deploy_without_http_block_says_so() {
    let site = one("events {}\nstream { }\n");
    let err = site
        .load()
        .deploy(&names(&["a.test"]), &site.cert(), &site.settings())
        .unwrap_err();
    assert!(matches!(err, Error::NoBlock { .. }), "{err}");
}

#[test]
fn enhancements_are_added_once() {
    let site = one(
        "events {}\nhttp {\n    server {\n        listen 80;\n        server_name a.test;\n    }\n}\n",
    );
    let (cert, settings) = (site.cert(), site.settings());
    let mut config = site.load();
    config
        .deploy(&names(&["a.test"]), &cert, &settings)
        .unwrap();
    for what in [Enhancement::Redirect, Enhancement::Hsts, Enhancement::Uir] {
        config
            .enhance(&names(&["a.test"]), what, &settings)
            .unwrap();
    }
    let text = site.changed(&config, "nginx.conf");
    for line in [
        "        if ($scheme != \"https\") { return 301 https://$host$request_uri; } # managed by cairn\n",
        "        add_header Strict-Transport-Security \"max-age=31536000\" always; # managed by cairn\n",
        "        add_header Content-Security-Policy \"upgrade-insecure-requests\" always; # managed by cairn\n",
    ] {
        assert_eq!(text.matches(line).count(), 1, "{line}\n{text}");
    }
    site.write_and_test(&config);
    let mut again = site.load();
    again.deploy(&names(&["a.test"]), &cert, &settings).unwrap();
    for what in [Enhancement::Redirect, Enhancement::Hsts, Enhancement::Uir] {
        again.enhance(&names(&["a.test"]), what, &settings).unwrap();
    }
    assert!(again.changes().is_empty());
    let err = again
        .enhance(&names(&["a.test"]), Enhancement::StapleOcsp, &settings)
        .unwrap_err();
    assert!(err.to_string().contains("CRLs, not OCSP"), "{err}");
}

#[test]
fn redirect_on_another_https_port_keeps_the_port() {
    let site =
        one("events {}\nhttp {\n  server {\n    listen 80;\n    server_name a.test;\n  }\n}\n");
    let mut settings = site.settings();
    settings.https_port = 8443;
    let mut config = site.load();
    config
        .deploy(&names(&["a.test"]), &site.cert(), &settings)
        .unwrap();
    config
        .enhance(&names(&["a.test"]), Enhancement::Redirect, &settings)
        .unwrap();
    let text = site.changed(&config, "nginx.conf");
    assert!(text.contains("listen 8443 ssl;"), "{text}");
    assert!(
        text.contains("return 301 https://$host:8443$request_uri;"),
        "{text}"
    );
}

#[test]
fn redirect_for_an_https_only_block_adds_a_redirecting_block() {
    let site = one(
        "events {}\nhttp {\n  server {\n    listen 443 ssl;\n    server_name a.test;\n  }\n}\n",
    );
    let mut config = site.load();
    let settings = site.settings();
    config
        .deploy(&names(&["a.test"]), &site.cert(), &settings)
        .unwrap();
    config
        .enhance(&names(&["a.test"]), Enhancement::Redirect, &settings)
        .unwrap();
    let text = site.changed(&config, "nginx.conf");
    assert!(text.contains(&format!("  }}\n  server {{ {MARKER}\n    listen 80; {MARKER}\n    server_name a.test; {MARKER}\n    return 301 https://$host$request_uri; {MARKER}\n  }} {MARKER}\n}}\n")), "{text}");
    site.write_and_test(&config);
    let mut again = site.load();
    again
        .enhance(&names(&["a.test"]), Enhancement::Redirect, &settings)
        .unwrap();
    assert!(again.changes().is_empty());
}

#[test]
fn hsts_needs_an_https_block() {
    let site = one("events {}\nhttp { server { listen 80; server_name a.test; } }\n");
    let err = site
        .load()
        .enhance(&names(&["a.test"]), Enhancement::Hsts, &site.settings())
        .unwrap_err();
    assert!(matches!(err, Error::NoBlock { .. }), "{err}");
}

#[test]
fn http01_location_in_the_http_block() {
    let site = one(
        "events {}\nhttp {\n  server {\n    listen 80 default_server;\n    server_name _;\n  }\n  server {\n    listen 80;\n    server_name a.test;\n  }\n}\n",
    );
    let challenges = site.root().join("challenge dir");
    let mut config = site.load();
    config
        .serve_http01(&names(&["a.test", "b.test"]), &challenges, &site.settings())
        .unwrap();
    let text = site.changed(&config, "nginx.conf");
    let line = format!(
        "    location ^~ /.well-known/acme-challenge/ {{ default_type text/plain; alias \"{}/\"; }} {MARKER}\n",
        challenges.display()
    );
    // a.test by name, b.test through the default server.
    assert_eq!(text.matches(&line).count(), 2, "{text}");
    site.write_and_test(&config);
    let mut again = site.load();
    again
        .serve_http01(&names(&["a.test", "b.test"]), &challenges, &site.settings())
        .unwrap();
    assert!(again.changes().is_empty());
}

#[test]
fn http01_refuses_next_to_a_users_own_challenge_location() {
    let site = one(
        "events {}\nhttp {\n  server {\n    listen 80;\n    server_name a.test;\n    location ^~ /.well-known/acme-challenge/ { root /srv; }\n  }\n}\n",
    );
    let err = site
        .load()
        .serve_http01(&names(&["a.test"]), site.root(), &site.settings())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("nginx.conf:6 already has a location"),
        "{err}"
    );
}

#[test]
fn paths_nginx_cannot_take_are_refused() {
    let site = one("events {}\nhttp { server { listen 80; server_name a.test; } }\n");
    let mut cert = site.cert();
    cert.fullchain = site.root().join("$bad.pem");
    let err = site
        .load()
        .deploy(&names(&["a.test"]), &cert, &site.settings())
        .unwrap_err();
    assert!(err.to_string().contains("variable"), "{err}");
}

#[test]
fn includes_missing_glob_is_fine_missing_file_is_not() {
    let site = Site::new(&[
        (
            "nginx.conf",
            "events {}\nhttp {\n    include nothing/*.conf;\n    include sites/*;\n}\n",
        ),
        (
            "sites/a",
            "server {\n    server_name a.test;\n    include snippets/missing.conf;\n}\n",
        ),
    ]);
    let err = cairn_install::nginx::NginxConfig::load(&site.conf()).unwrap_err();
    let Error::Syntax {
        path,
        line,
        message,
    } = &err
    else {
        panic!("{err}");
    };
    assert!(path.ends_with("sites/a") && *line == 3, "{err}");
    assert!(message.contains("snippets/missing.conf"), "{err}");
    std::fs::create_dir_all(site.root().join("snippets")).unwrap();
    std::fs::write(site.root().join("snippets/missing.conf"), "root html;\n").unwrap();
    let config = site.load();
    assert_eq!(config.server_names(), ["a.test"]);
}

#[test]
fn syntax_errors_name_file_and_line() {
    let site = Site::new(&[
        (
            "nginx.conf",
            "events {}\nhttp {\n    include conf.d/*.conf;\n}\n",
        ),
        (
            "conf.d/b.conf",
            "server {\n    listen 80;\n    server_name \"a\"b;\n}\n",
        ),
    ]);
    let err = cairn_install::nginx::NginxConfig::load(&site.conf()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("conf.d/b.conf:3:"), "{text}");
}

#[test]
fn server_names_leave_out_regexes_and_underscore() {
    let site = one(
        "events {}\nhttp {\n  server { server_name _ ~^x$ B.test .c.test \"\" $hostname; }\n  server { server_name a.test b.test; }\n}\n",
    );
    assert_eq!(
        site.load().server_names(),
        ["*.c.test", "a.test", "b.test", "c.test"]
    );
}

#[test]
fn include_cycle_is_an_error() {
    let site = Site::new(&[("nginx.conf", "events {}\ninclude nginx.conf;\n")]);
    let err = cairn_install::nginx::NginxConfig::load(&site.conf());
    // A file already read is not read again: a self-include is a no-op
    // for the parser, and nginx's own test catches the recursion.
    assert!(err.is_ok());
}

#[test]
fn copied_lua_blocks_are_not_marked() {
    let site = one(
        "events {}\nhttp {\n  server {\n    listen 80 default_server;\n    location / {\n      content_by_lua_block {\n        # not a comment in Lua: a length\n        ngx.say(#\"x\") -- ' {\n      }\n    }\n  }\n}\n",
    );
    let mut config = site.load();
    config
        .deploy(&names(&["lua.test"]), &site.cert(), &site.settings())
        .unwrap();
    let text = site.changed(&config, "nginx.conf");
    let copy = &text[text.find("server_name lua.test").unwrap()..];
    assert!(
        copy.contains(&format!(
            "        # not a comment in Lua: a length\n        ngx.say(#\"x\") -- ' {{\n      }} {MARKER}\n"
        )),
        "{text}"
    );
    assert!(
        copy.contains(&format!("      content_by_lua_block {{ {MARKER}\n")),
        "{text}"
    );
}

#[test]
fn bytes_that_are_not_utf8_are_kept_as_written() {
    use cairn_install::nginx::NginxConfig;
    // Latin-1 bytes (\xe9) in a path, in comments and after a block.
    let conf = b"events {}\nhttp {\n    server {\n        listen 80;\n        root /srv/caf\xe9;\n    } # \xe9t\xe9\n    server {\n        listen 443; # caf\xe9\n        server_name a.test;\n    }\n}\n";
    let site = one("");
    let path = site.conf();
    let mut config = NginxConfig::from_source(&path, conf).unwrap();
    config
        .deploy(
            &names(&["a.test", "new.test"]),
            &site.cert(),
            &site.settings(),
        )
        .unwrap();
    let after = config.changes().files[&path].after.clone();
    let has = |needle: &[u8]| after.windows(needle.len()).any(|w| w == needle);
    let marker = MARKER.as_bytes();
    // The listen replaced in place, its comment kept.
    assert!(has(&[b"listen 443 ssl; # caf\xe9 ", marker, b"\n"].concat()));
    // The new block after the line of the old block's `}`, with the old
    // block's root copied byte for byte.
    assert!(has(&[b"    } # \xe9t\xe9\n    server { ", marker].concat()));
    assert!(has(
        &[b"        root /srv/caf\xe9; ", marker, b"\n"].concat()
    ));
}

#[test]
fn copied_lines_that_only_look_like_comments_are_kept() {
    // A `#` line that ends a quoted string begun a line before, and a
    // block whose name starts with a form feed (a token to nginx, not
    // white space): dropping either as a comment broke the copy.
    let site = one(
        "events {}\nhttp {\n    server {\n        listen 80 default_server;\n        add_header X \"a\n# b\";\n\x0c#x {\n        }\n    }\n}\n",
    );
    let mut config = site.load();
    config
        .deploy(&names(&["copy.test"]), &site.cert(), &site.settings())
        .unwrap();
    let text = site.changed(&config, "nginx.conf");
    let copy = &text[text.find("server_name copy.test").unwrap()..];
    assert!(
        copy.contains(&format!(
            "        add_header X \"a\n# b\"; {MARKER}\n\x0c#x {{ {MARKER}\n        }} {MARKER}\n"
        )),
        "{text}"
    );
}

#[test]
fn new_block_goes_before_a_directive_begun_on_the_old_blocks_last_line() {
    // `access_log` starts after the `}` and ends a line below: the new
    // block must not land inside it (it would become its argument).
    let site = one(
        "events {}\nhttp {\n    server { listen 80; root /srv; } access_log\n        off;\n}\n",
    );
    let mut config = site.load();
    config
        .deploy(&names(&["new.test"]), &site.cert(), &site.settings())
        .unwrap();
    let text = site.changed(&config, "nginx.conf");
    assert!(
        text.contains(&format!(
            "    server {{ listen 80; root /srv; }}\n    server {{ {MARKER}\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "; {MARKER}\n    }} {MARKER}\n    access_log\n        off;\n}}\n"
        )),
        "{text}"
    );
    let place = config.block_for("new.test", 443).unwrap().unwrap();
    assert!(place.ends_with(":4"), "{place}");
}
