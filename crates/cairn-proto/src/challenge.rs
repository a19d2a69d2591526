//! What an agent provisions and a validator checks for each challenge:
//! key authorizations (RFC 8555 §8.1), the dns-01 TXT value (§8.4) and the
//! tls-alpn-01 acmeIdentifier extension (RFC 8737 §3).

use std::fmt;

use aws_lc_rs::digest;

use crate::jwk::Jwk;
use crate::{Error, base64url};

/// The ALPN protocol name for tls-alpn-01 (RFC 8737 §6.2).
pub const ACME_TLS_ALPN_PROTOCOL: &[u8] = b"acme-tls/1";

/// The OID of the acmeIdentifier extension, id-pe-acmeIdentifier
/// (1.3.6.1.5.5.7.1.31, RFC 8737 §6.1).
pub const ACME_IDENTIFIER_OID: [u64; 9] = [1, 3, 6, 1, 5, 5, 7, 1, 31];

/// The http-01 path prefix (RFC 8555 §8.3).
pub const HTTP01_PATH_PREFIX: &str = "/.well-known/acme-challenge/";

/// The DNS label a dns-01 TXT record lives under (RFC 8555 §8.4).
pub const DNS01_LABEL: &str = "_acme-challenge";

/// A challenge token: only base64url characters (RFC 8555 §8.3), so it is
/// safe in a URL path, a file name and a shell word, and long enough to
/// carry 128 bits.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Token(String);

impl Token {
    /// Shortest length that can hold 128 bits in base64url.
    pub const MIN_LEN: usize = 22;
    /// Longest token accepted; servers send 43 characters.
    pub const MAX_LEN: usize = 256;

    /// Checks a token received from a server.
    pub fn parse(token: &str) -> Result<Self, Error> {
        let alphabet_ok = token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !alphabet_ok || !(Self::MIN_LEN..=Self::MAX_LEN).contains(&token.len()) {
            return Err(Error::Malformed(format!(
                "challenge token {:?} is not {}..{} base64url characters",
                token.chars().take(64).collect::<String>(),
                Self::MIN_LEN,
                Self::MAX_LEN
            )));
        }
        Ok(Self(token.to_owned()))
    }

    /// A new token of 256 random bits, for a server.
    pub fn generate() -> Result<Self, Error> {
        let bytes: [u8; 32] = aws_lc_rs::rand::generate(&aws_lc_rs::rand::SystemRandom::new())
            .map_err(|_| Error::Key("no randomness".into()))?
            .expose();
        Ok(Self(base64url::encode(bytes)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The http-01 path for this token.
    pub fn http01_path(&self) -> String {
        format!("{HTTP01_PATH_PREFIX}{}", self.0)
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The key authorization `token || '.' || base64url(thumbprint)` (RFC 8555 §8.1).
pub fn key_authorization(token: &Token, account_key: &Jwk) -> String {
    format!("{}.{}", token.0, account_key.thumbprint())
}

/// The dns-01 TXT record value: base64url(SHA-256(key authorization)) (RFC 8555 §8.4).
pub fn dns01_txt_value(key_authorization: &str) -> String {
    base64url::encode(digest::digest(
        &digest::SHA256,
        key_authorization.as_bytes(),
    ))
}

/// The DER value of the acmeIdentifier extension: an OCTET STRING holding
/// SHA-256 of the key authorization (RFC 8737 §3).
pub fn tls_alpn01_extension_value(key_authorization: &str) -> [u8; 34] {
    let mut value = [0u8; 34];
    value[0] = 0x04; // OCTET STRING
    value[1] = 0x20; // 32 bytes
    value[2..]
        .copy_from_slice(digest::digest(&digest::SHA256, key_authorization.as_bytes()).as_ref());
    value
}

/// The dns-01 record name for `domain` (a wildcard's `*.` removed, §8.4).
pub fn dns01_record_name(domain: &str) -> String {
    format!(
        "{DNS01_LABEL}.{}",
        domain.strip_prefix("*.").unwrap_or(domain)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rfc7638_key() -> Jwk {
        Jwk::from_json(&json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB"
        }))
        .expect("valid")
    }

    /// RFC 8555 §8.3's example token with the RFC 7638 example key.
    #[test]
    fn key_authorization_is_token_dot_thumbprint() {
        let token = Token::parse("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA").expect("token");
        assert_eq!(
            key_authorization(&token, &rfc7638_key()),
            "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert_eq!(
            token.http01_path(),
            "/.well-known/acme-challenge/evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
        );
    }

    #[test]
    fn dns01_value_is_the_base64url_sha256() {
        // SHA-256("abc") is ba7816bf 8f01cfea 414140de 5dae2223 b00361a3 96177a9c b410ff61 f20015ad.
        assert_eq!(
            dns01_txt_value("abc"),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
        assert_eq!(
            dns01_record_name("*.example.org"),
            "_acme-challenge.example.org"
        );
        assert_eq!(
            dns01_record_name("www.example.org"),
            "_acme-challenge.www.example.org"
        );
    }

    #[test]
    fn tls_alpn01_value_is_a_der_octet_string() {
        let v = tls_alpn01_extension_value("abc");
        assert_eq!(&v[..2], &[0x04, 0x20]);
        assert_eq!(v[2..6], [0xba, 0x78, 0x16, 0xbf]);
    }

    #[test]
    fn tokens_outside_base64url_are_refused() {
        for bad in [
            "../../../../etc/passwd/aaaaaaaaaaaa",
            "aaaaaaaaaaaaaaaaaaaaaa;rm -rf /",
            "aaaaaaaaaaaaaaaaaaaaaa aaa",
            "aaaaaaaaaaaaaaaaaaaaa=",
            "aaaaaaaaaaaaaaaaaaaaaa/",
            "short",
            "",
            "aaaaaaaaaaaaaaaaaaaaaa\n",
        ] {
            assert!(Token::parse(bad).is_err(), "{bad:?}");
        }
        let t = Token::generate().expect("random");
        assert_eq!(t.as_str().len(), 43);
        assert_eq!(Token::parse(t.as_str()), Ok(t));
    }
}
