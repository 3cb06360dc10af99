//! A runtime image: what a developer declares their functions need, built by Kiln on a
//! base image (or on an image marked `extendable`).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::common::{EnvVar, Status, StringOrNumber, Tag, Visibility, check_env, check_tags, string_or_number};
use crate::validation::{ValidationErrors, check_language, check_name, check_text, check_version};

/// A runtime image. Name the parent with `baseImageName` (a base image, or an image
/// marked `extendable`) or `parentImageName` (an extendable image). The server records
/// the direct parent image in `parentImageName` and the base image at the root of the
/// chain in `baseImageName`. A parent in another organisation is named `org/name` and must
/// be public there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Image {
    #[schema(example = "python3-postgres", pattern = r"^[A-Za-z0-9_][A-Za-z0-9_-]*$", max_length = 63)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "python3-base")]
    pub base_image_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_image_name: Option<String>,
    /// The definition's own version; becomes the image tag once built.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "string_or_number")]
    #[schemars(with = "Option<StringOrNumber>")]
    #[schema(example = "1.1")]
    pub version: Option<String>,
    /// Copied from the base image; if sent, it must match the base image's language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Whether other images may use this one as their parent.
    #[serde(default)]
    pub extendable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The role that owns this image definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default)]
    pub system_dependencies: SystemDependencies,
    #[serde(default)]
    pub runtime_dependencies: RuntimeDependencies,
    #[serde(default)]
    pub environment: Vec<EnvVar>,
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
    /// Life-cycle state. Images rest in `INITIALIZED` until the builder acts on them.
    #[serde(default)]
    #[schema(read_only)]
    pub status: Status,
    #[serde(default)]
    #[schema(read_only)]
    pub reason: Vec<String>,
    /// Digest of the built image manifest, once built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub digest: Option<String>,
    /// Full pullable `host/org/name:version`, once built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub reference: Option<String>,
    /// The task building the current definition, or the one that built it last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub build_task: Option<String>,
    /// Digest of the definition that task builds (or built); a different current definition
    /// means a new build is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub build_definition: Option<String>,
    /// Digest of the parent that build started from; when the parent's digest moves on (it
    /// was rebuilt, or its tag now points elsewhere) a rebuild is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub build_parent_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub created_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub updated_time: Option<DateTime<Utc>>,
    /// Store revision; send it back (or as `If-Match`) to be refused with `409` on a lost update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
}

/// OS packages installed into the image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SystemDependencies {
    #[serde(default)]
    pub packages: Vec<PackageRequest>,
}

/// Language packages, as the text of a requirements.txt / package.json or as a list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuntimeDependencies {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "psycopg2==2.7.3.1\n")]
    pub manifest: Option<String>,
    /// How to read `manifest`; inferred from the language when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ManifestFormat>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<PackageRequest>,
    /// The text of a package-lock.json (lockfileVersion 2 or 3) to install exactly, as
    /// `npm ci` would; only with a package.json manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lockfile: Option<String>,
    /// The text of pip constraints (`-c` files): versions a distribution is held to when
    /// anything installs it, adding nothing by themselves; only with a requirements.txt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
pub enum ManifestFormat {
    #[serde(rename = "requirements.txt")]
    RequirementsTxt,
    #[serde(rename = "package.json")]
    PackageJson,
}

/// One package an image asks for; without `version`, the newest allowed one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PackageRequest {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "string_or_number")]
    #[schemars(with = "Option<StringOrNumber>")]
    #[schema(value_type = Option<String>)]
    pub version: Option<String>,
}

pub const MAX_PACKAGES: usize = 1024;
pub const MAX_MANIFEST_BYTES: usize = 1024 * 1024;

