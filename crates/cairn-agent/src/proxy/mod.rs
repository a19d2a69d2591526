//! `cairn proxy`: a reverse proxy with automatic HTTPS. Certificates come
//! from cairn-tls (obtained, renewed and served by SNI); requests go to
//! each site's upstream over pooled HTTP/1.1.
//!
//! The process: parse and validate the configuration, bind both
//! listeners, start certificate management, serve. SIGHUP (or `cairn proxy
//! reload` through the control socket) re-reads the configuration and
//! swaps the route table whole — connections stay open and requests in
//! flight finish on the table they started with. SIGTERM or SIGINT stop
//! accepting, let in-flight requests finish (up to the drain timeout), exit.

mod access_log;
mod certs;
pub(crate) mod cli;
mod config;
mod forward;
mod routes;
mod server;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot, watch};

use self::cli::{ProxyAction, ProxyArgs, RunArgs};
use self::config::{Overrides, ProxyConfig};
use self::forward::Shared;
use self::routes::Routes;
use self::server::Listeners;
use crate::commands::Context;
use crate::output;

/// `cairn proxy [check-config | reload]`.
pub(crate) async fn proxy(context: &Context, args: &ProxyArgs) -> Result<()> {
    match &args.action {
        Some(ProxyAction::CheckConfig { config }) => check_config(config),
        Some(ProxyAction::Reload {
            control_socket,
            pid_file,
        }) => match pid_file {
            Some(pid_file) => signal_reload(pid_file),
            None => {
                let socket = control_socket
                    .clone()
                    .unwrap_or_else(|| default_control_socket(context));
                control_reload(&socket).await
            }
        },
        None => run(context, &args.run).await,
    }
}

fn default_control_socket(context: &Context) -> PathBuf {
    context.dir.root().join("proxy.sock")
}

fn check_config(path: &Path) -> Result<()> {
    let config = ProxyConfig::load(Some(path), &Overrides::default())?;
    output::say(&format!(
        "{}: OK ({} site(s), {} name(s){})",
        path.display(),
        config.sites.len(),
        config.names().len(),
        if config.on_demand_ask.is_some() {
            ", on-demand TLS behind an ask URL"
        } else {
            ""
        }
    ));
    Ok(())
}

