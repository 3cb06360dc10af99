//! The one entry point the server calls: unpacked packages and a parent in, layer files,
//! config, manifest, inventory and a build log out. Everything else in this crate is a step
//! of this function, usable on its own.

mod inventory;

use std::collections::BTreeMap;
use std::path::PathBuf;

use kiln_archive::tree::Entry;
use kiln_model::inventory::InventoryItem;
use kiln_oci::{Descriptor, Digest};

pub use inventory::{copyright_owner, deb_purl, licences_from_copyright_files};

use crate::config::{BuiltImage, ConfigError, NewLayer, ParentConfig, build_image};
use crate::dpkg::{self, STATUS_PATH};
use crate::fixups::{self, symlink};
use crate::group::{GroupError, plan_layers};
use crate::layer::{GZIP_LEVEL, LayerBlob, LayerError, write_layer};
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
    /// Licences from the parent's copyright files, by package name (dpkg status has none).
    pub licences: BTreeMap<String, kiln_model::PackageLicense>,
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
    /// Layers the registry already holds, by [`layer_key`]: used as they are instead of being
    /// written again. Packages whose layers are all here may be [`UnpackedPackage::slimmed`].
    pub reuse: BTreeMap<Digest, ReusedLayer>,
}

/// A package layer an earlier build wrote, known by its [`layer_key`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReusedLayer {
    pub digest: Digest,
    #[serde(rename = "diffId")]
    pub diff_id: Digest,
    pub size: u64,
}

/// One layer of Debian packages the build will have, before anything is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedLayer {
    /// `None` when a package in it has no origin: such a layer is always written.
    pub key: Option<Digest>,
    /// `(name, architecture)` of its packages.
    pub packages: Vec<(String, String)>,
}

/// A built image, ready to push: layer files first, then the config, then the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssembledImage {
    /// The layers this build wrote, bottom to top (the parent's are already in the registry).
    pub layers: Vec<LayerBlob>,
    /// Layers of this image taken from [`AssembleInput::reuse`]: already in the registry.
    pub reused: Vec<Digest>,
    /// Every keyed package layer of the image, written or reused, for the caller's cache.
    pub keyed: Vec<(Digest, ReusedLayer)>,
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
    #[error("the layer of {what} must be written, but its packages were slimmed: unpack them again")]
    Slimmed { what: String },
    #[error(transparent)]
    Group(#[from] GroupError),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

type Key = (String, String);

/// The identity of a package layer: what the layer writer makes of these packages (by their
/// origin), in this order, with this epoch, `/usr` merging and gzip level. The same key
/// always stands for the same blob; bump the version when the writer's output changes. A
/// digest, so a caller may name a file by it (as the layer records on disk are).
/// The image's `created`: its newest input, as apko dates images, so two builds of the same
/// inputs agree and a newer package moves the date. The inputs are the packages (their build
/// times), the parent (its own `created`) and `SOURCE_DATE_EPOCH`, which layer files carry.
fn created(input: &AssembleInput, parent: Option<&ParentImage>) -> i64 {
    let parent_created = parent
        .and_then(|p| serde_json::from_slice::<serde_json::Value>(&p.config).ok())
        .and_then(|config| config.get("created").and_then(serde_json::Value::as_str).map(str::to_string))
        .and_then(|text| chrono::DateTime::parse_from_rfc3339(&text).ok())
        .map(|t| t.timestamp());
    let newest_package = input.packages.iter().filter_map(|p| p.built).max();
    [Some(input.source_date_epoch), parent_created, newest_package].into_iter().flatten().max().unwrap_or(0)
}

pub fn layer_key(packages: &[&UnpackedPackage], merged_usr: bool, source_date_epoch: i64) -> Option<Digest> {
    let mut text = format!("kiln-layer-v1\ngzip {GZIP_LEVEL}\nepoch {source_date_epoch}\nmerged-usr {merged_usr}\n");
    for package in packages {
        let origin = package.origin.as_deref()?;
        text.push_str(&format!("{}\0{}\0{}\0{origin}\n", package.name, package.architecture, package.version));
    }
    Some(Digest::sha256(text.as_bytes()))
}

/// Which packages go in which layer: decided by sizes alone, so it is the same whether the
/// packages are whole or slimmed.
struct Layout<'a> {
    by_key: BTreeMap<Key, &'a UnpackedPackage>,
    runtime_by_key: BTreeMap<Key, &'a RuntimePackage>,
    own_system: Vec<Key>,
    own_runtime: Vec<Key>,
    shared_system: Vec<Key>,
    shared_runtime: Vec<Key>,
}

