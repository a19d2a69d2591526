//! Just enough DER (ITU-T X.690) to write the extension values rcgen has no
//! field for: authorityInfoAccess, certificatePolicies and a basicConstraints
//! that encodes `cA = FALSE` as DER demands (by leaving the DEFAULT out);
//! and an account key's SubjectPublicKeyInfo, for its hash.

/// Universal tag numbers used here.
pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;

/// `[6] IMPLICIT IA5String`: the uniformResourceIdentifier GeneralName
/// (RFC 5280 §4.2.1.6).
pub(crate) const TAG_GENERAL_NAME_URI: u8 = 0x86;

/// A complete TLV: tag, definite length, content.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = &bytes[skip..];
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

/// A SEQUENCE of already-encoded elements.
pub(crate) fn sequence(items: &[Vec<u8>]) -> Vec<u8> {
    tlv(TAG_SEQUENCE, &items.concat())
}

/// An OBJECT IDENTIFIER from its arcs (X.690 §8.19). The first arc is 0, 1
/// or 2 and there are at least two arcs: true of every OID written here.
pub(crate) fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut content = Vec::new();
    let (first, rest) = match arcs {
        [a, b, rest @ ..] => (a * 40 + b, rest),
        [a] => (a * 40, &[][..]),
        [] => (0, &[][..]),
    };
    for arc in std::iter::once(first).chain(rest.iter().copied()) {
        push_base128(&mut content, arc);
    }
    tlv(TAG_OID, &content)
}

/// A non-negative INTEGER from unsigned big-endian bytes (an RSA key's
/// SubjectPublicKeyInfo; tests build CSRs no library would make).
pub(crate) fn unsigned_integer(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let trimmed = &bytes[start..];
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    tlv(TAG_INTEGER, &content)
}

fn push_base128(out: &mut Vec<u8>, mut value: u64) {
    let mut groups = [0u8; 10];
    let mut n = 0;
    loop {
        groups[n] = (value & 0x7f) as u8;
        n += 1;
        value >>= 7;
        if value == 0 {
            break;
        }
    }
    for i in (0..n).rev() {
        out.push(if i == 0 { groups[i] } else { groups[i] | 0x80 });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_encode_as_x690_says() {
        // X.690 §8.19.5 example: {2 100 3} is 06 03 81 34 03.
        assert_eq!(oid(&[2, 100, 3]), vec![0x06, 0x03, 0x81, 0x34, 0x03]);
        // id-kp-serverAuth, 1.3.6.1.5.5.7.3.1.
        assert_eq!(
            oid(&[1, 3, 6, 1, 5, 5, 7, 3, 1]),
            vec![0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01]
        );
        // The CA/B Forum DV policy, 2.23.140.1.2.1.
        assert_eq!(
            oid(&[2, 23, 140, 1, 2, 1]),
            vec![0x06, 0x06, 0x67, 0x81, 0x0c, 0x01, 0x02, 0x01]
        );
    }

    #[test]
    fn long_lengths_use_the_long_form() {
        let content = vec![0u8; 300];
        let encoded = tlv(TAG_SEQUENCE, &content);
        assert_eq!(&encoded[..4], &[0x30, 0x82, 0x01, 0x2c]);
        assert_eq!(encoded.len(), 304);
        assert_eq!(&tlv(TAG_SEQUENCE, &[0u8; 127])[..2], &[0x30, 0x7f]);
        assert_eq!(&tlv(TAG_SEQUENCE, &[0u8; 128])[..3], &[0x30, 0x81, 0x80]);
    }

    #[test]
    fn unsigned_integers_are_minimal_and_positive() {
        assert_eq!(unsigned_integer(&[0, 0, 1]), vec![0x02, 0x01, 0x01]);
        assert_eq!(unsigned_integer(&[0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(unsigned_integer(&[]), vec![0x02, 0x01, 0x00]);
        assert_eq!(
            unsigned_integer(&[0x01, 0x00, 0x01]),
            vec![0x02, 0x03, 0x01, 0x00, 0x01]
        );
    }
}
