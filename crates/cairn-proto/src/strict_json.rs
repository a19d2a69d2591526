//! JSON parsing that refuses duplicate object members at any depth.
//!
//! RFC 7515 §4 says a JWS header with duplicate member names must be
//! rejected (or only the last used); RFC 8555 servers must not guess which
//! value a client meant, so we reject. `serde_json::Value` silently keeps the
//! last duplicate, so this module visits the input itself.

use std::cell::RefCell;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StrictJsonError {
    /// The named member appeared twice in one object.
    Duplicate(String),
    /// Not JSON at all; the parser's message.
    Syntax(String),
}

/// Parses `input` as one JSON value, refusing duplicate members anywhere.
pub(crate) fn parse(input: &[u8]) -> Result<Value, StrictJsonError> {
    let duplicate = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(input);
    StrictValue(&duplicate)
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| match duplicate.take() {
            Some(name) => StrictJsonError::Duplicate(name),
            None => StrictJsonError::Syntax(e.to_string()),
        })
}

/// Parses `input` as a JSON object, refusing duplicates and other types.
pub(crate) fn parse_object(input: &[u8]) -> Result<Map<String, Value>, StrictJsonError> {
    match parse(input)? {
        Value::Object(map) => Ok(map),
        _ => Err(StrictJsonError::Syntax("expected a JSON object".into())),
    }
}

/// Visits one value; on a duplicate member it records the name in the cell.
struct StrictValue<'a>(&'a RefCell<Option<String>>);

impl<'de> DeserializeSeed<'de> for StrictValue<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictValue(self.0))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let value = access.next_value_seed(StrictValue(self.0))?;
            if map.contains_key(&key) {
                let message = format!("duplicate member {key:?}");
                *self.0.borrow_mut() = Some(key);
                return Err(de::Error::custom(message));
            }
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

/// Deserializes `T` from input that must also pass the duplicate check.
pub(crate) fn from_slice<T: for<'de> Deserialize<'de>>(input: &[u8]) -> Result<T, StrictJsonError> {
    let value = parse(input)?;
    T::deserialize(value).map_err(|e| StrictJsonError::Syntax(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_json() {
        let v = parse(br#"{"a":[1,{"b":null}],"c":"d","e":1.5,"f":-2}"#).expect("valid");
        assert_eq!(v["a"][1]["b"], Value::Null);
        assert_eq!(v["f"], Value::from(-2));
    }

    #[test]
    fn refuses_duplicates_at_any_depth() {
        assert_eq!(
            parse(br#"{"a":1,"a":2}"#),
            Err(StrictJsonError::Duplicate("a".into()))
        );
        assert_eq!(
            parse(br#"{"x":[{"k":1,"k":1}]}"#),
            Err(StrictJsonError::Duplicate("k".into()))
        );
    }

    #[test]
    fn refuses_trailing_garbage() {
        assert!(matches!(parse(b"{} {}"), Err(StrictJsonError::Syntax(_))));
        assert!(matches!(
            parse_object(b"[]"),
            Err(StrictJsonError::Syntax(_))
        ));
    }
}
