//! Minimal PEM (RFC 7468) encoding and decoding.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Encodes `der` as one PEM block labelled `label`, lines of 64 characters.
pub fn encode(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Every block labelled `label` in `text`, decoded, in order. Blocks whose
/// body is not base64 end the scan.
pub fn decode_all(text: &str, label: &str) -> Vec<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&begin) {
        let after = &rest[start + begin.len()..];
        let Some(stop) = after.find(&end) else { break };
        let body: String = after[..stop]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        match STANDARD.decode(body) {
            Ok(der) => blocks.push(der),
            Err(_) => break,
        }
        rest = &after[stop + end.len()..];
    }
    blocks
}

/// The first block labelled `label` in `text`, decoded.
pub fn decode_one(text: &str, label: &str) -> Option<Vec<u8>> {
    decode_all(text, label).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_several_blocks() {
        let a: Vec<u8> = (0..100).collect();
        let b = vec![7u8; 3];
        let text = format!(
            "junk\n{}{}",
            encode("CERTIFICATE", &a),
            encode("CERTIFICATE", &b)
        );
        assert_eq!(decode_all(&text, "CERTIFICATE"), vec![a, b]);
        assert_eq!(decode_one(&text, "PRIVATE KEY"), None);
    }
}
