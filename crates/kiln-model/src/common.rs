//! Small value types every resource shares: tags, visibility, life-cycle status, environment.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::validation::{ValidationErrors, check_env_name, check_text};

/// A free-form label; lists can be filtered by tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tag {
    #[schemars(length(min = 1, max = 63))]
    pub key: String,
    #[serde(default)]
    #[schemars(length(max = 255))]
    pub value: String,
}

/// Who may read an object: its own organisation only, or every organisation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    #[default]
    Private,
    Public,
}

/// Where an object is in its life cycle. Work that moves objects along (pulling base
/// images, building images) is done by the controller; until it runs, objects rest in
/// `INITIALIZED`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    #[default]
    Initialized,
    Creating,
    Ready,
    Updating,
    Error,
    Deleting,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Initialized => "INITIALIZED",
            Status::Creating => "CREATING",
            Status::Ready => "READY",
            Status::Updating => "UPDATING",
            Status::Error => "ERROR",
            Status::Deleting => "DELETING",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        [Status::Initialized, Status::Creating, Status::Ready, Status::Updating, Status::Error, Status::Deleting]
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text))
    }
}

/// One environment variable baked into an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

pub const MAX_TAGS: usize = 64;

pub fn check_tags(errors: &mut ValidationErrors, tags: &[Tag]) {
    if tags.len() > MAX_TAGS {
        errors.push("tags", format!("has {} entries; the limit is {MAX_TAGS}", tags.len()));
    }
    for (i, tag) in tags.iter().enumerate() {
        if tag.key.is_empty() || tag.key.len() > 63 {
            errors.push(format!("tags[{i}].key"), "must be 1 to 63 characters");
        }
        check_text(errors, &format!("tags[{i}].key"), &tag.key, 63);
        check_text(errors, &format!("tags[{i}].value"), &tag.value, 255);
    }
}

pub fn check_env(errors: &mut ValidationErrors, env: &[EnvVar]) {
    if env.len() > 256 {
        errors.push("environment", "has more than 256 entries");
    }
    for (i, var) in env.iter().enumerate() {
        check_env_name(errors, &format!("environment[{i}].name"), &var.name);
        check_text(errors, &format!("environment[{i}].value"), &var.value, 32 * 1024);
        if env[..i].iter().any(|earlier| earlier.name == var.name) {
            errors.push(format!("environment[{i}].name"), format!("{:?} is set twice", var.name));
        }
    }
}

/// True when the object's tags satisfy a filter written `key` or `key=value`.
pub fn tags_match(tags: &[Tag], filter: &str) -> bool {
    match filter.split_once('=') {
        Some((key, value)) => tags.iter().any(|t| t.key == key && t.value == value),
        None => tags.iter().any(|t| t.key == filter),
    }
}

/// A version may arrive as a JSON number; integers are taken as text, decimals refused.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum StringOrNumber {
    String(String),
    Number(serde_json::Number),
}

pub fn string_or_number<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    match Option::<StringOrNumber>::deserialize(deserializer)? {
        None => Ok(None),
        Some(StringOrNumber::String(s)) => Ok(Some(s)),
        Some(StringOrNumber::Number(n)) if n.is_u64() || n.is_i64() => Ok(Some(n.to_string())),
        // 1.10 and 1.1 are the same number but different versions: make the writer say which.
        Some(StringOrNumber::Number(n)) => Err(serde::de::Error::custom(format!(
            "version {n} is a decimal number: write it as a string, such as \"{n}\""
        ))),
    }
}

/// Tells a field that was left out (keep what is stored) from one sent as `null` (clear it).
pub fn double_option<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The reason an object carries when its name differs from `holder`'s only in case, so both
/// used one registry repository; the controllers recognise it and leave the object alone.
pub fn name_clash_reason(holder: &str) -> String {
    format!(
        "its name differs from {holder:?} only in case and both used one registry repository: delete this one and create it under another name"
    )
}
