//! Certificates through cairn-tls: one managed certificate per site, the
//! CAs in order, the challenges chosen, dns-01 by RFC 2136, and on-demand
//! issuance behind the `ask` URL. On reload with other names a new manager
//! is built and swapped in (certificates already saved are served at once).

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use cairn_tls::{BoxFuture as TlsFuture, CaConfig, DnsSolver, OnDemand, TlsManager};
use tokio::net::TcpStream;

use super::config::{CATCH_ALL, Challenge, ProxyConfig};
use super::server::{BoxFuture, Certificates, TlsStream, Watched};
use crate::commands::Context;
use crate::solver::Rfc2136;

/// The running certificate manager, swappable on reload.
#[derive(Debug)]
pub(crate) struct Managed {
    config_dir: std::path::PathBuf,
    current: RwLock<(TlsManager, Vec<Vec<String>>)>,
}

/// Builds the manager for `config`, starts it (certificates saved earlier
/// are served at once; missing ones are ordered in the background).
pub(crate) async fn start(
    context: &Context,
    config: &ProxyConfig,
    _http: SocketAddr,
    _https: SocketAddr,
) -> Result<Arc<Managed>> {
    let config_dir = context.dir.root().to_owned();
    let certificates = certificate_sets(config);
    let manager = build(&config_dir, config, &certificates)?;
    manager.start();
    Ok(Arc::new(Managed {
        config_dir,
        current: RwLock::new((manager, certificates)),
    }))
}

impl Managed {
    fn manager(&self) -> TlsManager {
        match self.current.read() {
            Ok(current) => current.0.clone(),
            Err(poisoned) => poisoned.into_inner().0.clone(),
        }
    }

    /// Applies a reloaded configuration: a new manager when the set of
    /// certificates changed (CA and challenge settings change on restart).
    pub(crate) async fn update(&self, config: &ProxyConfig) -> Result<()> {
        let certificates = certificate_sets(config);
        let unchanged = match self.current.read() {
            Ok(current) => current.1 == certificates,
            Err(poisoned) => poisoned.into_inner().1 == certificates,
        };
        if unchanged {
            return Ok(());
        }
        let manager = build(&self.config_dir, config, &certificates)?;
        let old = {
            let mut current = match self.current.write() {
                Ok(current) => current,
                Err(poisoned) => poisoned.into_inner(),
            };
            manager.start();
            std::mem::replace(&mut *current, (manager, certificates))
        };
        old.0.stop();
        Ok(())
    }

    /// Stops renewals (on shutdown).
    pub(crate) async fn stop(&self) {
        self.manager().stop();
    }
}

impl Certificates for Managed {
    fn accept(&self, tcp: Watched<TcpStream>) -> BoxFuture<'_, io::Result<Option<TlsStream>>> {
        let manager = self.manager();
        Box::pin(async move {
            match manager.accept(tcp).await {
                Ok(tls) => Ok(Some(tls)),
                Err(cairn_tls::Error::Io(e)) => Err(e),
                Err(e @ (cairn_tls::Error::Refused(_) | cairn_tls::Error::Timeout)) => {
                    tracing::info!("handshake refused: {e}");
                    Ok(None)
                }
                Err(e) => Err(io::Error::other(e.to_string())),
            }
        })
    }

    fn http01(&self, _host: &str, token: &str) -> Option<String> {
        self.manager()
            .http01_key_authorization(&format!("/.well-known/acme-challenge/{token}"))
    }
}

/// One certificate per site (its names), the catch-all excluded.
fn certificate_sets(config: &ProxyConfig) -> Vec<Vec<String>> {
    config
        .sites
        .iter()
        .map(|s| {
            s.names
                .iter()
                .filter(|n| *n != CATCH_ALL)
                .cloned()
                .collect::<Vec<_>>()
        })
        .filter(|names| !names.is_empty())
        .collect()
}

