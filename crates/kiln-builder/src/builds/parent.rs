//! What a build stands on: the parent's manifest, config and layers from Kiln's own
//! registry, and the three files the builder must merge with (dpkg status, passwd, group).

use std::sync::Arc;

use kiln_model::image::resolve_parent_reference;
use kiln_model::{BaseImage, Image, Status};
use kiln_oci::Digest;
use kiln_registry::Registry;
use kiln_registry::image::{Config, ImageReadError, LocalImage};
use kiln_store::{KvStore, records};

use super::reuse::{BuildMemo, ParentFiles};
use crate::error::BuildError;

/// An image owns the registry repository `<org>/<name>` (names are case-insensitive there).
pub fn image_repository(org: &str, name: &str) -> String {
    format!("{org}/{}", name.to_ascii_lowercase())
}

/// Root images Kiln assembles live apart from images: `<org>/base/<name>`.
pub fn base_repository(org: &str, name: &str) -> String {
    format!("{org}/base/{}", name.to_ascii_lowercase())
}

pub struct LoadedParent {
    /// As a Dockerfile's `FROM` would name it.
    pub reference: String,
    pub repository: String,
    pub digest: Digest,
    pub image: kiln_build::assemble::ParentImage,
    pub language: Option<String>,
    /// Language packages found in the parent's layers (Python distributions, npm packages),
    /// for parents Kiln did not build itself.
    pub runtime: Vec<kiln_model::InventoryItem>,
}

/// Finds the parent's manifest in Kiln's registry. `registry_host` is how Kiln's registry is
/// addressed in references, so base images Kiln bootstrapped are recognised as its own.
pub async fn load(
    store: &dyn KvStore,
    registry: &Arc<Registry>,
    registry_host: &str,
    memo: &BuildMemo,
    image: &Image,
) -> Result<LoadedParent, BuildError> {
    let org = image.organization.as_str();
    let failed = |e: kiln_store::StoreError| BuildError::store("reading the parent", e);
    let (repository, digest, reference, language) = match (&image.parent_image_name, &image.base_image_name) {
        (Some(parent), _) => {
            let (parent_org, name) = resolve_parent_reference(org, parent);
            let entry = store
                .get(&records::key::<Image>(parent_org, name))
                .await
                .map_err(failed)?
                .ok_or_else(|| BuildError::refused(format!("parent image {parent:?} no longer exists")))?;
            let parent_image: Image = records::decode(&entry).map_err(failed)?;
            let digest = match (&parent_image.digest, parent_image.status) {
                (Some(digest), Status::Ready | Status::Updating) => digest.clone(),
                _ => return Err(BuildError::refused(format!("parent image {parent:?} is not READY: build it first"))),
            };
            let reference = parent_image.reference.clone().unwrap_or_else(|| parent.clone());
            (image_repository(parent_org, name), digest, reference, parent_image.language)
        }
        (None, Some(base)) => {
            let (base_org, name) = resolve_parent_reference(org, base);
            let entry = store
                .get(&records::key::<BaseImage>(base_org, name))
                .await
                .map_err(failed)?
                .ok_or_else(|| BuildError::refused(format!("base image {base:?} no longer exists")))?;
            let base_image: BaseImage = records::decode(&entry).map_err(failed)?;
            let digest = match (&base_image.digest, base_image.status) {
                (Some(digest), Status::Ready) => digest.clone(),
                _ => return Err(BuildError::refused(format!("base image {base:?} is not READY"))),
            };
            // Kiln's own images may carry another host name for Kiln (an earlier listen
            // address): the manifest being in Kiln's registry under that path is what counts.
            let path = base_image
                .reference
                .strip_prefix(&format!("{registry_host}/"))
                .or_else(|| base_image.reference.split_once('/').map(|(_, path)| path))
                .unwrap_or(&base_image.reference);
            let named = path.split(['@', ':']).next().unwrap_or(path).to_string();
            // A base image from another registry is built on from the copy the controller
            // made of it in Kiln's registry.
            let mut repository = None;
            for candidate in [named, base_repository(base_org, name)] {
                let held = kiln_registry::names::check_repository(&candidate).is_ok()
                    && registry
                        .read_manifest(&candidate, &digest)
                        .await
                        .map_err(|e| BuildError::registry("reading the parent", e))?
                        .is_some();
                if held {
                    repository = Some(candidate);
                    break;
                }
            }
            let Some(repository) = repository else {
                return Err(BuildError::unavailable(format!(
                    "base image {base:?} ({}) is not copied into Kiln's registry yet: the controller copies it when it checks the image",
                    base_image.reference
                )));
            };
            (repository, digest, base_image.reference.clone(), Some(base_image.language))
        }
        (None, None) => return Err(BuildError::refused("the image names no parent")),
    };
    let digest: Digest = digest.parse().map_err(|e| BuildError::refused(format!("parent digest {digest:?}: {e}")))?;
    let unavailable = |what: &str| {
        BuildError::refused(format!("the parent's {what} is missing from repository {repository} of Kiln's registry"))
    };
    let registry_failed = |e: kiln_registry::error::RegistryError| BuildError::registry("reading the parent", e);
    let (info, config) = match registry.read_image(&repository, &digest.to_string(), Config::Read).await {
        Ok(LocalImage { info, config: Some(config), .. }) => (info, config),
        Ok(LocalImage { config: None, .. }) | Err(ImageReadError::NoConfig(_)) => return Err(unavailable("config")),
        Err(ImageReadError::NoManifest { .. }) => return Err(unavailable("manifest")),
        Err(ImageReadError::Registry(e)) => return Err(registry_failed(e)),
        Err(e) => return Err(BuildError::image("the parent", e)),
    };
    let layers = info.layers.clone();
    let scan_runtime = image.parent_image_name.is_none();
    // The manifest digest names every byte of the layers, so what was read is read for good.
    let memo_key = format!("{digest} {scan_runtime}");
    let read = match memo.parent(&memo_key) {
        Some(read) => read,
        None => {
            let read = read_parent_files(registry, &repository, &layers, scan_runtime).await?;
            memo.remember_parent(memo_key, read.clone());
            std::sync::Arc::new(read)
        }
    };
    let ParentFiles { dpkg_status, passwd, group, runtime, licences } = read.as_ref().clone();
    Ok(LoadedParent {
        reference,
        repository,
        digest,
        image: kiln_build::assemble::ParentImage {
            config,
            layers,
            dpkg_status: dpkg_status.unwrap_or_default(),
            passwd,
            group,
            licences,
        },
        language,
        runtime,
    })
}

