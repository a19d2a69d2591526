//! The installer commands: `cairn run`, `install`, `enhance`, `rollback`,
//! `config_changes`, and the re-deployment `cairn renew` does. The safe
//! edit itself (lock, config test before and after, checkpoint, restore on
//! failure, reload) is `cairn_install::Installer`'s.

use std::io::{BufRead as _, Write as _};
use std::path::PathBuf;

use anyhow::{Context as _, Result, anyhow, bail};
use cairn_install::options::OptionsFile;
use cairn_install::{Applied, CertPaths, Config, Enhancement, Installer, Settings};
use cairn_proto::Identifier;

use super::certonly::{date, obtain};
use super::{Context, usage};
use crate::cli::{
    CertonlyArgs, ConfigChangesArgs, EnhanceArgs, EnhanceFlags, InstallArgs, InstallerArgs,
    RollbackArgs,
};
use crate::issue::parse_names;
use crate::output::{say, warn};
use crate::renewal::{InstallerConfig, RenewalConfig, WebServerConfig, WebServerKind};
use crate::solver::web_server;
use crate::storage::CertName;

/// The web server the flags name, if any.
pub(crate) fn web_server_config(args: &InstallerArgs, http_port: u16) -> Option<WebServerConfig> {
    let absolute = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
    // A bare program name is looked up in PATH; a path is made absolute so
    // `cairn renew` finds it from any directory.
    let program = |p: &PathBuf| {
        if p.components().count() > 1 {
            absolute(p)
        } else {
            p.clone()
        }
    };
    if args.nginx {
        Some(WebServerConfig {
            kind: WebServerKind::Nginx,
            server_root: absolute(&args.nginx_server_root),
            ctl: program(&args.nginx_ctl),
            sleep_seconds: Some(args.nginx_sleep_seconds),
            vhost_root: None,
            le_vhost_ext: None,
            https_port: args.https_port,
            http_port,
        })
    } else if args.apache {
        Some(WebServerConfig {
            kind: WebServerKind::Apache,
            server_root: absolute(&args.apache_server_root),
            ctl: program(&args.apache_ctl),
            sleep_seconds: None,
            vhost_root: args.apache_vhost_root.as_ref().map(absolute),
            le_vhost_ext: Some(args.apache_le_vhost_ext.clone()),
            https_port: args.https_port,
            http_port,
        })
    } else {
        None
    }
}

fn require_server(args: &InstallerArgs, http_port: u16) -> Result<WebServerConfig> {
    web_server_config(args, http_port)
        .ok_or_else(|| usage("choose the web server: --nginx or --apache"))
}

fn installer(ctx: &Context, server: &WebServerConfig) -> Result<Installer> {
    Ok(Installer::new(web_server(server)?, ctx.dir.root()))
}

/// The enhancements the flags ask for; `--staple-ocsp` is refused.
fn enhancements(flags: &EnhanceFlags) -> Result<Vec<Enhancement>> {
    if flags.staple_ocsp {
        return Err(usage(
            "--staple-ocsp: cairn's CAs publish CRLs; there is no OCSP to staple",
        ));
    }
    let mut out = Vec::new();
    if flags.redirect && !flags.no_redirect {
        out.push(Enhancement::Redirect);
    }
    if flags.hsts {
        out.push(Enhancement::Hsts);
    }
    if flags.uir {
        out.push(Enhancement::Uir);
    }
    Ok(out)
}

