//! Strict base64url without padding (RFC 7515 §2, RFC 4648 §5).
//!
//! ACME and JWS carry binary data as unpadded base64url. Decoding here
//! refuses padding, the standard alphabet's `+` and `/`, whitespace, and
//! non-canonical trailing bits, so one byte string has exactly one encoding.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Encodes `bytes` as unpadded base64url.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes unpadded base64url, refusing anything but the canonical encoding.
pub fn decode(text: &str) -> Result<Vec<u8>, InvalidBase64Url> {
    URL_SAFE_NO_PAD.decode(text).map_err(|_| InvalidBase64Url)
}

/// The input was not canonical unpadded base64url.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidBase64Url;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for len in 0..40u8 {
            let bytes: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(decode(&encode(&bytes)), Ok(bytes));
        }
    }

    #[test]
    fn refuses_padding_other_alphabets_and_noise() {
        assert_eq!(decode("AQ"), Ok(vec![1]));
        assert_eq!(decode("AQ=="), Err(InvalidBase64Url), "padding");
        assert_eq!(decode("+/8"), Err(InvalidBase64Url), "standard alphabet");
        assert_eq!(decode("-_8"), Ok(vec![0xfb, 0xff]));
        assert_eq!(decode("AQ "), Err(InvalidBase64Url), "whitespace");
        assert_eq!(decode("A\nQ"), Err(InvalidBase64Url), "newline");
        assert_eq!(decode("A"), Err(InvalidBase64Url), "impossible length");
        assert_eq!(
            decode("AR"),
            Err(InvalidBase64Url),
            "non-zero trailing bits"
        );
    }
}
