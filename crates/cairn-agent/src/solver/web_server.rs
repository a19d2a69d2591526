//! http-01 through the running nginx or Apache (`--nginx`/`--apache` as
//! the authenticator): the key authorizations are written as files under
//! `CONFIG_DIR/http-01/`, the server's HTTP blocks for the names get a
//! temporary location (nginx) / alias (Apache) serving that directory, and
//! the server is reloaded. Cleanup restores every configuration file from
//! the checkpoint taken before and reloads again; a crash in between is
//! undone by the next cairn run (see `cairn_install::Installer::temporary`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use cairn_client::PreparedChallenge;
use cairn_install::apache::Apache;
use cairn_install::nginx::Nginx;
use cairn_install::{Installer, TemporaryChange, WebServer};

use crate::renewal::{WebServerConfig, WebServerKind};

/// The server a [`WebServerConfig`] describes.
pub(crate) fn web_server(config: &WebServerConfig) -> Result<Arc<dyn WebServer>> {
    match config.kind {
        WebServerKind::Nginx => {
            let mut nginx = Nginx::new(&config.server_root).with_ctl(&config.ctl);
            if let Some(seconds) = config.sleep_seconds {
                // Negative and NaN wait nothing; what no Duration holds
                // (infinite, over 2^64 s) is refused.
                let sleep = Duration::try_from_secs_f64(seconds.max(0.0)).map_err(|_| {
                    anyhow!("the wait after an nginx reload, {seconds} s, is too long")
                })?;
                nginx = nginx.with_sleep(sleep);
            }
            Ok(Arc::new(nginx))
        }
        WebServerKind::Apache => {
            let mut apache = Apache::new(&config.server_root).ctl(&config.ctl);
            if let Some(dir) = &config.vhost_root {
                apache = apache.vhost_root(dir);
            }
            if let Some(ext) = &config.le_vhost_ext {
                apache = apache.le_vhost_ext(ext);
            }
            Ok(Arc::new(apache))
        }
    }
}

#[derive(Debug)]
pub(crate) struct WebServerSolver {
    installer: Installer,
    settings: cairn_install::Settings,
    challenge_dir: PathBuf,
    guard: Option<TemporaryChange>,
    written: Vec<PathBuf>,
}

impl WebServerSolver {
    pub(crate) fn new(config: &WebServerConfig, config_dir: &Path) -> Result<Self> {
        let installer = Installer::new(web_server(config)?, config_dir);
        let settings = installer.settings(config.https_port, config.http_port);
        Ok(Self {
            challenge_dir: config_dir.join("http-01").join(installer.server().name()),
            installer,
            settings,
            guard: None,
            written: Vec::new(),
        })
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "the running {} (a temporary location for /.well-known/acme-challenge/)",
            self.installer.server().name()
        )
    }

    pub(crate) fn present(&mut self, challenges: &[PreparedChallenge]) -> Result<()> {
        // Readable by the server's workers (www-data): 0755 / 0644.
        crate::storage::create_dir(&self.challenge_dir, 0o755)?;
        for challenge in challenges {
            // The token is base64url (checked by cairn-client): one plain file name.
            let file = self.challenge_dir.join(challenge.token.as_str());
            crate::storage::write_atomic(&file, challenge.key_authorization.as_bytes(), 0o644)?;
            self.written.push(file);
        }
        let mut names: Vec<String> = challenges
            .iter()
            .map(|c| c.identifier.value.clone())
            .collect();
        names.sort();
        names.dedup();
        let dir = self.challenge_dir.clone();
        let settings = self.settings.clone();
        let guard = self
            .installer
            .temporary(&format!("http-01 for {}", names.join(", ")), |config| {
                config.serve_http01(&names, &dir, &settings)
            })
            .with_context(|| {
                format!(
                    "serving the http-01 responses through {}",
                    self.installer.server().name()
                )
            })?;
        self.guard = Some(guard);
        Ok(())
    }

    pub(crate) fn cleanup(&mut self) -> Result<()> {
        let restored = match self.guard.take() {
            Some(guard) => guard.restore().with_context(|| {
                format!(
                    "restoring the {} configuration after http-01",
                    self.installer.server().name()
                )
            }),
            None => Ok(()),
        };
        for file in self.written.drain(..) {
            let _ = std::fs::remove_file(file);
        }
        restored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nginx(sleep_seconds: f64) -> WebServerConfig {
        WebServerConfig {
            kind: WebServerKind::Nginx,
            server_root: "/etc/nginx".into(),
            ctl: "nginx".into(),
            sleep_seconds: Some(sleep_seconds),
            vhost_root: None,
            le_vhost_ext: None,
            https_port: 443,
            http_port: 80,
        }
    }

    /// Found by the agent_config fuzz target: `sleep_seconds = inf` (or
    /// 1e20) in a renewal file, or `--nginx-sleep-seconds inf`, panicked
    /// when made a Duration.
    #[test]
    fn a_wait_no_duration_holds_is_an_error() {
        for bad in [f64::INFINITY, 1e20] {
            match web_server(&nginx(bad)) {
                Ok(_) => panic!("a wait of {bad} s accepted"),
                Err(e) => assert!(e.to_string().contains("too long"), "{e}"),
            }
        }
        for fine in [0.0, 1.5, 86_400.0, -1.0, f64::NEG_INFINITY, f64::NAN] {
            assert!(web_server(&nginx(fine)).is_ok(), "{fine}");
        }
    }
}