/// `cairn run --nginx|--apache`: obtain (http-01 through the server), then install.
pub(crate) async fn run(ctx: &Context, args: &CertonlyArgs) -> Result<()> {
    let server = require_server(&args.installer, args.http01_port)?;
    let wanted = enhancements(&args.enhance)?;
    let installer = installer(ctx, &server)?;
    let names = if args.domains.is_empty() {
        choose_names(ctx, &installer)?
    } else {
        args.domains.clone()
    };
    let identifiers = parse_names(&names).map_err(|e| usage(format!("{e:#}")))?;
    let started = std::time::Instant::now();
    let Some(cert_name) = obtain(ctx, args, &identifiers).await? else {
        // A dry run saved nothing: show what installing would change.
        let name = match &args.cert_name {
            Some(n) => CertName::parse(n)?,
            None => CertName::default_for(&identifiers[0].value)?,
        };
        let diff = installer.dry_run(deploy_edit(
            &names_of(&identifiers),
            &lineage_paths(ctx, &name),
            &installer.settings(server.https_port, server.http_port),
            &wanted,
        ))?;
        print_diff(&diff, installer.server().name());
        return Ok(());
    };
    tracing::debug!(elapsed = ?started.elapsed(), "certificate obtained");
    let installed = InstallerConfig {
        server,
        domains: names_of(&identifiers),
        redirect: wanted.contains(&Enhancement::Redirect),
        hsts: wanted.contains(&Enhancement::Hsts),
        uir: wanted.contains(&Enhancement::Uir),
    };
    deploy_lineage(ctx, &cert_name, &installed, &installer)?;
    save_installed(ctx, &cert_name, installed)?;
    Ok(())
}

/// `cairn install`.
pub(crate) async fn install(ctx: &Context, args: &InstallArgs) -> Result<()> {
    let server = require_server(&args.installer, args.http01_port)?;
    let wanted = enhancements(&args.enhance)?;
    let installer = installer(ctx, &server)?;
    let (names, cert, lineage) = match (&args.cert_name, &args.cert_path) {
        (Some(name), _) => {
            let name = CertName::parse(name).map_err(|e| usage(format!("--cert-name: {e:#}")))?;
            let names = lineage_names(ctx, &name, &args.domains)?;
            (names, lineage_paths(ctx, &name), Some(name))
        }
        (None, Some(cert_path)) => {
            if args.domains.is_empty() {
                return Err(usage(
                    "with --cert-path, name the sites to serve with -d NAME",
                ));
            }
            let fullchain = args
                .fullchain_path
                .clone()
                .unwrap_or_else(|| cert_path.clone());
            let cert = CertPaths {
                cert: absolute(cert_path),
                key: absolute(args.key_path.as_ref().unwrap_or(cert_path)),
                chain: absolute(args.chain_path.as_ref().unwrap_or(&fullchain)),
                fullchain: absolute(&fullchain),
            };
            (names_of(&parse_names(&args.domains)?), cert, None)
        }
        (None, None) => {
            return Err(usage(
                "say which certificate to install: --cert-name NAME, or --cert-path, \
                 --key-path and --fullchain-path",
            ));
        }
    };
    let settings = installer.settings(server.https_port, server.http_port);
    if args.dry_run {
        let diff = installer.dry_run(deploy_edit(&names, &cert, &settings, &wanted))?;
        print_diff(&diff, installer.server().name());
        return Ok(());
    }
    let applied = installer
        .apply(
            &format!(
                "install {} for {}",
                cert.fullchain.display(),
                names.join(", ")
            ),
            deploy_edit(&names, &cert, &settings, &wanted),
        )
        .with_context(|| {
            format!(
                "installing the certificate into {}",
                installer.server().name()
            )
        })?;
    report(&applied, &installer, &names);
    if let Some(name) = lineage {
        let installed = InstallerConfig {
            server,
            domains: names,
            redirect: wanted.contains(&Enhancement::Redirect),
            hsts: wanted.contains(&Enhancement::Hsts),
            uir: wanted.contains(&Enhancement::Uir),
        };
        save_installed(ctx, &name, installed)?;
    }
    Ok(())
}

