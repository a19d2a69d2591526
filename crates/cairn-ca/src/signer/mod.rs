//! The signer: the CA's keys and everything they sign.
//!
//! On first start [`Pki::load_or_create`] makes a hierarchy under
//! `<data_dir>/pki/`: an ECDSA P-384 root and an RSA
//! 4096 root, an issuing intermediate under each (ECDSA P-256 `ecdsa-1`,
//! RSA 2048 `rsa-1`), and a cross-signed certificate for `ecdsa-1` from the
//! RSA root. `<data_dir>/root.pem` holds both roots: the file clients
//! trust. Later starts load the same keys.
//!
//! The RA calls [`check_csr`] on a finalize request, picks an issuer with
//! [`Pki::issuer_for_key`], records a serial from [`new_serial`] and then
//! calls [`Pki::issue_leaf`]. CRLs come from [`Pki::crl`].
//!
//! URLs: leaves point to `<crl_base_url>/issuer/<id>.der` (AIA caIssuers)
//! and `<crl_base_url>/crl/<id>.crl` (CRL distribution point), where `<id>`
//! is one of [`Pki::issuer_ids`]; intermediates point the same way to their
//! root, one of [`Pki::root_ids`]. The web front end serves both sets with
//! [`Pki::issuer_der`] and [`Pki::crl`].

mod api;
mod crl;
mod csr;
pub(crate) mod der;
mod extensions;
mod files;
pub(crate) use self::files::restrict_dir;
mod hierarchy;
mod leaf;
#[cfg(test)]
mod tests;

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

pub use cairn_proto::jwk::Curve;
use cairn_proto::{Identifier, Jwk, ProblemType};
use time::OffsetDateTime;

pub use self::csr::{certificate_key_matches, certificate_serial, certificate_spki, check_csr};
use self::hierarchy::{ECDSA_ISSUER, Hierarchy, RSA_ISSUER};
pub use self::leaf::leaf_ari_cert_id;
use crate::error::CaError;

/// Where the signer keeps its files and what URLs it writes into
/// certificates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PkiOptions {
    /// The CA's data directory; keys and certificates go in `pki/` under it
    /// and the roots to trust in `root.pem`.
    pub data_dir: PathBuf,
    /// Plain-HTTP base URL serving `/crl/<id>.crl` and `/issuer/<id>.der`,
    /// e.g. `http://127.0.0.1:14080`. A trailing `/` is ignored.
    pub crl_base_url: String,
    /// DNS names and IP literals for the API's HTTPS certificate; empty
    /// means `localhost`, `127.0.0.1` and `::1`.
    pub api_hostnames: Vec<String>,
}

/// The CA's keys and certificates, loaded once and shared (cheap to clone).
#[derive(Clone)]
pub struct Pki {
    inner: Arc<Inner>,
}

struct Inner {
    root_pem_path: PathBuf,
    pki_dir: PathBuf,
    api_hostnames: Vec<String>,
    base_url: String,
    hierarchy: Hierarchy,
    api: RwLock<api::ApiTls>,
}

/// What the RA asks to be signed. Everything in it has been checked and
/// the serial recorded before this is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafRequest {
    /// Unsigned big-endian serial, as made by [`new_serial`].
    pub serial: Vec<u8>,
    /// One of [`Pki::issuer_ids`].
    pub issuer: String,
    /// The names to certify, in the order they go in the SAN extension.
    pub names: Vec<Identifier>,
    /// The subscriber key, from [`CheckedCsr::public_key_spki_der`].
    pub public_key_spki_der: Vec<u8>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// One revoked certificate in a CRL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlEntry {
    /// Unsigned big-endian serial.
    pub serial: Vec<u8>,
    pub revoked_at: OffsetDateTime,
    /// CRLReason code (RFC 5280 §5.3.1); 0 (unspecified) adds no extension.
    pub reason: u8,
}

/// The kind of subscriber key a CSR carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CsrKey {
    Ecdsa(Curve),
    Rsa { bits: usize },
}

/// A CSR that passed [`check_csr`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedCsr {
    /// Sorted, without duplicates; DNS names lowercased.
    pub names: Vec<Identifier>,
    /// The CSR's SubjectPublicKeyInfo, DER.
    pub public_key_spki_der: Vec<u8>,
    pub key: CsrKey,
    /// The same key as a JWK, for the key policy.
    pub public_key: Jwk,
}

impl Pki {
    /// Loads the CA's keys and certificates from `opts.data_dir`, making
    /// them on first start; see the module documentation.
    pub fn load_or_create(opts: &PkiOptions) -> Result<Pki, CaError> {
        Self::load_or_create_at(opts, OffsetDateTime::now_utc())
    }

