//! The one entry point the server calls: unpacked packages and a parent in, layer files,
//! config, manifest, inventory and a build log out. Everything else in this crate is a step
//! of this function, usable on its own.

mod inventory;

use std::collections::BTreeMap;
use std::path::PathBuf;

use kiln_model::inventory::InventoryItem;
use kiln_oci::{Descriptor, Digest};
use kiln_packages::archive::Entry;

pub use inventory::deb_purl;

use crate::config::{BuiltImage, ConfigError, NewLayer, ParentConfig, build_image};
use crate::dpkg::{self, STATUS_PATH};
use crate::fixups::{self, symlink};
use crate::group::{GroupError, plan_layers};
use crate::layer::{LayerBlob, LayerError, write_layer};
use crate::package::{MERGED_USR_DIRS, RuntimePackage, UnpackedPackage, merge_usr};
use crate::settings::ImageSettings;

/// The image being built on, as read from the registry (see [`crate::read_file_from_layers`]
/// for the two files).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParentImage {
    /// The parent's config blob; its `rootfs.diff_ids` must match `layers`.
    pub config: Vec<u8>,
    /// The parent manifest's layers, bottom to top.
    pub layers: Vec<Descriptor>,
    /// `/var/lib/dpkg/status` of the parent, empty when it has none.
    pub dpkg_status: String,
    pub passwd: Option<String>,
    pub group: Option<String>,
}

/// Everything one build needs.
#[derive(Debug, Clone)]
pub struct AssembleInput {
    /// `None` builds a root image from the packages alone.
    pub parent: Option<ParentImage>,
    /// In installation order; `(name, architecture)` must be unique.
    pub packages: Vec<UnpackedPackage>,
    /// Language packages, layered after the system packages and listed in the inventory.
    pub runtime: Vec<RuntimePackage>,
    /// The parent's language packages, to carry into the inventory (dpkg status only knows
    /// the system ones).
    pub parent_runtime: Vec<InventoryItem>,
    /// Files that are not from packages (a plugin's server), one layer on top.
    pub extra_files: Vec<Entry>,
    pub settings: ImageSettings,
    /// Package layers at most ([`crate::DEFAULT_LAYER_BUDGET`] when unsure).
    pub layer_budget: usize,
    pub source_date_epoch: i64,
    /// Where layer files are written; the caller removes them after pushing.
    pub scratch_dir: PathBuf,
    /// Whether the image has merged `/usr` (`/bin -> usr/bin`): true for Debian 12 and later
    /// parents, and for root images (which then get the symlinks). Package files under
    /// `bin/`, `lib/`, … are moved below `usr/`, as dpkg writing through the symlinks does.
    pub merged_usr: bool,
    /// The purl `distro` qualifier, such as `debian-12`.
    pub distro: Option<String>,
}

