//! A function image is its runtime image's layers plus the code layer: composing one reads
//! the runtime's manifest and config from Kiln's registry and writes a config and a manifest
//! (untagged; the tag moves with the function's record). No layer is read or rebuilt.

use std::collections::BTreeMap;

use kiln_build::{ImageSettings, NewLayer, ParentConfig, build_image};
use kiln_oci::{Digest, ManifestInfo};
use kiln_registry::Registry;
use kiln_registry::image::{Config, ImageReadError, LocalImage};

use super::validate::Runtime;

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("image {image:?} has no manifest {digest} in Kiln's registry: rebuild it")]
    NoManifest { image: String, digest: String },
    #[error("image {image:?} has an unusable manifest or config: {message}; rebuild it")]
    Unusable { image: String, message: String },
    #[error("Kiln's registry failed: {0}")]
    Registry(String),
    #[error("writing the function's config: {0}")]
    Config(#[from] kiln_build::ConfigError),
}

impl From<kiln_registry::error::RegistryError> for ComposeError {
    fn from(e: kiln_registry::error::RegistryError) -> ComposeError {
        ComposeError::Registry(e.message)
    }
}

/// A built image as a function image's base.
pub struct LoadedRuntime {
    pub image: String,
    pub digest: String,
    pub info: ManifestInfo,
    pub config: Vec<u8>,
    pub runtime: Runtime,
}

pub async fn load_runtime(
    registry: &Registry,
    repository: &str,
    image: &str,
    digest: &str,
) -> Result<LoadedRuntime, ComposeError> {
    let missing = || ComposeError::NoManifest { image: image.to_string(), digest: digest.to_string() };
    let unusable = |message: String| ComposeError::Unusable { image: image.to_string(), message };
    let (info, config) = match registry.read_image(repository, digest, Config::Read).await {
        Ok(LocalImage { info, config: Some(config), .. }) => (info, config),
        Ok(LocalImage { config: None, .. }) => return Err(unusable("it is not an image manifest".into())),
        Err(ImageReadError::Registry(e)) => return Err(e.into()),
        Err(ImageReadError::NoManifest { .. }) => return Err(missing()),
        Err(ImageReadError::NotAnImage) => return Err(unusable("it is not an image manifest".into())),
        Err(e) => return Err(unusable(e.to_string())),
    };
    let runtime = Runtime::from_config(&config);
    Ok(LoadedRuntime { image: image.to_string(), digest: digest.to_string(), info, config, runtime })
}

/// Writes the function image's config and manifest over `runtime`; returns the manifest's
/// digest. The code layer must already be linked in `repository`.
pub async fn compose(
    registry: &Registry,
    repository: &str,
    runtime: &LoadedRuntime,
    function: &str,
    code: NewLayer,
    source_date_epoch: i64,
) -> Result<Digest, ComposeError> {
    let mut labels = BTreeMap::new();
    labels.insert("dev.kiln.function".to_string(), function.to_string());
    labels.insert("dev.kiln.runtime".to_string(), runtime.digest.clone());
    let built = build_image(
        Some(ParentConfig { config: &runtime.config, layers: &runtime.info.layers }),
        &[code],
        &ImageSettings { labels, ..Default::default() },
        source_date_epoch,
    )?;
    registry.put_blob(repository, &built.config).await?;
    Ok(registry.put_manifest(repository, None, built.manifest, kiln_oci::media_types::OCI_IMAGE_MANIFEST).await?)
}

/// The code layer of a stored function, to compose it over another build.
pub fn code_layer(function: &kiln_model::Function) -> Result<NewLayer, String> {
    let digest: Digest = function.layer.parse().map_err(|e| format!("code layer {:?}: {e}", function.layer))?;
    let diff_id: Digest =
        function.layer_diff_id.parse().map_err(|e| format!("code layer diff id {:?}: {e}", function.layer_diff_id))?;
    Ok(NewLayer {
        descriptor: kiln_oci::Descriptor::new(kiln_oci::media_types::OCI_LAYER_TAR_GZIP, digest, function.layer_size),
        diff_id,
        created_by: format!("kiln: function {} code", function.name),
    })
}
