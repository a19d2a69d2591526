//! The issuance flow (RFC 8555 §7.4): order, prove control of each name,
//! finalize with a CSR signed by a fresh certificate key, download, check,
//! and hand back the files to install.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use cairn_client::{Account, CertificateChain, PreparedChallenge, check_certificate, csr};
use cairn_proto::objects::{AuthorizationStatus, NewOrder};
use cairn_proto::{Identifier, KeyPair, KeyType};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::acme::explain;
use crate::output::{say, warn};
use crate::solver::Solver;
use crate::storage::CertificateFiles;

/// What to ask for.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub(crate) names: &'a [Identifier],
    pub(crate) key_type: KeyType,
    pub(crate) preferred_chain: Option<&'a str>,
    /// PEM roots the chain must lead to.
    pub(crate) issuer_roots: Option<&'a [u8]>,
    /// ARI: the certificate this one replaces (RFC 9773 §5).
    pub(crate) replaces: Option<String>,
}

/// A certificate obtained and checked.
#[derive(Debug)]
pub(crate) struct Obtained {
    pub(crate) files: CertificateFiles,
    pub(crate) info: CertInfo,
}

/// How often progress is printed while the CA validates.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

pub(crate) async fn obtain(
    account: &Account,
    solver: &mut Solver,
    request: &Request<'_>,
) -> Result<Obtained> {
    let names = request.names;
    say(&format!("Requesting a certificate for {}", list(names)));
    let mut new_order = NewOrder::new(names.to_vec());
    new_order.replaces = request.replaces.clone();
    let mut order = account
        .new_order(&new_order)
        .await
        .map_err(|e| explain(e, "placing the order"))?;
    let authorizations = order
        .authorizations()
        .await
        .map_err(|e| explain(e, "fetching the order's authorizations"))?;

    let kind = solver.challenge_type();
    let mut pending: Vec<(String, PreparedChallenge, &Identifier)> = Vec::new();
    for name in names {
        let authz = authorizations
            .iter()
            .find(|a| a.is_for(name))
            .ok_or_else(|| {
                anyhow!(
                    "the CA's order has no authorization for {}; it is not following RFC 8555",
                    name.value
                )
            })?;
        match authz.state.status {
            AuthorizationStatus::Valid => say(&format!("  {}: already authorized", name.value)),
            AuthorizationStatus::Pending => {
                let prepared = authz.prepare(account, &kind).map_err(|e| {
                    explain(
                        e,
                        &format!("preparing the {kind} challenge for {}", name.value),
                    )
                })?;
                pending.push((authz.url.clone(), prepared, name));
            }
            status => bail!(
                "the CA's authorization for {} is {status}, so it cannot be validated; \
                 run cairn again for a new order",
                name.value
            ),
        }
    }

    if !pending.is_empty() {
        let challenges: Vec<PreparedChallenge> =
            pending.iter().map(|(_, c, _)| c.clone()).collect();
        let all_domains: Vec<String> = challenges
            .iter()
            .map(|c| c.identifier.value.clone())
            .collect();
        for (_, _, name) in &pending {
            say(&format!(
                "  {}: answering {kind} with {}",
                name.value,
                solver.describe()
            ));
        }
        let result = validate(account, solver, &pending, &challenges, &all_domains).await;
        solver.cleanup().await;
        result?;
    }

    order
        .poll_ready()
        .await
        .map_err(|e| explain(e, "waiting for the order to be ready"))?;
    say("  every name is validated; finalizing the order");
    let key = KeyPair::generate(request.key_type)?;
    let csr = csr(names, &key)?;
    order
        .finalize(&csr)
        .await
        .map_err(|e| explain(e, "finalizing the order"))?;
    order
        .poll_valid()
        .await
        .map_err(|e| explain(e, "waiting for the certificate"))?;
    let chain = order
        .certificate()
        .await
        .map_err(|e| explain(e, "downloading the certificate"))?;
    let chain = choose_chain(chain, request.preferred_chain)?;
    check_certificate(&chain, names, &key, request.issuer_roots)
        .map_err(|e| explain(e, "checking the issued certificate"))?;
    let files = split_chain(&chain, &key)?;
    let info = CertInfo::from_pem(&files.cert)?;
    Ok(Obtained { files, info })
}

