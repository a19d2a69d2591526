//! `cairn-ca`: the Cairn certificate authority server.

use std::path::PathBuf;
use std::process::ExitCode;

use cairn_ca::admin::{self, KeyToBlock};
use cairn_ca::app::{self, Overrides};
use cairn_ca::config::{Config, Database};
use clap::{Args, Parser, Subcommand};

/// Cairn's ACME (RFC 8555) certificate authority.
#[derive(Debug, Parser)]
#[command(name = "cairn-ca", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the CA. With no configuration: SQLite in ./cairn-data, its own
    /// root and intermediates made on first start, API on port 443.
    Serve {
        #[command(flatten)]
        store: StoreArgs,
        /// Log as JSON lines instead of text.
        #[arg(long)]
        log_json: bool,
    },
    /// Apply the database migrations this version has and the database
    /// lacks, then exit. `serve` applies them too; run this first when
    /// several nodes share one PostgreSQL database and you upgrade them.
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Make the CA's keys and certificates (what the first `serve` does)
    /// and exit; with --root-key-out, keep the root keys out of the data
    /// directory so that `serve` runs with the intermediates' keys only.
    Init {
        #[command(flatten)]
        store: StoreArgs,
        /// Move the two root keys into this new file (mode 0600), after
        /// signing the roots' CRLs with them. Keep it offline.
        #[arg(long, value_name = "FILE")]
        root_key_out: Option<PathBuf>,
    },
    /// Operator actions on the CA's database and keys; they work while
    /// `serve` runs, on SQLite and PostgreSQL.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Check a configuration file and print the settings it results in.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
        /// Check it as `serve --dev` would read it.
        #[arg(long)]
        dev: bool,
    },
}

