//! Private keys that sign: account keys, and certificate keys on the agent.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};

use crate::Error;
use crate::jwk::{Algorithm, Curve, Jwk};

/// The kinds of key Cairn generates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    EcdsaP256,
    EcdsaP384,
    Rsa2048,
    Rsa3072,
    Rsa4096,
    Ed25519,
}

impl KeyType {
    /// Every kind, in the order a CLI lists them.
    pub const ALL: [KeyType; 6] = [
        Self::EcdsaP256,
        Self::EcdsaP384,
        Self::Rsa2048,
        Self::Rsa3072,
        Self::Rsa4096,
        Self::Ed25519,
    ];

    /// The name used in configuration and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ecdsa-p256",
            Self::EcdsaP384 => "ecdsa-p384",
            Self::Rsa2048 => "rsa2048",
            Self::Rsa3072 => "rsa3072",
            Self::Rsa4096 => "rsa4096",
            Self::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|k| k.as_str()).collect();
                Error::Key(format!(
                    "unknown key type {s:?}; choose one of {}",
                    names.join(", ")
                ))
            })
    }
}

/// A private key that signs JWS messages (and, on the agent, CSRs).
pub struct KeyPair {
    kind: KeyType,
    inner: Inner,
    public: Jwk,
}

enum Inner {
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl KeyPair {
    /// Generates a new key from the system's secure random source.
    pub fn generate(kind: KeyType) -> Result<Self, Error> {
        let failed = |_| Error::Key(format!("could not generate a {kind} key"));
        let inner = match kind {
            KeyType::EcdsaP256 => Inner::Ecdsa(
                EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(failed)?,
            ),
            KeyType::EcdsaP384 => Inner::Ecdsa(
                EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_FIXED_SIGNING)
                    .map_err(failed)?,
            ),
            KeyType::Rsa2048 => Inner::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).map_err(failed)?),
            KeyType::Rsa3072 => Inner::Rsa(RsaKeyPair::generate(KeySize::Rsa3072).map_err(failed)?),
            KeyType::Rsa4096 => Inner::Rsa(RsaKeyPair::generate(KeySize::Rsa4096).map_err(failed)?),
            KeyType::Ed25519 => Inner::Ed25519(Ed25519KeyPair::generate().map_err(failed)?),
        };
        Self::from_inner(inner)
    }

    /// Loads a PKCS#8 (RFC 5208/5958) DER private key of any supported kind.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        let inner = if let Ok(k) =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der)
        {
            Inner::Ecdsa(k)
        } else if let Ok(k) =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, der)
        {
            Inner::Ecdsa(k)
        } else if let Ok(k) = RsaKeyPair::from_pkcs8(der) {
            Inner::Rsa(k)
        } else if let Ok(k) = Ed25519KeyPair::from_pkcs8(der) {
            Inner::Ed25519(k)
        } else {
            return Err(Error::Key(
                "not a PKCS#8 ECDSA P-256/P-384, RSA or Ed25519 private key".into(),
            ));
        };
        Self::from_inner(inner)
    }

    /// Loads a PKCS#8 private key from PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, Error> {
        let der = crate::pem::decode_one(pem, "PRIVATE KEY")
            .ok_or_else(|| Error::Key("no PEM block \"PRIVATE KEY\" found".into()))?;
        Self::from_pkcs8_der(&der)
    }

    /// An Ed25519 key from its RFC 8032 seed and public key (RFC 8037 §A.1).
    pub fn ed25519_from_seed(seed: &[u8], public: &[u8]) -> Result<Self, Error> {
        let key = Ed25519KeyPair::from_seed_and_public_key(seed, public)
            .map_err(|e| Error::Key(format!("Ed25519 seed refused: {e}")))?;
        Self::from_inner(Inner::Ed25519(key))
    }

    fn from_inner(inner: Inner) -> Result<Self, Error> {
        let (kind, public) = match &inner {
            Inner::Ecdsa(k) => {
                let point = k.public_key().as_ref();
                let (kind, curve) = match point.len() {
                    65 => (KeyType::EcdsaP256, Curve::P256),
                    97 => (KeyType::EcdsaP384, Curve::P384),
                    _ => return Err(Error::Key("unexpected EC public key encoding".into())),
                };
                let coords = &point[1..];
                let (x, y) = coords.split_at(coords.len() / 2);
                (kind, Jwk::ec(curve, x.to_vec(), y.to_vec())?)
            }
            Inner::Rsa(k) => {
                let public = k.public_key();
                let n = public.modulus().big_endian_without_leading_zero().to_vec();
                let e = public.exponent().big_endian_without_leading_zero().to_vec();
                let kind = match k.public_modulus_len() * 8 {
                    2048 => KeyType::Rsa2048,
                    3072 => KeyType::Rsa3072,
                    4096 => KeyType::Rsa4096,
                    bits => {
                        return Err(Error::Key(format!(
                            "RSA keys of {bits} bits are not supported"
                        )));
                    }
                };
                (kind, Jwk::rsa(n, e)?)
            }
            Inner::Ed25519(k) => (
                KeyType::Ed25519,
                Jwk::ed25519(k.public_key().as_ref().to_vec())?,
            ),
        };
        Ok(Self {
            kind,
            inner,
            public,
        })
    }

    /// What kind of key this is.
    pub fn key_type(&self) -> KeyType {
        self.kind
    }

    /// The JWS algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.public.algorithm()
    }

    /// The public half as a JWK.
    pub fn public_jwk(&self) -> &Jwk {
        &self.public
    }

    /// Signs `message` as the JWS algorithm requires (RFC 7518 §3.4: ECDSA
    /// signatures are the fixed-length R || S, not DER).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let rng = SystemRandom::new();
        let failed = |_| Error::Key("signing failed".into());
        Ok(match &self.inner {
            Inner::Ecdsa(k) => k.sign(&rng, message).map_err(failed)?.as_ref().to_vec(),
            Inner::Rsa(k) => {
                let mut out = vec![0; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut out)
                    .map_err(failed)?;
                out
            }
            Inner::Ed25519(k) => k.sign(message).as_ref().to_vec(),
        })
    }

    /// The private key as PKCS#8 DER. Handle with care: it is the secret.
    pub fn to_pkcs8_der(&self) -> Result<Vec<u8>, Error> {
        let failed = |_| Error::Key("could not encode the private key".into());
        Ok(match &self.inner {
            Inner::Ecdsa(k) => k.to_pkcs8v1().map_err(failed)?.as_ref().to_vec(),
            Inner::Rsa(k) => AsDer::<aws_lc_rs::encoding::Pkcs8V1Der<'_>>::as_der(k)
                .map_err(failed)?
                .as_ref()
                .to_vec(),
            Inner::Ed25519(k) => k.to_pkcs8v1().map_err(failed)?.as_ref().to_vec(),
        })
    }

    /// The private key as a PKCS#8 PEM block.
    pub fn to_pkcs8_pem(&self) -> Result<String, Error> {
        Ok(crate::pem::encode("PRIVATE KEY", &self.to_pkcs8_der()?))
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("kind", &self.kind)
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_type_generates_signs_verifies_and_reloads() {
        for kind in KeyType::ALL {
            let key = KeyPair::generate(kind).expect("generate");
            assert_eq!(key.key_type(), kind);
            let sig = key.sign(b"message").expect("sign");
            key.public_jwk()
                .verify(key.algorithm(), b"message", &sig)
                .expect("own signature verifies");
            assert_eq!(
                key.public_jwk().verify(key.algorithm(), b"other", &sig),
                Err(Error::BadSignature)
            );
            let again = KeyPair::from_pkcs8_pem(&key.to_pkcs8_pem().expect("pem")).expect("reload");
            assert_eq!(again.public_jwk(), key.public_jwk(), "{kind}");
            assert_eq!(again.key_type(), kind);
        }
    }

    #[test]
    fn key_type_names_parse() {
        for kind in KeyType::ALL {
            assert_eq!(kind.as_str().parse::<KeyType>(), Ok(kind));
        }
        assert!("dsa".parse::<KeyType>().is_err());
    }

    #[test]
    fn garbage_is_not_a_key() {
        assert!(KeyPair::from_pkcs8_der(b"not a key").is_err());
        assert!(KeyPair::from_pkcs8_pem("no pem here").is_err());
    }
}