fn layout(input: &AssembleInput) -> Result<Layout<'_>, AssembleError> {
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
    let fixed = input.parent.as_ref().map_or(0, |p| p.layers.len()) + 1 + usize::from(!input.extra_files.is_empty());
    let mut sizes: Vec<(Key, u64)> = by_key.iter().map(|(k, p)| (k.clone(), p.unpacked_size())).collect();
    sizes.extend(runtime_by_key.iter().map(|(k, p)| (k.clone(), p.unpacked_size())));
    let plan = plan_layers(&sizes, input.layer_budget, fixed)?;
    // System packages first, then language packages, each group in its own order, so a
    // language package never lands in a layer below the libraries it loads.
    let (own_runtime, own_system) = plan.own.into_iter().partition(|k| runtime_by_key.contains_key(k));
    let (shared_runtime, shared_system) = plan.shared.into_iter().partition(|k| runtime_by_key.contains_key(k));
    Ok(Layout { by_key, runtime_by_key, own_system, own_runtime, shared_system, shared_runtime })
}

impl Layout<'_> {
    fn packages(&self, keys: &[Key]) -> Vec<&UnpackedPackage> {
        keys.iter().filter_map(|k| self.by_key.get(k).copied()).collect()
    }
}

/// The Debian package layers [`assemble`] will make of `input`, bottom to top, with their
/// keys: what a caller checks against the layers it already has before unpacking anything.
pub fn package_layers(input: &AssembleInput) -> Result<Vec<PlannedLayer>, AssembleError> {
    let layout = layout(input)?;
    let mut groups: Vec<Vec<Key>> = layout.own_system.iter().map(|k| vec![k.clone()]).collect();
    if !layout.shared_system.is_empty() {
        groups.push(layout.shared_system.clone());
    }
    Ok(groups
        .into_iter()
        .map(|keys| PlannedLayer {
            key: layer_key(&layout.packages(&keys), input.merged_usr, input.source_date_epoch),
            packages: keys,
        })
        .collect())
}