async fn validate(
    account: &Account,
    solver: &mut Solver,
    pending: &[(String, PreparedChallenge, &Identifier)],
    challenges: &[PreparedChallenge],
    all_domains: &[String],
) -> Result<()> {
    solver.present(challenges, all_domains).await?;
    for (_, challenge, name) in pending {
        account
            .respond(&challenge.url)
            .await
            .map_err(|e| explain(e, &format!("asking the CA to validate {}", name.value)))?;
    }
    for (url, _, name) in pending {
        wait_valid(account, url, name).await?;
    }
    Ok(())
}

/// Polls one authorization, printing progress while it is pending.
async fn wait_valid(account: &Account, url: &str, name: &Identifier) -> Result<()> {
    let started = Instant::now();
    let poll = account.poll_authorization(url);
    tokio::pin!(poll);
    let mut ticker =
        tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
    loop {
        tokio::select! {
            result = &mut poll => {
                result.map_err(|e| explain(e, &format!("validating {}", name.value)))?;
                say(&format!("  {}: validated ({:.1} s)", name.value, started.elapsed().as_secs_f32()));
                return Ok(());
            }
            _ = ticker.tick() => say(&format!(
                "  {}: waiting for the CA to validate ({} s so far)",
                name.value,
                started.elapsed().as_secs()
            )),
        }
    }
}

/// The chain whose top certificate's issuer has common name `preferred`,
/// among the default chain and the alternates; the default if none has.
fn choose_chain(chain: CertificateChain, preferred: Option<&str>) -> Result<CertificateChain> {
    let Some(preferred) = preferred else {
        return Ok(chain);
    };
    let mut candidates = vec![chain.clone()];
    for alternate in &chain.alternates {
        match CertificateChain::from_pem(alternate) {
            Ok(c) => candidates.push(c),
            Err(e) => warn(&format!("ignoring an alternate chain the CA offered: {e}")),
        }
    }
    for candidate in &candidates {
        if top_issuer_cn(candidate).as_deref() == Some(preferred) {
            return Ok(candidate.clone());
        }
    }
    let offered: Vec<String> = candidates.iter().filter_map(top_issuer_cn).collect();
    warn(&format!(
        "no chain offered by the CA ends under {preferred:?} (offered: {}); using the default chain",
        offered.join(", ")
    ));
    Ok(chain)
}

/// The common name of the issuer of the chain's last certificate.
fn top_issuer_cn(chain: &CertificateChain) -> Option<String> {
    let der = chain.certificates_der.last()?;
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let cn = cert
        .issuer()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_owned();
    Some(cn)
}

/// The four files of a certificate version, from the checked chain.
fn split_chain(chain: &CertificateChain, key: &KeyPair) -> Result<CertificateFiles> {
    let pems: Vec<String> = chain
        .certificates_der
        .iter()
        .map(|der| cairn_proto::pem::encode("CERTIFICATE", der))
        .collect();
    let cert = pems.first().context("the chain is empty")?.clone();
    Ok(CertificateFiles {
        chain: pems[1..].concat(),
        fullchain: pems.concat(),
        cert,
        privkey: key.to_pkcs8_pem()?,
    })
}

/// What a saved certificate says about itself.
#[derive(Clone, Debug)]
pub(crate) struct CertInfo {
    pub(crate) not_before: OffsetDateTime,
    pub(crate) not_after: OffsetDateTime,
    /// Lowercase hex, no leading zero octets.
    pub(crate) serial: String,
    pub(crate) names: Vec<String>,
    pub(crate) der: Vec<u8>,
    /// The Authority Key Identifier's keyIdentifier, for ARI.
    pub(crate) authority_key_id: Option<Vec<u8>>,
    pub(crate) serial_bytes: Vec<u8>,
}

