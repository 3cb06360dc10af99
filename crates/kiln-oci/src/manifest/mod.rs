//! What a registry must learn from a pushed manifest before storing it: its effective media type, the blobs
//! and child manifests it references, its subject (for the referrers API), artifact type and annotations.
//! Parsing is lenient about fields it does not use and strict, with the field named, about those it does.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::de::Visitor;
use serde::{Deserialize, Deserializer, Serialize};

use crate::digest::{Digest, DigestError};
use crate::media_types::{self, OCI_EMPTY, OCI_EMPTY_CONTENT, OCI_IMAGE_INDEX, OCI_IMAGE_MANIFEST};

/// Largest manifest accepted; the distribution spec suggests registries accept at least 4 MiB and may refuse
/// more, and a bound keeps a hostile push from costing unbounded memory.
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;

/// `Content-Type` values that say nothing about which manifest this is; clients that send them are not
/// contradicting the body, so they are treated as if no header had been sent.
pub const GENERIC_CONTENT_TYPES: [&str; 2] = ["application/json", "application/octet-stream"];

/// Refuses a manifest longer than [`MAX_MANIFEST_SIZE`]; callable with a `Content-Length` before reading a body.
pub fn check_size(len: u64) -> Result<(), ManifestError> {
    if len > MAX_MANIFEST_SIZE {
        return Err(ManifestError::TooLarge { size: len, limit: MAX_MANIFEST_SIZE });
    }
    Ok(())
}

/// Why a manifest was refused. Every message names the offending field with its path (`layers[2].digest`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is {size} bytes; the limit is {limit}")]
    TooLarge { size: u64, limit: u64 },
    #[error("manifest is not valid JSON: {0}")]
    Syntax(String),
    /// A field has the wrong JSON type, or an object repeats a field; `field` is `manifest` for the document.
    #[error("{field}: {message}")]
    Json { field: String, message: String },
    #[error("{0}: missing")]
    MissingField(String),
    #[error("schemaVersion: must be 2, got {0}")]
    SchemaVersion(u64),
    #[error("{field}: {value:?} is not a valid media type")]
    InvalidMediaType { field: String, value: String },
    /// `field` is `mediaType` or `Content-Type`, whichever named a media type that is not a manifest's.
    #[error("{field}: {value:?} is not a supported manifest media type")]
    UnsupportedMediaType { field: &'static str, value: String },
    #[error("mediaType: the manifest says {body:?} but the Content-Type is {header:?}")]
    MediaTypeMismatch { body: String, header: String },
    #[error("{field}: {source}")]
    InvalidDigest { field: String, source: DigestError },
    #[error("{field}: not allowed in a {media_type} manifest")]
    UnexpectedField { field: &'static str, media_type: &'static str },
    #[error("manifest has both manifests and config or layers, and no mediaType to tell which it is")]
    Ambiguous,
    #[error("manifest has no mediaType, and neither manifests nor config and layers to tell what it is")]
    UnknownKind,
}

/// Target platform of an image, as an index entry declares it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(rename = "os.version", default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: impl Into<String>, architecture: impl Into<String>) -> Platform {
        Platform { os: os.into(), architecture: architecture.into(), ..Platform::default() }
    }

    pub fn with_variant(self, variant: impl Into<String>) -> Platform {
        Platform { variant: Some(variant.into()), ..self }
    }
}

/// `os/architecture[/variant]`, the form `--platform` flags use.
impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a platform: expected os/architecture[/variant]")]
pub struct PlatformParseError(pub String);

impl FromStr for Platform {
    type Err = PlatformParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(PlatformParseError(s.to_string()));
        }
        match parts.as_slice() {
            [os, arch] => Ok(Platform::new(*os, *arch)),
            [os, arch, variant] => Ok(Platform::new(*os, *arch).with_variant(*variant)),
            _ => Err(PlatformParseError(s.to_string())),
        }
    }
}

/// An OCI content descriptor: what a manifest says about each thing it points at. `urls` and `data` are
/// not kept; a registry neither follows nor serves them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

impl Descriptor {
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            artifact_type: None,
            annotations: BTreeMap::new(),
            platform: None,
        }
    }

    /// Describes `content` by its SHA-256 digest and length, for a builder about to push it.
    pub fn for_content(media_type: impl Into<String>, content: &[u8]) -> Descriptor {
        Descriptor::new(media_type, Digest::sha256(content), len_u64(content.len()))
    }

    /// The OCI empty descriptor (`{}`), the config of artifacts that have none.
    pub fn empty() -> Descriptor {
        Descriptor::for_content(OCI_EMPTY, OCI_EMPTY_CONTENT)
    }
}