/// `cairn enhance`.
pub(crate) async fn enhance(ctx: &Context, args: &EnhanceArgs) -> Result<()> {
    let wanted = enhancements(&args.enhance)?;
    if wanted.is_empty() {
        return Err(usage("say what to turn on: --redirect, --hsts or --uir"));
    }
    let server = require_server(&args.installer, args.http01_port)?;
    let installer = installer(ctx, &server)?;
    let (names, lineage) = match &args.cert_name {
        Some(name) => {
            let name = CertName::parse(name).map_err(|e| usage(format!("--cert-name: {e:#}")))?;
            (lineage_names(ctx, &name, &args.domains)?, Some(name))
        }
        None if !args.domains.is_empty() => (names_of(&parse_names(&args.domains)?), None),
        None => {
            return Err(usage(
                "say which names to enhance: --cert-name NAME or -d NAME",
            ));
        }
    };
    let settings = installer.settings(server.https_port, server.http_port);
    let edit = |config: &mut dyn Config| {
        for what in &wanted {
            config.enhance(&names, *what, &settings)?;
        }
        Ok(())
    };
    if args.dry_run {
        print_diff(&installer.dry_run(edit)?, installer.server().name());
        return Ok(());
    }
    let applied = installer
        .apply(&format!("enhance {} ({wanted:?})", names.join(", ")), edit)
        .with_context(|| format!("changing the {} configuration", installer.server().name()))?;
    report(&applied, &installer, &names);
    if let Some(name) = lineage {
        let _lock = ctx.dir.lock(&name)?;
        let path = ctx.dir.renewal_file(&name);
        let mut config = RenewalConfig::load(&path)?;
        if let Some(installed) = &mut config.installer {
            installed.redirect |= wanted.contains(&Enhancement::Redirect);
            installed.hsts |= wanted.contains(&Enhancement::Hsts);
            installed.uir |= wanted.contains(&Enhancement::Uir);
            config.save(&path)?;
        }
    }
    Ok(())
}

/// `cairn rollback`.
pub(crate) fn rollback(ctx: &Context, args: &RollbackArgs) -> Result<()> {
    let server = require_server(&args.installer, 80)?;
    let installer = installer(ctx, &server)?;
    let undone = installer.rollback(args.checkpoints).with_context(|| {
        format!(
            "rolling back the {} configuration",
            installer.server().name()
        )
    })?;
    if undone.is_empty() {
        say(&format!(
            "cairn has made no changes to {} that could be rolled back.",
            installer.server().name()
        ));
        return Ok(());
    }
    for checkpoint in &undone {
        say(&format!(
            "Rolled back checkpoint {} ({}): {} file(s) restored, {} removed.",
            checkpoint.id,
            checkpoint.description,
            checkpoint.saved.len(),
            checkpoint.created.len()
        ));
    }
    say(&format!(
        "{} configuration tested and reloaded.",
        installer.server().name()
    ));
    Ok(())
}

/// `cairn config_changes`.
pub(crate) fn config_changes(ctx: &Context, args: &ConfigChangesArgs) -> Result<()> {
    let servers = match web_server_config(&args.installer, 80) {
        Some(server) => vec![server],
        None => [true, false]
            .into_iter()
            .filter_map(|nginx| {
                let flags = InstallerArgs {
                    nginx,
                    apache: !nginx,
                    ..args.installer.clone()
                };
                web_server_config(&flags, 80)
            })
            .collect(),
    };
    let mut any = false;
    for server in &servers {
        let installer = installer(ctx, server)?;
        let mut checkpoints = installer.checkpoints()?;
        if let Some(n) = args.num {
            let skip = checkpoints.len().saturating_sub(n);
            checkpoints.drain(..skip);
        }
        for c in checkpoints {
            any = true;
            let when =
                time::OffsetDateTime::from_unix_timestamp(i64::try_from(c.time).unwrap_or(0))
                    .map_or_else(|_| c.time.to_string(), date);
            println!(
                "{} checkpoint {} ({when}): {}",
                installer.server().name(),
                c.id,
                c.description
            );
            for path in &c.saved {
                println!("    changed {}", path.display());
            }
            for path in &c.created {
                println!("    created {}", path.display());
            }
        }
    }
    if !any {
        say("cairn has made no configuration changes.");
    }
    Ok(())
}