impl CertInfo {
    /// Reads the first certificate of a PEM text.
    pub(crate) fn from_pem(pem: &str) -> Result<Self> {
        let der =
            cairn_proto::pem::decode_one(pem, "CERTIFICATE").context("no PEM certificate found")?;
        Self::from_der(der)
    }

    pub(crate) fn from_der(der: Vec<u8>) -> Result<Self> {
        let (_, cert) = X509Certificate::from_der(&der)
            .map_err(|e| anyhow!("not an X.509 certificate: {e}"))?;
        let validity = cert.validity();
        let not_before = OffsetDateTime::from_unix_timestamp(validity.not_before.timestamp())?;
        let not_after = OffsetDateTime::from_unix_timestamp(validity.not_after.timestamp())?;
        let serial_bytes = cert.raw_serial().to_vec();
        let start = serial_bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(serial_bytes.len());
        let serial = serial_bytes[start..]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    x509_parser::extensions::GeneralName::DNSName(d) => names.push((*d).to_owned()),
                    x509_parser::extensions::GeneralName::IPAddress(bytes) => {
                        if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                            names.push(std::net::IpAddr::from(v4).to_string());
                        } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                            names.push(std::net::IpAddr::from(v6).to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        let authority_key_id =
            cert.extensions()
                .iter()
                .find_map(|ext| match ext.parsed_extension() {
                    x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(aki) => {
                        aki.key_identifier.as_ref().map(|k| k.0.to_vec())
                    }
                    _ => None,
                });
        Ok(Self {
            not_before,
            not_after,
            serial,
            names,
            authority_key_id,
            serial_bytes: serial_bytes[start..].to_vec(),
            der,
        })
    }
}

/// Parses the `-d` names: IP addresses as `ip` identifiers, everything else
/// as lowercase DNS names, checked for syntax (a leading `*.` allowed).
pub(crate) fn parse_names(raw: &[String]) -> Result<Vec<Identifier>> {
    let mut names: Vec<Identifier> = Vec::new();
    for name in raw {
        let name = name.trim().trim_end_matches('.');
        if name.is_empty() {
            continue;
        }
        let id = match name.parse::<std::net::IpAddr>() {
            Ok(ip) => Identifier::ip(ip),
            Err(_) => {
                let lower = name.to_ascii_lowercase();
                check_dns_name(&lower)?;
                Identifier::dns(lower)
            }
        };
        if !names.contains(&id) {
            names.push(id);
        }
    }
    if names.is_empty() {
        bail!("give at least one name with -d");
    }
    Ok(names)
}

fn check_dns_name(name: &str) -> Result<()> {
    let base = name.strip_prefix("*.").unwrap_or(name);
    let ok_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if base.len() > 253 || !base.split('.').all(ok_label) {
        bail!(
            "{name:?} is not a valid DNS name (letters, digits and '-' in dot-separated labels; \
             a wildcard only as a leading '*.')"
        );
    }
    Ok(())
}

/// `a, b and c`.
pub(crate) fn list(names: &[Identifier]) -> String {
    let values: Vec<&str> = names.iter().map(|n| n.value.as_str()).collect();
    match values.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_as_dns_or_ip_and_bad_ones_are_refused() {
        let names = parse_names(&[
            "A.Example.".into(),
            "*.a.example".into(),
            "192.0.2.1".into(),
            "a.example".into(),
        ])
        .expect("names");
        assert_eq!(
            names,
            [
                Identifier::dns("a.example"),
                Identifier::dns("*.a.example"),
                Identifier::ip("192.0.2.1".parse().expect("ip")),
            ]
        );
        for bad in [
            "a..example",
            "-a.example",
            "a.*.example",
            "a/b",
            "a b",
            "*",
            "../x",
        ] {
            assert!(parse_names(&[bad.into()]).is_err(), "{bad}");
        }
        assert!(parse_names(&[]).is_err());
        assert_eq!(list(&names), "a.example, *.a.example and 192.0.2.1");
    }
}
