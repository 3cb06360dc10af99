//! What a build put into an image: the lock that reproduces it and the inventory that answers
//! "which packages, licences and layers are in here" without opening the image again.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::package::Ecosystem;

/// One package exactly as a build used it: enough to fetch the same bytes again and to
/// refuse anything else (`--locked`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockedPackage {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// Hex SHA-256 of the downloaded package file.
    pub sha256: String,
    pub size: u64,
    /// The package source it came from: its name, or `apt:<uri> <suite>` for a source read
    /// from the machine's apt configuration.
    pub source: String,
    /// Where the file lives below the source's base URL (`pool/main/...deb` for Debian);
    /// for npm, where the package was laid out (`node_modules/a/node_modules/b`).
    pub filename: String,
    /// The Subresource Integrity string the file was verified against, for ecosystems
    /// (npm) whose registries publish SHA-512 rather than SHA-256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrity: Option<String>,
}

/// Every package a build added, in installation order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Lock {
    pub packages: Vec<LockedPackage>,
    /// The package-lock.json of the npm tree the build laid out, which `--locked` installs
    /// again exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub npm_lockfile: Option<String>,
}

/// One package found in an image, whether a build added it or it came with the parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InventoryItem {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub architecture: String,
    /// The source package (Debian) it was built from, when it differs from `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// SPDX licence expression: what the package declares (a machine-readable copyright
    /// file, a wheel's or npm package's metadata), or what Kiln concluded from the licence
    /// names in a copyright file written as free text (`licenseKind` says which); absent
    /// when it could not be told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Whether `license` is declared by the package or concluded by Kiln, as SPDX's
    /// `licenseDeclared` and `licenseConcluded`; absent with `license`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_kind: Option<LicenseKind>,
    /// The words behind each `LicenseRef-…` in `license`, from the copyright file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub license_texts: Vec<LicenseText>,
    /// Package URL, such as `pkg:deb/debian/libpq5@15.8-0+deb12u1?arch=amd64&distro=debian-12`.
    pub purl: String,
    /// Digest of the layer holding the package's files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
}

/// Who says a package is under its licence: SPDX tells a package's `licenseDeclared` (what
/// its authors or packagers wrote in a form meant to be read by tools) from its
/// `licenseConcluded` (what someone, here Kiln, worked out from other evidence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LicenseKind {
    /// Written by the package: a DEP-5 copyright file, a wheel's or npm package's metadata.
    Declared,
    /// Kiln's reading of licence names and `/usr/share/common-licenses/…` references in a
    /// copyright file written as free text: a guess, to be checked.
    Concluded,
}

/// A licence that has no SPDX identifier, named `LicenseRef-…` in an expression, with the
/// text that says what it is (SPDX's `hasExtractedLicensingInfos`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LicenseText {
    /// `LicenseRef-` and letters, digits, `.` and `-` (SPDX's idstring).
    pub id: String,
    /// The name the package gives it, such as Debian's `public-domain`.
    pub name: String,
    pub text: String,
}

/// A package's licence as Kiln found it: the expression, who says so, and the texts of the
/// licences the expression names by `LicenseRef-…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageLicense {
    pub expression: String,
    pub kind: LicenseKind,
    pub texts: Vec<LicenseText>,
}

/// What one successful build of an image produced, kept with the image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildRecord {
    pub task: String,
    /// The definition digest it was built from (see `Image::definition_digest`).
    pub definition: String,
    pub digest: String,
    pub reference: String,
    /// The parent's manifest digest the image was built on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_digest: Option<String>,
    pub lock: Lock,
    /// Every package in the image, the parent's included.
    pub inventory: Vec<InventoryItem>,
    /// Digest of the SPDX document pushed as a referrer of the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom_digest: Option<String>,
    /// The equivalent Dockerfile.
    pub dockerfile: String,
    /// The files its `COPY` lines read from the build context (the function server, npm's
    /// package.json and lock).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dockerfile_context: Vec<ContextFile>,
    pub built_time: chrono::DateTime<chrono::Utc>,
}

/// A file of a Dockerfile's build context, by its path in the context directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContextFile {
    pub path: String,
    pub content: String,
}

/// What Kiln found inside a base image it did not build, read from its layers when the base
/// image was registered or its digest moved: dpkg's status, Python `*.dist-info`,
/// `node_modules/*/package.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BaseImageInventory {
    /// The manifest digest that was scanned.
    pub digest: String,
    pub items: Vec<InventoryItem>,
    /// Why the layers could not be read, when they could not; the image is still usable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    pub scanned_time: chrono::DateTime<chrono::Utc>,
    /// Whether every layer passed the layer checker; scans from before the checker existed
    /// lack it and are done again.
    #[serde(default)]
    pub layers_checked: bool,
}