/// After a renewal: the configuration points at `live/NAME/`, which now
/// holds the new files; deploy again (normally no change) and reload.
pub(crate) fn redeploy(ctx: &Context, name: &CertName, installed: &InstallerConfig) -> Result<()> {
    let installer = installer(ctx, &installed.server)?;
    deploy_lineage(ctx, name, installed, &installer)
}

fn deploy_lineage(
    ctx: &Context,
    name: &CertName,
    installed: &InstallerConfig,
    installer: &Installer,
) -> Result<()> {
    let started = std::time::Instant::now();
    let mut wanted = Vec::new();
    for (on, what) in [
        (installed.redirect, Enhancement::Redirect),
        (installed.hsts, Enhancement::Hsts),
        (installed.uir, Enhancement::Uir),
    ] {
        if on {
            wanted.push(what);
        }
    }
    let settings = installer.settings(installed.server.https_port, installed.server.http_port);
    let cert = lineage_paths(ctx, name);
    let applied = installer
        .apply(
            &format!("install {name} for {}", installed.domains.join(", ")),
            deploy_edit(&installed.domains, &cert, &settings, &wanted),
        )
        .with_context(|| format!("installing {name} into {}", installer.server().name()))?;
    if applied.checkpoint.is_none() {
        // Nothing to edit: the configuration already points at live/NAME/;
        // have the server read what is there now (a renewal's new files).
        installer
            .reload()
            .with_context(|| format!("reloading {}", installer.server().name()))?;
        say(&format!(
            "{name}: the configuration was already in place; {} reloaded, it serves the certificate in {}.",
            installer.server().name(),
            ctx.dir.live_dir(name).display()
        ));
    } else {
        report(&applied, installer, &installed.domains);
    }
    tracing::info!(elapsed = ?started.elapsed(), server = installer.server().name(), "installed");
    Ok(())
}

fn deploy_edit<'a>(
    names: &'a [String],
    cert: &'a CertPaths,
    settings: &'a Settings,
    wanted: &'a [Enhancement],
) -> impl FnOnce(&mut dyn Config) -> Result<(), cairn_install::Error> + 'a {
    move |config| {
        config.deploy(names, cert, settings)?;
        for what in wanted {
            config.enhance(names, *what, settings)?;
        }
        Ok(())
    }
}

fn report(applied: &Applied, installer: &Installer, names: &[String]) {
    let server = installer.server().name();
    if applied.options == Some(OptionsFile::UserEdited) {
        warn(&format!(
            "{} was changed by someone; cairn keeps it as it is (delete it and its .sha256 \
             file to get cairn's current TLS settings)",
            installer.options_file().display()
        ));
    }
    match applied.checkpoint {
        None => say(&format!(
            "{server} already serves {} this way; nothing was changed.",
            names.join(", ")
        )),
        Some(id) => {
            say(&format!(
                "{server} now serves {} over HTTPS. Changed {} file(s):",
                names.join(", "),
                applied.files.len()
            ));
            for file in &applied.files {
                say(&format!("    {}", file.display()));
            }
            say(&format!(
                "The configuration passed {server}'s test and was reloaded. Checkpoint {id}: \
                 `cairn rollback --{server}` undoes this change."
            ));
        }
    }
}

fn print_diff(diff: &str, server: &str) {
    if diff.is_empty() {
        say(&format!(
            "Dry run: the {server} configuration would not change."
        ));
    } else {
        print!("{diff}");
        let _ = std::io::stdout().flush();
    }
}

/// The names of a saved lineage (or `-d`, which must be among them).
fn lineage_names(ctx: &Context, name: &CertName, domains: &[String]) -> Result<Vec<String>> {
    let config = RenewalConfig::load(&ctx.dir.renewal_file(name)).with_context(|| {
        format!("there is no saved certificate named {name}; see `cairn certificates`")
    })?;
    if domains.is_empty() {
        return Ok(config.domains);
    }
    let names = names_of(&parse_names(domains)?);
    for n in &names {
        if !config.domains.iter().any(|d| d.eq_ignore_ascii_case(n)) {
            bail!(
                "{n} is not in the certificate {name} (it has {})",
                config.domains.join(", ")
            );
        }
    }
    Ok(names)
}