/// An OCI image index, as the registry builds it to answer the referrers API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    pub media_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Always serialized, even when empty: the referrers API answers an unknown subject with an empty list.
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ImageIndex {
    pub fn new(manifests: Vec<Descriptor>) -> ImageIndex {
        ImageIndex {
            schema_version: 2,
            media_type: OCI_IMAGE_INDEX.to_string(),
            artifact_type: None,
            manifests,
            subject: None,
            annotations: BTreeMap::new(),
        }
    }

    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

/// Whether a manifest describes one image or lists other manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ManifestKind {
    /// OCI image manifest or Docker schema 2 manifest: references blobs.
    Image,
    /// OCI image index or Docker manifest list: references manifests.
    Index,
}

/// What a registry needs to know about a manifest to store it and keep its references consistent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestInfo {
    /// One of [`media_types::MANIFEST_MEDIA_TYPES`]; what `GET` must answer as `Content-Type`.
    pub media_type: &'static str,
    pub kind: ManifestKind,
    /// The config blob; `Some` exactly for image manifests.
    pub config: Option<Descriptor>,
    /// Layer blobs of an image manifest, in order; empty for an index.
    pub layers: Vec<Descriptor>,
    /// Child manifests of an index, in order; empty for an image manifest.
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    /// `artifactType`, or for an image manifest without one its config's media type, as the referrers API
    /// requires.
    pub artifact_type: Option<String>,
    pub annotations: BTreeMap<String, String>,
}

impl ManifestInfo {
    /// Parses a pushed manifest. `content_type` is the request's `Content-Type`, if any; it decides the media
    /// type when the body has no `mediaType` and must agree with it when both are present.
    pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<ManifestInfo, ManifestError> {
        check_size(len_u64(bytes.len()))?;
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let Object(raw): Object<RawManifest> =
            serde_path_to_error::deserialize(&mut deserializer).map_err(json_error)?;
        deserializer.end().map_err(|e| ManifestError::Syntax(e.to_string()))?;

        match raw.schema_version {
            None => return Err(ManifestError::MissingField("schemaVersion".to_string())),
            Some(2) => {}
            Some(other) => return Err(ManifestError::SchemaVersion(other)),
        }
        let media_type = effective_media_type(&raw, content_type)?;
        let kind = if media_types::is_index_media_type(media_type) { ManifestKind::Index } else { ManifestKind::Image };

        let (config, layers, manifests) = match kind {
            ManifestKind::Image => {
                if raw.manifests.is_some() {
                    return Err(ManifestError::UnexpectedField { field: "manifests", media_type });
                }
                let config = raw.config.ok_or_else(|| missing("config"))?;
                let layers = raw.layers.ok_or_else(|| missing("layers"))?;
                (Some(descriptor(config, "config")?), descriptors(layers, "layers")?, Vec::new())
            }
            ManifestKind::Index => {
                if raw.config.is_some() {
                    return Err(ManifestError::UnexpectedField { field: "config", media_type });
                }
                if raw.layers.is_some() {
                    return Err(ManifestError::UnexpectedField { field: "layers", media_type });
                }
                let manifests = raw.manifests.ok_or_else(|| missing("manifests"))?;
                (None, Vec::new(), descriptors(manifests, "manifests")?)
            }
        };
        let subject = raw.subject.map(|s| descriptor(s, "subject")).transpose()?;
        let artifact_type = match raw.artifact_type {
            Some(value) => Some(media_type_field(value, "artifactType".to_string())?),
            None => config.as_ref().map(|c| c.media_type.clone()),
        };
        Ok(ManifestInfo {
            media_type,
            kind,
            config,
            layers,
            manifests,
            subject,
            artifact_type,
            annotations: raw.annotations.unwrap_or_default(),
        })
    }

    /// Every blob the manifest references, config first; a registry checks these exist before accepting it.
    pub fn blobs(&self) -> impl Iterator<Item = &Descriptor> {
        self.config.iter().chain(&self.layers)
    }

    /// This manifest's entry in its subject's referrers list.
    pub fn referrer_descriptor(&self, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: self.media_type.to_string(),
            digest,
            size,
            artifact_type: self.artifact_type.clone(),
            annotations: self.annotations.clone(),
            platform: None,
        }
    }

    /// The best child manifest for `wanted`; see [`select_platform`].
    pub fn select_platform(&self, wanted: &Platform) -> Option<&Descriptor> {
        select_platform(&self.manifests, wanted)
    }
}

