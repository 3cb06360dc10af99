//! The envelope for stored values that are not named objects (registry records, task log
//! lines, the package→image index): the same `{formatVersion, data}` as records, so every
//! value in the store can be migrated on read, and one that does not parse is an error,
//! never read as empty. Values stored before they had the envelope read as format 0.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::kv::StoreError;

/// A value kept in the store under a key of its own.
pub trait Versioned: Serialize + DeserializeOwned {
    /// Bumped whenever the stored shape changes; `migrate` lifts older shapes.
    const FORMAT_VERSION: u32 = 1;

    /// Turns a value stored at `from` into the current shape. Format 0 is the bare value
    /// written before values carried the envelope; its shape is format 1's.
    fn migrate(from: u32, value: Value) -> Result<Value, String> {
        if from == Self::FORMAT_VERSION {
            Ok(value)
        } else if Self::FORMAT_VERSION == 1 {
            first_format(from, value)
        } else {
            Err(format!("format version {from} is not known to this Kiln (it writes {})", Self::FORMAT_VERSION))
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Wrapping<'a, T> {
    format_version: u32,
    data: &'a T,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Unwrapping<T> {
    format_version: u32,
    data: T,
}

pub fn encode_value<T: Versioned>(value: &T) -> Result<Vec<u8>, StoreError> {
    encode_at(T::FORMAT_VERSION, value)
}

/// Reads the value stored under `key` as `bytes`.
pub fn decode_value<T: Versioned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    decode_at(key, bytes, T::FORMAT_VERSION, T::migrate)
}

/// `encode_value` for a type that cannot implement [`Versioned`] here (another crate's).
pub fn encode_at<T: Serialize>(format_version: u32, value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(&Wrapping { format_version, data: value }).map_err(|e| StoreError::Invalid(e.to_string()))
}

/// `decode_value` for a type that cannot implement [`Versioned`] here, with its own
/// format version and migration.
pub fn decode_at<T: DeserializeOwned>(
    key: &str,
    bytes: &[u8],
    format_version: u32,
    migrate: impl FnOnce(u32, Value) -> Result<Value, String>,
) -> Result<T, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt { key: key.to_string(), message };
    // The common case, read straight into the type: the current format.
    if let Ok(stored) = serde_json::from_slice::<Unwrapping<T>>(bytes)
        && stored.format_version == format_version
    {
        return Ok(stored.data);
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    let (from, data) = match value {
        Value::Object(mut object)
            if object.len() == 2 && object.contains_key("data") && object.contains_key("formatVersion") =>
        {
            let from = object
                .get("formatVersion")
                .and_then(Value::as_u64)
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| corrupt("formatVersion is not a version number".into()))?;
            (from, object.remove("data").unwrap_or(Value::Null))
        }
        bare => (0, bare),
    };
    let data = migrate(from, data).map_err(corrupt)?;
    serde_json::from_value(data).map_err(|e| corrupt(e.to_string()))
}

/// The migration of a value whose shape never changed since it was first stored bare.
pub fn first_format(from: u32, value: Value) -> Result<Value, String> {
    match from {
        0 | 1 => Ok(value),
        other => Err(format!("format version {other} is not known to this Kiln (it writes 1)")),
    }
}

impl Versioned for kiln_model::LogLine {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        size: u64,
    }
    impl Versioned for Sample {}

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(transparent)]
    struct Versions(Vec<String>);
    impl Versioned for Versions {}

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Lifted {
        bytes: u64,
    }
    impl Versioned for Lifted {
        const FORMAT_VERSION: u32 = 2;
        fn migrate(from: u32, mut value: Value) -> Result<Value, String> {
            match from {
                2 => Ok(value),
                0 | 1 => {
                    let size = value.get("size").cloned().unwrap_or(Value::Null);
                    value = serde_json::json!({ "bytes": size });
                    Ok(value)
                }
                other => Err(format!("format version {other} is unknown")),
            }
        }
    }

    #[test]
    fn values_round_trip_in_the_envelope() {
        let bytes = encode_value(&Sample { size: 7 }).expect("encode");
        assert_eq!(bytes, br#"{"formatVersion":1,"data":{"size":7}}"#);
        assert_eq!(decode_value::<Sample>("k", &bytes).expect("decode"), Sample { size: 7 });
    }

    #[test]
    fn bare_values_from_before_the_envelope_still_read() {
        assert_eq!(decode_value::<Sample>("k", br#"{"size":3}"#).expect("decode"), Sample { size: 3 });
        assert_eq!(decode_value::<Versions>("k", br#"["1.0"]"#).expect("decode"), Versions(vec!["1.0".into()]));
    }

    #[test]
    fn older_formats_are_lifted_and_unknown_ones_refused() {
        assert_eq!(
            decode_value::<Lifted>("k", br#"{"formatVersion":1,"data":{"size":5}}"#).expect("lift"),
            Lifted { bytes: 5 }
        );
        let refused = decode_value::<Sample>("k", br#"{"formatVersion":9,"data":{"size":5}}"#).expect_err("unknown");
        assert!(refused.to_string().contains("format version 9"), "{refused}");
    }

    #[test]
    fn what_does_not_parse_is_an_error_naming_the_key() {
        for bad in [&b"not json"[..], br#"{"formatVersion":1,"data":{"size":"x"}}"#, br#"[1,2]"#] {
            let e = decode_value::<Sample>("package-images/x", bad).expect_err("corrupt");
            assert!(matches!(&e, StoreError::Corrupt { key, .. } if key == "package-images/x"), "{e}");
        }
    }
}