impl Image {
    /// Checks the image on its own; the parent's existence is checked against the store.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        check_name(&mut errors, "name", &self.name);
        match (&self.base_image_name, &self.parent_image_name) {
            (None, None) => errors.push("baseImageName", "is required: name a base image or an extendable image"),
            (base, parent) => {
                if let Some(base) = base {
                    check_parent_reference(&mut errors, "baseImageName", base);
                }
                if let Some(parent) = parent {
                    check_parent_reference(&mut errors, "parentImageName", parent);
                    if parent == &self.name {
                        errors.push("parentImageName", "an image cannot be its own parent");
                    }
                }
            }
        }
        if let Some(version) = &self.version {
            check_version(&mut errors, "version", version);
        }
        if let Some(language) = &self.language {
            check_language(&mut errors, "language", language);
        }
        for (field, value) in [("author", &self.author), ("role", &self.role)] {
            if let Some(value) = value {
                check_text(&mut errors, field, value, 255);
            }
        }
        check_packages(
            &mut errors,
            "systemDependencies.packages",
            &self.system_dependencies.packages,
            is_system_package_name,
        );
        let runtime = &self.runtime_dependencies;
        check_packages(&mut errors, "runtimeDependencies.packages", &runtime.packages, is_runtime_package_name);
        if let Some(manifest) = &runtime.manifest {
            if !runtime.packages.is_empty() {
                errors.push("runtimeDependencies", "give either manifest or packages, not both");
            }
            if manifest.len() > MAX_MANIFEST_BYTES {
                errors.push(
                    "runtimeDependencies.manifest",
                    format!("is {} bytes; the limit is {MAX_MANIFEST_BYTES}", manifest.len()),
                );
            } else if self.manifest_format() == Some(ManifestFormat::PackageJson) {
                check_package_json(&mut errors, manifest);
            } else {
                check_text(&mut errors, "runtimeDependencies.manifest", manifest, MAX_MANIFEST_BYTES);
            }
        }
        if let Some(lockfile) = &runtime.lockfile {
            if runtime.manifest.is_none() || self.manifest_format() != Some(ManifestFormat::PackageJson) {
                errors.push(
                    "runtimeDependencies.lockfile",
                    "a package-lock.json goes with a package.json manifest: give manifest (format package.json) too",
                );
            } else if lockfile.len() > MAX_MANIFEST_BYTES {
                errors.push(
                    "runtimeDependencies.lockfile",
                    format!("is {} bytes; the limit is {}", lockfile.len(), MAX_MANIFEST_BYTES),
                );
            } else {
                check_json_object(&mut errors, "runtimeDependencies.lockfile", "package-lock.json", lockfile);
            }
        }
        if let Some(constraints) = &runtime.constraints {
            if self.manifest_format() == Some(ManifestFormat::PackageJson) {
                errors.push(
                    "runtimeDependencies.constraints",
                    "constraints go with a requirements.txt, not package.json",
                );
            } else {
                check_text(&mut errors, "runtimeDependencies.constraints", constraints, MAX_MANIFEST_BYTES);
            }
        }
        check_env(&mut errors, &self.environment);
        check_tags(&mut errors, &self.tags);
        errors.into_result()
    }

    /// The manifest's format as given, or as implied by the language.
    pub fn manifest_format(&self) -> Option<ManifestFormat> {
        self.runtime_dependencies.format.or_else(|| {
            let language = self.language.as_deref()?;
            if language.starts_with("python") {
                Some(ManifestFormat::RequirementsTxt)
            } else if language.starts_with("node") {
                Some(ManifestFormat::PackageJson)
            } else {
                None
            }
        })
    }

    /// The parent this image names, whichever field carries it.
    /// Digest of everything that decides the image's contents, so a change to tags or
    /// visibility does not rebuild it but a change to a package does.
    pub fn definition_digest(&self) -> String {
        let definition = serde_json::json!({
            "baseImageName": self.base_image_name,
            "parentImageName": self.parent_image_name,
            "version": self.version,
            "language": self.language,
            "systemDependencies": self.system_dependencies,
            "runtimeDependencies": self.runtime_dependencies,
            "environment": self.environment,
        });
        let bytes = serde_json::to_vec(&definition).unwrap_or_default();
        format!("sha256:{}", hex_sha256(&bytes))
    }

    pub fn parent_name(&self) -> Option<&str> {
        self.parent_image_name.as_deref().or(self.base_image_name.as_deref())
    }
}

/// Splits a parent reference into its organisation (when it names another one, `org/name`)
/// and its name.
pub fn split_parent_reference(reference: &str) -> (Option<&str>, &str) {
    match reference.split_once('/') {
        Some((org, name)) => (Some(org), name),
        None => (None, reference),
    }
}

/// The organisation and name a parent reference of an image in `org` points at.
pub fn resolve_parent_reference<'a>(org: &'a str, reference: &'a str) -> (&'a str, &'a str) {
    let (named_org, name) = split_parent_reference(reference);
    (named_org.unwrap_or(org), name)
}