/// A built image, ready to push: layer files first, then the config, then the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssembledImage {
    /// The new layers only, bottom to top (the parent's are already in the registry).
    pub layers: Vec<LayerBlob>,
    pub config: Vec<u8>,
    pub config_digest: Digest,
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
    /// The manifest's descriptor, the `subject` of the SBOM.
    pub manifest_descriptor: Descriptor,
    /// New packages with their layer digest, and the parent's packages (no layer), by name.
    pub inventory: Vec<InventoryItem>,
    /// The image's `/var/lib/dpkg/status`.
    pub dpkg_status: String,
    /// Lines for the build log: the layer plan and every skipped maintainer script.
    pub log: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    #[error("package {name} ({architecture}) is given twice; resolve each package once")]
    DuplicatePackage { name: String, architecture: String },
    #[error("cannot write the layer of {what}: {source}")]
    Layer { what: String, source: LayerError },
    #[error(transparent)]
    Group(#[from] GroupError),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

type Key = (String, String);

/// Builds the image: package layers (largest packages alone, the rest shared), a metadata
/// layer (dpkg status, accounts, alternatives, CA bundle, merged-`/usr` symlinks of a root
/// image), the extra files' layer, then config and manifest. Same input, same bytes.
pub fn assemble(input: AssembleInput) -> Result<AssembledImage, AssembleError> {
    let mut by_key: BTreeMap<Key, &UnpackedPackage> = BTreeMap::new();
    for package in &input.packages {
        let key = (package.name.clone(), package.architecture.clone());
        if by_key.insert(key, package).is_some() {
            return Err(AssembleError::DuplicatePackage {
                name: package.name.clone(),
                architecture: package.architecture.clone(),
            });
        }
    }
    let mut runtime_by_key: BTreeMap<Key, &RuntimePackage> = BTreeMap::new();
    for package in &input.runtime {
        let key = runtime_key(package);
        if runtime_by_key.insert(key, package).is_some() {
            return Err(AssembleError::DuplicatePackage {
                name: package.name.clone(),
                architecture: package.ecosystem.as_str().to_string(),
            });
        }
    }
    let parent = input.parent.as_ref();
    let fixed = parent.map_or(0, |p| p.layers.len()) + 1 + usize::from(!input.extra_files.is_empty());
    let mut sizes: Vec<(Key, u64)> = by_key.iter().map(|(k, p)| (k.clone(), p.unpacked_size())).collect();
    sizes.extend(runtime_by_key.iter().map(|(k, p)| (k.clone(), p.unpacked_size())));
    let plan = plan_layers(&sizes, input.layer_budget, fixed)?;
    let mut log = Vec::new();
    let mut built = Built {
        input: &input,
        jobs: Vec::new(),
        layers: Vec::new(),
        new_layers: Vec::new(),
        layer_of: BTreeMap::new(),
    };

    let mut used_usr_dirs = Vec::new();
    // System packages first, then language packages, each group in its own order, so a
    // language package never lands in a layer below the libraries it loads.
    let (own_runtime, own_system): (Vec<&Key>, Vec<&Key>) =
        plan.own.iter().partition(|k| runtime_by_key.contains_key(*k));
    for key in own_system.into_iter().chain(own_runtime) {
        let (entries, what) = if let Some(package) = by_key.get(key) {
            (
                package_entries(package, input.merged_usr, &mut used_usr_dirs),
                format!("package {}={}", package.name, package.version),
            )
        } else if let Some(package) = runtime_by_key.get(key) {
            (
                package.entries.clone(),
                format!("{} package {}=={}", package.ecosystem.as_str(), package.name, package.version),
            )
        } else {
            continue;
        };
        built.write(&entries, &what, std::slice::from_ref(key));
    }
    let (shared_runtime, shared_system): (Vec<Key>, Vec<Key>) =
        plan.shared.iter().cloned().partition(|k| runtime_by_key.contains_key(k));
    if !shared_system.is_empty() {
        let mut entries = Vec::new();
        let mut names = Vec::new();
        for key in &shared_system {
            let Some(package) = by_key.get(key) else { continue };
            entries.extend(package_entries(package, input.merged_usr, &mut used_usr_dirs));
            names.push(format!("{}={}", package.name, package.version));
        }
        built.write(&entries, &format!("packages {}", names.join(" ")), &shared_system);
    }
    if !shared_runtime.is_empty() {
        let mut entries = Vec::new();
        let mut names = Vec::new();
        for key in &shared_runtime {
            let Some(package) = runtime_by_key.get(key) else { continue };
            entries.extend(package.entries.iter().cloned());
            names.push(format!("{}=={}", package.name, package.version));
        }
        built.write(&entries, &format!("language packages {}", names.join(" ")), &shared_runtime);
    }

    let stanzas: Vec<String> = input.packages.iter().map(dpkg::status_stanza).collect();
    let dpkg_status = dpkg::merge_status(parent.map_or("", |p| &p.dpkg_status), &stanzas);
    let fixups = fixups::fixups(
        &input.packages,
        parent.and_then(|p| p.passwd.as_deref()),
        parent.and_then(|p| p.group.as_deref()),
    );
    let mut metadata = fixups.entries;
    if input.merged_usr {
        metadata = merge_usr(&metadata).0;
    }
    metadata.push(fixups::file(STATUS_PATH, dpkg_status.clone().into_bytes(), 0o644, 0));
    if input.merged_usr && parent.is_none() {
        for dir in MERGED_USR_DIRS.iter().filter(|d| ["bin", "sbin", "lib"].contains(d) || used_usr_dirs.contains(d)) {
            metadata.push(symlink(dir, &format!("usr/{dir}")));
        }
    }
    built.write(&metadata, "image metadata: dpkg status, accounts, alternatives, CA bundle", &[]);
    log.extend(fixups.report);
    if !input.extra_files.is_empty() {
        let mut paths: Vec<&str> = input.extra_files.iter().map(|e| e.path.as_str()).collect();
        paths.sort_unstable();
        paths.dedup();
        let what = format!("files /{}", paths.join(" /"));
        built.write(&input.extra_files, &what, &[]);
    }

    built.finish(&mut log)?;
    let parent_config = parent.map(|p| ParentConfig { config: &p.config, layers: &p.layers });
    let image: BuiltImage = build_image(parent_config, &built.new_layers, &input.settings, input.source_date_epoch)?;
    let inventory = inventory_of(&input, &built.layer_of);
    Ok(AssembledImage {
        layers: built.layers,
        config: image.config,
        config_digest: image.config_digest,
        manifest: image.manifest,
        manifest_digest: image.manifest_digest,
        manifest_descriptor: image.manifest_descriptor,
        inventory,
        dpkg_status,
        log,
    })
}

/// A package's files plus its dpkg info files: nothing from any other package, so the layer
/// is the same in every image holding this package version.
fn package_entries(package: &UnpackedPackage, merged_usr: bool, used: &mut Vec<&'static str>) -> Vec<Entry> {
    let mut entries = if merged_usr {
        let (entries, dirs) = merge_usr(&package.entries);
        for dir in dirs {
            if !used.contains(&dir) {
                used.push(dir);
            }
        }
        entries
    } else {
        package.entries.clone()
    };
    entries.extend(dpkg::info_entries(package));
    entries
}

struct Built<'a> {
    input: &'a AssembleInput,
    /// Layers planned, in image order, written together by [`Built::finish`].
    jobs: Vec<LayerJob>,
    layers: Vec<LayerBlob>,
    new_layers: Vec<NewLayer>,
    layer_of: BTreeMap<Key, Digest>,
}

