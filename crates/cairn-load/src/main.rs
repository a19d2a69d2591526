//! `cairn-load`: a load generator for any ACME (RFC 8555) server. It makes
//! accounts, then runs many complete issuances at a fixed concurrency and
//! reports throughput, latency per endpoint, failures by problem type and,
//! given the server's PID, the server's CPU time and memory.
#![forbid(unsafe_code)]

mod flow;
mod procfs;
mod report;
mod responder;
mod stats;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use cairn_client::{Account, AcmeClient, ClientOptions};
use cairn_proto::objects::NewAccount;
use cairn_proto::{KeyPair, KeyType};
use clap::{Parser, ValueEnum};

use crate::flow::Plan;
use crate::procfs::{Process, RssSampler};
use crate::report::{Report, ServerCost, round6};
use crate::responder::{DnsManagement, Http01Server, Responder};
use crate::stats::{Endpoint, Tally};

/// Load generator for any ACME (RFC 8555) server.
///
/// Creates --accounts accounts (not timed as issuance), then runs --orders
/// complete issuances in all, at most --concurrency at a time, spread
/// round-robin over the accounts: newOrder; for each authorization, answer
/// the challenge and poll it; poll the order until ready; finalize with a
/// fresh CSR; poll until valid; download the certificate. Each order is
/// for --names-per-order random names under --domain, so no order reuses
/// another's authorizations.
///
/// Reports wall time and certificates per second of the issuance phase,
/// latency per endpoint (p50/p90/p99/max in ms), failed orders by ACME
/// problem type (or transport, timeout, responder, other) with one example
/// message each, and the load generator's own CPU time. With --server-pid,
/// also the server's CPU time over the issuance phase (from
/// /proc/PID/stat), per issuance, and its peak resident memory (VmRSS
/// sampled every 100 ms, and VmHWM).
///
/// One HTTP connection pool and one nonce pool serve every request; a
/// badNonce refusal is retried up to 5 times with the nonce it carries.
/// Unfinished orders and authorizations are fetched again after 10 ms,
/// doubling up to 1 s (the server's Retry-After is not waited for).
///
/// Exits 0 if at least one certificate was issued, 1 if every order failed
/// or the run stalled (--stall-seconds), 2 if the run could not start.
#[derive(Debug, Parser)]
#[command(name = "cairn-load", version, verbatim_doc_comment, after_long_help = EXAMPLES)]
struct Cli {
    /// The server's directory URL, e.g. https://127.0.0.1:14000/directory
    /// (cairn-ca --dev) or https://127.0.0.1:14000/dir (Pebble).
    #[arg(long, value_name = "URL")]
    directory: String,
    /// PEM certificates to trust for the server's HTTPS certificate, added
    /// to the system's: cairn-ca's <data_dir>/root.pem, or the CA that
    /// signed Pebble's listener certificate.
    #[arg(long, value_name = "FILE")]
    ca_bundle: Option<PathBuf>,
    /// Accounts to create before the issuance phase; orders take turns
    /// among them.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    accounts: u32,
    /// Issuances to run in all.
    #[arg(long, value_name = "M", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    orders: u32,
    /// Most issuances in flight at once (also most accounts created at once).
    #[arg(long, value_name = "C", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    concurrency: u32,
    /// DNS names per order; each has its own authorization.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    names_per_order: u32,
    /// The parent domain of the random names ordered.
    #[arg(long, value_name = "NAME", default_value = "load.test")]
    domain: String,
    /// How challenges are answered:
    /// none: answer http-01 and serve nothing, for a server that passes
    /// every challenge (cairn-ca [testing] always_valid = true, Pebble
    /// PEBBLE_VA_ALWAYS_VALID=1);
    /// http-01: serve the tokens at --http01-listen; the server must
    /// resolve every name to that address and connect to its port
    /// (cairn-ca --dev and Pebble resolve through a test DNS server,
    /// cairn-testsrv or pebble-challtestsrv, which answers every name with
    /// its default IPv4, 127.0.0.1 unless changed, and validate http-01 on
    /// port 5002 — start cairn-testsrv with --http01 "" so the port is free);
    /// dns-01: set TXT records through the test DNS server's management API
    /// at --dns-management.
    #[arg(long, value_enum, verbatim_doc_comment)]
    challenge: ChallengeMode,
    /// Where the http-01 responder listens (--challenge http-01).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5002")]
    http01_listen: SocketAddr,
    /// Base URL of a pebble-challtestsrv or cairn-testsrv management API,
    /// e.g. http://127.0.0.1:8055 (required by --challenge dns-01).
    #[arg(long, value_name = "URL", required_if_eq("challenge", "dns-01"))]
    dns_management: Option<String>,
    /// Type of the fresh certificate key made for each order's CSR.
    #[arg(long, value_enum, default_value_t = KeyChoice::P256)]
    key_type: KeyChoice,
    /// The server's process ID, to report its CPU time and peak memory
    /// (read from /proc; the server must run on this machine).
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
    /// Stop taking new orders when none has finished (issued or failed)
    /// for this many seconds: a server that stopped answering ends the
    /// run, reported as stalled, instead of holding it for ever. Orders in
    /// flight then end by the HTTP timeout (30 s). 0 never stops.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    stall_seconds: u64,
    /// Print one JSON object instead of the text table.
    #[arg(long)]
    json: bool,
}

