//! A function: code pushed onto a built image as one layer, kept as an object so it can be
//! listed, read and deleted, and so the server knows which function images to compose again
//! when their runtime image is rebuilt.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::common::Status;

/// A function of an organisation. Its image is `<org>/<image>:fn-<name>` in Kiln's registry:
/// the runtime image's layers plus one layer holding the code under `/function`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Function {
    #[schema(example = "sum")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub organization: String,
    /// The image (of the same organisation) the function runs on.
    #[schema(example = "my-pandas")]
    pub image: String,
    /// `READY`, `UPDATING` while it is composed over a rebuilt image, `ERROR` with a reason.
    #[serde(default)]
    pub status: Status,
    #[serde(default)]
    pub reason: Vec<String>,
    /// Pull this to run the function.
    pub reference: String,
    /// Digest of the function image's manifest.
    pub digest: String,
    /// The image digest the function image was composed over.
    pub runtime_digest: String,
    /// The code layer (the only layer that is the function's own).
    pub layer: String,
    pub layer_size: u64,
    /// The layer's uncompressed digest, needed to compose it over another image.
    pub layer_diff_id: String,
    /// The language whose function server loads the code, when Kiln knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The file the function server loads (`handler.py`, `handler.js`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// The name the server calls in it (`handle`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    /// The task composing the function over a rebuilt image, while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose_task: Option<String>,
    /// The image digest the last composition failed over; not tried again until the image
    /// moves on or the function is pushed again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_runtime_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
}

/// The tag of a function's image in its runtime image's repository.
pub fn function_tag(name: &str) -> String {
    format!("fn-{name}")
}

/// Whether `name` may name a function (it becomes part of a tag, which allows at most 128
/// characters of `[A-Za-z0-9_.-]`).
pub fn check_function_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(format!(
            "function name {name:?}: use 1 to 63 lower-case letters, digits, `-`, `_` or `.`, starting with a letter or digit"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_tags() {
        assert_eq!(function_tag("sum"), "fn-sum");
        assert!(check_function_name("sum-2.v1").is_ok());
        for bad in ["", "Sum", "-sum", "a/b", &"x".repeat(64)] {
            assert!(check_function_name(bad).is_err(), "{bad:?}");
        }
    }
}