fn lineage_paths(ctx: &Context, name: &CertName) -> CertPaths {
    let file = |kind| absolute(&ctx.dir.live_file(name, kind));
    CertPaths {
        fullchain: file("fullchain"),
        key: file("privkey"),
        cert: file("cert"),
        chain: file("chain"),
    }
}

fn save_installed(ctx: &Context, name: &CertName, installed: InstallerConfig) -> Result<()> {
    let _lock = ctx.dir.lock(name)?;
    let path = ctx.dir.renewal_file(name);
    let mut config = RenewalConfig::load(&path)?;
    config.installer = Some(installed);
    config.save(&path)
}

/// `cairn run` without `-d`: the names the server's configuration serves
/// (wildcards left out: http-01 cannot prove them), all of them, or the
/// ones a person picks on a terminal.
fn choose_names(ctx: &Context, installer: &Installer) -> Result<Vec<String>> {
    let found: Vec<String> = installer
        .server_names()
        .with_context(|| format!("reading the {} configuration", installer.server().name()))?
        .into_iter()
        .filter(|n| !n.contains('*') && parse_names(std::slice::from_ref(n)).is_ok())
        .collect();
    if found.is_empty() {
        return Err(usage(format!(
            "the {} configuration names no site (server_name/ServerName) cairn can get a \
             certificate for; give the names with -d NAME",
            installer.server().name()
        )));
    }
    if !ctx.interactive {
        say(&format!(
            "Names found in the configuration: {}",
            found.join(", ")
        ));
        return Ok(found);
    }
    eprintln!("Which names would you like to activate HTTPS for?");
    for (i, name) in found.iter().enumerate() {
        eprintln!("{:>3}: {name}", i + 1);
    }
    eprint!("Numbers separated by commas or spaces (Enter for all): ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    pick(&found, &answer)
}

/// The names an answer like `1, 3` picks; all for an empty answer.
fn pick(found: &[String], answer: &str) -> Result<Vec<String>> {
    let mut chosen = Vec::new();
    for part in answer
        .split([',', ' ', '\t', '\n', '\r'])
        .filter(|p| !p.is_empty())
    {
        let n: usize = part
            .parse()
            .map_err(|_| usage(format!("{part:?} is not one of the numbers shown")))?;
        let name = n
            .checked_sub(1)
            .and_then(|i| found.get(i))
            .ok_or_else(|| anyhow!("there is no name numbered {n}"))?;
        if !chosen.contains(name) {
            chosen.push(name.clone());
        }
    }
    Ok(if chosen.is_empty() {
        found.to_vec()
    } else {
        chosen
    })
}

fn names_of(identifiers: &[Identifier]) -> Vec<String> {
    identifiers.iter().map(|i| i.value.clone()).collect()
}

fn absolute(path: &PathBuf) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_picks_names_by_number_and_empty_picks_all() {
        let found = vec![
            "a.example".to_owned(),
            "b.example".into(),
            "c.example".into(),
        ];
        assert_eq!(pick(&found, "\n").expect("all"), found);
        assert_eq!(
            pick(&found, "3, 1 3\n").expect("some"),
            ["c.example", "a.example"]
        );
        assert!(pick(&found, "4").is_err());
        assert!(pick(&found, "x").is_err());
    }

    #[test]
    fn ocsp_stapling_is_refused_with_the_reason() {
        let flags = EnhanceFlags {
            staple_ocsp: true,
            ..EnhanceFlags::default()
        };
        let err = enhancements(&flags).expect_err("refused");
        assert!(
            err.to_string().contains("there is no OCSP to staple"),
            "{err}"
        );
        let flags = EnhanceFlags {
            redirect: true,
            hsts: true,
            ..EnhanceFlags::default()
        };
        assert_eq!(
            enhancements(&flags).expect("ok"),
            [Enhancement::Redirect, Enhancement::Hsts]
        );
    }
}