    /// [`Pki::load_or_create`] at a given time, for tests with a fake clock:
    /// `now` sets the validity of newly made CA and API certificates and
    /// decides whether the API certificate is due for renewal.
    pub fn load_or_create_at(opts: &PkiOptions, now: OffsetDateTime) -> Result<Pki, CaError> {
        let base_url = opts.crl_base_url.trim_end_matches('/').to_owned();
        if !base_url.starts_with("http://") || base_url.len() == "http://".len() {
            return Err(setup_error(
                "configuring the CA",
                format!(
                    "CRL base URL {:?} must be a plain http:// URL: relying parties fetch CRLs \
                     and issuer certificates without TLS (BR §7.1.2.11.2)",
                    opts.crl_base_url
                ),
            ));
        }
        fs::create_dir_all(&opts.data_dir)
            .map_err(|e| setup_error(format!("creating {}", opts.data_dir.display()), e))?;
        let pki_dir = opts.data_dir.join("pki");
        if !pki_dir.exists() {
            hierarchy::create(&pki_dir, &base_url, now)?;
        } else {
            check_complete(&pki_dir)?;
            if files::restrict_dir(&pki_dir)
                .map_err(|e| setup_error(format!("checking {}", pki_dir.display()), e))?
            {
                tracing::warn!(path = %pki_dir.display(), "key directory was open to others; narrowed to 0700");
            }
        }
        let hierarchy = hierarchy::load(&pki_dir)?;

        let root_pem_path = opts.data_dir.join("root.pem");
        let roots_pem: String = hierarchy
            .roots
            .iter()
            .map(|root| cairn_proto::pem::encode("CERTIFICATE", &root.cert_der))
            .collect();
        if fs::read_to_string(&root_pem_path).ok().as_deref() != Some(roots_pem.as_str()) {
            files::write_public(&root_pem_path, roots_pem.as_bytes())
                .map_err(|e| setup_error(format!("writing {}", root_pem_path.display()), e))?;
        }

        let ecdsa = hierarchy
            .issuer(ECDSA_ISSUER)
            .ok_or_else(|| setup_error("loading the CA", "the ECDSA intermediate is missing"))?;
        let api = api::load_or_issue(&pki_dir, &opts.api_hostnames, ecdsa, &base_url, now)?;
        tracing::info!(
            root_pem = %root_pem_path.display(),
            issuers = ?hierarchy.issuers.iter().map(|a| a.id).collect::<Vec<_>>(),
            "CA keys loaded"
        );
        Ok(Pki {
            inner: Arc::new(Inner {
                root_pem_path,
                pki_dir,
                api_hostnames: opts.api_hostnames.clone(),
                base_url,
                hierarchy,
                api: RwLock::new(api),
            }),
        })
    }

    /// `<data_dir>/root.pem`: both root certificates, for clients to trust.
    pub fn root_pem_path(&self) -> PathBuf {
        self.inner.root_pem_path.clone()
    }

    /// The root certificates (DER), ECDSA first.
    pub fn roots(&self) -> Vec<Vec<u8>> {
        let roots = &self.inner.hierarchy.roots;
        roots.iter().map(|root| root.cert_der.clone()).collect()
    }

    /// Ids of the intermediates that sign leaves: `["ecdsa-1", "rsa-1"]`.
    pub fn issuer_ids(&self) -> Vec<String> {
        let issuers = &self.inner.hierarchy.issuers;
        issuers.iter().map(|a| a.id.to_owned()).collect()
    }

    /// Ids of the roots, which also publish a CRL and a DER certificate
    /// (intermediates point to them): `["root-ecdsa", "root-rsa"]`.
    pub fn root_ids(&self) -> Vec<String> {
        let roots = &self.inner.hierarchy.roots;
        roots.iter().map(|a| a.id.to_owned()).collect()
    }

    /// The issuer for a subscriber key: RSA keys get the RSA intermediate,
    /// ECDSA keys the ECDSA one.
    pub fn issuer_for_key(&self, key: &CsrKey) -> String {
        match key {
            CsrKey::Rsa { .. } => RSA_ISSUER,
            CsrKey::Ecdsa(_) => ECDSA_ISSUER,
        }
        .to_owned()
    }

    /// The DER certificate of an intermediate or root, by id, for
    /// `/issuer/<id>.der` (AIA caIssuers).
    pub fn issuer_der(&self, issuer: &str) -> Option<&[u8]> {
        let authority = self.inner.hierarchy.authority(issuer)?;
        Some(authority.cert_der.as_slice())
    }