const EXAMPLES: &str = "\
Examples:

  cairn-ca in dev mode, every challenge passing:
    printf '[testing]\\nalways_valid = true\\n' > always-valid.toml
    cairn-ca serve --dev -c always-valid.toml --data-dir /tmp/load-ca &
    cairn-load --directory https://127.0.0.1:14000/directory \\
        --ca-bundle /tmp/load-ca/root.pem --challenge none \\
        --accounts 4 --orders 1000 --concurrency 32 --server-pid $!

  cairn-ca in dev mode with real http-01 validation (names resolve to 127.0.0.1):
    cairn-testsrv --http01 '' &
    cairn-ca serve --dev --data-dir /tmp/load-ca &
    cairn-load --directory https://127.0.0.1:14000/directory \\
        --ca-bundle /tmp/load-ca/root.pem --challenge http-01 --orders 200

  Pebble, every challenge passing (its test DNS server still needed):
    pebble-challtestsrv -dns01 127.0.0.1:8053 -management 127.0.0.1:8055 \\
        -http01 '' -https01 '' -tlsalpn01 '' -defaultIPv4 127.0.0.1 -defaultIPv6 '' &
    PEBBLE_VA_ALWAYS_VALID=1 PEBBLE_VA_NOSLEEP=1 \\
        pebble -config pebble-config.json -dnsserver 127.0.0.1:8053 &
    cairn-load --directory https://127.0.0.1:14000/dir --ca-bundle pebble-ca.pem \\
        --challenge none --orders 500 --concurrency 16 --server-pid $! --json

  Pebble with dns-01 through pebble-challtestsrv (as above, without
  PEBBLE_VA_ALWAYS_VALID):
    cairn-load --directory https://127.0.0.1:14000/dir --ca-bundle pebble-ca.pem \\
        --challenge dns-01 --dns-management http://127.0.0.1:8055

  Pebble refuses 5% of good nonces unless PEBBLE_WFE_NONCEREJECT=0; the
  retries show in the latencies, and as badNonce errors once 5 retries run out.";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ChallengeMode {
    /// Answer http-01 and serve nothing (always-valid servers).
    None,
    /// Serve http-01 tokens at --http01-listen.
    #[value(name = "http-01")]
    Http01,
    /// Set dns-01 TXT records at --dns-management.
    #[value(name = "dns-01")]
    Dns01,
}