/// Decides between the body's `mediaType`, the header and the document's shape, refusing contradictions.
fn effective_media_type(raw: &RawManifest, content_type: Option<&str>) -> Result<&'static str, ManifestError> {
    let header = content_type
        .map(media_types::essence)
        .filter(|h| !h.is_empty() && !GENERIC_CONTENT_TYPES.iter().any(|generic| generic.eq_ignore_ascii_case(h)));
    let from_header = match header {
        Some(h) => Some(
            media_types::canonical_manifest_media_type(h)
                .ok_or_else(|| ManifestError::UnsupportedMediaType { field: "Content-Type", value: h.to_string() })?,
        ),
        None => None,
    };
    let from_body = match &raw.media_type {
        Some(value) => {
            if !media_types::is_valid_media_type(value) {
                return Err(ManifestError::InvalidMediaType { field: "mediaType".to_string(), value: value.clone() });
            }
            Some(
                media_types::canonical_manifest_media_type(value)
                    .ok_or_else(|| ManifestError::UnsupportedMediaType { field: "mediaType", value: value.clone() })?,
            )
        }
        None => None,
    };
    if let (Some(body), Some(head)) = (from_body, from_header)
        && body != head
    {
        return Err(ManifestError::MediaTypeMismatch {
            body: raw.media_type.clone().unwrap_or_default(),
            header: header.unwrap_or_default().to_string(),
        });
    }
    if let Some(media_type) = from_body.or(from_header) {
        return Ok(media_type);
    }
    // Inferring from shape is what the image spec allows for OCI manifests without `mediaType` (Docker's
    // always carry one); guessing when both shapes are present is how confusion attacks work, so refuse.
    let looks_like_index = raw.manifests.is_some();
    let looks_like_image = raw.config.is_some() || raw.layers.is_some();
    match (looks_like_index, looks_like_image) {
        (true, true) => Err(ManifestError::Ambiguous),
        (true, false) => Ok(OCI_IMAGE_INDEX),
        (false, true) => Ok(OCI_IMAGE_MANIFEST),
        (false, false) => Err(ManifestError::UnknownKind),
    }
}

/// The first of the best-matching entries of an index for `wanted`, or `None` if none can run there.
///
/// Names are normalised as container runtimes do (`x86_64` is `amd64`, `aarch64` is `arm64`, a missing arm64
/// variant is `v8`, a missing arm variant `v7`, a missing amd64 variant `v1`). An exact variant wins; failing
/// that, a lower variant of the same architecture runs too (arm v6 on arm v7, amd64 v2 on amd64 v3), the
/// closest one preferred. Entries without a platform are skipped. With an `os.version` wanted, an entry
/// carrying the same one wins a tie.
pub fn select_platform<'a>(manifests: &'a [Descriptor], wanted: &Platform) -> Option<&'a Descriptor> {
    let wanted_norm = Normalized::of(wanted);
    let mut best: Option<(u32, &Descriptor)> = None;
    for descriptor in manifests {
        let Some(platform) = &descriptor.platform else { continue };
        let Some(mut score) = wanted_norm.score(&Normalized::of(platform)) else { continue };
        if wanted.os_version.is_some() && wanted.os_version == platform.os_version {
            score += 1;
        }
        if best.is_none_or(|(top, _)| score > top) {
            best = Some((score, descriptor));
        }
    }
    best.map(|(_, descriptor)| descriptor)
}

struct Normalized {
    os: String,
    arch: String,
    variant: Option<String>,
}

impl Normalized {
    fn of(platform: &Platform) -> Normalized {
        let os = match platform.os.to_ascii_lowercase().as_str() {
            "macos" => "darwin".to_string(),
            other => other.to_string(),
        };
        let variant = platform.variant.as_deref().map(str::to_ascii_lowercase).filter(|v| !v.is_empty());
        let (arch, implied_variant) = match platform.architecture.to_ascii_lowercase().as_str() {
            "x86_64" | "x86-64" | "amd64" => ("amd64".to_string(), None),
            "aarch64" | "arm64" => ("arm64".to_string(), None),
            "armhf" => ("arm".to_string(), Some("v7")),
            "armel" => ("arm".to_string(), Some("v6")),
            "i386" | "i686" | "386" => ("386".to_string(), None),
            other => (other.to_string(), None),
        };
        let variant = variant.or(implied_variant.map(str::to_string));
        let variant = match arch.as_str() {
            "amd64" | "arm64" | "arm" => {
                let default = match arch.as_str() {
                    "amd64" => "v1",
                    "arm64" => "v8",
                    _ => "v7",
                };
                let v = variant.unwrap_or_else(|| default.to_string());
                // `8` and `v8` both occur in the wild for the same thing.
                Some(if v.starts_with(|c: char| c.is_ascii_digit()) { format!("v{v}") } else { v })
            }
            _ => variant,
        };
        Normalized { os, arch, variant }
    }

