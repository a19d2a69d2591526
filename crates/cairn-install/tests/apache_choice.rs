//! Apache: which vhost serves a name (as httpd decides), ambiguity,
//! includes, edits on small inline configurations, the parser's round trip
//! as a property, and (with `CAIRN_APACHE`) the real `apache2ctl`.

mod apache_support;

use std::path::{Path, PathBuf};

use apache_support::apply;
use cairn_install::apache::{Apache, ApacheConfig};
use cairn_install::{CertPaths, Config, Enhancement, Error, MARKER, Settings, WebServer};

const MODULES: &str = "/usr/lib/apache2/modules";

/// A private root: `apache2.conf` (modules from `mods-enabled`, `Listen
/// 80`, `sites/*.conf`), `mods-available` from the corpus, an `envvars`,
/// and `sites` holding `files`.
struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("apache2");
        let base = dir.path().display().to_string();
        let mut all = vec![
            (
                "apache2.conf".to_owned(),
                "DefaultRuntimeDir ${APACHE_RUN_DIR}\nPidFile ${APACHE_PID_FILE}\nErrorLog ${APACHE_LOG_DIR}/error.log\nIncludeOptional mods-enabled/*.load\nIncludeOptional mods-enabled/*.conf\nListen 80\nIncludeOptional sites/*.conf\n".to_owned(),
            ),
            (
                "envvars".to_owned(),
                format!("export APACHE_RUN_DIR={base}/run\nexport APACHE_PID_FILE={base}/run/pid\nexport APACHE_LOG_DIR={base}/log\nexport APACHE_LOCK_DIR={base}/lock\nexport APACHE_RUN_USER=www-data\nexport APACHE_RUN_GROUP=www-data\n"),
            ),
            (
                "mods-enabled/mpm_event.load".to_owned(),
                format!("LoadModule mpm_event_module {MODULES}/mod_mpm_event.so\n"),
            ),
            (
                "mods-enabled/authz_core.load".to_owned(),
                format!("LoadModule authz_core_module {MODULES}/mod_authz_core.so\n"),
            ),
        ];
        for (path, text) in files {
            all.retain(|(p, _)| p != path);
            all.push(((*path).to_owned(), (*text).to_owned()));
        }
        for (path, text) in all {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        let available = apache_support::corpus().join("_mods-available");
        std::fs::create_dir_all(root.join("mods-available")).expect("mkdir");
        for entry in std::fs::read_dir(available).expect("read_dir") {
            let entry = entry.expect("entry");
            std::fs::copy(
                entry.path(),
                root.join("mods-available").join(entry.file_name()),
            )
            .expect("copy");
        }
        for sub in ["run", "log", "lock", "live"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        let (cert, key) = apache_support::test_certificate();
        std::fs::write(dir.path().join("live/fullchain.pem"), cert).expect("write");
        std::fs::write(dir.path().join("live/privkey.pem"), key).expect("write");
        Self { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join("apache2").join(rel)
    }

    fn apache(&self) -> Apache {
        let apache = Apache::new(self.path(""));
        match std::env::var_os("CAIRN_APACHE") {
            Some(ctl) => apache.ctl(ctl),
            None => apache,
        }
    }

    fn load(&self) -> ApacheConfig {
        self.apache().load_config().expect("loads")
    }

    fn cert(&self, dir: &str) -> CertPaths {
        let live = self.dir.path().join(dir);
        CertPaths {
            fullchain: live.join("fullchain.pem"),
            key: live.join("privkey.pem"),
            cert: live.join("cert.pem"),
            chain: live.join("chain.pem"),
        }
    }

    fn settings(&self) -> Settings {
        Settings {
            https_port: 443,
            http_port: 80,
            options_file: self.path("options-ssl-apache.conf"),
        }
    }
}

fn vhost(addr: &str, names: &str) -> String {
    let mut out = format!("<VirtualHost {addr}>\n");
    let mut names = names.split_whitespace();
    if let Some(first) = names.next() {
        out.push_str(&format!("    ServerName {first}\n"));
    }
    for alias in names {
        out.push_str(&format!("    ServerAlias {alias}\n"));
    }
    out.push_str("    DocumentRoot /var/www/html\n</VirtualHost>\n");
    out
}

fn place(root: &Root, rel: &str, line: usize) -> String {
    format!("{}:{line}", root.path(rel).display())
}

#[test]
fn the_first_vhost_naming_it_on_the_address_wins() {
    let text = format!(
        "{}{}{}",
        vhost("*:80", "other.example"),
        vhost("*:80", "a.example www.a.example"),
        vhost("*:80", "a.example")
    );
    let root = Root::new(&[("sites/a.conf", &text)]);
    let config = root.load();
    assert_eq!(
        config.vhost_for("www.a.example", 80).expect("no error"),
        Some(place(&root, "sites/a.conf", 5))
    );
    assert_eq!(
        config.vhost_for("a.example", 80).expect("no error"),
        Some(place(&root, "sites/a.conf", 5))
    );
    // Nobody names it: the first vhost of the address is the default.
    assert_eq!(
        config.vhost_for("unknown.example", 80).expect("no error"),
        Some(place(&root, "sites/a.conf", 1))
    );
    // Nothing on port 81.
    assert_eq!(config.vhost_for("a.example", 81).expect("no error"), None);
}

#[test]
fn wildcard_aliases_match_like_httpd() {
    let text = format!(
        "{}{}",
        vhost("*:80", "example.org *.example.org"),
        vhost("*:80", "www.example.net www?.example.net")
    );
    let root = Root::new(&[("sites/w.conf", &text)]);
    let config = root.load();
    for (name, line) in [
        ("shop.example.org", 1),
        ("a.b.example.org", 1),
        ("WWW7.example.net", 6),
    ] {
        assert_eq!(
            config.vhost_for(name, 80).expect("no error"),
            Some(place(&root, "sites/w.conf", line)),
            "{name}"
        );
    }
    assert_eq!(
        config.server_names(),
        [
            "*.example.org",
            "example.org",
            "www.example.net",
            "www?.example.net"
        ]
    );
}

#[test]
fn the_same_name_on_two_addresses_is_ambiguous() {
    let root = Root::new(&[
        ("sites/a.conf", &vhost("*:80", "a.example")),
        ("sites/b.conf", &vhost("192.0.2.1:80", "a.example")),
    ]);
    let mut config = root.load();
    let err = config
        .deploy(
            &["a.example".to_owned()],
            &root.cert("live"),
            &root.settings(),
        )
        .expect_err("ambiguous");
    let Error::Ambiguous { candidates, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(
        candidates,
        &[
            place(&root, "sites/a.conf", 1),
            place(&root, "sites/b.conf", 1)
        ]
    );
    assert!(err.to_string().contains("a.example"), "{err}");
    assert!(config.changes().is_empty());
}

#[test]
fn sections_not_in_effect_are_ignored() {
    let text = format!(
        "<IfModule mod_nothing.c>\n{}</IfModule>\n<IfDefine !NOPE>\n{}</IfDefine>\n<IfModule mpm_event_module>\n{}</IfModule>\n",
        vhost("*:80", "a.example"),
        vhost("*:80", "b.example"),
        vhost("*:80", "a.example")
    );
    let root = Root::new(&[("sites/c.conf", &text)]);
    let config = root.load();
    assert_eq!(
        config.vhost_for("a.example", 80).expect("no error"),
        Some(place(&root, "sites/c.conf", 14))
    );
    assert_eq!(
        config.vhost_for("b.example", 80).expect("no error"),
        Some(place(&root, "sites/c.conf", 8))
    );
}

#[test]
fn includes_follow_httpd_rules() {
    // A missing file, and a glob matching nothing, fail `Include`.
    for include in ["Include missing.conf\n", "Include nothing/*.conf\n"] {
        let root = Root::new(&[("sites/i.conf", include)]);
        let err = root.apache().load_config().expect_err("missing include");
        let Error::Syntax { path, line, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(
            (path.as_path(), *line),
            (root.path("sites/i.conf").as_path(), 1)
        );
    }
    // IncludeOptional does not; a glob reads matches in order.
    let root = Root::new(&[
        (
            "sites/i.conf",
            "IncludeOptional missing.conf\nIncludeOptional nothing/*.conf\nInclude more/*.conf\n",
        ),
        ("more/b.conf", &vhost("*:80", "b.example")),
        ("more/a.conf", &vhost("*:80", "a.example")),
    ]);
    let config = root.load();
    assert_eq!(
        config.vhost_for("z.example", 80).expect("no error"),
        Some(place(&root, "more/a.conf", 1))
    );
    // An include loop is an error, not a stack overflow.
    let root = Root::new(&[("sites/loop.conf", "Include sites/loop.conf\n")]);
    let err = root.apache().load_config().expect_err("loop");
    assert!(err.to_string().contains("loop"), "{err}");
}

#[test]
fn a_syntax_error_names_file_and_line() {
    let root = Root::new(&[(
        "sites/bad.conf",
        "<VirtualHost *:80>\nServerName a\n</Virtualhost\n",
    )]);
    let err = root.apache().load_config().expect_err("broken");
    assert_eq!(
        err.to_string(),
        format!(
            "{}:3: </Virtualhost is missing its closing '>'",
            root.path("sites/bad.conf").display()
        )
    );
}

#[test]
fn deploy_without_a_vhost_on_the_port_says_what_to_do() {
    let root = Root::new(&[("sites/x.conf", &vhost("*:8080", "a.example"))]);
    let mut config = root.load();
    let err = config
        .deploy(
            &["a.example".to_owned()],
            &root.cert("live"),
            &root.settings(),
        )
        .expect_err("no vhost");
    assert!(matches!(err, Error::NoBlock { .. }), "{err:?}");
    assert!(err.to_string().contains("ServerName a.example"), "{err}");
    assert!(config.changes().is_empty());
}

#[test]
fn two_names_of_the_default_vhost_share_one_twin() {
    let root = Root::new(&[("sites/000-default.conf", &vhost("*:80", ""))]);
    let mut config = root.load();
    let names = ["example.com".to_owned(), "www.example.com".to_owned()];
    config
        .deploy(&names, &root.cert("live"), &root.settings())
        .expect("deploy");
    let changes = config.changes();
    let twin = root.path("sites/000-default-le-ssl.conf");
    let text = String::from_utf8(changes.files[&twin].after.clone()).expect("utf-8");
    assert!(text.starts_with(MARKER), "{text}");
    assert!(text.contains("<VirtualHost *:443>"), "{text}");
    assert!(
        text.contains(&format!("{MARKER}\n    ServerName example.com\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{MARKER}\n    ServerAlias www.example.com\n")),
        "{text}"
    );
    // a2enmod ssl with its dependencies, the options file, Listen 443.
    for new in [
        "mods-enabled/ssl.load",
        "mods-enabled/ssl.conf",
        "mods-enabled/socache_shmcb.load",
        "mods-enabled/setenvif.load",
        "mods-enabled/mime.load",
        "options-ssl-apache.conf",
    ] {
        assert_eq!(changes.files[&root.path(new)].before, None, "{new}");
    }
    let main =
        String::from_utf8(changes.files[&root.path("apache2.conf")].after.clone()).expect("utf-8");
    assert!(
        main.contains(&format!("Listen 80\n{MARKER}\nListen 443\n")),
        "{main}"
    );
    apply(&changes);
    assert_eq!(
        root.load()
            .vhost_for("www.example.com", 443)
            .expect("no error"),
        Some(place(&root, "sites/000-default-le-ssl.conf", 4))
    );
}

#[test]
fn a_renewal_with_new_paths_replaces_only_the_certificate_lines() {
    let root = Root::new(&[("sites/a.conf", &vhost("*:80", "a.example"))]);
    let names = ["a.example".to_owned()];
    let mut config = root.load();
    config
        .deploy(&names, &root.cert("live"), &root.settings())
        .expect("deploy");
    apply(&config.changes());
    let twin = root.path("sites/a-le-ssl.conf");
    let before = std::fs::read_to_string(&twin).expect("twin");
    let mut config = root.load();
    config
        .deploy(&names, &root.cert("live2"), &root.settings())
        .expect("deploy");
    let changes = config.changes();
    assert_eq!(changes.files.keys().collect::<Vec<_>>(), [&twin]);
    let after = String::from_utf8(changes.files[&twin].after.clone()).expect("utf-8");
    let expected = before.replace(
        &root.cert("live").fullchain.display().to_string(),
        &root.cert("live2").fullchain.display().to_string(),
    );
    let expected = expected.replace(
        &root.cert("live").key.display().to_string(),
        &root.cert("live2").key.display().to_string(),
    );
    assert_eq!(after, expected);
}

#[test]
fn ocsp_stapling_is_refused_and_changes_nothing() {
    let root = Root::new(&[("sites/a.conf", &vhost("*:80", "a.example"))]);
    let mut config = root.load();
    let err = config
        .enhance(
            &["a.example".to_owned()],
            Enhancement::StapleOcsp,
            &root.settings(),
        )
        .expect_err("refused");
    assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
    assert!(err.to_string().contains("OCSP"), "{err}");
    assert!(config.changes().is_empty());
}

#[test]
fn enhancements_need_an_https_vhost_first() {
    let root = Root::new(&[("sites/a.conf", &vhost("*:80", "a.example"))]);
    let mut config = root.load();
    let err = config
        .enhance(
            &["a.example".to_owned()],
            Enhancement::Hsts,
            &root.settings(),
        )
        .expect_err("no https vhost");
    assert!(err.to_string().contains("certificate first"), "{err}");
}

#[test]
fn http01_aliases_the_challenge_directory_in_the_http_vhost() {
    let root = Root::new(&[("sites/a.conf", &vhost("*:80", "a.example"))]);
    let mut config = root.load();
    let dir = Path::new("/var/lib/cairn/http-01 dir");
    config
        .serve_http01(&["a.example".to_owned()], dir, &root.settings())
        .expect("serve_http01");
    let changes = config.changes();
    let text =
        String::from_utf8(changes.files[&root.path("sites/a.conf")].after.clone()).expect("utf-8");
    assert_eq!(
        text,
        format!(
            "<VirtualHost *:80>\n    ServerName a.example\n    DocumentRoot /var/www/html\n    {MARKER}\n    Alias /.well-known/acme-challenge/ \"/var/lib/cairn/http-01 dir/\"\n    {MARKER}\n    <Directory \"/var/lib/cairn/http-01 dir\">\n        Require all granted\n    </Directory>\n</VirtualHost>\n"
        )
    );
    assert_eq!(
        changes.files[&root.path("mods-enabled/alias.load")].before,
        None
    );
    apply(&changes);
    let mut again = root.load();
    again
        .serve_http01(&["a.example".to_owned()], dir, &root.settings())
        .expect("serve_http01");
    assert!(again.changes().is_empty());
}

mod round_trip {
    use proptest::prelude::*;

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            "[ \t]{0,3}# [a-z<>{}\"' ]{0,12}",
            "[ \t]{0,3}[A-Za-z]{1,10}( [a-z0-9\"'#*:./${}]{1,8}){0,3}",
            "[ \t]{0,3}[A-Za-z]{1,8} [a-z]{1,5} \\\\",
        ]
    }

    fn file() -> impl Strategy<Value = String> {
        let block = prop_oneof![
            line().prop_map(|l| vec![l]),
            (
                "[A-Za-z]{1,10}",
                "( [*a-z0-9:.]{1,8}){0,2}",
                prop::collection::vec(line(), 0..4)
            )
                .prop_map(|(name, args, body)| {
                    let mut out = vec![format!("<{name}{args}>")];
                    out.extend(body);
                    out.push(format!("</{}>", name.to_uppercase()));
                    out
                }),
        ];
        (
            prop::collection::vec(block, 0..8),
            prop::bool::ANY,
            prop::bool::ANY,
        )
            .prop_map(|(blocks, crlf, final_eol)| {
                let eol = if crlf { "\r\n" } else { "\n" };
                let mut text = blocks.concat().join(eol);
                if final_eol && !text.is_empty() {
                    text.push_str(eol);
                }
                text
            })
    }

    proptest! {
        #[test]
        fn generated_files_print_back(text in file()) {
            if let Ok(printed) = cairn_install::apache::parse_and_print(text.as_bytes()) {
                prop_assert_eq!(printed, text.as_bytes());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_print_back(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(printed) = cairn_install::apache::parse_and_print(&bytes) {
                prop_assert_eq!(printed, bytes);
            }
        }
    }

    #[test]
    fn balanced_generated_files_parse() {
        // Most generated files are well formed (continuations aside): the
        // property above is not vacuous.
        let text = "<VirtualHost *:80>\r\n  ServerName a\r\n</VIRTUALHOST>\r\nListen 80";
        assert!(cairn_install::apache::parse_and_print(text.as_bytes()).is_ok());
    }
}

#[test]
#[cfg_attr(not(peer_apache), ignore = "needs CAIRN_APACHE")]
fn config_test_quotes_apache_on_a_broken_config() {
    let root = Root::new(&[(
        "sites/a.conf",
        "<VirtualHost *:80>\nServerName a b c\n</VirtualHost>\n",
    )]);
    let err = root.apache().config_test().expect_err("broken");
    let Error::ConfigTest { output, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(output.contains("ServerName takes one argument"), "{output}");
    assert!(output.contains("a.conf"), "{output}");
}

#[test]
#[cfg_attr(not(peer_apache), ignore = "needs CAIRN_APACHE")]
fn config_test_passes_after_deploy_enhance_and_http01() {
    let root = Root::new(&[("sites/a.conf", &vhost("*:80", "a.example www.a.example"))]);
    root.apache().config_test().expect("valid before");
    let names = ["a.example".to_owned(), "www.a.example".to_owned()];
    let mut config = root.load();
    config
        .deploy(&names, &root.cert("live"), &root.settings())
        .expect("deploy");
    for what in [Enhancement::Redirect, Enhancement::Hsts, Enhancement::Uir] {
        config
            .enhance(&names, what, &root.settings())
            .expect("enhance");
    }
    config
        .serve_http01(&names, &root.dir.path().join("live"), &root.settings())
        .expect("http01");
    apply(&config.changes());
    root.apache().config_test().expect("valid after");
}

/// A free loopback port (bound then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Stops the Apache a test started.
struct Running<'r> {
    root: &'r Root,
    ctl: std::ffi::OsString,
}

impl Running<'_> {
    fn ctl(&self, args: &[&str]) -> std::process::Output {
        let root = self.root.path("");
        std::process::Command::new(&self.ctl)
            .args(args)
            .arg("-d")
            .arg(&root)
            .arg("-f")
            .arg(root.join("apache2.conf"))
            .env("APACHE_CONFDIR", &root)
            .output()
            .expect("run apache2ctl")
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let _ = self.ctl(&["-k", "stop"]);
    }
}

fn curl(args: &[&str]) -> String {
    let out = std::process::Command::new("curl")
        .args(["-s", "-S", "-D", "-", "--max-time", "5"])
        .args(args)
        .output()
        .expect("curl");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
#[cfg_attr(not(peer_apache), ignore = "needs CAIRN_APACHE")]
fn a_running_apache_serves_https_after_deploy_and_graceful_reload() {
    use std::os::unix::fs::PermissionsExt as _;
    let (http, https) = (free_port(), free_port());
    let conf = format!(
        "DefaultRuntimeDir ${{APACHE_RUN_DIR}}\nPidFile ${{APACHE_PID_FILE}}\nErrorLog ${{APACHE_LOG_DIR}}/error.log\n\
         User ${{APACHE_RUN_USER}}\nGroup ${{APACHE_RUN_GROUP}}\nServerName localhost\n\
         IncludeOptional mods-enabled/*.load\nIncludeOptional mods-enabled/*.conf\n\
         Listen 127.0.0.1:{http}\n<IfModule ssl_module>\n\tListen 127.0.0.1:{https} https\n</IfModule>\n\
         IncludeOptional sites/*.conf\n"
    );
    let root = Root::new(&[("apache2.conf", &conf)]);
    let www = root.dir.path().join("www");
    std::fs::create_dir_all(&www).expect("mkdir");
    std::fs::write(www.join("index.html"), "hello from apache\n").expect("write");
    for dir in [root.dir.path(), www.as_path()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    std::fs::create_dir_all(root.path("sites")).expect("mkdir");
    std::fs::write(
        root.path("sites/a.conf"),
        format!(
            "<VirtualHost *:{http}>\n\tServerName a.example\n\tDocumentRoot {}\n\t<Directory {}>\n\t\tRequire all granted\n\t</Directory>\n</VirtualHost>\n",
            www.display(),
            www.display()
        ),
    )
    .expect("write");
    let running = Running {
        root: &root,
        ctl: std::env::var_os("CAIRN_APACHE").expect("CAIRN_APACHE"),
    };
    let started = running.ctl(&["-k", "start"]);
    assert!(started.status.success(), "{started:?}");
    let http_url = format!("http://a.example:{http}/index.html");
    let resolve_http = format!("a.example:{http}:127.0.0.1");
    let mut page = String::new();
    for _ in 0..50 {
        page = curl(&["--resolve", &resolve_http, &http_url]);
        if page.contains("hello from apache") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(page.contains("hello from apache"), "{page}");

    let settings = Settings {
        https_port: https,
        http_port: http,
        options_file: root.path("options-ssl-apache.conf"),
    };
    let names = ["a.example".to_owned()];
    let mut config = root.load();
    config
        .deploy(&names, &root.cert("live"), &settings)
        .expect("deploy");
    config
        .enhance(&names, Enhancement::Redirect, &settings)
        .expect("redirect");
    config
        .enhance(&names, Enhancement::Hsts, &settings)
        .expect("hsts");
    apply(&config.changes());
    let apache = root.apache();
    apache.config_test().expect("config test");
    apache.reload().expect("graceful reload");

    let https_url = format!("https://a.example:{https}/index.html");
    let resolve_https = format!("a.example:{https}:127.0.0.1");
    let mut page = String::new();
    for _ in 0..50 {
        page = curl(&["-k", "--resolve", &resolve_https, &https_url]);
        if page.contains("hello from apache") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(root.dir.path().join("log/error.log")).unwrap_or_default();
    assert!(page.contains("hello from apache"), "{page}\n{log}");
    assert!(
        page.to_ascii_lowercase()
            .contains("strict-transport-security: max-age=31536000"),
        "{page}"
    );
    let redirect = curl(&["--resolve", &resolve_http, &http_url]);
    assert!(redirect.starts_with("HTTP/1.1 301"), "{redirect}");
    assert!(
        redirect.contains(&format!("Location: https://a.example:{https}/index.html")),
        "{redirect}"
    );
}
