//! `cairn-testsrv`: the challenge test server as a program. See the crate
//! README for the management API.

#![forbid(unsafe_code)]

use std::io::IsTerminal as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use anyhow::Context as _;
use cairn_testkit::{TestServer, TestServerConfig};
use clap::Parser;
use tracing::info;
use tracing_subscriber::EnvFilter;

/// Challenge test server for ACME: a mock DNS server and http-01 and
/// tls-alpn-01 responders, driven by an HTTP management API (the paths and
/// JSON bodies of pebble-challtestsrv). Not for production: it answers any
/// DNS name and serves whatever the management API is told.
///
/// Every listener binds to loopback unless told otherwise. Give an empty
/// address ("") to turn a listener off. Logs go to stderr; set RUST_LOG
/// (e.g. RUST_LOG=debug) for more.
#[derive(Debug, Parser)]
#[command(name = "cairn-testsrv", version)]
struct Cli {
    /// Address of the DNS server (UDP and TCP); "" turns it off.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8053", value_parser = listen_addr)]
    dns01: Listen,

    /// Address of the HTTP management API; "" turns it off.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8055", value_parser = listen_addr)]
    management: Listen,

    /// Address of the http-01 responder; "" turns it off.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5002", value_parser = listen_addr)]
    http01: Listen,

    /// Address of the tls-alpn-01 responder; "" turns it off.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5001", value_parser = listen_addr)]
    tlsalpn01: Listen,

    /// IPv4 address in the answer to an A query for a name with no A record
    /// of its own; "" answers such queries with no records.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1", value_parser = optional_ip::<Ipv4Addr>)]
    default_ipv4: OptionalIp<Ipv4Addr>,

    /// IPv6 address in the answer to an AAAA query for a name with no AAAA
    /// record of its own; "" (the default) answers such queries with no records.
    #[arg(long, value_name = "IP", default_value = "", value_parser = optional_ip::<Ipv6Addr>)]
    default_ipv6: OptionalIp<Ipv6Addr>,
}

/// A listen address, or none ("").
#[derive(Clone, Copy, Debug)]
struct Listen(Option<SocketAddr>);

fn listen_addr(text: &str) -> Result<Listen, String> {
    if text.is_empty() {
        return Ok(Listen(None));
    }
    text.parse().map(|addr| Listen(Some(addr))).map_err(|_| {
        format!("{text:?} is not an IP address and port such as 127.0.0.1:8053 or [::1]:8053")
    })
}

/// An IP address, or none ("").
#[derive(Clone, Copy, Debug)]
struct OptionalIp<A>(Option<A>);

fn optional_ip<A: std::str::FromStr>(text: &str) -> Result<OptionalIp<A>, String> {
    if text.is_empty() {
        return Ok(OptionalIp(None));
    }
    text.parse()
        .map(|ip| OptionalIp(Some(ip)))
        .map_err(|_| format!("{text:?} is not an IP address of that family"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let cli = Cli::parse();
    let config = TestServerConfig {
        dns: cli.dns01.0,
        management: cli.management.0,
        http01: cli.http01.0,
        tls_alpn01: cli.tlsalpn01.0,
        default_ipv4: cli.default_ipv4.0,
        default_ipv6: cli.default_ipv6.0,
    };
    let server = TestServer::start(config.clone())
        .await
        .context("cairn-testsrv could not start (is another instance running? pick other addresses with --dns01, --management, --http01, --tlsalpn01)")?;

    let show = |addr: Option<SocketAddr>| addr.map_or_else(|| "off".to_owned(), |a| a.to_string());
    info!(
        dns01 = %show(server.dns_addr()),
        management = %show(server.management_addr()),
        http01 = %show(server.http01_addr()),
        tlsalpn01 = %show(server.tls_alpn01_addr()),
        default_ipv4 = %config.default_ipv4.map_or_else(|| "none".to_owned(), |a| a.to_string()),
        default_ipv6 = %config.default_ipv6.map_or_else(|| "none".to_owned(), |a| a.to_string()),
        "cairn-testsrv running; Ctrl-C stops it"
    );

    shutdown_signal().await?;
    info!("cairn-testsrv stopping");
    drop(server);
    Ok(())
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("listening for SIGTERM")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("listening for Ctrl-C")?,
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("listening for Ctrl-C")?;
    Ok(())
}