    /// Higher is better; `None` means the candidate cannot run on `self`.
    fn score(&self, candidate: &Normalized) -> Option<u32> {
        if self.os != candidate.os || self.arch != candidate.arch {
            return None;
        }
        if self.variant == candidate.variant {
            return Some(1000);
        }
        let level =
            |v: &Option<String>| v.as_deref().and_then(|v| v.strip_prefix('v')).and_then(|n| n.parse::<u32>().ok());
        let compatible_family = matches!(self.arch.as_str(), "arm" | "amd64" | "arm64");
        match (level(&self.variant), level(&candidate.variant)) {
            (Some(want), Some(have)) if compatible_family && have < want => Some(1000 - (want - have).min(99) * 10),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a JSON object")]
struct RawManifest {
    schema_version: Option<u64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Object<RawDescriptor>>,
    layers: Option<Vec<Object<RawDescriptor>>>,
    manifests: Option<Vec<Object<RawDescriptor>>>,
    subject: Option<Object<RawDescriptor>>,
    annotations: Option<BTreeMap<String, String>>,
}

/// Every field optional so that a missing one is reported by this crate with its full path, rather than by
/// serde with the parent's path.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a descriptor object")]
struct RawDescriptor {
    media_type: Option<String>,
    digest: Option<String>,
    size: Option<u64>,
    artifact_type: Option<String>,
    annotations: Option<BTreeMap<String, String>>,
    platform: Option<Object<RawPlatform>>,
}

#[derive(Deserialize)]
#[serde(expecting = "a platform object")]
struct RawPlatform {
    architecture: Option<String>,
    os: Option<String>,
    #[serde(rename = "os.version")]
    os_version: Option<String>,
    #[serde(rename = "os.features")]
    os_features: Option<Vec<String>>,
    variant: Option<String>,
}

/// Serde's derived structs also accept a JSON array, matching its items to fields by position; a manifest
/// means nothing of the kind, so `Object` turns the struct request into a map request, which refuses arrays.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(MapOnly(deserializer)).map(Object)
    }
}

struct MapOnly<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for MapOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_map(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

fn descriptors(raw: Vec<Object<RawDescriptor>>, field: &str) -> Result<Vec<Descriptor>, ManifestError> {
    raw.into_iter().enumerate().map(|(i, d)| descriptor(d, &format!("{field}[{i}]"))).collect()
}

fn descriptor(Object(raw): Object<RawDescriptor>, field: &str) -> Result<Descriptor, ManifestError> {
    let media_type = raw.media_type.ok_or_else(|| missing(&format!("{field}.mediaType")))?;
    let media_type = media_type_field(media_type, format!("{field}.mediaType"))?;
    let digest = raw.digest.ok_or_else(|| missing(&format!("{field}.digest")))?;
    let digest =
        digest.parse().map_err(|source| ManifestError::InvalidDigest { field: format!("{field}.digest"), source })?;
    let size = raw.size.ok_or_else(|| missing(&format!("{field}.size")))?;
    let artifact_type = raw.artifact_type.map(|a| media_type_field(a, format!("{field}.artifactType"))).transpose()?;
    let platform = match raw.platform {
        Some(Object(p)) => Some(Platform {
            architecture: p.architecture.ok_or_else(|| missing(&format!("{field}.platform.architecture")))?,
            os: p.os.ok_or_else(|| missing(&format!("{field}.platform.os")))?,
            os_version: p.os_version,
            os_features: p.os_features.unwrap_or_default(),
            variant: p.variant,
        }),
        None => None,
    };
    Ok(Descriptor {
        media_type,
        digest,
        size,
        artifact_type,
        annotations: raw.annotations.unwrap_or_default(),
        platform,
    })
}

fn media_type_field(value: String, field: String) -> Result<String, ManifestError> {
    if media_types::is_valid_media_type(&value) {
        Ok(value)
    } else {
        Err(ManifestError::InvalidMediaType { field, value })
    }
}

fn missing(field: &str) -> ManifestError {
    ManifestError::MissingField(field.to_string())
}

fn json_error(err: serde_path_to_error::Error<serde_json::Error>) -> ManifestError {
    let message = err.inner().to_string();
    if !err.inner().is_data() {
        return ManifestError::Syntax(message);
    }
    let field = if err.path().iter().next().is_none() { "manifest".to_string() } else { err.path().to_string() };
    ManifestError::Json { field, message }
}

fn len_u64(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