async fn run(context: &Context, args: &RunArgs) -> Result<()> {
    let overrides = args.overrides();
    let config = ProxyConfig::load(args.config.as_deref(), &overrides)?;
    let routes = Routes::build(&config)?;
    let listeners = Listeners::bind(config.http_listen, config.https_listen).await?;
    let http_addr = listeners.http.local_addr()?;
    let https_addr = listeners.https.local_addr()?;
    let certificates = certs::start(context, &config, http_addr, https_addr).await?;
    let shared = Arc::new(Shared::new(
        routes,
        config.limits.upstream_connect_timeout,
        config.limits.upstream_response_timeout,
    ));

    let socket_path = args
        .control_socket
        .clone()
        .unwrap_or_else(|| default_control_socket(context));
    let (reload_tx, mut reload_rx) = mpsc::channel::<oneshot::Sender<String>>(4);
    let control = start_control_socket(&socket_path, reload_tx)?;
    if let Some(pid_file) = &args.pid_file {
        std::fs::write(pid_file, format!("{}\n", std::process::id()))
            .with_context(|| format!("writing the pid file {}", pid_file.display()))?;
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::spawn(server::serve(
        listeners,
        Arc::clone(&shared),
        Arc::clone(&certificates) as Arc<dyn server::Certificates>,
        config.limits,
        stop_rx,
    ));
    output::say(&format!(
        "cairn proxy: listening on http://{http_addr} and https://{https_addr}; {} site(s): {}",
        config.sites.len(),
        config.names().join(", ")
    ));

    let mut hangup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let mut terminate = signal(SignalKind::terminate()).context("installing SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing SIGINT")?;
    let mut current = config;
    loop {
        tokio::select! {
            _ = hangup.recv() => {
                let said = reload(args, &overrides, &mut current, &shared, &certificates).await;
                output::say(&said);
            }
            Some(reply) = reload_rx.recv() => {
                let said = reload(args, &overrides, &mut current, &shared, &certificates).await;
                output::say(&said);
                let _ = reply.send(said);
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    output::say(&format!(
        "cairn proxy: stopping; in-flight requests get up to {} s",
        current.limits.drain_timeout.as_secs()
    ));
    let _ = stop_tx.send(true);
    control.abort();
    let _ = std::fs::remove_file(&socket_path);
    if let Err(e) = server.await {
        tracing::warn!("the server task ended badly: {e}");
    }
    certificates.stop().await;
    if let Some(pid_file) = &args.pid_file {
        let _ = std::fs::remove_file(pid_file);
    }
    output::say("cairn proxy: stopped");
    Ok(())
}

/// Re-reads the configuration; on any error keeps the running one. Returns
/// the line to show (and to send back to `cairn proxy reload`).
async fn reload(
    args: &RunArgs,
    overrides: &Overrides,
    current: &mut ProxyConfig,
    shared: &Shared,
    certificates: &certs::Managed,
) -> String {
    let loaded = ProxyConfig::load(args.config.as_deref(), overrides)
        .and_then(|config| Routes::build(&config).map(|routes| (config, routes)));
    let (config, routes) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            return format!(
                "error: reload refused, still serving the previous configuration: {e:#}"
            );
        }
    };
    if let Err(e) = certificates.update(&config).await {
        return format!("error: reload refused, still serving the previous configuration: {e:#}");
    }
    let mut notes = String::new();
    if config.http_listen != current.http_listen || config.https_listen != current.https_listen {
        notes.push_str("; listen addresses change only on restart");
    }
    if config.limits != current.limits {
        notes.push_str("; limits change only on restart");
    }
    shared.swap_routes(routes);
    let said = format!(
        "reloaded: {} site(s): {}{notes}",
        config.sites.len(),
        config.names().join(", ")
    );
    *current = config;
    said
}

/// Accepts `reload` lines on a Unix socket (mode 0600: only this user).
fn start_control_socket(
    path: &Path,
    reloads: mpsc::Sender<oneshot::Sender<String>>,
) -> Result<tokio::task::JoinHandle<()>> {
    use std::os::unix::fs::PermissionsExt as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!(
                "another cairn proxy is running with the control socket {}; stop it or \
                 give this one --control-socket PATH",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing the stale socket {}", path.display()))?;
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("binding the control socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let reloads = reloads.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                let mut reader = BufReader::new(read);
                if reader.read_line(&mut line).await.is_err() {
                    return;
                }
                let answer = if line.trim() == "reload" {
                    let (tx, rx) = oneshot::channel();
                    if reloads.send(tx).await.is_err() {
                        "error: the proxy is stopping".to_owned()
                    } else {
                        rx.await
                            .unwrap_or_else(|_| "error: the proxy is stopping".to_owned())
                    }
                } else {
                    format!("error: unknown command {:?}; try reload", line.trim())
                };
                let answer = answer.replace('\n', " ");
                let _ = write.write_all(format!("{answer}\n").as_bytes()).await;
            });
        }
    }))
}

/// `cairn proxy reload`: asks through the control socket, prints the answer.
async fn control_reload(socket: &Path) -> Result<()> {
    let stream = UnixStream::connect(socket).await.with_context(|| {
        format!(
            "cannot reach a running cairn proxy at {}; is it running with this --config-dir \
             (or give --control-socket PATH / --pid-file FILE)?",
            socket.display()
        )
    })?;
    let (read, mut write) = stream.into_split();
    write.write_all(b"reload\n").await?;
    let mut answer = String::new();
    BufReader::new(read).read_line(&mut answer).await?;
    let answer = answer.trim();
    if answer.starts_with("error") || answer.is_empty() {
        bail!(
            "{}",
            answer
                .strip_prefix("error: ")
                .unwrap_or("the proxy closed the control socket without answering")
        );
    }
    output::say(answer);
    Ok(())
}

/// `cairn proxy reload --pid-file FILE`: SIGHUP to that process.
fn signal_reload(pid_file: &Path) -> Result<()> {
    let text = std::fs::read_to_string(pid_file)
        .with_context(|| format!("reading the pid file {}", pid_file.display()))?;
    let pid: u32 = text
        .trim()
        .parse()
        .with_context(|| format!("{} does not hold a process id", pid_file.display()))?;
    let status = std::process::Command::new("kill")
        .arg("-HUP")
        .arg(pid.to_string())
        .status()
        .context("running kill")?;
    if !status.success() {
        bail!("kill -HUP {pid} failed: is the proxy still running?");
    }
    output::say(&format!("sent SIGHUP to {pid}"));
    Ok(())
}
