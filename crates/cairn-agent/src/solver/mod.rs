//! Challenge solvers: each puts the responses to a set of challenges in
//! place (`present`) and takes them away again (`cleanup`).
//!
//! Every value that reaches a file path, a URL, a DNS record or a hook's
//! environment comes from a [`PreparedChallenge`], whose token cairn-client
//! has checked to be base64url; identifiers are the order's own names.

mod http01;
mod manual;
mod rfc2136;
mod tls_alpn01;
mod web_server;
mod webroot;

pub(crate) use self::web_server::web_server;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::Path;

use anyhow::Result;
use cairn_client::PreparedChallenge;
use cairn_proto::objects::ChallengeType;

use crate::renewal::Authenticator;

pub(crate) use self::rfc2136::Rfc2136;

/// A solver, made from the renewal settings' [`Authenticator`].
#[derive(Debug)]
pub(crate) enum Solver {
    Standalone(http01::Standalone),
    Webroot(webroot::Webroot),
    TlsAlpn(tls_alpn01::TlsAlpn),
    Manual(manual::Manual),
    Rfc2136(rfc2136::Rfc2136),
    WebServer(web_server::WebServerSolver),
}

impl Solver {
    /// `config_dir`: cairn's configuration directory (for --nginx/--apache:
    /// the lock, checkpoints and challenge files).
    pub(crate) fn new(authenticator: &Authenticator, config_dir: &Path) -> Result<Self> {
        Ok(match authenticator {
            Authenticator::Standalone { address, port } => {
                Self::Standalone(http01::Standalone::new(bind_address(*address, *port)))
            }
            Authenticator::Webroot { map } => Self::Webroot(webroot::Webroot::new(map.clone())),
            Authenticator::TlsAlpn { address, port } => {
                Self::TlsAlpn(tls_alpn01::TlsAlpn::new(bind_address(*address, *port)))
            }
            Authenticator::Manual {
                challenge,
                auth_hook,
                cleanup_hook,
            } => Self::Manual(manual::Manual::new(
                challenge,
                auth_hook.clone(),
                cleanup_hook.clone(),
            )?),
            Authenticator::DnsRfc2136 {
                credentials,
                propagation_seconds,
            } => Self::Rfc2136(rfc2136::Rfc2136::new(credentials, *propagation_seconds)?),
            Authenticator::Managed { by } => anyhow::bail!(
                "this certificate is managed by {by}, which obtains and renews it itself"
            ),
            Authenticator::WebServer { server } => {
                Self::WebServer(web_server::WebServerSolver::new(server, config_dir)?)
            }
        })
    }

    /// The challenge type this solver answers.
    pub(crate) fn challenge_type(&self) -> ChallengeType {
        match self {
            Self::Standalone(_) | Self::Webroot(_) | Self::WebServer(_) => ChallengeType::Http01,
            Self::TlsAlpn(_) => ChallengeType::TlsAlpn01,
            Self::Manual(m) => m.challenge_type(),
            Self::Rfc2136(_) => ChallengeType::Dns01,
        }
    }

    /// A short description for progress output.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Standalone(s) => format!("a built-in HTTP server on {}", s.address()),
            Self::Webroot(_) => "files in the webroot".into(),
            Self::TlsAlpn(s) => format!("a built-in TLS server on {}", s.address()),
            Self::Manual(_) => "the manual auth hook".into(),
            Self::Rfc2136(r) => format!("DNS UPDATE to {}", r.server()),
            Self::WebServer(w) => w.describe(),
        }
    }

    /// Puts the responses to `challenges` in place. `all_domains` are the
    /// names being validated in this run (for the hooks' environment).
    pub(crate) async fn present(
        &mut self,
        challenges: &[PreparedChallenge],
        all_domains: &[String],
    ) -> Result<()> {
        match self {
            Self::Standalone(s) => s.present(challenges).await,
            Self::Webroot(w) => w.present(challenges),
            Self::TlsAlpn(t) => t.present(challenges).await,
            Self::Manual(m) => m.present(challenges, all_domains).await,
            Self::Rfc2136(r) => r.present(challenges).await,
            Self::WebServer(w) => w.present(challenges),
        }
    }

    /// Removes what `present` put in place. Safe to call after a failed or
    /// partial `present`; failures are reported as warnings.
    pub(crate) async fn cleanup(&mut self) {
        let result = match self {
            Self::Standalone(s) => {
                s.stop();
                Ok(())
            }
            Self::Webroot(w) => w.cleanup(),
            Self::TlsAlpn(t) => {
                t.stop();
                Ok(())
            }
            Self::Manual(m) => m.cleanup().await,
            Self::Rfc2136(r) => r.cleanup().await,
            Self::WebServer(w) => w.cleanup(),
        };
        if let Err(e) = result {
            crate::output::warn(&format!("cleaning up the challenge responses: {e:#}"));
        }
    }
}

/// The address a built-in server binds: the given one, or every address
/// (IPv6 any, which also takes IPv4 on a dual-stack host).
fn bind_address(address: Option<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(address.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED)), port)
}

/// What the built-in challenge responders allow each connection: the CA
/// validates with a few quick requests, so anything slow is not the CA.
/// The cap keeps a flood of idle sockets from taking the agent's memory
/// while it waits for the CA.
const RESPONDER_LIMITS: cairn_serve::Limits = cairn_serve::Limits {
    header_timeout: std::time::Duration::from_secs(10),
    idle_timeout: std::time::Duration::from_secs(10),
    max_connections: 1024,
};

/// Binds a TCP listener for a built-in server, falling back from the IPv6
/// wildcard to the IPv4 one, with a message that says what to do when the
/// port is taken or privileged.
async fn bind(address: SocketAddr, what: &str) -> Result<tokio::net::TcpListener> {
    let first = tokio::net::TcpListener::bind(address).await;
    let result = match first {
        Err(_) if address.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED) => {
            tokio::net::TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], address.port()))).await
        }
        other => other,
    };
    result.map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => format!(
                "another program (a web server?) already listens on port {}: stop it while \
                 cairn runs (--pre-hook/--post-hook can do that), or use --webroot",
                address.port()
            ),
            std::io::ErrorKind::PermissionDenied => {
                format!("port {} needs root or CAP_NET_BIND_SERVICE", address.port())
            }
            _ => "check --http-01-address/--tls-alpn-01-address".into(),
        };
        anyhow::anyhow!("cannot start {what} on {address}: {e}; {hint}")
    })
}
