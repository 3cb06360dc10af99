//! The image definition format of the seed design (`parent`, `photon-packages`,
//! `runtime-packages`, `metadata{role, extendable, author}`), read as an [`Image`].

use schemars::JsonSchema;
use serde::Deserialize;

use crate::common::{EnvVar, StringOrNumber, Tag, string_or_number};
use crate::image::{Image, PackageRequest, RuntimeDependencies, SystemDependencies};

pub const SCHEMA_NAME: &str = "image-definition";

/// An image definition as the seed design writes it. `photon-packages` and
/// `system-packages` are the same thing: OS packages from the configured sources.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageDefinition {
    pub name: String,
    #[serde(default, deserialize_with = "string_or_number")]
    #[schemars(with = "Option<StringOrNumber>")]
    pub version: Option<String>,
    /// A base image, or an image marked extendable.
    pub parent: String,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub metadata: Option<DefinitionMetadata>,
    #[serde(default, rename = "photon-packages")]
    pub photon_packages: Vec<PackageRequest>,
    #[serde(default, rename = "system-packages")]
    pub system_packages: Vec<PackageRequest>,
    #[serde(default, rename = "runtime-packages")]
    pub runtime_packages: Vec<PackageRequest>,
    /// The text of a requirements.txt / package.json, or `@path` to read it from a file.
    #[serde(default, rename = "runtime-manifest")]
    pub runtime_manifest: Option<String>,
    #[serde(default)]
    pub environment: Vec<EnvVar>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DefinitionMetadata {
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub extendable: bool,
    #[serde(default)]
    pub author: Option<String>,
}

impl ImageDefinition {
    pub fn into_image(self) -> Image {
        let metadata = self.metadata.unwrap_or_default();
        let mut system = self.photon_packages;
        system.extend(self.system_packages);
        Image {
            name: self.name,
            base_image_name: Some(self.parent),
            parent_image_name: None,
            version: self.version,
            language: self.language,
            extendable: metadata.extendable,
            author: metadata.author,
            role: metadata.role,
            system_dependencies: SystemDependencies { packages: system },
            runtime_dependencies: RuntimeDependencies {
                manifest: self.runtime_manifest,
                format: None,
                packages: self.runtime_packages,
                lockfile: None,
                constraints: None,
            },
            environment: self.environment,
            tags: self.tags,
            visibility: Default::default(),
            id: String::new(),
            organization: String::new(),
            status: Default::default(),
            reason: Vec::new(),
            digest: None,
            reference: None,
            build_task: None,
            build_definition: None,
            build_parent_digest: None,
            created_time: None,
            updated_time: None,
            revision: None,
        }
    }
}

/// Where an [`Image`] field came from in the seed format, for error positions.
pub fn pointer_for_image_field(field: &str, uses_photon: bool) -> String {
    let pointer = super::yaml::field_to_pointer(field);
    let system = if uses_photon { "/photon-packages" } else { "/system-packages" };
    for (image_prefix, seed_prefix) in [
        ("/systemDependencies/packages", system),
        ("/runtimeDependencies/packages", "/runtime-packages"),
        ("/runtimeDependencies/manifest", "/runtime-manifest"),
        ("/runtimeDependencies", "/runtime-packages"),
        ("/baseImageName", "/parent"),
        ("/parentImageName", "/parent"),
        ("/extendable", "/metadata/extendable"),
        ("/author", "/metadata/author"),
        ("/role", "/metadata/role"),
    ] {
        if let Some(rest) = pointer.strip_prefix(image_prefix) {
            return format!("{seed_prefix}{rest}");
        }
    }
    pointer
}
