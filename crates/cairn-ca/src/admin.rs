//! `cairn-ca admin`: operator actions on the CA's database, run while
//! `serve` runs (on SQLite and PostgreSQL alike), for incidents.

use std::path::Path;

use cairn_proto::KeyPair;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, SubjectPublicKeyInfoDer};
use time::OffsetDateTime;

use crate::app::{self, StartError};
use crate::config::Config;
use crate::policy::keys;
use crate::signer::Pki;

/// The key to block, as the operator names it.
#[derive(Clone, Debug)]
pub enum KeyToBlock {
    /// SHA-256 of the DER SubjectPublicKeyInfo, hex.
    SpkiHash(String),
    /// A certificate (PEM or DER) whose key it is.
    Certificate(std::path::PathBuf),
    /// A public key (PEM `PUBLIC KEY`) or private key (PEM `PRIVATE KEY`,
    /// PKCS#8).
    Key(std::path::PathBuf),
}

/// What [`block_key`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    pub spki_sha256: Vec<u8>,
    /// Serials of the certificates revoked because they carry the key.
    pub revoked: Vec<String>,
}

/// Blocks a key: refused from now on at newAccount, key change and
/// finalize; its unexpired certificates revoked as keyCompromise.
pub async fn block_key(
    config: &Config,
    key: &KeyToBlock,
    reason: &str,
) -> Result<Blocked, StartError> {
    let spki_sha256 = key_hash(key)?;
    let store = app::open_store(config).await?;
    let reason = format!("blocked by an operator: {reason}");
    let revoked = keys::block_and_revoke(
        store.as_ref(),
        &spki_sha256,
        &reason,
        OffsetDateTime::now_utc(),
    )
    .await
    .map_err(|e| StartError(format!("blocking the key: {}", e.detail)))?;
    Ok(Blocked {
        spki_sha256,
        revoked,
    })
}

fn key_hash(key: &KeyToBlock) -> Result<Vec<u8>, StartError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| StartError(format!("cannot read {}: {e}", path.display())))
    };
    match key {
        KeyToBlock::SpkiHash(hex) => {
            let hex = hex.trim().to_ascii_lowercase();
            let bytes: Option<Vec<u8>> = (hex.len() == 64)
                .then(|| {
                    (0..64)
                        .step_by(2)
                        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
                        .collect()
                })
                .flatten();
            bytes.ok_or_else(|| {
                StartError(format!(
                    "--spki-hash {hex:?} is not a SHA-256 in hex (64 characters)"
                ))
            })
        }
        KeyToBlock::Certificate(path) => {
            let bytes = read(path)?;
            let der = match CertificateDer::from_pem_slice(&bytes) {
                Ok(pem) => pem.to_vec(),
                Err(_) => bytes,
            };
            let spki = crate::signer::certificate_spki(&der)
                .map_err(|e| StartError(format!("{}: {}", path.display(), e.detail)))?;
            Ok(keys::spki_sha256(&spki))
        }
        KeyToBlock::Key(path) => {
            let bytes = read(path)?;
            if let Ok(spki) = SubjectPublicKeyInfoDer::from_pem_slice(&bytes) {
                return Ok(keys::spki_sha256(spki.as_ref()));
            }
            let text = String::from_utf8_lossy(&bytes);
            let pair = KeyPair::from_pkcs8_pem(&text).map_err(|e| {
                StartError(format!(
                    "{}: neither a PEM public key nor a PKCS#8 private key: {e}",
                    path.display()
                ))
            })?;
            Ok(keys::spki_sha256(&keys::spki_der(pair.public_jwk())))
        }
    }
}

/// `cairn-ca init`: makes the CA's keys and certificates (as the first
/// `serve` would) and, with `root_key_out`, moves the root keys there,
/// after signing the roots' CRLs with them. Returns what to tell the
/// operator.
pub fn init(config: &Config, root_key_out: Option<&Path>) -> Result<String, StartError> {
    let pki = app::init_keys(config)?;
    let mut report = format!(
        "CA keys and certificates are in {}; clients trust {}",
        config.data_dir.join("pki").display(),
        pki.root_pem_path().display()
    );
    if let Some(out) = root_key_out {
        let crls = Pki::take_roots_offline(&config.data_dir, out, OffsetDateTime::now_utc())
            .map_err(|e| StartError(format!("taking the root keys offline: {}", e.detail)))?;
        let crls: Vec<String> = crls.iter().map(|p| p.display().to_string()).collect();
        report.push_str(&format!(
            "\nthe root keys are now only in {out} (keep it offline); the roots' CRLs, signed \
             with them, are {crls}; sign new ones before they expire with `cairn-ca admin \
             sign-root-crl --root-key {out}`",
            out = out.display(),
            crls = crls.join(", "),
        ));
    }
    Ok(report)
}

/// `cairn-ca admin sign-root-crl`: signs the roots' CRLs with the keys in
/// `root_key`, for `serve` to publish. Returns the files written.
pub fn sign_root_crl(
    config: &Config,
    root_key: &Path,
) -> Result<Vec<std::path::PathBuf>, StartError> {
    Pki::sign_root_crls(&config.data_dir, root_key, OffsetDateTime::now_utc())
        .map_err(|e| StartError(format!("signing the roots' CRLs: {}", e.detail)))
}