    /// Certificate chains (DER) above a leaf from `issuer`, without the
    /// root: `[0]` is the default chain, the rest alternates (RFC 8555
    /// §7.4.2). For `ecdsa-1` the alternate ends in the cross-signed
    /// certificate, which chains to the RSA root. Empty for unknown ids.
    pub fn chains(&self, issuer: &str) -> Vec<Vec<Vec<u8>>> {
        let hierarchy = &self.inner.hierarchy;
        let Some(authority) = hierarchy.issuer(issuer) else {
            return Vec::new();
        };
        std::iter::once(vec![authority.cert_der.clone()])
            .chain(
                hierarchy
                    .alternates
                    .iter()
                    .filter(|(id, _)| *id == authority.id)
                    .map(|(_, der)| vec![der.clone()]),
            )
            .collect()
    }

    /// Signs a leaf certificate (DER); the profile is in `leaf.rs`.
    pub fn issue_leaf(&self, req: &LeafRequest) -> Result<Vec<u8>, CaError> {
        let issuer = self.inner.hierarchy.issuer(&req.issuer).ok_or_else(|| {
            CaError::internal(
                "signing a certificate",
                format!("unknown issuer {:?}", req.issuer),
            )
        })?;
        let der = leaf::issue(issuer, req, &self.inner.base_url)?;
        tracing::info!(
            target: "cairn::audit",
            event = "certificate_signed",
            serial = %serial_hex(&req.serial),
            issuer = issuer.id,
            names = ?req.names.iter().map(ToString::to_string).collect::<Vec<_>>(),
            not_before = %req.not_before,
            not_after = %req.not_after,
            "signed certificate"
        );
        Ok(der)
    }

    /// A DER CRL (RFC 5280 §5) for an intermediate (its leaves) or a root
    /// (its intermediates), signed by that CA, with AKI and cRLNumber
    /// `number`. An intermediate's CRL also has an issuingDistributionPoint
    /// (user certificates only) with the URL its leaves point to; a root's
    /// CRL covers everything the root signed and has none.
    pub fn crl(
        &self,
        issuer: &str,
        entries: &[CrlEntry],
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
        number: u64,
    ) -> Result<Vec<u8>, CaError> {
        let hierarchy = &self.inner.hierarchy;
        let (authority, scope) = match hierarchy.issuer(issuer) {
            Some(authority) => (authority, crl::Scope::Leaves),
            None => match hierarchy.roots.iter().find(|a| a.id == issuer) {
                Some(root) => (root, crl::Scope::CaCertificates),
                None => return Err(CaError::not_found(format!("issuer {issuer:?}"))),
            },
        };
        if authority.signer.is_none() {
            // A root kept offline: its CRL is signed offline too
            // (`cairn-ca admin sign-root-crl`) and served as it is.
            let path = self
                .inner
                .pki_dir
                .join(hierarchy::offline_crl_file(authority.id));
            return fs::read(&path).map_err(|_| {
                CaError::not_found(format!(
                    "the CRL of {issuer}: its key is offline; sign one with `cairn-ca admin \
                     sign-root-crl --root-key FILE`"
                ))
            });
        }
        let request = crl::CrlRequest {
            entries,
            this_update,
            next_update,
            number,
            scope,
        };
        crl::sign(authority, &request, &self.inner.base_url)
    }

    /// Takes the root keys out of `data_dir`: signs each root's CRL while
    /// the keys are still here (so `serve` has one to publish), writes the
    /// keys to `out` (0600, must not exist), and deletes them from the
    /// data directory.
    pub fn take_roots_offline(
        data_dir: &Path,
        out: &Path,
        now: OffsetDateTime,
    ) -> Result<Vec<PathBuf>, CaError> {
        let pki_dir = data_dir.join("pki");
        check_complete(&pki_dir)?;
        let hierarchy = hierarchy::load(&pki_dir)?;
        if hierarchy.roots.iter().any(|root| root.signer.is_none()) {
            return Err(setup_error(
                pki_dir.display(),
                "holds no root keys: they are offline already",
            ));
        }
        let written = write_root_crls(&pki_dir, &hierarchy.roots, now)?;
        hierarchy::take_roots_offline(&pki_dir, out)?;
        Ok(written)
    }

    /// Signs each root's CRL with the root keys in `root_key_file` (what
    /// [`Pki::take_roots_offline`] wrote) and stores them in `data_dir`,
    /// where `serve` publishes them. Returns the files written.
    pub fn sign_root_crls(
        data_dir: &Path,
        root_key_file: &Path,
        now: OffsetDateTime,
    ) -> Result<Vec<PathBuf>, CaError> {
        let pki_dir = data_dir.join("pki");
        check_complete(&pki_dir)?;
        let roots = hierarchy::roots_with_keys(&pki_dir, root_key_file)?;
        write_root_crls(&pki_dir, &roots, now)
    }

