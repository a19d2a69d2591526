//! The agent's layout on disk: accounts, lineages (`live/`, `archive/`) and
//! their `renewal/NAME.toml`, written so that `cairn certificates` lists
//! them and `cairn renew` leaves them to the server.

use std::sync::Arc;

use cairn_client::lineage::{CertName, CertificateFiles, ConfigDir, create_dir, write_atomic};
use cairn_client::{Account, AccountCredentials, AcmeClient};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use serde::Serialize;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};

use crate::Error;

/// What a certificate says about itself.
#[derive(Clone, Debug)]
pub(crate) struct CertInfo {
    pub(crate) not_before: OffsetDateTime,
    pub(crate) not_after: OffsetDateTime,
    /// Unsigned big-endian serial, no leading zero octets.
    pub(crate) serial: Vec<u8>,
    pub(crate) names: Vec<String>,
    pub(crate) authority_key_id: Option<Vec<u8>>,
    pub(crate) crl_urls: Vec<String>,
}

impl CertInfo {
    pub(crate) fn from_der(der: &[u8]) -> Result<Self, Error> {
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|e| Error::Certificate(format!("not an X.509 certificate: {e}")))?;
        let validity = cert.validity();
        let time = |t: i64| {
            OffsetDateTime::from_unix_timestamp(t)
                .map_err(|e| Error::Certificate(format!("validity out of range: {e}")))
        };
        let raw = cert.raw_serial();
        let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
        let mut names = Vec::new();
        let mut authority_key_id = None;
        let mut crl_urls = Vec::new();
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        if let GeneralName::DNSName(d) = name {
                            names.push(d.to_ascii_lowercase());
                        }
                    }
                }
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    authority_key_id = aki.key_identifier.as_ref().map(|k| k.0.to_vec());
                }
                ParsedExtension::CRLDistributionPoints(points) => {
                    for point in points.iter() {
                        if let Some(x509_parser::extensions::DistributionPointName::FullName(
                            full,
                        )) = &point.distribution_point
                        {
                            for name in full {
                                if let GeneralName::URI(uri) = name {
                                    crl_urls.push((*uri).to_owned());
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(Self {
            not_before: time(validity.not_before.timestamp())?,
            not_after: time(validity.not_after.timestamp())?,
            serial: raw[start..].to_vec(),
            names,
            authority_key_id,
            crl_urls,
        })
    }

    /// The serial in lowercase hex.
    pub(crate) fn serial_hex(&self) -> String {
        self.serial.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// True if the certificate covers every name in `names`.
    pub(crate) fn covers(&self, names: &[String]) -> bool {
        names.iter().all(|n| self.names.contains(n))
    }

    /// When to renew without advice from the CA: a third of the lifetime
    /// left, or half of it for lifetimes of 10 days or less.
    pub(crate) fn renewal_time(&self) -> OffsetDateTime {
        let lifetime = self.not_after - self.not_before;
        let left = if lifetime <= time::Duration::days(10) {
            lifetime / 2
        } else {
            lifetime / 3
        };
        self.not_after - left
    }
}

/// A certificate ready to serve: the rustls key, the chain's DER and what
/// the leaf says.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) certified: Arc<CertifiedKey>,
    pub(crate) chain_der: Vec<Vec<u8>>,
    pub(crate) info: CertInfo,
}

impl Loaded {
    pub(crate) fn from_pem(fullchain: &str, privkey: &str) -> Result<Self, Error> {
        let chain_der = cairn_proto::pem::decode_all(fullchain, "CERTIFICATE");
        let leaf = chain_der
            .first()
            .ok_or_else(|| Error::Certificate("no certificate in the chain".into()))?;
        let info = CertInfo::from_der(leaf)?;
        let key_der = cairn_proto::pem::decode_one(privkey, "PRIVATE KEY")
            .ok_or_else(|| Error::Certificate("no PKCS#8 private key".into()))?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der));
        let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key)
            .map_err(|e| Error::Certificate(format!("the private key cannot sign: {e}")))?;
        let certs = chain_der
            .iter()
            .map(|d| CertificateDer::from(d.clone()))
            .collect();
        Ok(Self {
            certified: Arc::new(CertifiedKey::new(certs, signing)),
            chain_der,
            info,
        })
    }

    /// The live version of lineage `name`, if there is one that parses.
    pub(crate) fn from_live(dir: &ConfigDir, name: &CertName) -> Option<Self> {
        let fullchain = std::fs::read_to_string(dir.live_file(name, "fullchain")).ok()?;
        let privkey = std::fs::read_to_string(dir.live_file(name, "privkey")).ok()?;
        match Self::from_pem(&fullchain, &privkey) {
            Ok(loaded) => Some(loaded),
            Err(e) => {
                tracing::warn!(%name, "the saved certificate cannot be used: {e}");
                None
            }
        }
    }
}

