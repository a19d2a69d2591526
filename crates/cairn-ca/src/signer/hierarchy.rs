//! The CA's key hierarchy on disk: two roots (ECDSA P-384, RSA 4096), one
//! issuing intermediate under each (ECDSA P-256, RSA 2048), and a second
//! certificate for the ECDSA intermediate's key issued by the RSA root, so
//! ECDSA leaves also chain to the RSA root.
//!
//! Everything is made in a temporary directory and renamed into place as
//! `<data_dir>/pki` in one step: a crash during the first start leaves no
//! half-made hierarchy behind, only a temporary directory nobody reads.

use std::fmt;
use std::fs;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CrlDistributionPoint, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData as _,
    RsaKeySize, SignatureAlgorithm,
};
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{FromDer as _, X509Certificate};

use super::{extensions, files, new_serial, serial_hex, setup_error};
use crate::error::CaError;

/// Issuer ids: stable names used in URLs (`/issuer/<id>.der`,
/// `/crl/<id>.crl`) and in storage.
pub(crate) const ECDSA_ISSUER: &str = "ecdsa-1";
pub(crate) const RSA_ISSUER: &str = "rsa-1";
pub(crate) const ECDSA_ROOT: &str = "root-ecdsa";
pub(crate) const RSA_ROOT: &str = "root-rsa";

/// The ECDSA intermediate's certificate issued by the RSA root.
const ECDSA_CROSS_FILE: &str = "ecdsa-1.cross-root-rsa.cert.pem";

const ROOT_LIFETIME: Duration = Duration::days(20 * 365 + 5);
const INTERMEDIATE_LIFETIME: Duration = Duration::days(5 * 365 + 1);
/// CA certificates start an hour early, for relying parties with slow clocks.
const BACKDATE: Duration = Duration::hours(1);

/// A CA certificate and, unless it is a root kept offline, its private key.
pub(crate) struct Authority {
    pub(crate) id: &'static str,
    pub(crate) cert_der: Vec<u8>,
    /// The certificate's subjectKeyIdentifier: the AKI of what it signs.
    pub(crate) key_id: Vec<u8>,
    pub(crate) not_before: OffsetDateTime,
    pub(crate) not_after: OffsetDateTime,
    /// `None` for a root whose key is kept out of the data directory
    /// (`cairn-ca init --root-key-out`).
    pub(crate) signer: Option<Issuer<'static, KeyPair>>,
}

impl Authority {
    /// The signing key, or why there is none here.
    pub(crate) fn signer(&self) -> Result<&Issuer<'static, KeyPair>, CaError> {
        self.signer.as_ref().ok_or_else(|| {
            CaError::internal(
                "signing",
                format!(
                    "the key of {} is kept offline, not in the data directory",
                    self.id
                ),
            )
        })
    }
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority")
            .field("id", &self.id)
            .field("key_id", &serial_hex(&self.key_id))
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// Every CA certificate and key of one installation.
#[derive(Debug)]
pub(crate) struct Hierarchy {
    /// `root-ecdsa`, `root-rsa`: self-signed, in `root.pem`.
    pub(crate) roots: Vec<Authority>,
    /// `ecdsa-1`, `rsa-1`: the intermediates that sign leaves.
    pub(crate) issuers: Vec<Authority>,
    /// Other certificates for an issuer's key: (issuer id, DER).
    pub(crate) alternates: Vec<(&'static str, Vec<u8>)>,
}

impl Hierarchy {
    pub(crate) fn authority(&self, id: &str) -> Option<&Authority> {
        self.issuers.iter().chain(&self.roots).find(|a| a.id == id)
    }

