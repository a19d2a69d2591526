//! Talking to the CA: the client connection, the saved account, and
//! errors explained for the person reading them.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use cairn_client::{Account, AccountCredentials, AcmeClient, ClientOptions};
use cairn_proto::objects::NewAccount;
use cairn_proto::{KeyPair, KeyType, ProblemType};

use crate::cli::RegistrationArgs;
use crate::output::say;
use crate::storage::{ConfigDir, create_dir, write_atomic};

/// Connects to the ACME server at `server` (its directory URL), trusting
/// `ca_bundle` for its HTTPS besides the system's roots.
pub(crate) async fn connect(server: &str, ca_bundle: Option<&Path>) -> Result<AcmeClient> {
    let ca_bundle_pem = ca_bundle
        .map(|path| {
            std::fs::read(path).with_context(|| format!("reading --ca-bundle {}", path.display()))
        })
        .transpose()?;
    let options = ClientOptions {
        ca_bundle_pem,
        user_agent: concat!("cairn/", env!("CARGO_PKG_VERSION")).to_owned(),
        // Real servers need one retry; test servers rejecting good nonces
        // at random need more: at Pebble's 50% a request fails only after
        // 21 refusals in a row (2^-21), so 20 consecutive issuances of ~200
        // requests fail together about once in ten thousand runs.
        bad_nonce_retries: 20,
        poll_deadline: Duration::from_secs(10 * 60),
        ..ClientOptions::default()
    };
    AcmeClient::new(server, options).await.map_err(|e| {
        let hint = match &e {
            cairn_client::Error::Http { .. } if ca_bundle.is_none() => {
                "; check --server and the network. For a private or test CA, pass its \
                 HTTPS root with --ca-bundle"
            }
            cairn_client::Error::Http { .. } => "; check --server, --ca-bundle and the network",
            _ => "; is --server the URL of an ACME directory?",
        };
        anyhow!("cannot use the ACME server {server}: {e}{hint}")
    })
}

/// Where the account for `server` is saved.
pub(crate) fn credentials_path(dir: &ConfigDir, server: &str) -> PathBuf {
    dir.account_dir(server).join("account.json")
}

/// The saved account for the client's server, if there is one.
pub(crate) fn load_account(dir: &ConfigDir, client: &AcmeClient) -> Result<Option<Account>> {
    let path = credentials_path(dir, client.directory_url());
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let credentials: AccountCredentials = serde_json::from_str(&text)
        .with_context(|| format!("the account file {} is damaged", path.display()))?;
    let account = Account::from_credentials(client, credentials)
        .with_context(|| format!("loading the account in {}", path.display()))?;
    Ok(Some(account))
}

/// The saved account, or an error saying how to make one.
pub(crate) fn require_account(dir: &ConfigDir, client: &AcmeClient) -> Result<Account> {
    load_account(dir, client)?.ok_or_else(|| {
        anyhow!(
            "there is no account for {} in {}; create one with `cairn register --server {}`",
            client.directory_url(),
            dir.root().display(),
            client.directory_url()
        )
    })
}

/// Saves the account's credentials (0600, in a 0700 directory).
pub(crate) fn save_account(dir: &ConfigDir, account: &Account) -> Result<PathBuf> {
    let path = credentials_path(dir, account.client().directory_url());
    create_dir(dir.root(), 0o755)?;
    create_dir(&dir.root().join("accounts"), 0o700)?;
    create_dir(path.parent().context("account dir")?, 0o700)?;
    let text = serde_json::to_string_pretty(&account.credentials())?;
    write_atomic(&path, text.as_bytes(), 0o600)?;
    Ok(path)
}

/// The saved account, or a new one registered with `registration`.
pub(crate) async fn load_or_register(
    dir: &ConfigDir,
    client: &AcmeClient,
    registration: &RegistrationArgs,
    interactive: bool,
) -> Result<Account> {
    match load_account(dir, client)? {
        Some(account) => Ok(account),
        None => register(dir, client, registration, interactive).await,
    }
}

