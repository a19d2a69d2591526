//! `cairn renew`: every saved certificate that is due, with the settings
//! saved when it was obtained.

use std::collections::BTreeSet;

use anyhow::{Context as _, Result, bail};
use cairn_proto::{Identifier, KeyType};
use time::OffsetDateTime;

use super::certonly::{date, run_deploy_hook};
use super::{Context, RenewalsFailed, usage};
use crate::acme::{connect, require_account};
use crate::ari;
use crate::cli::RenewArgs;
use crate::hooks;
use crate::issue::{self, CertInfo, parse_names};
use crate::output::{say, warn};
use crate::renewal::{Authenticator, RenewalConfig, is_due, renewal_time};
use crate::solver::Solver;
use crate::storage::CertName;

pub(crate) async fn renew(ctx: &Context, args: &RenewArgs) -> Result<()> {
    let names = match &args.cert_name {
        Some(name) => {
            let name = CertName::parse(name).map_err(|e| usage(format!("--cert-name: {e:#}")))?;
            if !ctx.dir.renewal_file(&name).is_file() {
                bail!(
                    "there is no saved certificate named {name} in {}; see `cairn certificates`",
                    ctx.dir.root().display()
                );
            }
            vec![name]
        }
        None => ctx.dir.lineage_names()?,
    };
    if names.is_empty() {
        say(&format!(
            "No certificates are saved in {}; nothing to renew.",
            ctx.dir.root().display()
        ));
        return Ok(());
    }

    let mut hooks_run = HooksRun::default();
    let mut connections = Connections::default();
    let mut failed = Vec::new();
    let mut renewed = Vec::new();
    let mut not_due = 0;
    for name in &names {
        match renew_one(ctx, args, name, &mut hooks_run, &mut connections).await {
            Ok(true) => renewed.push(name.to_string()),
            Ok(false) => not_due += 1,
            Err(e) => {
                eprintln!("error: renewing {name} failed: {e:#}");
                failed.push(name.to_string());
            }
        }
    }
    for hook in &hooks_run.post {
        if let Err(e) = hooks::run(hook, &[], "post-hook").await {
            warn(&format!("{e:#}"));
        }
    }
    let verb = if args.dry_run {
        "renewed (dry run, nothing saved)"
    } else {
        "renewed"
    };
    say(&format!(
        "\n{} {verb}, {not_due} not due, {} failed.",
        renewed.len(),
        failed.len()
    ));
    if failed.is_empty() {
        Ok(())
    } else {
        Err(RenewalsFailed(failed).into())
    }
}

/// Pre-hooks already run; post-hooks to run at the end. Each distinct
/// command runs once per `renew`, as certbot does.
#[derive(Debug, Default)]
struct HooksRun {
    pre: BTreeSet<String>,
    post: Vec<String>,
}

/// The clients of one `renew` run, one per server and CA bundle: building
/// one loads the system's trust roots and does a TLS handshake, which over
/// thousands of lineages would cost most of the run.
#[derive(Default)]
struct Connections {
    acme: std::collections::HashMap<(String, Option<std::path::PathBuf>), cairn_client::AcmeClient>,
    ari: std::collections::HashMap<Option<std::path::PathBuf>, reqwest::Client>,
}

impl Connections {
    async fn acme(
        &mut self,
        server: &str,
        ca_bundle: Option<&std::path::Path>,
    ) -> Result<cairn_client::AcmeClient> {
        let key = (
            server.to_owned(),
            ca_bundle.map(std::path::Path::to_path_buf),
        );
        if let Some(client) = self.acme.get(&key) {
            return Ok(client.clone());
        }
        let client = connect(server, ca_bundle).await?;
        self.acme.insert(key, client.clone());
        Ok(client)
    }

    fn ari(&mut self, ca_bundle: Option<&std::path::Path>) -> Result<reqwest::Client> {
        let key = ca_bundle.map(std::path::Path::to_path_buf);
        if let Some(client) = self.ari.get(&key) {
            return Ok(client.clone());
        }
        let client = ari::http_client(ca_bundle)?;
        self.ari.insert(key, client.clone());
        Ok(client)
    }
}

