//! Writes N certificate lineages into a cairn config dir, in the layout
//! `cairn certonly` leaves behind (see `src/storage.rs`, `src/renewal.rs`),
//! for benchmarks of `cairn renew` and `cairn certificates` over many
//! saved certificates. No CA is involved: one throw-away issuer made here
//! signs every leaf, valid from an hour ago for `--days` days, so none is
//! due for renewal until two thirds of that have passed.
//!
//! ```text
//! cargo run --release -p cairn-agent --example fake_lineages -- \
//!     --config-dir DIR --count 10000 --server URL --account URL \
//!     [--ca-bundle FILE] [--address 127.0.0.1] [--port 5002] [--days 365] \
//!     [--prefix fake] [--domain example.com]
//! ```
//!
//! Lineage `i` is named `PREFIX-i.DOMAIN` (`i` zero-padded to 5 digits)
//! and holds that one name. Each gets, as cairn writes them:
//!
//! ```text
//! archive/NAME/{cert,chain,fullchain,privkey}1.pem   (dir 0700, privkey 0600, others 0644)
//! live/NAME/{cert,chain,fullchain,privkey}.pem -> ../../archive/NAME/<kind>1.pem (dir 0700)
//! live/NAME/README
//! renewal/NAME.toml   (standalone http-01 on --address:--port, key type ecdsa-p256)
//! ```
//!
//! No account is written: copy `accounts/` from a config dir that has one
//! (only a certificate that is due needs it). Files are not fsynced.

use std::fs;
use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SerialNumber,
};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

const USAGE: &str = "usage: fake_lineages --config-dir DIR --count N --server URL --account URL \
[--ca-bundle FILE] [--address IP] [--port P] [--days D] [--prefix P] [--domain D]";

const KINDS: [&str; 4] = ["cert", "chain", "fullchain", "privkey"];

/// `renewal/NAME.toml` as `cairn certonly --standalone` writes it
/// (`RenewalConfig` in src/renewal.rs; the same field names and order).
#[derive(Debug, Serialize)]
struct Renewal<'a> {
    version: u32,
    server: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_bundle: Option<&'a Path>,
    account: &'a str,
    key_type: &'static str,
    domains: Vec<String>,
    authenticator: Authenticator,
    hooks: Hooks,
}

#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum Authenticator {
    Standalone {
        #[serde(skip_serializing_if = "Option::is_none")]
        address: Option<IpAddr>,
        port: u16,
    },
}

/// No hooks; serialized as the empty `[hooks]` table cairn writes.
#[derive(Debug, Serialize)]
struct Hooks {}

#[derive(Debug)]
struct Args {
    config_dir: PathBuf,
    count: usize,
    server: String,
    account: String,
    ca_bundle: Option<PathBuf>,
    address: Option<IpAddr>,
    port: u16,
    days: i64,
    prefix: String,
    domain: String,
}