    pub(crate) fn issuer(&self, id: &str) -> Option<&Authority> {
        self.issuers.iter().find(|a| a.id == id)
    }
}

/// How each CA key is made and which algorithm it signs with.
struct KeySpec {
    id: &'static str,
    alg: &'static SignatureAlgorithm,
    rsa_size: Option<RsaKeySize>,
}

const ROOT_SPECS: [KeySpec; 2] = [
    KeySpec {
        id: ECDSA_ROOT,
        alg: &rcgen::PKCS_ECDSA_P384_SHA384,
        rsa_size: None,
    },
    KeySpec {
        id: RSA_ROOT,
        alg: &rcgen::PKCS_RSA_SHA256,
        rsa_size: Some(RsaKeySize::_4096),
    },
];

const ISSUER_SPECS: [KeySpec; 2] = [
    KeySpec {
        id: ECDSA_ISSUER,
        alg: &rcgen::PKCS_ECDSA_P256_SHA256,
        rsa_size: None,
    },
    KeySpec {
        id: RSA_ISSUER,
        alg: &rcgen::PKCS_RSA_SHA256,
        rsa_size: Some(RsaKeySize::_2048),
    },
];

impl KeySpec {
    fn generate(&self) -> Result<KeyPair, CaError> {
        match self.rsa_size {
            Some(size) => KeyPair::generate_rsa_for(self.alg, size),
            None => KeyPair::generate_for(self.alg),
        }
        .map_err(|e| setup_error(format!("generating the {} key", self.id), e))
    }
}

pub(crate) fn key_file(id: &str) -> String {
    format!("{id}.key.pem")
}

pub(crate) fn cert_file(id: &str) -> String {
    format!("{id}.cert.pem")
}

/// Reads the hierarchy from `pki_dir`, checking that every certificate
/// matches its key and that the cross-signed certificate carries the ECDSA
/// intermediate's key.
pub(crate) fn load(pki_dir: &Path) -> Result<Hierarchy, CaError> {
    let roots = ROOT_SPECS
        .iter()
        .map(|spec| {
            if pki_dir.join(key_file(spec.id)).exists() {
                load_authority(pki_dir, spec)
            } else {
                load_certificate_only(pki_dir, spec)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let issuers = ISSUER_SPECS
        .iter()
        .map(|spec| load_authority(pki_dir, spec))
        .collect::<Result<Vec<_>, _>>()?;

    let cross_path = pki_dir.join(ECDSA_CROSS_FILE);
    let cross = read_cert(&cross_path)?;
    let ecdsa = issuers
        .iter()
        .find(|a| a.id == ECDSA_ISSUER)
        .ok_or_else(|| setup_error("loading the CA", "the ECDSA intermediate is missing"))?;
    if spki_of(&cross, &cross_path)? != spki_of(&ecdsa.cert_der, &cross_path)? {
        return Err(setup_error(
            cross_path.display(),
            "does not carry the ECDSA intermediate's key",
        ));
    }
    Ok(Hierarchy {
        roots,
        issuers,
        alternates: vec![(ECDSA_ISSUER, cross)],
    })
}

/// Makes a new hierarchy and moves it into place at `pki_dir`, which must
/// not exist yet.
pub(crate) fn create(pki_dir: &Path, base_url: &str, now: OffsetDateTime) -> Result<(), CaError> {
    let parent = pki_dir.parent().unwrap_or(Path::new("."));
    let staging = parent.join(format!(".pki.tmp-{}", files::random_suffix()));
    files::create_private_dir(&staging)
        .map_err(|e| setup_error(format!("creating {}", staging.display()), e))?;
    let made = write_new_hierarchy(&staging, base_url, now).and_then(|()| {
        fs::rename(&staging, pki_dir)
            .and_then(|()| files::sync_dir(parent))
            .map_err(|e| setup_error(format!("moving the new CA into {}", pki_dir.display()), e))
    });
    if made.is_err() {
        // Best effort: these keys were never used.
        let _ = fs::remove_dir_all(&staging);
    }
    made
}

fn write_new_hierarchy(dir: &Path, base_url: &str, now: OffsetDateTime) -> Result<(), CaError> {
    // One random tag per installation, so two test CAs never share names.
    let mut tag = [0u8; 4];
    super::fill_random(&mut tag);
    let tag = serial_hex(&tag);
    let not_before = now - BACKDATE;
    let root_not_after = now + ROOT_LIFETIME;
    let intermediate_not_after = now + INTERMEDIATE_LIFETIME;

    let [ecdsa_root_spec, rsa_root_spec] = &ROOT_SPECS;
    let [ecdsa_spec, rsa_spec] = &ISSUER_SPECS;

    let ecdsa_root_key = ecdsa_root_spec.generate()?;
    let ecdsa_root_params = root_params(
        &format!("Cairn Root ECDSA {tag}"),
        not_before,
        root_not_after,
    );
    let rsa_root_key = rsa_root_spec.generate()?;
    let rsa_root_params = root_params(&format!("Cairn Root RSA {tag}"), not_before, root_not_after);
    let ecdsa_key = ecdsa_spec.generate()?;
    let rsa_key = rsa_spec.generate()?;

    let sign_err = |what: &str| {
        let what = what.to_owned();
        move |e: rcgen::Error| setup_error(format!("signing the {what} certificate"), e)
    };
    let ecdsa_root_cert = ecdsa_root_params
        .self_signed(&ecdsa_root_key)
        .map_err(sign_err(ECDSA_ROOT))?;
    let rsa_root_cert = rsa_root_params
        .self_signed(&rsa_root_key)
        .map_err(sign_err(RSA_ROOT))?;
    let ecdsa_root = Issuer::from_params(&ecdsa_root_params, &ecdsa_root_key);
    let rsa_root = Issuer::from_params(&rsa_root_params, &rsa_root_key);

    let ecdsa_name = format!("Cairn Issuing ECDSA {tag}");
    let rsa_name = format!("Cairn Issuing RSA {tag}");
    let ecdsa_cert = intermediate_params(
        &ecdsa_name,
        not_before,
        intermediate_not_after,
        base_url,
        ECDSA_ROOT,
    )
    .signed_by(&ecdsa_key, &ecdsa_root)
    .map_err(sign_err(ECDSA_ISSUER))?;
    let ecdsa_cross = intermediate_params(
        &ecdsa_name,
        not_before,
        intermediate_not_after,
        base_url,
        RSA_ROOT,
    )
    .signed_by(&ecdsa_key, &rsa_root)
    .map_err(sign_err("cross-signed ECDSA intermediate"))?;
    let rsa_cert = intermediate_params(
        &rsa_name,
        not_before,
        intermediate_not_after,
        base_url,
        RSA_ROOT,
    )
    .signed_by(&rsa_key, &rsa_root)
    .map_err(sign_err(RSA_ISSUER))?;

    let write = |name: &str, contents: String, private: bool| {
        let path = dir.join(name);
        let written = if private {
            files::write_private(&path, contents.as_bytes())
        } else {
            files::write_public(&path, contents.as_bytes())
        };
        written.map_err(|e| setup_error(format!("writing {}", path.display()), e))
    };
    let key_pem = |key: &KeyPair| cairn_proto::pem::encode("PRIVATE KEY", &key.serialize_der());
    let cert_pem = |der: &[u8]| cairn_proto::pem::encode("CERTIFICATE", der);
    for (id, key, cert) in [
        (ECDSA_ROOT, &ecdsa_root_key, ecdsa_root_cert.der()),
        (RSA_ROOT, &rsa_root_key, rsa_root_cert.der()),
        (ECDSA_ISSUER, &ecdsa_key, ecdsa_cert.der()),
        (RSA_ISSUER, &rsa_key, rsa_cert.der()),
    ] {
        write(&key_file(id), key_pem(key), true)?;
        write(&cert_file(id), cert_pem(cert), false)?;
    }
    write(ECDSA_CROSS_FILE, cert_pem(ecdsa_cross.der()), false)?;
    tracing::info!(
        target: "cairn::audit",
        event = "ca_created",
        tag = %tag,
        "created CA hierarchy: roots {ECDSA_ROOT} and {RSA_ROOT}, issuers {ECDSA_ISSUER} and {RSA_ISSUER}"
    );
    Ok(())
}

/// RFC 5280 §4.2.1.9 and BR §7.1.2.1: a self-signed trust anchor that may
/// sign CA certificates and CRLs, with no path length limit.
fn root_params(
    common_name: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = ca_name(common_name);
    params.serial_number = Some(new_serial().into());
    params.not_before = not_before;
    params.not_after = not_after;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.use_authority_key_identifier_extension = true;
    params
}

/// BR §7.1.2.6 (TLS subordinate CA): pathLen 0, serverAuth EKU, the DV
/// policy, and where to find the parent's certificate and CRL.
fn intermediate_params(
    common_name: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    base_url: &str,
    parent_id: &str,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = ca_name(common_name);
    params.serial_number = Some(new_serial().into());
    params.not_before = not_before;
    params.not_after = not_after;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.crl_distribution_points = vec![CrlDistributionPoint {
        uris: vec![extensions::crl_url(base_url, parent_id)],
    }];
    params.custom_extensions = vec![
        extensions::ca_issuers(&extensions::issuer_url(base_url, parent_id)),
        extensions::dv_policy(),
    ];
    params
}

fn ca_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "Cairn");
    name.push(DnType::CommonName, common_name);
    name
}

fn load_authority(dir: &Path, spec: &KeySpec) -> Result<Authority, CaError> {
    let key_path = dir.join(key_file(spec.id));
    if files::restrict_file(&key_path)
        .map_err(|e| setup_error(format!("checking {}", key_path.display()), e))?
    {
        tracing::warn!(path = %key_path.display(), "private key was readable by others; narrowed to 0600");
    }
    let key_pem = fs::read_to_string(&key_path)
        .map_err(|e| setup_error(format!("reading {}", key_path.display()), e))?;
    let key_der = cairn_proto::pem::decode_one(&key_pem, "PRIVATE KEY")
        .ok_or_else(|| setup_error(key_path.display(), "no PKCS#8 PRIVATE KEY block"))?;
    authority_with_key(dir, spec, &key_der, &key_path)
}

/// The certificate of `spec` in `dir` without its key: a root whose key
/// is kept out of the data directory.
fn load_certificate_only(dir: &Path, spec: &KeySpec) -> Result<Authority, CaError> {
    let cert_path = dir.join(cert_file(spec.id));
    let cert_der = read_cert(&cert_path)?;
    let (key_id, not_before, not_after) = certificate_facts(&cert_der, &cert_path)?;
    Ok(Authority {
        id: spec.id,
        cert_der,
        key_id,
        not_before,
        not_after,
        signer: None,
    })
}

/// The certificate of `spec` in `dir`, with the key `key_der` (PKCS#8)
/// read from `key_path`, which must be the certificate's.
fn authority_with_key(
    dir: &Path,
    spec: &KeySpec,
    key_der: &[u8],
    key_path: &Path,
) -> Result<Authority, CaError> {
    let mut authority = load_certificate_only(dir, spec)?;
    let cert_path = dir.join(cert_file(spec.id));
    let key = KeyPair::from_pkcs8_der_and_sign_algo(&PrivatePkcs8KeyDer::from(key_der), spec.alg)
        .map_err(|e| setup_error(key_path.display(), e))?;
    if spki_of(&authority.cert_der, &cert_path)? != key.subject_public_key_info() {
        return Err(setup_error(
            cert_path.display(),
            format!("does not match the key in {}", key_path.display()),
        ));
    }
    let cert = CertificateDer::from(authority.cert_der.as_slice());
    let signer =
        Issuer::from_ca_cert_der(&cert, key).map_err(|e| setup_error(cert_path.display(), e))?;
    authority.signer = Some(signer);
    Ok(authority)
}

/// A CA certificate's subjectKeyIdentifier and validity.
fn certificate_facts(
    cert_der: &[u8],
    cert_path: &Path,
) -> Result<(Vec<u8>, OffsetDateTime, OffsetDateTime), CaError> {
    let (_, cert) =
        X509Certificate::from_der(cert_der).map_err(|e| setup_error(cert_path.display(), e))?;
    let key_id = cert
        .iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
            _ => None,
        })
        .ok_or_else(|| setup_error(cert_path.display(), "has no subjectKeyIdentifier"))?;
    Ok((
        key_id,
        cert.validity().not_before.to_datetime(),
        cert.validity().not_after.to_datetime(),
    ))
}