struct LayerJob {
    entries: Vec<Entry>,
    what: String,
    holds: Vec<Key>,
}

impl Built<'_> {
    fn write(&mut self, entries: &[Entry], what: &str, holds: &[Key]) {
        self.jobs.push(LayerJob { entries: entries.to_vec(), what: what.to_string(), holds: holds.to_vec() });
    }

    /// Writes every planned layer on every core: gzip is most of a build's CPU, and layers
    /// do not depend on each other.
    fn finish(&mut self, log: &mut Vec<String>) -> Result<(), AssembleError> {
        let jobs = std::mem::take(&mut self.jobs);
        let (epoch, scratch) = (self.input.source_date_epoch, &self.input.scratch_dir);
        let results = crate::parallel::map_largest_first(
            &jobs,
            |job| crate::package::file_bytes(&job.entries),
            |job| write_layer(&job.entries, epoch, scratch),
        );
        for (job, result) in jobs.into_iter().zip(results) {
            let written = result.unwrap_or_else(|| {
                Err(LayerError::Io {
                    dir: scratch.clone(),
                    source: std::io::Error::other("a layer writer stopped before writing its layer"),
                })
            });
            let blob = written.map_err(|source| AssembleError::Layer { what: job.what.clone(), source })?;
            log.push(format!("layer {}: {} ({} bytes): {}", self.layers.len() + 1, blob.digest, blob.size, job.what));
            for key in &job.holds {
                self.layer_of.insert(key.clone(), blob.digest.clone());
            }
            self.new_layers.push(NewLayer {
                descriptor: blob.descriptor(),
                diff_id: blob.diff_id.clone(),
                created_by: format!("kiln: {}", job.what),
            });
            self.layers.push(blob);
        }
        Ok(())
    }
}

fn inventory_of(input: &AssembleInput, layer_of: &BTreeMap<Key, Digest>) -> Vec<InventoryItem> {
    let distro = input.distro.as_deref();
    let mut items: BTreeMap<Key, InventoryItem> = BTreeMap::new();
    if let Some(parent) = &input.parent {
        for installed in dpkg::installed_packages(&parent.dpkg_status) {
            let key = (installed.name.clone(), installed.architecture.clone());
            items.insert(key, inventory::parent_item(&installed, distro));
        }
    }
    let mut runtime: BTreeMap<Key, InventoryItem> = BTreeMap::new();
    for item in &input.parent_runtime {
        runtime.insert((format!("{}:{}", item.ecosystem.as_str(), item.name), String::new()), item.clone());
    }
    for package in &input.runtime {
        let key = runtime_key(package);
        let layer = layer_of.get(&key).map(|d| d.to_string());
        runtime.insert(key, inventory::runtime_item(package, layer));
    }
    for package in &input.packages {
        let key = (package.name.clone(), package.architecture.clone());
        // A new version replaces the parent's entry whatever its architecture, as in dpkg.
        if package.multi_arch.as_deref() != Some("same") {
            items.retain(|(name, _), _| *name != package.name);
        }
        let layer = layer_of.get(&key).map(|d| d.to_string());
        items.insert(key, inventory::new_item(package, layer, distro));
    }
    items.into_values().chain(runtime.into_values()).collect()
}

/// The Debian packages a dpkg `status` file lists as installed, as inventory items (for a
/// base image Kiln did not build; no layer is known for them).
pub fn dpkg_inventory(status: &str, distro: Option<&str>) -> Vec<InventoryItem> {
    dpkg::installed_packages(status).iter().map(|p| inventory::parent_item(p, distro)).collect()
}

/// Keys of language packages cannot meet those of Debian packages (`name`, `arch`); npm's
/// nested copies of one name differ by where they sit.
fn runtime_key(package: &RuntimePackage) -> Key {
    (format!("{}:{}", package.ecosystem.as_str(), package.name), package.location.clone().unwrap_or_default())
}

#[cfg(test)]
mod tests;
