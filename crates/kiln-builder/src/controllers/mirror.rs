//! Base images from other registries become Kiln's own: the chosen platform's manifest, its
//! config and layers are copied into Kiln's registry (blobs streamed to disk and verified,
//! the manifest last, so a copy cut short is never used), and the layers are read once for
//! what the image already holds. Builds then stand on the copy, whatever happens to the
//! registry it came from.

use std::path::Path;

use kiln_model::{BaseImageInventory, InventoryItem};
use kiln_oci::{Digest, ManifestInfo};
use kiln_registry::Registry;
use kiln_registry::image::{Config, ImageReadError};
use kiln_registry_client::Client;

use crate::builds::parent::{base_repository, is_language_manifest, language_item};

/// Copies `digest` of `repository` (from `client`'s registry) into Kiln's registry as the
/// base image `org/name`; returns the repository it now lives in there.
pub async fn copy_in(
    client: &Client,
    repository: &str,
    digest: &Digest,
    registry: &Registry,
    scratch: &Path,
    org: &str,
    name: &str,
) -> Result<String, String> {
    let target = base_repository(org, name);
    if registry.read_manifest(&target, digest.as_str()).await.map_err(|e| e.message)?.is_some() {
        return Ok(target);
    }
    let (manifest, media_type) = client.fetch_manifest(repository, digest).await.map_err(|e| e.to_string())?;
    let info =
        ManifestInfo::parse(&manifest, Some(&media_type)).map_err(|e| format!("its manifest is invalid: {e}"))?;
    let layers: Vec<&Digest> = info.layers.iter().map(|l| &l.digest).collect();
    let blobs = info.config.iter().chain(info.layers.iter());
    tokio::fs::create_dir_all(scratch).await.map_err(|e| format!("creating {}: {e}", scratch.display()))?;
    for blob in blobs {
        if registry.link_blob(&target, &blob.digest).await.map_err(|e| e.message)? {
            continue;
        }
        // Checks run in parallel: the organisation and name keep their files apart.
        let file = scratch.join(format!("{org}-{name}-{}.blob", blob.digest.hex()));
        let fetched = client.fetch_blob(repository, &blob.digest, blob.size, &file).await;
        let imported = match fetched {
            // A layer that would escape a root never enters Kiln's registry.
            Ok(_) if layers.contains(&&blob.digest) => match check_file(&file, blob.digest.clone()).await {
                Ok(()) => registry.import_file(&target, &file, &blob.digest).await.map_err(|e| e.message),
                Err(e) => Err(e),
            },
            Ok(_) => registry.import_file(&target, &file, &blob.digest).await.map_err(|e| e.message),
            Err(e) => Err(format!("copying {}: {e}", blob.digest)),
        };
        let _ = tokio::fs::remove_file(&file).await;
        imported?;
    }
    registry.put_manifest(&target, None, manifest, &media_type).await.map_err(|e| e.message)?;
    Ok(target)
}

/// Refuses a downloaded layer holding an entry that could escape a root or exhaust the host,
/// naming the layer and the entry. A layer Kiln cannot read at all is let in: the scan reports
/// it, and nothing of Kiln's can apply it either.
async fn check_file(file: &Path, digest: Digest) -> Result<(), String> {
    let file = file.to_path_buf();
    let checked = tokio::task::spawn_blocking(move || {
        let reader = std::fs::File::open(&file).map_err(|e| format!("reading {}: {e}", file.display()))?;
        match kiln_archive::check_layer(std::io::BufReader::new(reader), kiln_archive::Limits::default()) {
            Err(e) if e.is_refusal() && !matches!(e, kiln_archive::LayerError::Corrupt { .. }) => {
                Err(format!("unsafe: layer {digest}: {e}"))
            }
            _ => Ok(()),
        }
    });
    checked.await.map_err(|e| format!("checking the layer stopped: {e}"))?
}

/// What a scan found: the inventory, or a layer the checker refuses (the base image must
/// not be built on).
pub enum Scanned {
    Inventory(BaseImageInventory),
    Unsafe(String),
}

/// Reads the copy's layers, every entry through the layer checker, for its dpkg status and
/// language packages. A layer that cannot be read is reported in `problem`, not as a
/// failure: the image may still serve. A layer that could escape a root is `Unsafe`.
pub async fn scan(registry: &Registry, repository: &str, digest: &Digest) -> Scanned {
    let (items, problem) = match read_inventory(registry, repository, digest).await {
        Ok(items) => (items, None),
        Err(Problem::Unsafe(why)) => return Scanned::Unsafe(why),
        Err(Problem::Unreadable(problem)) => (Vec::new(), Some(problem)),
    };
    let layers_checked = problem.is_none();
    Scanned::Inventory(BaseImageInventory {
        digest: digest.to_string(),
        items,
        problem,
        scanned_time: chrono::Utc::now(),
        layers_checked,
    })
}

enum Problem {
    Unsafe(String),
    Unreadable(String),
}

impl From<String> for Problem {
    fn from(why: String) -> Problem {
        Problem::Unreadable(why)
    }
}

async fn read_inventory(registry: &Registry, repository: &str, digest: &Digest) -> Result<Vec<InventoryItem>, Problem> {
    let info = registry
        .read_image(repository, digest.as_str(), Config::Skip)
        .await
        .map_err(|e| match e {
            ImageReadError::Registry(e) => e.message,
            ImageReadError::NoManifest { .. } => format!("{repository}@{digest} is not in Kiln's registry"),
            other => other.to_string(),
        })?
        .info;
    let mut files = Vec::new();
    for layer in &info.layers {
        let reader = registry
            .open_blob(repository, &layer.digest)
            .await
            .map_err(|e| e.message)?
            .ok_or_else(|| format!("layer {} is missing", layer.digest))?;
        files.push(reader.file.into_std().await);
    }
    let digests: Vec<Digest> = info.layers.iter().map(|l| l.digest.clone()).collect();
    tokio::task::spawn_blocking(move || {
        let readers = files.into_iter().map(std::io::BufReader::new);
        let wanted = |path: &str| {
            path == "var/lib/dpkg/status" || kiln_build::copyright_owner(path).is_some() || is_language_manifest(path)
        };
        let found = kiln_build::read_files_from_layers(readers, wanted).map_err(|e| match &e {
            kiln_build::ReadError::Layer { layer, source } if e.is_unsafe() => {
                let digest = digests.get(*layer).map(ToString::to_string).unwrap_or_default();
                Problem::Unsafe(format!("unsafe: layer {digest}: {source}"))
            }
            _ => Problem::Unreadable(format!("its layers cannot be read: {e}")),
        })?;
        let mut items = match found.get("var/lib/dpkg/status") {
            Some(status) => kiln_build::dpkg_inventory(
                &String::from_utf8_lossy(status),
                None,
                &kiln_build::licences_from_copyright_files(&found),
            ),
            None => Vec::new(),
        };
        items.extend(found.iter().filter_map(|(path, data)| language_item(path, data)));
        Ok(items)
    })
    .await
    .map_err(|e| Problem::Unreadable(format!("reading the layers stopped: {e}")))?
}