fn parse_args() -> Result<Args, String> {
    let mut config_dir = None;
    let mut count = None;
    let mut server = None;
    let mut account = None;
    let mut ca_bundle = None;
    let mut address = None;
    let mut port = 80u16;
    let mut days = 365i64;
    let mut prefix = "fake".to_owned();
    let mut domain = "example.com".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--config-dir" => config_dir = Some(PathBuf::from(value()?)),
            "--count" => count = Some(value()?.parse().map_err(|e| format!("--count: {e}"))?),
            "--server" => server = Some(value()?),
            "--account" => account = Some(value()?),
            "--ca-bundle" => ca_bundle = Some(PathBuf::from(value()?)),
            "--address" => {
                address = Some(value()?.parse().map_err(|e| format!("--address: {e}"))?);
            }
            "--port" => port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--days" => days = value()?.parse().map_err(|e| format!("--days: {e}"))?,
            "--prefix" => prefix = value()?,
            "--domain" => domain = value()?,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let missing = |what: &str| format!("{what} is required\n{USAGE}");
    Ok(Args {
        config_dir: config_dir.ok_or_else(|| missing("--config-dir"))?,
        count: count.ok_or_else(|| missing("--count"))?,
        server: server.ok_or_else(|| missing("--server"))?,
        account: account.ok_or_else(|| missing("--account"))?,
        ca_bundle,
        address,
        port,
        days,
        prefix,
        domain,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type Fallible<T> = Result<T, Box<dyn std::error::Error>>;

fn run(args: &Args) -> Fallible<()> {
    let root = &args.config_dir;
    mkdir(root, 0o755)?;
    mkdir(&root.join("archive"), 0o700)?;
    mkdir(&root.join("live"), 0o700)?;
    mkdir(&root.join("renewal"), 0o755)?;

    let now = OffsetDateTime::now_utc();
    let mut issuer_params = CertificateParams::default();
    issuer_params
        .distinguished_name
        .push(DnType::CommonName, "cairn fake_lineages issuer");
    issuer_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    issuer_params.not_before = now - Duration::days(1);
    issuer_params.not_after = now + Duration::days(args.days + 1);
    issuer_params.key_identifier_method = rcgen::KeyIdMethod::Sha256;
    let issuer = CertifiedIssuer::self_signed(issuer_params, KeyPair::generate()?)?;
    let chain = issuer.pem();

    for i in 0..args.count {
        let name = format!("{}-{i:05}.{}", args.prefix, args.domain);
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![name.clone()])?;
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(args.days);
        params.use_authority_key_identifier_extension = true;
        let mut serial = [0u8; 16];
        aws_lc_rs::rand::fill(&mut serial).map_err(|_| "no randomness")?;
        serial[0] &= 0x7f;
        serial[0] |= 0x01;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        let cert = params.signed_by(&key, &issuer)?.pem();
        let fullchain = format!("{cert}{chain}");
        let privkey = key.serialize_pem();

        let archive = root.join("archive").join(&name);
        let live = root.join("live").join(&name);
        mkdir(&archive, 0o700)?;
        mkdir(&live, 0o700)?;
        for (kind, text) in KINDS.iter().zip([&cert, &chain, &fullchain, &privkey]) {
            let mode = if *kind == "privkey" { 0o600 } else { 0o644 };
            write(&archive.join(format!("{kind}1.pem")), text, mode)?;
            let link = live.join(format!("{kind}.pem"));
            let _ = fs::remove_file(&link);
            std::os::unix::fs::symlink(
                Path::new("../../archive")
                    .join(&name)
                    .join(format!("{kind}1.pem")),
                &link,
            )?;
        }
        write(
            &live.join("README"),
            "This directory holds the current version of a certificate saved by cairn\n\
             (here a fake one written by the fake_lineages benchmark example).\n",
            0o644,
        )?;
        let renewal = Renewal {
            version: 1,
            server: &args.server,
            ca_bundle: args.ca_bundle.as_deref(),
            account: &args.account,
            key_type: "ecdsa-p256",
            domains: vec![name.clone()],
            authenticator: Authenticator::Standalone {
                address: args.address,
                port: args.port,
            },
            hooks: Hooks {},
        };
        let text = format!(
            "# Renewal settings written by cairn {}; `cairn renew` reads them.\n{}",
            env!("CARGO_PKG_VERSION"),
            toml::to_string(&renewal)?
        );
        write(
            &root.join("renewal").join(format!("{name}.toml")),
            &text,
            0o644,
        )?;
    }
    println!(
        "wrote {} lineages under {} ({}-00000.{} ...), valid until {}",
        args.count,
        root.display(),
        args.prefix,
        args.domain,
        (now + Duration::days(args.days)).date()
    );
    Ok(())
}

fn mkdir(dir: &Path, mode: u32) -> Fallible<()> {
    if !dir.is_dir() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(dir)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

fn write(path: &Path, text: &str, mode: u32) -> Fallible<()> {
    let _ = fs::remove_file(path);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}