    /// The API's HTTPS certificate chain (DER, leaf first, then the ECDSA
    /// intermediate) and its PKCS#8 private key (DER). The certificate
    /// lasts 90 days; see [`Pki::renew_api_tls`].
    pub fn api_tls(&self) -> (Vec<Vec<u8>>, Vec<u8>) {
        let api = self.inner.api.read().unwrap_or_else(|p| p.into_inner());
        (api.chain.clone(), api.key_pkcs8.clone())
    }

    /// Replaces the API certificate if less than 30 days of it are left at
    /// `now`, and returns whether it did. A long-running server calls this
    /// once a day and, when it returns `true`, loads [`Pki::api_tls`] into
    /// its TLS configuration again.
    pub fn renew_api_tls(&self, now: OffsetDateTime) -> Result<bool, CaError> {
        let mut api = self.inner.api.write().unwrap_or_else(|p| p.into_inner());
        let ecdsa =
            self.inner.hierarchy.issuer(ECDSA_ISSUER).ok_or_else(|| {
                setup_error("renewing the API certificate", "no ECDSA intermediate")
            })?;
        let current = api::load_or_issue(
            &self.inner.pki_dir,
            &self.inner.api_hostnames,
            ecdsa,
            &self.inner.base_url,
            now,
        )?;
        let renewed = current.chain != api.chain;
        *api = current;
        Ok(renewed)
    }
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki")
            .field("root_pem_path", &self.inner.root_pem_path)
            .field("base_url", &self.inner.base_url)
            .field("hierarchy", &self.inner.hierarchy)
            .finish_non_exhaustive()
    }
}

/// A new certificate serial: 16 random bytes, positive (top bit clear) and
/// with a non-zero first byte so the DER INTEGER is always 16 octets; 127
/// bits of entropy less a sliver, above the BRs' 64 (BR §7.1).
pub fn new_serial() -> Vec<u8> {
    let mut serial = vec![0u8; 16];
    loop {
        fill_random(&mut serial);
        serial[0] &= 0x7f;
        if serial[0] != 0 {
            return serial;
        }
    }
}

/// Lowercase hex, as serials appear in logs, storage and URLs.
pub fn serial_hex(serial: &[u8]) -> String {
    use std::fmt::Write as _;
    serial
        .iter()
        .fold(String::with_capacity(serial.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

fn fill_random(out: &mut [u8]) {
    aws_lc_rs::rand::fill(out).expect("the system random number generator works");
}

/// An error while setting up the CA: the operator reads it at startup, so
/// the detail says what and where.
fn setup_error(context: impl fmt::Display, cause: impl fmt::Display) -> CaError {
    tracing::error!(target: "cairn::internal", %context, %cause, "CA setup failed");
    CaError::new(ProblemType::ServerInternal, format!("{context}: {cause}"))
}

/// Refuses to start on a `pki/` directory missing some of its files rather
/// than making new keys over the old ones.
/// How long a root's CRL signed offline is valid: the BR allow 12 months
/// for a CRL of CA certificates (§4.9.7); a month's margin for re-signing.
const ROOT_CRL_VALIDITY: time::Duration = time::Duration::days(335);

/// Signs an empty CRL (no intermediate is revoked) for each root and
/// writes it where `serve` finds it.
fn write_root_crls(
    pki_dir: &Path,
    roots: &[hierarchy::Authority],
    now: OffsetDateTime,
) -> Result<Vec<PathBuf>, CaError> {
    let number = u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    roots
        .iter()
        .map(|root| {
            let request = crl::CrlRequest {
                entries: &[],
                this_update: now,
                next_update: now + ROOT_CRL_VALIDITY,
                number,
                scope: crl::Scope::CaCertificates,
            };
            let der = crl::sign(root, &request, "")?;
            let path = pki_dir.join(hierarchy::offline_crl_file(root.id));
            files::write_public(&path, &der)
                .map_err(|e| setup_error(format!("writing {}", path.display()), e))?;
            Ok(path)
        })
        .collect()
}

fn check_complete(pki_dir: &Path) -> Result<(), CaError> {
    let missing: Vec<String> = hierarchy::required_files()
        .into_iter()
        .filter(|name| !pki_dir.join(name).exists())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(setup_error(
        pki_dir.display(),
        format!(
            "is incomplete (missing {}); restore it from a backup, or move it away to make a \
             new CA whose new roots every client must then trust",
            missing.join(", ")
        ),
    ))
}
