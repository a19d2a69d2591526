//! `cairn`: the ACME agent. A certbot-compatible command line that gets,
//! saves, renews and revokes certificates from any RFC 8555 CA.
#![forbid(unsafe_code)]

mod acme;
mod ari;
mod cli;
mod cli_install;
mod commands;
mod hooks;
mod issue;
mod output;
mod proxy;
mod renewal;
mod solver;
mod storage;

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _};

use crate::cli::{Cli, Command};
use crate::commands::{Context, RenewalsFailed, UsageError};
use crate::storage::ConfigDir;

/// Exit status for errors (anything but usage and partial renewal).
const EXIT_ERROR: u8 = 1;
/// Exit status for a command line that does not make sense (clap uses 2 too).
const EXIT_USAGE: u8 = 2;
/// Exit status of `renew` when some certificate could not be renewed.
const EXIT_RENEWALS_FAILED: u8 = 3;

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    init_logging(cli.global.verbose, cli.global.quiet);
    output::set_quiet(cli.global.quiet);
    let dir = ConfigDir::new(
        cli.global
            .config_dir
            .clone()
            .unwrap_or_else(ConfigDir::default_path),
    );
    let context = Context {
        dir,
        interactive: !cli.global.non_interactive && std::io::stdin().is_terminal(),
        webroot_map: webroot_map(&matches),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let result = runtime.block_on(run(&context, &cli.command));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<UsageError>() => {
            eprintln!("error: {e}\n\nFor more information, try 'cairn --help'.");
            ExitCode::from(EXIT_USAGE)
        }
        Err(e) if e.is::<RenewalsFailed>() => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_RENEWALS_FAILED)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

async fn run(context: &Context, command: &Command) -> anyhow::Result<()> {
    match command {
        Command::Certonly(args) => commands::certonly(context, args).await,
        Command::Run(args) => commands::run(context, args).await,
        Command::Install(args) => commands::install(context, args).await,
        Command::Enhance(args) => commands::enhance(context, args).await,
        Command::Rollback(args) => commands::rollback(context, args),
        Command::ConfigChanges(args) => commands::config_changes(context, args),
        Command::Register(args) => commands::register(context, args).await,
        Command::Account(args) => commands::account(context, args).await,
        Command::Renew(args) => commands::renew(context, args).await,
        Command::Revoke(args) => commands::revoke(context, args).await,
        Command::Certificates(args) => commands::certificates(context, args),
        Command::Delete(args) => commands::delete(context, args),
        Command::Proxy(args) => proxy::proxy(context, args).await,
    }
}

/// certbot's webroot mapping: each `-d` value takes the last `-w` given
/// before it on the command line, or the first `-w` if none came before.
fn webroot_map(matches: &clap::ArgMatches) -> Vec<(String, PathBuf)> {
    let Some(("certonly", sub)) = matches.subcommand() else {
        return Vec::new();
    };
    let webroots: Vec<(usize, PathBuf)> = match (
        sub.indices_of("webroot_path"),
        sub.get_many::<PathBuf>("webroot_path"),
    ) {
        (Some(indices), Some(values)) => indices.zip(values.cloned()).collect(),
        _ => return Vec::new(),
    };
    let domains: Vec<(usize, String)> =
        match (sub.indices_of("domains"), sub.get_many::<String>("domains")) {
            (Some(indices), Some(values)) => indices.zip(values.cloned()).collect(),
            _ => Vec::new(),
        };
    let mut map: Vec<(String, PathBuf)> = domains
        .into_iter()
        .filter_map(|(at, domain)| {
            let root = webroots
                .iter()
                .rev()
                .find(|(w, _)| *w < at)
                .or_else(|| webroots.first())?;
            Some((domain, root.1.clone()))
        })
        .collect();
    // A webroot with no -d after it still serves as the default.
    if map.is_empty()
        && let Some((_, root)) = webroots.first()
    {
        map.push((String::new(), root.clone()));
    }
    map
}

/// Logs go to standard error: warnings by default, `-v` info, `-vv` debug,
/// `-vvv` trace; `RUST_LOG` overrides.
fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person: not in a pipe, a log file or journald.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webroots_apply_to_the_names_after_them() {
        let matches = Cli::command()
            .try_get_matches_from([
                "cairn",
                "certonly",
                "--webroot",
                "-d",
                "first.example",
                "-w",
                "/a",
                "-d",
                "a.example,b.example",
                "-w",
                "/b",
                "-d",
                "c.example",
            ])
            .expect("parses");
        let map = webroot_map(&matches);
        let get = |d: &str| {
            map.iter()
                .find(|(n, _)| n == d)
                .map(|(_, p)| p.to_string_lossy().into_owned())
        };
        assert_eq!(get("first.example").as_deref(), Some("/a"));
        assert_eq!(get("a.example").as_deref(), Some("/a"));
        assert_eq!(get("b.example").as_deref(), Some("/a"));
        assert_eq!(get("c.example").as_deref(), Some("/b"));
    }
}
