//! Gets a certificate with http-01 by writing key authorizations into a
//! webroot that a web server already serves on port 80 (or, for a test CA,
//! on the port it validates on).
//!
//! ```text
//! cargo run -p cairn-client --example issue -- \
//!     --directory https://127.0.0.1:14000/dir --ca-bundle pebble-tls-ca.pem \
//!     --name a.example --name www.a.example --http01-dir /var/www/html \
//!     [--roots issuing-root.pem] [--contact mailto:admin@a.example] [--out DIR]
//! ```
//!
//! Writes `account.json`, `key.pem` and `chain.pem` to `--out` (default:
//! the current directory). With `--roots`, the chain must lead to one of
//! those roots before it is written.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cairn_client::{
    Account, AccountCredentials, AcmeClient, ClientOptions, check_certificate, csr,
};
use cairn_proto::objects::{AuthorizationStatus, ChallengeType, NewAccount, NewOrder};
use cairn_proto::{Identifier, KeyPair, KeyType};

const USAGE: &str = "usage: issue --directory URL --name NAME [--name NAME...] --http01-dir WEBROOT \
[--ca-bundle PEM] [--roots PEM] [--contact URL] [--out DIR]";

#[derive(Debug, Default)]
struct Args {
    directory: String,
    names: Vec<Identifier>,
    webroot: PathBuf,
    ca_bundle: Option<PathBuf>,
    roots: Option<PathBuf>,
    contact: Vec<String>,
    out: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let options = ClientOptions {
        ca_bundle_pem: args.ca_bundle.as_deref().map(std::fs::read).transpose()?,
        ..ClientOptions::default()
    };
    let client = AcmeClient::new(&args.directory, options).await?;
    std::fs::create_dir_all(&args.out)?;
    let account = load_or_create_account(&client, &args).await?;
    println!("account {}", account.url());

    let mut order = account
        .new_order(&NewOrder::new(args.names.clone()))
        .await?;
    println!("order {}", order.url());
    let challenge_dir = args.webroot.join(".well-known/acme-challenge");
    for authz in order.authorizations().await? {
        if authz.state.status == AuthorizationStatus::Valid {
            println!("{}: already authorized", authz.identifier());
            continue;
        }
        // Checks the token before anything is written.
        let challenge = authz.prepare(&account, &ChallengeType::Http01)?;
        std::fs::create_dir_all(&challenge_dir)?;
        let file = challenge_dir.join(challenge.token.as_str());
        std::fs::write(&file, &challenge.key_authorization)?;
        println!(
            "{}: serving {}",
            authz.identifier(),
            challenge.http01_path()
        );
        account.respond(&challenge.url).await?;
        let result = account.poll_authorization(&authz.url).await;
        let _ = std::fs::remove_file(&file);
        result?;
        println!("{}: valid", authz.identifier());
    }
    order.poll_ready().await?;

    let key = KeyPair::generate(KeyType::EcdsaP256)?;
    order.finalize(&csr(&args.names, &key)?).await?;
    order.poll_valid().await?;
    let chain = order.certificate().await?;
    let roots = args.roots.as_deref().map(std::fs::read).transpose()?;
    check_certificate(&chain, &args.names, &key, roots.as_deref())?;

    write_private(&args.out.join("key.pem"), key.to_pkcs8_pem()?.as_bytes())?;
    std::fs::write(args.out.join("chain.pem"), &chain.pem)?;
    println!(
        "certificate for {} written to {}",
        names_list(&args.names),
        args.out.join("chain.pem").display()
    );
    Ok(())
}

/// Reuses `account.json` in the output directory if it is for this CA.
async fn load_or_create_account(
    client: &AcmeClient,
    args: &Args,
) -> Result<Account, Box<dyn Error>> {
    let path = args.out.join("account.json");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let credentials: AccountCredentials = serde_json::from_str(&text)?;
        if credentials.directory_url() == client.directory_url() {
            return Ok(Account::from_credentials(client, credentials)?);
        }
    }
    let new = NewAccount {
        contact: args.contact.clone(),
        terms_of_service_agreed: Some(true),
        ..NewAccount::default()
    };
    let key = KeyPair::generate(KeyType::EcdsaP256)?;
    let (account, _) = Account::create(client, key, &new, None).await?;
    write_private(
        &path,
        serde_json::to_string_pretty(&account.credentials())?.as_bytes(),
    )?;
    Ok(account)
}

/// Writes a secret readable by its owner only (on Unix).
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, contents)
}

fn names_list(names: &[Identifier]) -> String {
    let names: Vec<&str> = names.iter().map(|n| n.value.as_str()).collect();
    names.join(", ")
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        out: PathBuf::from("."),
        ..Args::default()
    };
    let mut webroot = None;
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--directory" => parsed.directory = value()?,
            "--name" => {
                let name = value()?;
                parsed.names.push(match name.parse() {
                    Ok(ip) => Identifier::ip(ip),
                    Err(_) => Identifier::dns(name),
                });
            }
            "--http01-dir" => webroot = Some(PathBuf::from(value()?)),
            "--ca-bundle" => parsed.ca_bundle = Some(PathBuf::from(value()?)),
            "--roots" => parsed.roots = Some(PathBuf::from(value()?)),
            "--contact" => parsed.contact.push(value()?),
            "--out" => parsed.out = PathBuf::from(value()?),
            "-h" | "--help" => return Err("get a certificate with http-01".into()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if parsed.directory.is_empty() {
        return Err("--directory is required".into());
    }
    if parsed.names.is_empty() {
        return Err("at least one --name is required".into());
    }
    parsed.webroot = webroot.ok_or("--http01-dir is required")?;
    Ok(parsed)
}
