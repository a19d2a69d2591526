//! `cairn certonly` and `cairn register`.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use cairn_proto::{Identifier, KeyType};

use super::{Context, usage};
use crate::acme::{connect, load_account, load_or_register, register as register_account};
use crate::cli::{CertonlyArgs, LETS_ENCRYPT, PreferredChallenge, RegisterArgs};
use crate::hooks;
use crate::issue::{self, CertInfo, list, parse_names};
use crate::output::say;
use crate::renewal::{Authenticator, Hooks, RenewalConfig, WebrootEntry, is_due, renewal_time};
use crate::solver::Solver;
use crate::storage::{CertName, ConfigDir};

pub(crate) async fn register(ctx: &Context, args: &RegisterArgs) -> Result<()> {
    let server = args
        .server
        .explicit()
        .unwrap_or_else(|| LETS_ENCRYPT.to_owned());
    let client = connect(&server, args.server.ca_bundle.as_deref()).await?;
    if let Some(account) = load_account(&ctx.dir, &client)? {
        return Err(usage(format!(
            "there is already an account for {server}: {}; see `cairn account show`",
            account.url()
        )));
    }
    register_account(&ctx.dir, &client, &args.registration, ctx.interactive).await?;
    Ok(())
}

pub(crate) async fn certonly(ctx: &Context, args: &CertonlyArgs) -> Result<()> {
    if args.domains.is_empty() {
        return Err(usage(
            "give the names to put in the certificate with -d NAME (or use `cairn run`)",
        ));
    }
    let names = parse_names(&args.domains).map_err(|e| usage(format!("{e:#}")))?;
    obtain(ctx, args, &names).await.map(drop)
}

/// Gets and saves a certificate for `names` (or keeps the saved one that
/// is not due); the lineage's name, or `None` for a dry run.
pub(crate) async fn obtain(
    ctx: &Context,
    args: &CertonlyArgs,
    names: &[Identifier],
) -> Result<Option<CertName>> {
    let names = names.to_vec();
    let authenticator = authenticator(ctx, args, &names)?;
    let server = args
        .server
        .explicit()
        .unwrap_or_else(|| LETS_ENCRYPT.to_owned());
    let key_type: KeyType = args.key_type.into();
    let cert_name = choose_cert_name(&ctx.dir, args.cert_name.as_deref(), &names)?;
    let _lock = if args.dry_run {
        None
    } else {
        Some(ctx.dir.lock(&cert_name)?)
    };

    // A saved certificate for the same names is kept until it is due.
    if !args.force_renewal
        && !args.dry_run
        && let Ok(existing) = RenewalConfig::load(&ctx.dir.renewal_file(&cert_name))
        && same_names(&existing.domains, &names)
        && let Ok(pem) = std::fs::read_to_string(ctx.dir.live_file(&cert_name, "cert"))
        && let Ok(info) = CertInfo::from_pem(&pem)
        && !is_due(
            info.not_before,
            info.not_after,
            time::OffsetDateTime::now_utc(),
        )
    {
        say(&format!(
            "The certificate {cert_name} for {} is not due for renewal until {} (it expires {}); \
             keeping it. Use --force-renewal to get a new one now.",
            list(&names),
            date(renewal_time(info.not_before, info.not_after)),
            date(info.not_after)
        ));
        return Ok(Some(cert_name));
    }

    let client = connect(&server, args.server.ca_bundle.as_deref()).await?;
    let account = load_or_register(&ctx.dir, &client, &args.registration, ctx.interactive).await?;
    let issuer_roots = args
        .issuer_roots
        .as_ref()
        .map(|p| {
            std::fs::read(p).with_context(|| format!("reading --issuer-roots {}", p.display()))
        })
        .transpose()?;
    let mut solver = Solver::new(&authenticator, ctx.dir.root())?;
    if let Some(hook) = &args.hooks.pre_hook {
        hooks::run(hook, &[], "pre-hook").await?;
    }
    let request = issue::Request {
        names: &names,
        key_type,
        preferred_chain: args.preferred_chain.as_deref(),
        issuer_roots: issuer_roots.as_deref(),
        replaces: None,
    };
    let obtained = issue::obtain(&account, &mut solver, &request).await;
    if let Some(hook) = &args.hooks.post_hook
        && let Err(e) = hooks::run(hook, &[], "post-hook").await
    {
        crate::output::warn(&format!("{e:#}"));
    }
    let obtained = obtained?;
    if args.dry_run {
        say(&format!(
            "The dry run was successful: the CA issued a certificate for {} (serial {}), \
             which passed every check. Nothing was saved.",
            list(&names),
            obtained.info.serial
        ));
        return Ok(None);
    }

    let version = ctx.dir.install(&cert_name, &obtained.files)?;
    let config = RenewalConfig {
        version: RenewalConfig::VERSION,
        server: server.clone(),
        ca_bundle: args.server.ca_bundle.as_ref().map(absolute),
        issuer_roots: args.issuer_roots.as_ref().map(absolute),
        account: account.url().to_owned(),
        key_type: key_type.as_str().to_owned(),
        domains: names.iter().map(|n| n.value.clone()).collect(),
        preferred_chain: args.preferred_chain.clone(),
        authenticator,
        hooks: Hooks {
            pre_hook: args.hooks.pre_hook.clone(),
            post_hook: args.hooks.post_hook.clone(),
            deploy_hook: args.hooks.deploy_hook.clone(),
        },
        installer: None,
    };
    config.save(&ctx.dir.renewal_file(&cert_name))?;
    tracing::info!(%cert_name, version, "lineage installed");
    if let Some(hook) = &args.hooks.deploy_hook {
        run_deploy_hook(&ctx.dir, &cert_name, &config.domains, hook).await?;
    }
    say(&format!(
        "\nSuccessfully received the certificate {cert_name} for {}.\n\
         Certificate is saved at: {}\n\
         Key is saved at:         {}\n\
         This certificate expires on {}.\n\
         `cairn renew` renews it when it is due (run it twice a day, e.g. with dist/cairn-renew.timer).",
        list(&names),
        ctx.dir.live_file(&cert_name, "fullchain").display(),
        ctx.dir.live_file(&cert_name, "privkey").display(),
        date(obtained.info.not_after),
    ));
    Ok(Some(cert_name))
}