/// The system files (dpkg status, passwd, group), language packages and licences of a parent.
type ReadFiles = (
    [Option<String>; 3],
    Vec<kiln_model::InventoryItem>,
    std::collections::BTreeMap<String, kiln_model::PackageLicense>,
);

/// Reads the dpkg status, passwd, group and the packages' copyright files (and, for parents
/// Kiln did not build, the language packages) in one pass through the layers, each a gunzip.
async fn read_parent_files(
    registry: &Registry,
    repository: &str,
    layers: &[kiln_oci::Descriptor],
    scan_runtime: bool,
) -> Result<ParentFiles, BuildError> {
    let unavailable = |what: &str| {
        BuildError::refused(format!("the parent's {what} is missing from repository {repository} of Kiln's registry"))
    };
    let registry_failed = |e: kiln_registry::error::RegistryError| BuildError::registry("reading the parent", e);
    let mut files = Vec::new();
    for layer in layers {
        let reader = registry.open_blob(repository, &layer.digest).await.map_err(registry_failed)?;
        let reader = reader.ok_or_else(|| unavailable(&format!("layer {}", layer.digest)))?;
        files.push(reader.file.into_std().await);
    }
    const SYSTEM_FILES: [&str; 3] = ["var/lib/dpkg/status", "etc/passwd", "etc/group"];
    let read = tokio::task::spawn_blocking(move || -> Result<ReadFiles, String> {
        let mut readers = Vec::new();
        for file in &files {
            let mut file = file.try_clone().map_err(|e| e.to_string())?;
            std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0)).map_err(|e| e.to_string())?;
            readers.push(std::io::BufReader::new(file));
        }
        let wanted = |path: &str| {
            SYSTEM_FILES.contains(&path)
                || kiln_build::copyright_owner(path).is_some()
                || (scan_runtime && is_language_manifest(path))
        };
        let mut found = kiln_build::read_files_from_layers(readers, wanted).map_err(|e| e.to_string())?;
        let system = SYSTEM_FILES.map(|path| found.remove(path).map(|b| String::from_utf8_lossy(&b).into_owned()));
        let licences = kiln_build::licences_from_copyright_files(&found);
        let runtime = found.iter().filter_map(|(path, data)| language_item(path, data)).collect();
        Ok((system, runtime, licences))
    })
    .await
    .map_err(|e| BuildError::stopped("reading the parent's layers", e))?
    .map_err(|e| BuildError::refused(format!("the parent's layers cannot be read: {e}")))?;
    let ([dpkg_status, passwd, group], runtime, licences) = read;
    Ok(ParentFiles { dpkg_status, passwd, group, runtime, licences })
}