/// The renewal settings file, in the agent's format (`renewal.rs` there).
#[derive(Serialize)]
struct RenewalFile<'a> {
    version: u32,
    server: &'a str,
    account: &'a str,
    key_type: &'a str,
    domains: &'a [String],
    authenticator: Managed,
}

#[derive(Serialize)]
struct Managed {
    kind: &'static str,
    by: &'static str,
}

/// Writes `renewal/NAME.toml` marking the lineage as managed by cairn-tls.
pub(crate) fn save_renewal(
    dir: &ConfigDir,
    name: &CertName,
    server: &str,
    account: &str,
    key_type: &str,
    domains: &[String],
) -> Result<(), Error> {
    let file = RenewalFile {
        version: 1,
        server,
        account,
        key_type,
        domains,
        authenticator: Managed {
            kind: "managed",
            by: "cairn-tls",
        },
    };
    let text = format!(
        "# Written by cairn-tls {}: a server obtains and renews this certificate itself;\n\
         # `cairn renew` skips it.\n{}",
        env!("CARGO_PKG_VERSION"),
        toml::to_string(&file).map_err(|e| Error::Storage(e.to_string()))?
    );
    create_dir(&dir.renewal_dir(), 0o755)?;
    write_atomic(&dir.renewal_file(name), text.as_bytes(), 0o644)?;
    Ok(())
}

/// Saves a new version of the lineage and its renewal file.
pub(crate) fn install(
    dir: &ConfigDir,
    name: &CertName,
    files: &CertificateFiles,
) -> Result<u32, Error> {
    Ok(dir.install(name, files)?)
}

/// The account for `client`'s CA saved in the agent's layout
/// (`accounts/HOST/HASH/account.json`), if any.
pub(crate) fn load_account(dir: &ConfigDir, client: &AcmeClient) -> Result<Option<Account>, Error> {
    let path = dir.account_dir(client.directory_url()).join("account.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Storage(format!("reading {}: {e}", path.display())));
        }
    };
    let credentials: AccountCredentials = serde_json::from_str(&text).map_err(|e| {
        Error::Storage(format!(
            "the account file {} is damaged: {e}",
            path.display()
        ))
    })?;
    Ok(Some(Account::from_credentials(client, credentials)?))
}

/// Saves the account's credentials (0600 in a 0700 directory).
pub(crate) fn save_account(dir: &ConfigDir, account: &Account) -> Result<(), Error> {
    let account_dir = dir.account_dir(account.client().directory_url());
    create_dir(dir.root(), 0o755)?;
    create_dir(&dir.root().join("accounts"), 0o700)?;
    create_dir(&account_dir, 0o700)?;
    let text = serde_json::to_string_pretty(&account.credentials())
        .map_err(|e| Error::Storage(e.to_string()))?;
    write_atomic(&account_dir.join("account.json"), text.as_bytes(), 0o600)?;
    Ok(())
}

/// The four files of a version from a checked chain and its key.
pub(crate) fn files(chain_der: &[Vec<u8>], key_pem: String) -> Result<CertificateFiles, Error> {
    let pems: Vec<String> = chain_der
        .iter()
        .map(|der| cairn_proto::pem::encode("CERTIFICATE", der))
        .collect();
    let cert = pems
        .first()
        .cloned()
        .ok_or_else(|| Error::Certificate("the chain is empty".into()))?;
    Ok(CertificateFiles {
        chain: pems[1..].concat(),
        fullchain: pems.concat(),
        cert,
        privkey: key_pem,
    })
}