impl ChallengeMode {
    fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Http01 => "http-01",
            Self::Dns01 => "dns-01",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum KeyChoice {
    /// ECDSA P-256.
    P256,
    /// RSA 2048 (key generation costs the load generator ~0.1 s each).
    Rsa2048,
}

impl KeyChoice {
    fn key_type(self) -> KeyType {
        match self {
            Self::P256 => KeyType::EcdsaP256,
            Self::Rsa2048 => KeyType::Rsa2048,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::P256 => "p256",
            Self::Rsa2048 => "rsa2048",
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli).await {
        Ok(report) => {
            if cli.json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_text());
            }
            if let Some(stall) = report.stalled_for_seconds {
                eprintln!(
                    "cairn-load: no order finished for {stall} s; stopped with {} orders not started",
                    report.not_started
                );
                ExitCode::FAILURE
            } else if report.issued == 0 {
                eprintln!("cairn-load: every order failed; the report lists why");
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(error) => {
            eprintln!("cairn-load: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: &Cli) -> anyhow::Result<Report> {
    let server = cli.server_pid.map(|pid| Process(Some(pid)));
    if let Some(process) = server {
        process.cpu_ticks().with_context(|| {
            format!(
                "cannot read the CPU time of --server-pid {}; is it running on this machine?",
                cli.server_pid.unwrap_or_default()
            )
        })?;
    }
    let (ticks_per_second, _measured) = procfs::clock_ticks_per_second();

    let ca_bundle_pem = match &cli.ca_bundle {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("cannot read --ca-bundle {}", path.display()))?,
        ),
        None => None,
    };
    let options = ClientOptions {
        ca_bundle_pem,
        user_agent: concat!("cairn-load/", env!("CARGO_PKG_VERSION")).to_owned(),
        bad_nonce_retries: 5,
        ..ClientOptions::default()
    };
    let poll_deadline = options.poll_deadline;
    let client = AcmeClient::new(&cli.directory, options)
        .await
        .with_context(|| format!("cannot read the directory at {}", cli.directory))?;

    let responder = match cli.challenge {
        ChallengeMode::None => Responder::Nothing,
        ChallengeMode::Http01 => {
            let server = Http01Server::start(cli.http01_listen).await?;
            if !cli.json {
                eprintln!("cairn-load: serving http-01 on {}", server.addr());
            }
            Responder::Http01(server)
        }
        ChallengeMode::Dns01 => {
            let Some(url) = &cli.dns_management else {
                bail!("--challenge dns-01 needs --dns-management URL");
            };
            Responder::Dns01(DnsManagement::new(url)?)
        }
    };
    let plan = Arc::new(Plan {
        names_per_order: cli.names_per_order as usize,
        domain: cli.domain.trim_matches('.').to_ascii_lowercase(),
        key_type: cli.key_type.key_type(),
        poll_deadline,
        responder,
    });

    let accounts_started = Instant::now();
    let accounts = create_accounts(&client, cli.accounts, cli.concurrency).await?;
    let account_seconds = accounts_started.elapsed().as_secs_f64();

    let client_cpu_before = Process(None).cpu_ticks()?;
    let server_cpu_before = server.map(Process::cpu_ticks).transpose()?;
    let sampler = server.map(RssSampler::start);
    let started = Instant::now();
    let stall = (cli.stall_seconds > 0).then(|| Duration::from_secs(cli.stall_seconds));
    let (mut tally, stalled) =
        issue_all(&plan, &accounts, cli.orders, cli.concurrency, stall).await;
    let seconds = started.elapsed().as_secs_f64();
    let client_cpu_after = Process(None).cpu_ticks()?;

    let seconds_of = |ticks: u64| ticks as f64 / ticks_per_second as f64;
    let server_cost = match (server, cli.server_pid, server_cpu_before, sampler) {
        (Some(process), Some(pid), Some(before), Some(sampler)) => {
            let after = process
                .cpu_ticks()
                .with_context(|| format!("the server (pid {pid}) is gone"))?;
            let run_max = sampler.stop();
            let hwm = process.status_bytes("VmHWM").unwrap_or(0);
            let cpu = seconds_of(after.saturating_sub(before));
            Some(ServerCost {
                server_pid: pid,
                server_cpu_seconds: round6(cpu),
                server_cpu_ms_per_issuance: (tally.issued > 0)
                    .then(|| round6(cpu * 1000.0 / tally.issued as f64)),
                server_peak_rss_bytes: hwm.max(run_max),
                server_run_max_rss_bytes: run_max,
            })
        }
        _ => None,
    };

    let latencies = tally.latencies();
    Ok(Report {
        directory: cli.directory.clone(),
        challenge: cli.challenge.name(),
        key_type: cli.key_type.name(),
        accounts: cli.accounts,
        orders: cli.orders,
        concurrency: cli.concurrency,
        names_per_order: cli.names_per_order,
        issued: tally.issued,
        failed: tally.failed,
        not_started: u64::from(cli.orders).saturating_sub(tally.issued + tally.failed),
        stalled_for_seconds: stalled.then_some(cli.stall_seconds),
        seconds: round6(seconds),
        per_second: round6(tally.issued as f64 / seconds),
        account_seconds: round6(account_seconds),
        latency_ms: latencies.iter().map(|(e, l)| (e.name(), *l)).collect(),
        latencies,
        errors: std::mem::take(&mut tally.errors),
        error_examples: std::mem::take(&mut tally.error_examples),
        client_cpu_seconds: round6(seconds_of(
            client_cpu_after.saturating_sub(client_cpu_before),
        )),
        clock_ticks_per_second: ticks_per_second,
        server: server_cost,
    })
}

/// Creates `count` accounts with new P-256 keys, `concurrency` at a time.
async fn create_accounts(
    client: &AcmeClient,
    count: u32,
    concurrency: u32,
) -> anyhow::Result<Vec<Account>> {
    let next = Arc::new(AtomicU32::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.min(count) {
        let client = client.clone();
        let next = Arc::clone(&next);
        workers.spawn(async move {
            let mut made = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let key = KeyPair::generate(KeyType::EcdsaP256)?;
                let new = NewAccount {
                    terms_of_service_agreed: Some(true),
                    ..NewAccount::default()
                };
                let (account, _) = Account::create(&client, key, &new, None)
                    .await
                    .context("cannot create an account")?;
                made.push(account);
            }
            anyhow::Ok(made)
        });
    }
    let mut accounts = Vec::with_capacity(count as usize);
    while let Some(joined) = workers.join_next().await {
        accounts.extend(joined.context("an account worker panicked")??);
    }
    Ok(accounts)
}

/// Runs `orders` issuances, `concurrency` at a time; order `i` uses
/// account `i mod accounts`. If no order finishes for `stall`, the workers
/// take no new order and the second value is true.
async fn issue_all(
    plan: &Arc<Plan>,
    accounts: &[Account],
    orders: u32,
    concurrency: u32,
    stall: Option<Duration>,
) -> (Tally, bool) {
    let next = Arc::new(AtomicU32::new(0));
    let finished = Arc::new(AtomicU32::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let accounts: Arc<[Account]> = accounts.into();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.min(orders) {
        let plan = Arc::clone(plan);
        let accounts = Arc::clone(&accounts);
        let next = Arc::clone(&next);
        let finished = Arc::clone(&finished);
        let stop = Arc::clone(&stop);
        workers.spawn(async move {
            let mut tally = Tally::default();
            loop {
                if stop.load(Ordering::Relaxed) {
                    return tally;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= orders {
                    return tally;
                }
                let account = &accounts[i as usize % accounts.len()];
                let started = Instant::now();
                match flow::issue(&plan, account, &mut tally).await {
                    Ok(()) => {
                        tally.issued += 1;
                        tally.record(Endpoint::Issuance, started);
                    }
                    Err(failure) => tally.fail(failure),
                }
                finished.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let watchdog = stall.map(|stall| {
        let finished = Arc::clone(&finished);
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut seen = finished.load(Ordering::Relaxed);
            let mut since = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let now = finished.load(Ordering::Relaxed);
                if now != seen {
                    (seen, since) = (now, Instant::now());
                } else if since.elapsed() >= stall {
                    stop.store(true, Ordering::Relaxed);
                    return;
                }
            }
        })
    });
    let mut total = Tally::default();
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(tally) => total.merge(tally),
            Err(e) => total.fail(stats::Failure::new(
                "other",
                format!("an issuance worker stopped: {e}"),
            )),
        }
    }
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    (total, stop.load(Ordering::Relaxed))
}