fn build(
    config_dir: &std::path::Path,
    config: &ProxyConfig,
    certificates: &[Vec<String>],
) -> Result<TlsManager> {
    if !config.agree_tos {
        bail!(
            "the CA's terms of service must be agreed to: add --agree-tos (or agree_tos = true \
             in [acme])"
        );
    }
    let mut builder = TlsManager::builder(config_dir);
    for names in certificates {
        builder = builder.certificate(names);
    }
    let cas = if config.cas.is_empty() {
        vec![super::config::CaFile {
            server: crate::cli::LETS_ENCRYPT.to_owned(),
            ca_bundle: None,
            eab_kid: None,
            eab_hmac_key: None,
            profile: None,
        }]
    } else {
        config.cas.clone()
    };
    for ca in &cas {
        let mut ca_config = CaConfig::new(&ca.server).agree_tos(true);
        if let Some(email) = &config.email {
            ca_config = ca_config.email(email);
        }
        if let Some(path) = &ca.ca_bundle {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading the CA bundle {}", path.display()))?;
            ca_config = ca_config.ca_bundle_pem(pem);
        }
        if let (Some(kid), Some(key)) = (&ca.eab_kid, &ca.eab_hmac_key) {
            let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(key.trim_end_matches('='))
                .with_context(|| format!("the EAB HMAC key for {} is not base64url", ca.server))?;
            ca_config = ca_config.eab(kid, key);
        }
        if let Some(profile) = &ca.profile {
            ca_config = ca_config.profile(profile);
        }
        builder = builder.ca(ca_config);
    }
    let challenges: Vec<cairn_tls::Challenge> = config
        .challenges
        .iter()
        .map(|c| match c {
            Challenge::TlsAlpn01 => cairn_tls::Challenge::TlsAlpn01,
            Challenge::Http01 => cairn_tls::Challenge::Http01,
            Challenge::Dns01 => cairn_tls::Challenge::Dns01,
        })
        .collect();
    builder = builder.challenges(&challenges);
    if let Some(dns) = &config.dns {
        let solver = Rfc2136::new(&dns.rfc2136_credentials, dns.propagation_seconds)?;
        builder = builder.dns_solver(Arc::new(Rfc2136Solver(solver)));
        builder = builder.challenges(&challenges);
    }
    if let Some(ask) = &config.on_demand_ask {
        builder = builder.on_demand(OnDemand::new(ask_policy(ask.clone())?));
    }
    builder
        .build()
        .map_err(|e| anyhow::anyhow!("certificates: {e}"))
}

/// `GET ASK?domain=NAME`: 200 allows the name; anything else refuses.
fn ask_policy(ask: String) -> Result<impl Fn(&str) -> TlsFuture<'static, bool> + Send + Sync> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("the HTTP client for the on-demand ask URL")?;
    Ok(move |name: &str| -> TlsFuture<'static, bool> {
        let client = client.clone();
        let ask = ask.clone();
        let name = name.to_owned();
        Box::pin(async move {
            let separator = if ask.contains('?') { '&' } else { '?' };
            let url = format!("{ask}{separator}domain={}", query_escape(&name));
            match client.get(&url).send().await {
                Ok(response) if response.status() == reqwest::StatusCode::OK => {
                    tracing::info!("on-demand: {ask} allows {name}");
                    true
                }
                Ok(response) => {
                    tracing::info!("on-demand: {ask} refuses {name} ({})", response.status());
                    false
                }
                Err(e) => {
                    tracing::warn!("on-demand: asking {ask} about {name} failed, refusing: {e}");
                    false
                }
            }
        })
    })
}

/// Percent-encodes everything but letters, digits, `-` and `.`.
fn query_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The agent's RFC 2136 solver as cairn-tls' dns-01 hook.
#[derive(Debug)]
struct Rfc2136Solver(Rfc2136);

impl DnsSolver for Rfc2136Solver {
    fn present<'a>(
        &'a self,
        record_name: &'a str,
        value: &'a str,
    ) -> TlsFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.0
                .add_txt(record_name, value)
                .await
                .map_err(|e| format!("{e:#}"))?;
            tokio::time::sleep(self.0.propagation()).await;
            Ok(())
        })
    }

    fn cleanup<'a>(
        &'a self,
        record_name: &'a str,
        value: &'a str,
    ) -> TlsFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.0
                .delete_txt(record_name, value)
                .await
                .map_err(|e| format!("{e:#}"))
        })
    }
}
