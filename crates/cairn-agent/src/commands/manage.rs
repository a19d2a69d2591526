//! `cairn revoke`, `cairn certificates` and `cairn delete`.

use anyhow::{Context as _, Result, anyhow, bail};
use cairn_client::revoke_with_certificate_key;
use cairn_proto::{KeyPair, ProblemType};
use serde::Serialize;
use time::OffsetDateTime;

use super::certonly::date;
use super::{Context, usage};
use crate::acme::{connect, explain, load_account};
use crate::cli::{CertificatesArgs, DeleteArgs, LETS_ENCRYPT, RevokeArgs};
use crate::issue::CertInfo;
use crate::output::{say, warn};
use crate::renewal::RenewalConfig;
use crate::storage::{CertName, KINDS};

pub(crate) async fn revoke(ctx: &Context, args: &RevokeArgs) -> Result<()> {
    let lineage = args
        .cert_name
        .as_deref()
        .map(|n| CertName::parse(n).map_err(|e| usage(format!("--cert-name: {e:#}"))))
        .transpose()?;
    let (cert_path, config) = match (&lineage, &args.cert_path) {
        (Some(name), _) => {
            let config = RenewalConfig::load(&ctx.dir.renewal_file(name)).with_context(|| {
                format!("no saved certificate named {name}; see `cairn certificates`")
            })?;
            (ctx.dir.live_file(name, "cert"), Some(config))
        }
        (None, Some(path)) => (path.clone(), None),
        (None, None) => return Err(usage("give --cert-name or --cert-path")),
    };
    let pem = std::fs::read_to_string(&cert_path)
        .with_context(|| format!("reading the certificate {}", cert_path.display()))?;
    let info =
        CertInfo::from_pem(&pem).with_context(|| format!("reading {}", cert_path.display()))?;
    let server = args
        .server
        .explicit()
        .or_else(|| config.as_ref().map(|c| c.server.clone()))
        .unwrap_or_else(|| LETS_ENCRYPT.to_owned());
    let ca_bundle = args
        .server
        .ca_bundle
        .clone()
        .or_else(|| config.as_ref().and_then(|c| c.ca_bundle.clone()));
    let client = connect(&server, ca_bundle.as_deref()).await?;
    let key_path = args.key_path.clone().or_else(|| {
        lineage
            .as_ref()
            .map(|name| ctx.dir.live_file(name, "privkey"))
    });
    let cert_key = || -> Result<Option<KeyPair>> {
        let Some(path) = &key_path else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the certificate key {}", path.display()))?;
        Ok(Some(KeyPair::from_pkcs8_pem(&text).with_context(|| {
            format!("{} is not a PKCS#8 private key", path.display())
        })?))
    };
    let reason = Some(args.reason.code());
    let account = if args.key_path.is_some() {
        None
    } else {
        load_account(&ctx.dir, &client)?
    };
    let result = match account {
        Some(account) => match account.revoke(&info.der, reason).await {
            Err(e) if e.is_problem(&ProblemType::Unauthorized) => match cert_key()? {
                Some(key) => {
                    tracing::info!(
                        "the account may not revoke it; signing with the certificate key"
                    );
                    revoke_with_certificate_key(&client, &info.der, &key, reason).await
                }
                None => Err(e),
            },
            other => other,
        },
        None => {
            let key = cert_key()?.ok_or_else(|| {
                anyhow!(
                    "there is no account for {server} here; revoke with the certificate's own key \
                     with --key-path FILE"
                )
            })?;
            revoke_with_certificate_key(&client, &info.der, &key, reason).await
        }
    };
    result.map_err(|e| {
        explain(
            e,
            &format!("revoking the certificate {}", cert_path.display()),
        )
    })?;
    say(&format!(
        "Revoked the certificate {} (serial {}) for {} with reason {:?}.",
        cert_path.display(),
        info.serial,
        info.names.join(", "),
        args.reason
    ));
    if args.delete_after_revoke {
        match &lineage {
            Some(name) => {
                let _lock = ctx.dir.lock(name)?;
                ctx.dir.delete(name)?;
                say(&format!("Deleted the saved certificate {name}."));
            }
            None => warn("--delete-after-revoke applies to --cert-name only; nothing deleted"),
        }
    } else if let Some(name) = &lineage {
        say(&format!(
            "The revoked certificate is still saved as {name}; `cairn delete --cert-name {name}` \
             removes it, `cairn renew --cert-name {name} --force-renewal` replaces it."
        ));
    }
    Ok(())
}