/// The configuration a command reads and where its data lives.
#[derive(Debug, Args)]
struct StoreArgs {
    /// TOML configuration file (every key optional; see the README).
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Pebble-compatible test settings: API on https://127.0.0.1:14000,
    /// http-01 to port 5002, tls-alpn-01 to 5001, DNS at 127.0.0.1:8053,
    /// loopback and private addresses allowed.
    #[arg(long)]
    dev: bool,
    /// Where the database, keys and certificates live (overrides `data_dir`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The database (overrides `database`): postgres://user@host:port/db
    /// or sqlite:PATH. Default: SQLite in the data directory.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Block a key: newAccount, key change and finalize refuse it from now
    /// on (badPublicKey), and its unexpired certificates are revoked as
    /// keyCompromise (in every node's next CRL).
    #[command(group = clap::ArgGroup::new("which").required(true).multiple(false))]
    BlockKey {
        #[command(flatten)]
        store: StoreArgs,
        /// SHA-256 of the key's DER SubjectPublicKeyInfo, in hex.
        #[arg(long, group = "which", value_name = "HEX")]
        spki_hash: Option<String>,
        /// A certificate (PEM or DER) whose key to block.
        #[arg(long, group = "which", value_name = "FILE")]
        cert: Option<PathBuf>,
        /// The key itself: PEM public key, or PKCS#8 private key.
        #[arg(long, group = "which", value_name = "FILE")]
        key: Option<PathBuf>,
        /// Why, kept with the entry and shown to clients refused.
        #[arg(long, default_value = "key compromise")]
        reason: String,
    },
    /// Sign the roots' CRLs with root keys kept offline (`init
    /// --root-key-out`); `serve` publishes them. Valid 335 days.
    SignRootCrl {
        #[command(flatten)]
        store: StoreArgs,
        /// The file `init --root-key-out` wrote.
        #[arg(long, value_name = "FILE")]
        root_key: PathBuf,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::CheckConfig { file, dev } => match Config::load(Some(&file), dev)
            .and_then(|config| config.check_serving().map(|()| config))
        {
            Ok(mut config) => {
                println!("{} is valid. Effective settings:\n", file.display());
                // The settings may end up in a terminal log: not the password.
                config.database = config
                    .database
                    .map(|url| cairn_ca::config::redact_password(&url));
                match toml::to_string_pretty(&config) {
                    Ok(text) => println!("{text}"),
                    Err(e) => eprintln!("(cannot show them: {e})"),
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Serve { store, log_json } => {
            init_logging(log_json);
            let config = match store.load() {
                Ok(c) => c,
                Err(code) => return code,
            };
            if let Err(e) = config.check_serving() {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            run(serve(config))
        }
        Command::Migrate { store } => {
            init_logging(false);
            match store.load() {
                Ok(config) => run(migrate(config)),
                Err(code) => code,
            }
        }
        Command::Admin {
            command:
                AdminCommand::BlockKey {
                    store,
                    spki_hash,
                    cert,
                    key,
                    reason,
                },
        } => {
            init_logging(false);
            let config = match store.load() {
                Ok(c) => c,
                Err(code) => return code,
            };
            let target = match (spki_hash, cert, key) {
                (Some(hash), _, _) => KeyToBlock::SpkiHash(hash),
                (_, Some(cert), _) => KeyToBlock::Certificate(cert),
                (_, _, Some(key)) => KeyToBlock::Key(key),
                (None, None, None) => unreachable!("clap requires one of them"),
            };
            run(block_key(config, target, reason))
        }
        Command::Admin {
            command: AdminCommand::SignRootCrl { store, root_key },
        } => {
            init_logging(false);
            let written = store
                .load()
                .map(|config| admin::sign_root_crl(&config, &root_key));
            match written {
                Ok(Ok(files)) => {
                    for file in files {
                        println!("wrote {}", file.display());
                    }
                    ExitCode::SUCCESS
                }
                Ok(Err(e)) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
                Err(code) => code,
            }
        }
        Command::Init {
            store,
            root_key_out,
        } => {
            init_logging(false);
            let report = store
                .load()
                .map(|config| admin::init(&config, root_key_out.as_deref()));
            match report {
                Ok(Ok(report)) => {
                    println!("{report}");
                    ExitCode::SUCCESS
                }
                Ok(Err(e)) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
                Err(code) => code,
            }
        }
    }
}

impl StoreArgs {
    fn load(self) -> Result<Config, ExitCode> {
        load(
            self.config.as_deref(),
            self.dev,
            self.data_dir,
            self.database,
        )
    }
}

/// Runs `work` on a new runtime.
fn run(work: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(work),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn block_key(config: Config, target: KeyToBlock, reason: String) -> ExitCode {
    match admin::block_key(&config, &target, &reason).await {
        Ok(blocked) => {
            println!(
                "blocked key sha256:{}",
                cairn_ca::policy::keys::hex(&blocked.spki_sha256)
            );
            println!(
                "revoked {} certificate(s) with that key{}{}",
                blocked.revoked.len(),
                if blocked.revoked.is_empty() { "" } else { ": " },
                blocked.revoked.join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The configuration file with the command line's overrides applied.
fn load(
    file: Option<&std::path::Path>,
    dev: bool,
    data_dir: Option<PathBuf>,
    database: Option<String>,
) -> Result<Config, ExitCode> {
    let mut config = Config::load(file, dev).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    if let Some(dir) = data_dir {
        config.data_dir = dir;
    }
    if let Some(url) = database {
        config.database = Some(url);
        if let Err(e) = config.database() {
            eprintln!("error: --database: {e}");
            return Err(ExitCode::from(2));
        }
    }
    Ok(config)
}

async fn migrate(config: Config) -> ExitCode {
    // A new SQLite file needs its directory; PostgreSQL needs nothing local.
    if let Ok(Database::Sqlite(path)) = config.database()
        && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        eprintln!("error: cannot create directory {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    match app::open_store(&config).await {
        Ok(_) => {
            let described = config.database().map(|d| d.describe()).unwrap_or_default();
            println!("{described}: the schema is up to date");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> ExitCode {
    let mut running = match app::start(config, Overrides::default()).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("Cairn CA is running.");
    println!("  ACME directory:  {}", running.directory_url);
    println!("  Trust this root: {}", running.root_pem.display());
    println!("  CRLs, issuers:   {}", running.wfe.urls.http_base());
    tokio::select! {
        () = running.wait() => ExitCode::FAILURE,
        _ = tokio::signal::ctrl_c() => {
            tracing::info!("shutting down");
            running.shutdown().await;
            ExitCode::SUCCESS
        }
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person: not in a pipe, a log file or journald.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
