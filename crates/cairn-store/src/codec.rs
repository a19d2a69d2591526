//! How domain values are written to columns and read back: timestamps as
//! Unix nanoseconds (INTEGER in SQLite, BIGINT in PostgreSQL), states as
//! lowercase text, lists and problems as JSON text. Both backends use these,
//! so a value reads back identical from either.

use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::model::{AccountState, AuthzState, ChallengeState, OrderState};
use crate::{Result, StoreError};

/// A timestamp as INTEGER nanoseconds since the Unix epoch, which holds
/// the years 1678 to 2262 exactly.
pub(crate) fn time_to_db(t: OffsetDateTime) -> Result<i64> {
    i64::try_from(t.unix_timestamp_nanos()).map_err(|_| {
        StoreError::Backend(format!(
            "timestamp {t} is outside the years the store keeps (1678-2262)"
        ))
    })
}

pub(crate) fn opt_time_to_db(t: Option<OffsetDateTime>) -> Result<Option<i64>> {
    t.map(time_to_db).transpose()
}

pub(crate) fn time_from_db(nanos: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .map_err(|e| StoreError::Backend(format!("stored timestamp {nanos} is invalid: {e}")))
}

pub(crate) fn opt_time_from_db(nanos: Option<i64>) -> Result<Option<OffsetDateTime>> {
    nanos.map(time_from_db).transpose()
}

/// A serializable value (a list, a problem document) as JSON text.
pub(crate) fn json_to_db<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Backend(format!("encoding a JSON column: {e}")))
}

pub(crate) fn json_from_db<T: DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Backend(format!("stored JSON is invalid: {e}")))
}

pub(crate) fn opt_json_from_db<T: DeserializeOwned>(text: Option<&str>) -> Result<Option<T>> {
    text.map(json_from_db).transpose()
}

/// A stored state enum: its column text, both ways. The texts are the
/// ones the migrations' CHECK constraints allow.
pub(crate) trait DbState: Sized {
    fn to_db(self) -> &'static str;
    fn from_db(text: &str) -> Result<Self>;
}

macro_rules! db_state {
    ($ty:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl DbState for $ty {
            fn to_db(self) -> &'static str {
                match self {
                    $($ty::$variant => $text,)+
                }
            }

            fn from_db(text: &str) -> Result<Self> {
                match text {
                    $($text => Ok($ty::$variant),)+
                    other => Err(StoreError::Backend(format!(
                        concat!("stored ", stringify!($ty), " {:?} is unknown"),
                        other
                    ))),
                }
            }
        }
    };
}

db_state!(AccountState {
    Valid => "valid",
    Deactivated => "deactivated",
    Revoked => "revoked",
});

db_state!(OrderState {
    Open => "open",
    Processing => "processing",
    Valid => "valid",
    Invalid => "invalid",
});

db_state!(AuthzState {
    Pending => "pending",
    Valid => "valid",
    Invalid => "invalid",
    Deactivated => "deactivated",
    Revoked => "revoked",
});

db_state!(ChallengeState {
    Pending => "pending",
    Processing => "processing",
    Valid => "valid",
    Invalid => "invalid",
});

/// A CRL reason code (RFC 5280 §5.3.1) as stored.
pub(crate) fn reason_from_db(reason: impl Into<i64>) -> Result<u8> {
    let reason = reason.into();
    u8::try_from(reason)
        .map_err(|_| StoreError::Backend(format!("stored revocation reason {reason} is invalid")))
}

/// A `blocked_keys` row `(spki_sha256, reason, blocked_at)`, as both
/// backends read it.
pub(crate) fn blocked_key_from_db(
    (spki_sha256, reason, blocked_at): (Vec<u8>, String, i64),
) -> Result<crate::model::BlockedKey> {
    Ok(crate::model::BlockedKey {
        spki_sha256,
        reason,
        blocked_at: time_from_db(blocked_at)?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use time::macros::datetime;

    use super::*;

    #[test]
    fn timestamps_round_trip_to_the_nanosecond() {
        for t in [
            datetime!(2025-03-01 12:34:56.123_456_789 UTC),
            datetime!(1970-01-01 00:00 UTC),
            datetime!(1969-12-31 23:59:59.999_999_999 UTC),
            datetime!(2262-04-11 23:47:16.854_775_807 UTC),
        ] {
            assert_eq!(time_from_db(time_to_db(t).unwrap()).unwrap(), t);
        }
    }

    #[test]
    fn timestamps_keep_the_instant_of_other_offsets() {
        let t = datetime!(2025-03-01 12:00 +02:00);
        assert_eq!(
            time_from_db(time_to_db(t).unwrap()).unwrap(),
            datetime!(2025-03-01 10:00 UTC)
        );
    }

    #[test]
    fn timestamps_beyond_2262_are_refused() {
        assert!(time_to_db(datetime!(2300-01-01 00:00 UTC)).is_err());
    }

    #[test]
    fn states_round_trip_and_unknown_text_is_an_error() {
        for s in [
            OrderState::Open,
            OrderState::Processing,
            OrderState::Valid,
            OrderState::Invalid,
        ] {
            assert_eq!(OrderState::from_db(s.to_db()).unwrap(), s);
        }
        assert!(AuthzState::from_db("expired").is_err());
    }

    #[test]
    fn the_processing_state_is_the_text_queries_write_out() {
        // processing_challenges and stalled write 'processing' into their
        // SQL, so that the partial indexes on it apply to every plan.
        assert_eq!(ChallengeState::Processing.to_db(), "processing");
        assert_eq!(OrderState::Processing.to_db(), "processing");
    }

    #[test]
    fn reasons_outside_a_byte_are_refused() {
        assert_eq!(reason_from_db(10_i16).unwrap(), 10);
        assert!(reason_from_db(256_i64).is_err());
        assert!(reason_from_db(-1_i16).is_err());
    }
}