/// Builds the image: package layers (largest packages alone, the rest shared), a metadata
/// layer (dpkg status, accounts, alternatives, CA bundle, merged-`/usr` symlinks of a root
/// image), the extra files' layer, then config and manifest. Same input, same bytes.
pub fn assemble(input: AssembleInput) -> Result<AssembledImage, AssembleError> {
    let layout = layout(&input)?;
    let parent = input.parent.as_ref();
    let mut log = Vec::new();
    let mut built = Built {
        input: &input,
        jobs: Vec::new(),
        layers: Vec::new(),
        reused: Vec::new(),
        keyed: Vec::new(),
        new_layers: Vec::new(),
        layer_of: BTreeMap::new(),
    };

    let mut used_usr_dirs = Vec::new();
    for key in &layout.own_system {
        let Some(package) = layout.by_key.get(key) else { continue };
        let entries = package_entries(package, input.merged_usr, &mut used_usr_dirs);
        let what = format!("package {}={}", package.name, package.version);
        let layer = layer_key(&[package], input.merged_usr, input.source_date_epoch);
        built.write(entries, what, std::slice::from_ref(key), layer, package.is_slimmed());
    }
    for key in &layout.own_runtime {
        let Some(package) = layout.runtime_by_key.get(key) else { continue };
        let what = format!("{} package {}=={}", package.ecosystem.as_str(), package.name, package.version);
        built.write(package.entries.clone(), what, std::slice::from_ref(key), None, false);
    }
    if !layout.shared_system.is_empty() {
        let packages = layout.packages(&layout.shared_system);
        let mut entries = Vec::new();
        let mut names = Vec::new();
        for package in &packages {
            entries.extend(package_entries(package, input.merged_usr, &mut used_usr_dirs));
            names.push(format!("{}={}", package.name, package.version));
        }
        let layer = layer_key(&packages, input.merged_usr, input.source_date_epoch);
        let slimmed = packages.iter().any(|p| p.is_slimmed());
        built.write(entries, format!("packages {}", names.join(" ")), &layout.shared_system, layer, slimmed);
    }
    if !layout.shared_runtime.is_empty() {
        let mut entries = Vec::new();
        let mut names = Vec::new();
        for key in &layout.shared_runtime {
            let Some(package) = layout.runtime_by_key.get(key) else { continue };
            entries.extend(package.entries.iter().cloned());
            names.push(format!("{}=={}", package.name, package.version));
        }
        let what = format!("language packages {}", names.join(" "));
        built.write(entries, what, &layout.shared_runtime, None, false);
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
    let what = "image metadata: dpkg status, accounts, alternatives, CA bundle".to_string();
    built.write(metadata, what, &[], None, false);
    log.extend(fixups.report);
    if !input.extra_files.is_empty() {
        let mut paths: Vec<&str> = input.extra_files.iter().map(|e| e.path.as_str()).collect();
        paths.sort_unstable();
        paths.dedup();
        let what = format!("files /{}", paths.join(" /"));
        built.write(input.extra_files.clone(), what, &[], None, false);
    }

    built.finish(&mut log)?;
    let parent_config = parent.map(|p| ParentConfig { config: &p.config, layers: &p.layers });
    let image: BuiltImage = build_image(parent_config, &built.new_layers, &input.settings, created(&input, parent))?;
    let inventory = inventory_of(&input, &built.layer_of);
    Ok(AssembledImage {
        layers: built.layers,
        reused: built.reused,
        keyed: built.keyed,
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
    reused: Vec<Digest>,
    keyed: Vec<(Digest, ReusedLayer)>,
    new_layers: Vec<NewLayer>,
    layer_of: BTreeMap<Key, Digest>,
}

struct LayerJob {
    entries: Vec<Entry>,
    what: String,
    holds: Vec<Key>,
    key: Option<Digest>,
    /// Taken from the input's reuse map instead of written.
    reuse: Option<ReusedLayer>,
    slimmed: bool,
}

/// A layer of the image, bottom to top: written now or reused.
enum Made {
    Written(LayerBlob),
    Reused(ReusedLayer),
}

impl Built<'_> {
    fn write(&mut self, entries: Vec<Entry>, what: String, holds: &[Key], key: Option<Digest>, slimmed: bool) {
        let reuse = key.as_ref().and_then(|k| self.input.reuse.get(k)).cloned();
        // A reused layer's entries are never looked at again.
        let entries = if reuse.is_some() { Vec::new() } else { entries };
        self.jobs.push(LayerJob { entries, what, holds: holds.to_vec(), key, reuse, slimmed });
    }

    /// Writes every planned layer on every core: gzip is most of a build's CPU, and layers
    /// do not depend on each other.
    fn finish(&mut self, log: &mut Vec<String>) -> Result<(), AssembleError> {
        let jobs = std::mem::take(&mut self.jobs);
        if let Some(job) = jobs.iter().find(|j| j.reuse.is_none() && j.slimmed) {
            return Err(AssembleError::Slimmed { what: job.what.clone() });
        }
        let (epoch, scratch) = (self.input.source_date_epoch, &self.input.scratch_dir);
        let results = crate::parallel::map_largest_first(
            &jobs,
            |job| crate::package::file_bytes(&job.entries),
            |job| match &job.reuse {
                Some(reused) => Ok(Made::Reused(reused.clone())),
                None => write_layer(&job.entries, epoch, scratch).map(Made::Written),
            },
        );
        for (job, result) in jobs.into_iter().zip(results) {
            let made = result.unwrap_or_else(|| {
                Err(LayerError::Io {
                    dir: scratch.clone(),
                    source: std::io::Error::other("a layer writer stopped before writing its layer"),
                })
            });
            let made = made.map_err(|source| AssembleError::Layer { what: job.what.clone(), source })?;
            let (layer, how) = match made {
                Made::Written(blob) => {
                    let layer =
                        ReusedLayer { digest: blob.digest.clone(), diff_id: blob.diff_id.clone(), size: blob.size };
                    self.layers.push(blob);
                    (layer, "")
                }
                Made::Reused(layer) => {
                    self.reused.push(layer.digest.clone());
                    (layer, ", reused")
                }
            };
            let number = self.new_layers.len() + 1;
            log.push(format!("layer {number}: {} ({} bytes{how}): {}", layer.digest, layer.size, job.what));
            for key in &job.holds {
                self.layer_of.insert(key.clone(), layer.digest.clone());
            }
            self.new_layers.push(NewLayer {
                descriptor: Descriptor::new(crate::layer::LAYER_MEDIA_TYPE, layer.digest.clone(), layer.size),
                diff_id: layer.diff_id.clone(),
                created_by: format!("kiln: {}", job.what),
            });
            if let Some(key) = job.key {
                self.keyed.push((key, layer));
            }
        }
        Ok(())
    }
}

fn inventory_of(input: &AssembleInput, layer_of: &BTreeMap<Key, Digest>) -> Vec<InventoryItem> {
    let distro = input.distro.as_deref();
    let mut items: BTreeMap<Key, InventoryItem> = BTreeMap::new();
    if let Some(parent) = &input.parent {
        let installed = dpkg::installed_packages(&parent.dpkg_status);
        for item in inventory::installed_items(&installed, distro, &parent.licences) {
            items.insert((item.name.clone(), item.architecture.clone()), item);
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
        items.insert(key, inventory::new_item(package, &input.packages, layer, distro));
    }
    items.into_values().chain(runtime.into_values()).collect()
}

/// The Debian packages a dpkg `status` file lists as installed, as inventory items (for a
/// base image Kiln did not build; no layer is known for them), with the licences its
/// copyright files give (see [`licences_from_copyright_files`]).
pub fn dpkg_inventory(
    status: &str,
    distro: Option<&str>,
    licences: &BTreeMap<String, kiln_model::PackageLicense>,
) -> Vec<InventoryItem> {
    inventory::installed_items(&dpkg::installed_packages(status), distro, licences)
}

/// Keys of language packages cannot meet those of Debian packages (`name`, `arch`); npm's
/// nested copies of one name differ by where they sit.
fn runtime_key(package: &RuntimePackage) -> Key {
    (format!("{}:{}", package.ecosystem.as_str(), package.name), package.location.clone().unwrap_or_default())
}

#[cfg(test)]
mod tests;