/// `…/dist-packages/<dist>.dist-info/METADATA` and `…/node_modules/<name>/package.json`.
pub(crate) fn is_language_manifest(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    let n = parts.len();
    if n >= 3 && parts[n - 1] == "METADATA" && parts[n - 2].ends_with(".dist-info") {
        return matches!(parts[n - 3], "dist-packages" | "site-packages");
    }
    if n >= 3 && parts[n - 1] == "package.json" {
        let scoped = n >= 4 && parts[n - 3].starts_with('@') && parts[n - 4] == "node_modules";
        return parts[n - 3] == "node_modules" || scoped;
    }
    false
}

pub(crate) fn language_item(path: &str, data: &[u8]) -> Option<kiln_model::InventoryItem> {
    use kiln_model::{Ecosystem, InventoryItem};
    if path.ends_with("/METADATA") {
        let metadata = kiln_packages::pypi::metadata::parse_metadata(&String::from_utf8_lossy(data));
        if metadata.name.is_empty() || metadata.version.is_empty() {
            return None;
        }
        return Some(InventoryItem {
            ecosystem: Ecosystem::Pypi,
            purl: format!("pkg:pypi/{}@{}", kiln_packages::pypi::normalize_name(&metadata.name), metadata.version),
            name: metadata.name,
            version: metadata.version,
            architecture: String::new(),
            source_name: None,
            source_version: None,
            license_kind: metadata.license.as_ref().map(|_| kiln_model::LicenseKind::Declared),
            license: metadata.license,
            license_texts: Vec::new(),
            layer: None,
        });
    }
    let manifest: serde_json::Value = serde_json::from_slice(data).ok()?;
    let name = manifest.get("name")?.as_str()?.to_string();
    let version = manifest.get("version")?.as_str()?.to_string();
    Some(InventoryItem {
        ecosystem: Ecosystem::Npm,
        purl: format!("pkg:npm/{}@{version}", name.replacen('@', "%40", 1)),
        name,
        version,
        architecture: String::new(),
        source_name: None,
        source_version: None,
        license: manifest.get("license").and_then(|l| l.as_str()).map(str::to_string),
        license_kind: manifest.get("license").and_then(|l| l.as_str()).map(|_| kiln_model::LicenseKind::Declared),
        license_texts: Vec::new(),
        layer: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_manifests_are_recognised_and_read() {
        assert!(is_language_manifest("usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA"));
        assert!(is_language_manifest("usr/local/lib/python3.11/site-packages/a-1.dist-info/METADATA"));
        assert!(is_language_manifest("usr/lib/node_modules/lodash/package.json"));
        assert!(is_language_manifest("app/node_modules/@scope/name/package.json"));
        assert!(!is_language_manifest("usr/lib/node_modules/lodash/lib/package.json"));
        assert!(!is_language_manifest("srv/a-1.dist-info/METADATA"));
        let python =
            language_item("x/dist-packages/Six-1.dist-info/METADATA", b"Name: Six\nVersion: 1.16.0\nLicense: MIT\n\n");
        let python = python.expect("python item");
        assert_eq!((python.purl.as_str(), python.license.as_deref()), ("pkg:pypi/six@1.16.0", Some("MIT")));
        let npm =
            language_item("node_modules/@s/n/package.json", br#"{"name":"@s/n","version":"1.0.0","license":"ISC"}"#);
        assert_eq!(npm.expect("npm item").purl, "pkg:npm/%40s/n@1.0.0");
    }
}
