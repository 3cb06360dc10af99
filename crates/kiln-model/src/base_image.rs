//! A base image: an image Kiln did not build, registered by reference so images can be
//! built on it.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::common::{Status, Tag, Visibility, check_tags};
use crate::reference::Reference;
use crate::validation::{ValidationErrors, check_language, check_name};

/// A base image. `reference` may also be sent as Dispatch's `dockerUrl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BaseImage {
    /// Unique within the organisation; letters, digits, `_` and `-`.
    #[schema(example = "python3-base", pattern = r"^[A-Za-z0-9_][A-Za-z0-9_-]*$", max_length = 63)]
    pub name: String,
    /// Pullable image reference, `host[:port]/path[:tag][@digest]`.
    #[serde(alias = "dockerUrl")]
    #[schema(example = "registry.example/org/python3-base:1.0")]
    pub reference: String,
    /// Language of the runtime the image carries, such as `python3` or `nodejs`.
    #[schema(example = "python3")]
    pub language: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub visibility: Visibility,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schema(read_only)]
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schema(read_only)]
    pub organization: String,
    /// Life-cycle state. Objects rest in `INITIALIZED` until the controller that pulls
    /// and builds them acts on them.
    #[serde(default)]
    #[schema(read_only)]
    pub status: Status,
    /// Why the object is in its status, such as the error of a failed pull.
    #[serde(default)]
    #[schema(read_only)]
    pub reason: Vec<String>,
    /// Content digest of the resolved or built image manifest, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub digest: Option<String>,
    /// Digest of the index the image was chosen from, when the reference names an index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub index_digest: Option<String>,
    /// `os/architecture[/variant]` of the resolved image, from its configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only, example = "linux/amd64")]
    pub platform: Option<String>,
    /// Digest of the resolved image's configuration blob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub config_digest: Option<String>,
    /// When the controller last checked the reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub checked_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub created_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub updated_time: Option<DateTime<Utc>>,
    /// Store revision of this version of the object. Send it back (or as `If-Match`) on
    /// update to be refused with `409` if somebody changed the object meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
}

impl BaseImage {
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        check_name(&mut errors, "name", &self.name);
        if let Err(e) = Reference::parse(&self.reference) {
            errors.push("reference", e.to_string());
        }
        check_language(&mut errors, "language", &self.language);
        check_tags(&mut errors, &self.tags);
        errors.into_result()
    }
}