/// One saved certificate, as `certificates --json` prints it.
#[derive(Debug, Serialize)]
struct Listed {
    name: String,
    domains: Vec<String>,
    server: String,
    key_type: String,
    serial: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    not_before: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    not_after: Option<OffsetDateTime>,
    days_left: Option<i64>,
    valid: bool,
    cert_path: String,
    chain_path: String,
    fullchain_path: String,
    privkey_path: String,
    renewal_path: String,
    error: Option<String>,
}

pub(crate) fn certificates(ctx: &Context, args: &CertificatesArgs) -> Result<()> {
    let names = match &args.cert_name {
        Some(n) => vec![CertName::parse(n).map_err(|e| usage(format!("--cert-name: {e:#}")))?],
        None => ctx.dir.lineage_names()?,
    };
    let now = OffsetDateTime::now_utc();
    let mut listed = Vec::new();
    for name in names {
        let renewal_path = ctx.dir.renewal_file(&name);
        let path = |kind: &str| {
            ctx.dir
                .live_file(&name, kind)
                .to_string_lossy()
                .into_owned()
        };
        let mut entry = Listed {
            name: name.to_string(),
            domains: Vec::new(),
            server: String::new(),
            key_type: String::new(),
            serial: None,
            not_before: None,
            not_after: None,
            days_left: None,
            valid: false,
            cert_path: path(KINDS[0]),
            chain_path: path(KINDS[1]),
            fullchain_path: path(KINDS[2]),
            privkey_path: path(KINDS[3]),
            renewal_path: renewal_path.to_string_lossy().into_owned(),
            error: None,
        };
        match RenewalConfig::load(&renewal_path) {
            Ok(config) => {
                entry.domains = config.domains;
                entry.server = config.server;
                entry.key_type = config.key_type;
            }
            Err(e) => entry.error = Some(format!("{e:#}")),
        }
        let info = std::fs::read_to_string(ctx.dir.live_file(&name, "cert"))
            .map_err(anyhow::Error::from)
            .and_then(|pem| CertInfo::from_pem(&pem));
        match info {
            Ok(info) => {
                entry.days_left = Some((info.not_after - now).whole_days());
                entry.valid = info.not_before <= now && now < info.not_after;
                entry.serial = Some(info.serial);
                entry.not_before = Some(info.not_before);
                entry.not_after = Some(info.not_after);
                if entry.domains.is_empty() {
                    entry.domains = info.names;
                }
            }
            Err(e) => {
                entry
                    .error
                    .get_or_insert(format!("the live certificate cannot be read: {e:#}"));
            }
        }
        listed.push(entry);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&listed)?);
        return Ok(());
    }
    if listed.is_empty() {
        println!("No certificates are saved in {}.", ctx.dir.root().display());
        return Ok(());
    }
    println!("Certificates saved in {}:", ctx.dir.root().display());
    for entry in &listed {
        println!("\n  Name:        {}", entry.name);
        println!("  Domains:     {}", entry.domains.join(" "));
        match (entry.not_after, entry.days_left) {
            (Some(not_after), Some(days)) => {
                let state = if !entry.valid {
                    "INVALID: EXPIRED OR NOT YET VALID".to_owned()
                } else {
                    format!("VALID: {days} days left")
                };
                println!("  Expiry:      {} ({state})", date(not_after));
            }
            _ => println!("  Expiry:      unknown"),
        }
        if let Some(serial) = &entry.serial {
            println!("  Serial:      {serial}");
        }
        println!("  Key type:    {}", entry.key_type);
        println!("  Server:      {}", entry.server);
        println!("  Certificate: {}", entry.fullchain_path);
        println!("  Private key: {}", entry.privkey_path);
        if let Some(error) = &entry.error {
            println!("  Problem:     {error}");
        }
    }
    Ok(())
}

pub(crate) fn delete(ctx: &Context, args: &DeleteArgs) -> Result<()> {
    let name =
        CertName::parse(&args.cert_name).map_err(|e| usage(format!("--cert-name: {e:#}")))?;
    let _lock = ctx.dir.lock(&name)?;
    if !ctx.dir.delete(&name)? {
        bail!(
            "there is no saved certificate named {name} in {}; see `cairn certificates`",
            ctx.dir.root().display()
        );
    }
    say(&format!(
        "Deleted the certificate {name}: its live and archive files and its renewal settings. \
         It was not revoked; it stays valid until it expires."
    ));
    Ok(())
}
