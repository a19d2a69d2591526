//! The text files the agent (`cairn`) reads from disk, each input given to
//! every reader:
//! - renewal/NAME.toml (`RenewalConfig`): what parses is saved and loaded
//!   again unchanged (`cairn renew` rewrites these files), and the web
//!   server settings in it make a server handle as `cairn renew` does;
//! - the proxy's TOML configuration (`cairn proxy --config`): parsed, then
//!   validated with no command-line overrides;
//! - certbot-dns-rfc2136's INI credentials (`--dns-rfc2136-credentials`);
//! - accounts/.../account.json (`AccountCredentials`): read back unchanged
//!   and its key loaded as `Account::from_credentials` loads it.
//!
//! Nothing may panic. The agent is a binary without a library, so its
//! modules are compiled here from their source files (`#[path]`), with
//! stand-ins for the two agent modules they reach through `crate::`.
#![no_main]

use cairn_client::AccountCredentials;
use cairn_proto::{KeyPair, base64url};
use libfuzzer_sys::fuzz_target;

/// The agent's `storage` module, as far as the modules below use it.
mod storage {
    pub(crate) use cairn_client::lineage::{create_dir, write_atomic};
}

/// The agent's `output` module, as far as the modules below use it.
mod output {
    pub(crate) fn say(_message: &str) {}
}

#[allow(dead_code)]
#[path = "../../crates/cairn-agent/src/renewal.rs"]
mod renewal;

#[allow(dead_code)]
#[path = "../../crates/cairn-agent/src/solver/web_server.rs"]
mod web_server;

#[allow(dead_code)]
#[path = "../../crates/cairn-agent/src/proxy/config.rs"]
mod proxy_config;

#[allow(dead_code)]
#[path = "../../crates/cairn-agent/src/solver/rfc2136.rs"]
mod rfc2136;

use renewal::{Authenticator, RenewalConfig, WebServerConfig};

fuzz_target!(|data: &[u8]| {
    // Every reader takes the file as a string (read_to_string).
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    renewal_file(text);
    proxy_file(text);
    let _ = rfc2136::parse_credentials(text).map(|solver| solver.server());
    account_file(text);
});

fn renewal_file(text: &str) {
    // RenewalConfig::load without the file: toml::from_str of its text.
    let Ok(config) = toml::from_str::<RenewalConfig>(text) else {
        return;
    };
    // RenewalConfig::save writes toml::to_string after a comment line.
    let saved = toml::to_string(&config)
        .unwrap_or_else(|e| panic!("loaded renewal settings do not save: {e}: {config:?}"));
    let again: RenewalConfig = toml::from_str(&saved)
        .unwrap_or_else(|e| panic!("saved renewal settings do not load: {e}:\n{saved}"));
    // NaN seconds are never equal to themselves; the text still must be.
    if !has_nan(&config) {
        assert_eq!(again, config, "changed by saving:\n{saved}");
    }
    assert_eq!(
        toml::to_string(&again).expect("serializes"),
        saved,
        "saving twice differs"
    );
    let servers = [
        match &config.authenticator {
            Authenticator::WebServer { server } => Some(server),
            _ => None,
        },
        config.installer.as_ref().map(|i| &i.server),
    ];
    for server in servers.into_iter().flatten() {
        // Apache's handle looks for its main file under server_root: one
        // that exists nowhere keeps the run the same on every machine.
        let server = WebServerConfig {
            server_root: "/nonexistent/cairn-fuzz".into(),
            ..server.clone()
        };
        let _ = web_server::web_server(&server);
    }
}

fn has_nan(config: &RenewalConfig) -> bool {
    let nan = |s: &WebServerConfig| s.sleep_seconds.is_some_and(f64::is_nan);
    matches!(&config.authenticator, Authenticator::WebServer { server } if nan(server))
        || config.installer.as_ref().is_some_and(|i| nan(&i.server))
}

fn proxy_file(text: &str) {
    if let Ok(file) = proxy_config::parse_file(text)
        && let Ok(config) = proxy_config::build(file, &proxy_config::Overrides::default())
    {
        let names = config.names();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
    }
}

fn account_file(text: &str) {
    let Ok(credentials) = serde_json::from_str::<AccountCredentials>(text) else {
        return;
    };
    let saved = serde_json::to_string_pretty(&credentials).expect("serializes");
    let again: AccountCredentials = serde_json::from_str(&saved).expect("reads back");
    assert_eq!(again, credentials);
    // Account::from_credentials, after its directory URL check.
    let value = serde_json::to_value(&credentials).expect("serializes");
    if let Some(Ok(der)) = value["key_pkcs8"].as_str().map(base64url::decode)
        && let Ok(key) = KeyPair::from_pkcs8_der(&der)
    {
        let _ = key.public_jwk().thumbprint();
    }
}