/// Runs a deploy hook for a saved lineage, as certbot does.
pub(crate) async fn run_deploy_hook(
    dir: &ConfigDir,
    name: &CertName,
    domains: &[String],
    hook: &str,
) -> Result<()> {
    let env = vec![
        (
            "RENEWED_LINEAGE".to_owned(),
            dir.live_dir(name).to_string_lossy().into_owned(),
        ),
        ("RENEWED_DOMAINS".to_owned(), domains.join(" ")),
    ];
    hooks::run(hook, &env, &format!("deploy hook for {name}")).await?;
    Ok(())
}

/// The authenticator settings from the command line.
fn authenticator(
    ctx: &Context,
    args: &CertonlyArgs,
    names: &[Identifier],
) -> Result<Authenticator> {
    if let Some(server) = super::install::web_server_config(&args.installer, args.http01_port) {
        Ok(Authenticator::WebServer { server })
    } else if args.standalone {
        Ok(Authenticator::Standalone {
            address: args.http01_address,
            port: args.http01_port,
        })
    } else if args.tls_alpn {
        Ok(Authenticator::TlsAlpn {
            address: args.tls_alpn01_address,
            port: args.tls_alpn01_port,
        })
    } else if args.webroot {
        let mut map = Vec::new();
        for name in names {
            let path = ctx
                .webroot_map
                .iter()
                .find(|(d, _)| normalize(d) == name.value)
                .or_else(|| ctx.webroot_map.first())
                .map(|(_, p)| p.clone())
                .ok_or_else(|| usage("--webroot needs a directory: give it with -w DIR"))?;
            map.push(WebrootEntry {
                domain: name.value.clone(),
                path: absolute(&path),
            });
        }
        Ok(Authenticator::Webroot { map })
    } else if args.manual {
        let auth_hook = args.manual_auth_hook.clone().ok_or_else(|| {
            usage(
                "--manual needs --manual-auth-hook CMD: cairn runs the hook to put each \
                 challenge response in place (certbot hook scripts work unchanged)",
            )
        })?;
        Ok(Authenticator::Manual {
            challenge: match args.preferred_challenges {
                PreferredChallenge::Http => "http-01",
                PreferredChallenge::Dns => "dns-01",
            }
            .to_owned(),
            auth_hook,
            cleanup_hook: args.manual_cleanup_hook.clone(),
        })
    } else if args.dns_rfc2136 {
        let credentials = args
            .dns_rfc2136_credentials
            .as_ref()
            .ok_or_else(|| usage("--dns-rfc2136 needs --dns-rfc2136-credentials FILE"))?;
        Ok(Authenticator::DnsRfc2136 {
            credentials: absolute(credentials),
            propagation_seconds: args.dns_rfc2136_propagation_seconds,
        })
    } else {
        Err(usage(
            "choose how to prove control of the names: --standalone, --webroot -w DIR, \
             --tls-alpn, --manual --manual-auth-hook CMD, --dns-rfc2136, --nginx or --apache",
        ))
    }
}

/// The lineage name: `--cert-name`, or the first name (a wildcard's `*.`
/// dropped), with `-0001`, `-0002`... added when a lineage of that name
/// already holds other names (as certbot does).
fn choose_cert_name(
    dir: &ConfigDir,
    explicit: Option<&str>,
    names: &[Identifier],
) -> Result<CertName> {
    if let Some(name) = explicit {
        return CertName::parse(name).map_err(|e| usage(format!("--cert-name: {e:#}")));
    }
    let first = &names[0].value;
    let base = CertName::default_for(first)
        .map_err(|e| usage(format!("{e:#}; choose a name with --cert-name")))?;
    let mut candidate = base.clone();
    for n in 1..10_000 {
        match RenewalConfig::load(&dir.renewal_file(&candidate)) {
            Ok(existing) if !same_names(&existing.domains, names) => {
                candidate = CertName::parse(&format!("{base}-{n:04}"))?;
            }
            _ => return Ok(candidate),
        }
    }
    Err(usage(
        "too many certificates with this name; choose one with --cert-name",
    ))
}

fn same_names(saved: &[String], names: &[Identifier]) -> bool {
    let mut a: Vec<String> = saved.iter().map(|s| s.to_ascii_lowercase()).collect();
    let mut b: Vec<String> = names.iter().map(|n| n.value.to_ascii_lowercase()).collect();
    a.sort();
    b.sort();
    a == b
}

fn normalize(domain: &str) -> String {
    domain.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn absolute(path: &PathBuf) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.clone())
}

/// `2025-03-01 12:00 UTC`.
pub(crate) fn date(t: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| t.to_string())
}