/// Renews `name` if due. `Ok(false)`: not due.
async fn renew_one(
    ctx: &Context,
    args: &RenewArgs,
    name: &CertName,
    hooks_run: &mut HooksRun,
    connections: &mut Connections,
) -> Result<bool> {
    if let Ok(config) = RenewalConfig::load(&ctx.dir.renewal_file(name))
        && let Authenticator::Managed { by } = &config.authenticator
    {
        say(&format!(
            "{name}: managed by {by}, which renews it itself; skipped."
        ));
        return Ok(false);
    }
    let _lock = ctx.dir.lock(name)?;
    let config = RenewalConfig::load(&ctx.dir.renewal_file(name))?;
    let names: Vec<Identifier> = parse_names(&config.domains).with_context(|| {
        format!(
            "the names saved in {}",
            ctx.dir.renewal_file(name).display()
        )
    })?;
    let current = std::fs::read_to_string(ctx.dir.live_file(name, "cert"))
        .map_err(anyhow::Error::from)
        .and_then(|pem| CertInfo::from_pem(&pem));
    let current = match current {
        Ok(info) => Some(info),
        Err(e) => {
            warn(&format!(
                "{name}: the current certificate cannot be read ({e:#}); renewing it"
            ));
            None
        }
    };

    let client = connections
        .acme(&config.server, config.ca_bundle.as_deref())
        .await?;
    let now = OffsetDateTime::now_utc();
    let mut replaces = None;
    let due = match &current {
        None => true,
        Some(info) => {
            let by_time = is_due(info.not_before, info.not_after, now);
            let by_ari = match ari::check(
                &client,
                &connections.ari(config.ca_bundle.as_deref())?,
                info,
            )
            .await
            {
                Ok(Some(window)) => {
                    replaces = Some(window.cert_id.clone());
                    window.start <= now
                }
                Ok(None) => false,
                Err(e) => {
                    warn(&format!(
                        "{name}: the CA's renewal information is unavailable: {e:#}"
                    ));
                    false
                }
            };
            if !(args.force_renewal || by_time || by_ari) {
                say(&format!(
                    "{name}: not due until {} (expires {}); nothing to do.",
                    date(renewal_time(info.not_before, info.not_after)),
                    date(info.not_after)
                ));
                return Ok(false);
            }
            let why = if args.force_renewal {
                "renewal forced"
            } else if by_ari && !by_time {
                "the CA's renewal information says to renew now"
            } else {
                "due for renewal"
            };
            say(&format!("{name}: {why} (expires {})", date(info.not_after)));
            true
        }
    };
    debug_assert!(due);

    let pre = args
        .hooks
        .pre_hook
        .as_ref()
        .or(config.hooks.pre_hook.as_ref());
    if let Some(hook) = pre
        && hooks_run.pre.insert(hook.clone())
    {
        hooks::run(hook, &[], "pre-hook").await?;
    }
    let post = args
        .hooks
        .post_hook
        .as_ref()
        .or(config.hooks.post_hook.as_ref());
    if let Some(hook) = post
        && !hooks_run.post.contains(hook)
    {
        hooks_run.post.push(hook.clone());
    }

    let account = require_account(&ctx.dir, &client)?;
    if account.url() != config.account {
        warn(&format!(
            "{name} was obtained with the account {}, now using {}",
            config.account,
            account.url()
        ));
    }
    let key_type: KeyType = config.key_type.parse().with_context(|| {
        format!(
            "the key type saved in {}",
            ctx.dir.renewal_file(name).display()
        )
    })?;
    let issuer_roots = config
        .issuer_roots
        .as_ref()
        .map(|p| std::fs::read(p).with_context(|| format!("reading issuer roots {}", p.display())))
        .transpose()?;
    let mut solver = Solver::new(&config.authenticator, ctx.dir.root())?;
    let request = issue::Request {
        names: &names,
        key_type,
        preferred_chain: config.preferred_chain.as_deref(),
        issuer_roots: issuer_roots.as_deref(),
        replaces,
    };
    let obtained = issue::obtain(&account, &mut solver, &request).await?;
    if args.dry_run {
        say(&format!(
            "{name}: dry run: a new certificate was issued and checked; nothing saved."
        ));
        return Ok(true);
    }
    let version = ctx.dir.install(name, &obtained.files)?;
    say(&format!(
        "{name}: renewed; version {version} saved, expires {}. Live files: {}",
        date(obtained.info.not_after),
        ctx.dir.live_dir(name).display()
    ));
    let deploy = args
        .hooks
        .deploy_hook
        .as_ref()
        .or(config.hooks.deploy_hook.as_ref());
    if let Some(installed) = &config.installer {
        super::install::redeploy(ctx, name, installed)?;
    }
    if let Some(hook) = deploy {
        run_deploy_hook(&ctx.dir, name, &config.domains, hook).await?;
    }
    Ok(true)
}
