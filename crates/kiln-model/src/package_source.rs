//! Package sources: the repositories and indexes each ecosystem's packages come from.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::common::{Tag, Visibility, check_tags, double_option};
use crate::package::Ecosystem;
use crate::validation::{ValidationErrors, check_name, check_text};

/// A package source. Credentials are write-only: they are stored apart from the object and
/// never returned; `hasCredentials` tells whether some are set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PackageSource {
    #[schema(example = "debian-bookworm", pattern = r"^[A-Za-z0-9_][A-Za-z0-9_-]*$", max_length = 63)]
    pub name: String,
    pub ecosystem: Ecosystem,
    /// Base URL of the repository or index (`http` or `https`).
    #[schema(example = "http://deb.example/debian")]
    pub url: String,
    /// Debian suite (distribution), such as `bookworm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// Debian components, such as `main`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<String>,
    /// ASCII-armoured OpenPGP public keys that sign the repository's index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyring: Option<String>,
    /// Write-only. Leave out to keep the stored credentials, send `null` to remove them.
    #[serde(default, skip_serializing, deserialize_with = "double_option")]
    #[schema(value_type = Option<Credentials>, write_only, nullable)]
    #[schemars(with = "Option<Credentials>")]
    pub credentials: Option<Option<Credentials>>,
    #[serde(default)]
    #[schema(read_only)]
    pub has_credentials: bool,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub created_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub updated_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
}

/// Basic credentials for a private repository or index; `password` may be a token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

fn is_word(text: &str) -> bool {
    !text.is_empty() && text.len() <= 64 && text.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

impl PackageSource {
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        check_name(&mut errors, "name", &self.name);
        match url::Url::parse(&self.url) {
            Ok(url) if !matches!(url.scheme(), "http" | "https") => {
                errors.push("url", format!("scheme {:?} is not supported: use http or https", url.scheme()))
            }
            Ok(url) if !url.username().is_empty() || url.password().is_some() => {
                errors.push("url", "must not carry credentials: put them in the credentials field")
            }
            Ok(url) if url.host_str().is_none_or(str::is_empty) => errors.push("url", "has no host"),
            Ok(_) => {}
            Err(e) => errors.push("url", format!("{:?} is not a valid URL: {e}", self.url)),
        }
        if let Some(problem) = self.ecosystem.unbuildable() {
            errors.push("ecosystem", problem);
        }
        if self.ecosystem == Ecosystem::Deb {
            match &self.suite {
                Some(suite) if is_word(suite) => {}
                Some(suite) => errors.push("suite", format!("{suite:?} is not a valid suite name")),
                None => errors.push("suite", "is required for a deb source, such as bookworm"),
            }
            if self.components.is_empty() {
                errors.push("components", "is required for a deb source, such as [main]");
            }
        } else {
            if self.suite.is_some() {
                errors.push("suite", format!("applies to deb sources only, not {}", self.ecosystem.as_str()));
            }
            if !self.components.is_empty() {
                errors.push("components", format!("applies to deb sources only, not {}", self.ecosystem.as_str()));
            }
        }
        for (field, list) in [("components", &self.components), ("architectures", &self.architectures)] {
            for (i, item) in list.iter().enumerate() {
                if !is_word(item) {
                    errors.push(format!("{field}[{i}]"), format!("{item:?} is not a valid name"));
                }
            }
        }
        if let Some(keyring) = &self.keyring {
            check_text(&mut errors, "keyring", keyring, 256 * 1024);
            if !keyring.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
                errors.push("keyring", "must be an ASCII-armoured OpenPGP public key block");
            }
        }
        if let Some(Some(credentials)) = &self.credentials {
            if credentials.username.is_empty() && credentials.password.is_empty() {
                errors.push("credentials", "needs a username or a password; send null to remove credentials");
            }
            check_text(&mut errors, "credentials.username", &credentials.username, 255);
            if credentials.password.len() > 4096 {
                errors.push("credentials.password", "is longer than 4096 bytes");
            }
        }
        check_tags(&mut errors, &self.tags);
        errors.into_result()
    }
}