/// Moves the root keys out of `pki_dir` into `out` (both PEM blocks, mode
/// 0600, a file that must not exist yet), then deletes them from the data
/// directory. `serve` then runs with the intermediates' keys only.
pub(crate) fn take_roots_offline(pki_dir: &Path, out: &Path) -> Result<(), CaError> {
    if out.exists() {
        return Err(setup_error(
            out.display(),
            "exists already; name a new file for the root keys",
        ));
    }
    let mut pem = String::new();
    for spec in &ROOT_SPECS {
        let path = pki_dir.join(key_file(spec.id));
        pem.push_str(
            &fs::read_to_string(&path)
                .map_err(|e| setup_error(format!("reading {}", path.display()), e))?,
        );
    }
    files::write_private(out, pem.as_bytes())
        .map_err(|e| setup_error(format!("writing {}", out.display()), e))?;
    for spec in &ROOT_SPECS {
        let path = pki_dir.join(key_file(spec.id));
        fs::remove_file(&path)
            .map_err(|e| setup_error(format!("removing {}", path.display()), e))?;
    }
    files::sync_dir(pki_dir).map_err(|e| setup_error(format!("syncing {}", pki_dir.display()), e))
}

/// The roots of the hierarchy in `pki_dir` with their keys read from
/// `key_file` (the PEM file `take_roots_offline` wrote: each key is matched
/// to its root by public key).
pub(crate) fn roots_with_keys(
    pki_dir: &Path,
    key_file_path: &Path,
) -> Result<Vec<Authority>, CaError> {
    let text = fs::read_to_string(key_file_path)
        .map_err(|e| setup_error(format!("reading {}", key_file_path.display()), e))?;
    let keys = cairn_proto::pem::decode_all(&text, "PRIVATE KEY");
    ROOT_SPECS
        .iter()
        .map(|spec| {
            let cert_path = pki_dir.join(cert_file(spec.id));
            let spki = spki_of(&read_cert(&cert_path)?, &cert_path)?;
            let key = keys
                .iter()
                .find(|der| {
                    KeyPair::from_pkcs8_der_and_sign_algo(
                        &PrivatePkcs8KeyDer::from(der.as_slice()),
                        spec.alg,
                    )
                    .is_ok_and(|k| k.subject_public_key_info() == spki)
                })
                .ok_or_else(|| {
                    setup_error(
                        key_file_path.display(),
                        format!("holds no key for {}", spec.id),
                    )
                })?;
            authority_with_key(pki_dir, spec, key, key_file_path)
        })
        .collect()
}

fn read_cert(path: &Path) -> Result<Vec<u8>, CaError> {
    let pem = fs::read_to_string(path)
        .map_err(|e| setup_error(format!("reading {}", path.display()), e))?;
    cairn_proto::pem::decode_one(&pem, "CERTIFICATE")
        .ok_or_else(|| setup_error(path.display(), "no CERTIFICATE block"))
}

fn spki_of(der: &[u8], path: &Path) -> Result<Vec<u8>, CaError> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| setup_error(path.display(), e))?;
    Ok(cert.public_key().raw.to_vec())
}

/// Every file a complete hierarchy has, relative to the pki directory:
/// the root keys may be kept elsewhere (offline).
pub(crate) fn required_files() -> Vec<String> {
    let roots = ROOT_SPECS.iter().map(|spec| cert_file(spec.id));
    ISSUER_SPECS
        .iter()
        .flat_map(|spec| [key_file(spec.id), cert_file(spec.id)])
        .chain(roots)
        .chain([ECDSA_CROSS_FILE.to_owned()])
        .collect()
}

/// Where a root's CRL signed offline is kept, relative to the pki directory.
pub(crate) fn offline_crl_file(id: &str) -> String {
    format!("{id}.crl")
}