/// Registers a new account with a fresh ECDSA P-256 key and saves it.
pub(crate) async fn register(
    dir: &ConfigDir,
    client: &AcmeClient,
    registration: &RegistrationArgs,
    interactive: bool,
) -> Result<Account> {
    let terms = client
        .directory()
        .meta
        .as_ref()
        .and_then(|m| m.terms_of_service.clone());
    let agreed = match (&terms, registration.agree_tos) {
        (_, true) => true,
        (None, false) => false,
        (Some(url), false) if interactive => ask(&format!(
            "Please read the terms of service at {url}. Do you agree? [y/N] "
        ))?,
        (Some(url), false) => bail!(
            "the CA asks you to agree to its terms of service at {url}; read them and \
             pass --agree-tos"
        ),
    };
    if terms.is_some() && !agreed {
        bail!("an account cannot be registered without agreeing to the terms of service");
    }
    let contact: Vec<String> = registration
        .email
        .iter()
        .flat_map(|list| list.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| format!("mailto:{e}"))
        .collect();
    let new = NewAccount {
        contact,
        terms_of_service_agreed: agreed.then_some(true),
        ..NewAccount::default()
    };
    let key = KeyPair::generate(KeyType::EcdsaP256)?;
    let (account, _) = Account::create(client, key, &new, None)
        .await
        .map_err(|e| explain(e, "registering an account"))?;
    let path = save_account(dir, &account)?;
    say(&format!(
        "Registered the account {} (key saved in {})",
        account.url(),
        path.display()
    ));
    Ok(account)
}

/// Asks a yes/no question on the terminal.
pub(crate) fn ask(question: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("{question}: no terminal to ask on; run with the flag that answers it");
    }
    print!("{question}");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// Turns a client error into one that says what was being done, what the
/// CA said (problem type and detail) and what to try.
pub(crate) fn explain(error: cairn_client::Error, doing: &str) -> anyhow::Error {
    use cairn_client::Error as E;
    let hint = match &error {
        E::AuthorizationFailed { problem, .. } => problem
            .as_ref()
            .and_then(|p| hint_for(&p.kind))
            .unwrap_or("look at the CA's detail above and try again"),
        E::Problem { problem, .. }
        | E::OrderInvalid {
            problem: Some(problem),
            ..
        } => hint_for(&problem.kind).unwrap_or("look at the CA's detail above"),
        E::Http { .. } => "the CA could not be reached; check the network and try again",
        E::Timeout { .. } => "the CA did not finish in time; try again later",
        E::InvalidResponse { .. } => {
            "the server did not answer like an ACME CA; check --server (it must be the directory URL)"
        }
        E::BadToken { .. } => {
            "the CA sent a malformed challenge; nothing was written for it. Report it to the CA"
        }
        E::ChallengeUnavailable { .. } => {
            "choose another way to prove control (--standalone, --webroot, --tls-alpn, --manual --preferred-challenges dns)"
        }
        E::CertificateRefused(_) => "nothing was installed; report this to the CA",
        _ => "try again; with -v cairn shows more",
    };
    anyhow!("{doing} failed: {error}\n  what to try: {hint}")
}

fn hint_for(kind: &ProblemType) -> Option<&'static str> {
    Some(match kind {
        ProblemType::Connection => {
            "the CA could not connect to this host to check the challenge: make sure the \
             name's DNS points here and that the port (80 for http-01, 443 for tls-alpn-01) \
             is open to the internet"
        }
        ProblemType::Dns => {
            "the CA's DNS lookup failed: check the name's DNS records (A/AAAA, TXT for dns-01, CAA)"
        }
        ProblemType::IncorrectResponse | ProblemType::Unauthorized => {
            "the CA found a different answer than expected: check that \
             http://NAME/.well-known/acme-challenge/ reaches the webroot given with -w (no \
             redirect elsewhere), or that the TXT record is published (dns-01), then retry"
        }
        ProblemType::Tls => {
            "the CA's TLS connection failed: is another TLS server answering on port 443?"
        }
        ProblemType::Caa => {
            "a CAA DNS record forbids this CA for the name: add the CA's CAA identity to it"
        }
        ProblemType::RateLimited => {
            "the CA's rate limit was hit: wait before retrying; test with a staging server"
        }
        ProblemType::RejectedIdentifier | ProblemType::UnsupportedIdentifier => {
            "the CA will not issue for this name: check its spelling, and that it is a public name"
        }
        ProblemType::UserActionRequired => {
            "the CA needs you to act (new terms of service?): see its instance URL"
        }
        ProblemType::AccountDoesNotExist => {
            "the CA does not know the saved account; remove it under accounts/ and register again"
        }
        ProblemType::ExternalAccountRequired => {
            "the CA requires external account binding, which cairn does not support yet"
        }
        ProblemType::InvalidContact | ProblemType::UnsupportedContact => {
            "check the --email address"
        }
        ProblemType::AlreadyRevoked => "the certificate was already revoked; nothing more to do",
        ProblemType::BadNonce => "the CA kept refusing nonces; try again",
        ProblemType::ServerInternal => "the CA had an internal error; try again later",
        _ => return None,
    })
}