/// How an image in `org` names a parent in `parent_org`: bare within its organisation.
pub fn parent_reference(org: &str, parent_org: &str, name: &str) -> String {
    if org == parent_org { name.to_string() } else { format!("{parent_org}/{name}") }
}

fn check_parent_reference(errors: &mut ValidationErrors, field: &str, reference: &str) {
    let (org, name) = split_parent_reference(reference);
    if let Some(org) = org {
        check_name(errors, field, org);
    }
    check_name(errors, field, name);
}

fn check_package_json(errors: &mut ValidationErrors, manifest: &str) {
    check_json_object(errors, "runtimeDependencies.manifest", "package.json", manifest);
}

fn check_json_object(errors: &mut ValidationErrors, field: &str, file: &str, text: &str) {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(_)) => {}
        Ok(_) => errors.push(field, format!("{file} must be a JSON object")),
        Err(e) => {
            errors.push(field, format!("{file} is not valid JSON at line {} column {}: {e}", e.line(), e.column()))
        }
    }
}

fn check_packages(errors: &mut ValidationErrors, field: &str, packages: &[PackageRequest], name_ok: fn(&str) -> bool) {
    if packages.len() > MAX_PACKAGES {
        errors.push(field, format!("has {} entries; the limit is {MAX_PACKAGES}", packages.len()));
        return;
    }
    for (i, package) in packages.iter().enumerate() {
        if !name_ok(&package.name) {
            errors.push(format!("{field}[{i}].name"), format!("{:?} is not a valid package name", package.name));
        }
        if let Some(version) = &package.version {
            check_version(errors, &format!("{field}[{i}].version"), version);
        }
        if packages[..i].iter().any(|earlier| earlier.name == package.name) {
            errors.push(format!("{field}[{i}].name"), format!("{:?} is listed twice", package.name));
        }
    }
}

/// Debian, RPM and Alpine package names.
pub fn is_system_package_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "+.-_".contains(c))
}

/// PyPI and npm (scoped too) package names.
pub fn is_runtime_package_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 214
        && name.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '@')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-@/".contains(c))
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> Image {
        serde_json::from_value(serde_json::json!({"name": "img", "baseImageName": "base"})).unwrap()
    }

    #[test]
    fn requires_a_parent() {
        let mut img = image();
        img.base_image_name = None;
        let err = img.validate().unwrap_err();
        assert_eq!(err.0[0].field, "baseImageName");
    }

    #[test]
    fn names_the_bad_package() {
        let mut img = image();
        img.system_dependencies.packages = vec![
            PackageRequest { name: "libpq5".into(), version: None },
            PackageRequest { name: "bad name".into(), version: None },
        ];
        let err = img.validate().unwrap_err();
        assert_eq!(err.0[0].field, "systemDependencies.packages[1].name");
    }

    #[test]
    fn package_json_errors_carry_position() {
        let mut img = image();
        img.language = Some("nodejs".into());
        img.runtime_dependencies.manifest = Some("{\n  \"dependencies\": {,\n}".into());
        let err = img.validate().unwrap_err();
        assert!(err.0[0].message.contains("line 2"), "{}", err);
    }

    #[test]
    fn a_lockfile_needs_a_package_json_and_must_be_json() {
        let mut img = image();
        img.language = Some("nodejs".into());
        img.runtime_dependencies.lockfile = Some("{}".into());
        let err = img.validate().unwrap_err();
        assert_eq!(err.0[0].field, "runtimeDependencies.lockfile");
        assert!(err.0[0].message.contains("package.json"), "{err}");
        img.runtime_dependencies.manifest = Some("{\"dependencies\": {}}".into());
        assert!(img.validate().is_ok());
        img.runtime_dependencies.lockfile = Some("[1]".into());
        let err = img.validate().unwrap_err();
        assert!(err.0[0].message.contains("package-lock.json must be a JSON object"), "{err}");
    }

    #[test]
    fn unquoted_versions_become_text() {
        let img: Image =
            serde_json::from_value(serde_json::json!({"name": "i", "baseImageName": "b", "version": 2})).unwrap();
        assert_eq!(img.version.as_deref(), Some("2"));
        let err =
            serde_json::from_value::<Image>(serde_json::json!({"name": "i", "baseImageName": "b", "version": 1.1}))
                .unwrap_err();
        assert!(err.to_string().contains("write it as a string"), "{err}");
    }
}
