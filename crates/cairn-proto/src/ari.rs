//! ACME Renewal Information certificate identifiers (RFC 9773 §4.1).

use std::fmt;
use std::str::FromStr;

use crate::{Error, base64url};

/// A certificate's ARI identifier: its Authority Key Identifier's
/// keyIdentifier and its serial number, each base64url, joined by `.`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CertId {
    key_identifier: Vec<u8>,
    serial: Vec<u8>,
}

impl CertId {
    /// From the AKI keyIdentifier bytes and the serial's DER INTEGER content
    /// octets (two's complement, so a leading 0x00 when the top bit is set).
    pub fn new(key_identifier: Vec<u8>, serial_der: Vec<u8>) -> Result<Self, Error> {
        if key_identifier.is_empty() {
            return Err(Error::Malformed(
                "ARI identifier: empty key identifier".into(),
            ));
        }
        check_der_positive_integer(&serial_der)?;
        Ok(Self {
            key_identifier,
            serial: serial_der,
        })
    }

    /// From the AKI keyIdentifier and the serial as an unsigned big-endian
    /// number, adding or removing leading zero octets as DER requires.
    pub fn from_unsigned_serial(key_identifier: Vec<u8>, serial: &[u8]) -> Result<Self, Error> {
        let trimmed = match serial.iter().position(|b| *b != 0) {
            Some(i) => &serial[i..],
            None => return Err(Error::Malformed("ARI identifier: serial is zero".into())),
        };
        let mut der = Vec::with_capacity(trimmed.len() + 1);
        if trimmed[0] & 0x80 != 0 {
            der.push(0);
        }
        der.extend_from_slice(trimmed);
        Self::new(key_identifier, der)
    }

    pub fn key_identifier(&self) -> &[u8] {
        &self.key_identifier
    }

    /// The serial's DER INTEGER content octets.
    pub fn serial_der(&self) -> &[u8] {
        &self.serial
    }

    /// The serial as unsigned big-endian bytes with no leading zeros.
    pub fn serial_unsigned(&self) -> &[u8] {
        match self.serial.first() {
            Some(0) => &self.serial[1..],
            _ => &self.serial,
        }
    }
}

impl fmt::Display for CertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}",
            base64url::encode(&self.key_identifier),
            base64url::encode(&self.serial)
        )
    }
}

impl FromStr for CertId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let malformed = || Error::Malformed(format!("{s:?} is not an ARI certificate identifier"));
        let (aki, serial) = s.split_once('.').ok_or_else(malformed)?;
        let aki = base64url::decode(aki).map_err(|_| malformed())?;
        let serial = base64url::decode(serial).map_err(|_| malformed())?;
        Self::new(aki, serial).map_err(|_| malformed())
    }
}

fn check_der_positive_integer(bytes: &[u8]) -> Result<(), Error> {
    let ok = match bytes {
        [] => false,
        [first, ..] if first & 0x80 != 0 => false,
        [0] => false,
        [0, second, ..] => second & 0x80 != 0,
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::Malformed(
            "ARI identifier: serial is not a positive DER integer".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9773 §4.1: keyIdentifier 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4
    /// and serial 00:87:65:43:21 give "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE".
    #[test]
    fn rfc9773_example() {
        let aki = vec![
            0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3, 0x7B, 0x84, 0x7B, 0xA0,
            0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4,
        ];
        let id = CertId::new(aki.clone(), vec![0x00, 0x87, 0x65, 0x43, 0x21]).expect("valid");
        assert_eq!(id.to_string(), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
        assert_eq!(
            CertId::from_unsigned_serial(aki, &[0x87, 0x65, 0x43, 0x21]).expect("valid"),
            id
        );
        assert_eq!(
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE".parse::<CertId>(),
            Ok(id.clone())
        );
        assert_eq!(id.serial_unsigned(), &[0x87, 0x65, 0x43, 0x21]);
    }

    #[test]
    fn malformed_identifiers_are_refused() {
        for bad in [
            "",
            ".",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.",
            ".AIdlQyE",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ=.AIdlQyE",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.h2VDIQ", // negative serial
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AAFlQyE", // redundant leading zero
        ] {
            assert!(bad.parse::<CertId>().is_err(), "{bad:?}");
        }
    }
}
