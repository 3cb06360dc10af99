//! Reading an image out of Kiln's own registry: its manifest (by tag or digest), parsed,
//! and its config when the caller needs it. Every reader inside Kiln (parents, sandboxes,
//! base-image scans, function composition, SBOMs) goes through this one path and maps its
//! typed error to its own words.

use kiln_oci::{Digest, ManifestInfo};

use crate::Registry;
use crate::error::RegistryError;
use crate::meta::StoredManifest;

/// The most an image config may take; real ones are a few KiB.
pub const MAX_CONFIG: u64 = 4 << 20;

/// A manifest as stored, parsed, with its config if it was asked for.
pub struct LocalImage {
    pub digest: Digest,
    pub stored: StoredManifest,
    pub info: ManifestInfo,
    pub config: Option<Vec<u8>>,
}

impl LocalImage {
    pub fn media_type(&self) -> &str {
        &self.stored.meta.media_type
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImageReadError {
    /// The registry itself failed (storage, store): another try may pass.
    #[error("Kiln's registry failed: {}", .0.message)]
    Registry(RegistryError),
    #[error("{repository}:{reference} is not in Kiln's registry")]
    NoManifest { repository: String, reference: String },
    #[error("its manifest is invalid: {0}")]
    Invalid(String),
    #[error("it is not an image (its manifest has no config)")]
    NotAnImage,
    #[error("its config blob {0} is missing")]
    NoConfig(Digest),
}

impl From<RegistryError> for ImageReadError {
    fn from(e: RegistryError) -> ImageReadError {
        ImageReadError::Registry(e)
    }
}

/// Whether a config is read with the manifest.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Config {
    Skip,
    Read,
}

impl Registry {
    /// The manifest `reference` (a tag or digest) names in `repository`, parsed; with
    /// `Config::Read` also its config (at most [`MAX_CONFIG`] bytes), which must exist.
    pub async fn read_image(
        &self,
        repository: &str,
        reference: &str,
        config: Config,
    ) -> Result<LocalImage, ImageReadError> {
        let missing = || ImageReadError::NoManifest { repository: repository.into(), reference: reference.into() };
        let (digest, stored) = self.read_manifest(repository, reference).await?.ok_or_else(missing)?;
        let info = ManifestInfo::parse(&stored.content, Some(&stored.meta.media_type))
            .map_err(|e| ImageReadError::Invalid(e.to_string()))?;
        let config = match config {
            Config::Skip => None,
            Config::Read => {
                let descriptor = info.config.as_ref().ok_or(ImageReadError::NotAnImage)?;
                let bytes = self.read_blob(repository, &descriptor.digest, MAX_CONFIG).await?;
                Some(bytes.ok_or_else(|| ImageReadError::NoConfig(descriptor.digest.clone()))?)
            }
        };
        Ok(LocalImage { digest, stored, info, config })
    }
}
