//! npm packages without npm: resolve a package.json (or honour its package-lock.json) against
//! a registry, fetch and verify every tarball, and lay the result out as npm's hoisted
//! `node_modules` under a prefix, as entries the layer writer can trust. Nothing from a
//! package is ever run; install scripts are refused or, when allowed, only reported.
//!
//! ```text
//! let registry = HttpRegistry::new(client, "https://registry.npmjs.org", RegistryAuth::None)?;
//! let installation = npm::install(&registry, &package_json, lock.as_deref(), &options).await?;
//! for entry in installation.entries() { layer.add(entry) }
//! ```

mod error;
mod layout;
mod lock;
mod manifest;
mod registry;
mod resolve;
mod tarball;
mod tree;

#[cfg(test)]
mod registry_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use futures::StreamExt;
use serde_json::Value;

pub use error::NpmError;
pub use layout::{BinLink, InstalledPackage};
pub use manifest::{Dist, Manifest, normalise_license, purl};
pub use registry::{HttpRegistry, NpmSource, Packument, RegistryAuth};
pub use resolve::SkippedOptional;

use kiln_archive::tree::Entry;
use layout::Fetched;
use tarball::{IntegrityProblem, Item, UnpackProblem};

#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// Image-root-relative directory that receives `node_modules`, e.g. `opt/kiln/node`.
    pub prefix: String,
    /// Install packages that have install scripts (without running them) instead of refusing.
    pub allow_scripts: bool,
    /// All tarballs together may unpack to at most this many bytes.
    pub max_unpacked_bytes: u64,
    /// Entries allowed in any one tarball.
    pub max_entries: u64,
    /// When set, `engines.node` of chosen packages must accept it.
    pub node_version: Option<String>,
    /// Tarballs downloaded at once.
    pub concurrency: usize,
    /// The build's memory budget, which what the tarballs hold is reserved from.
    pub memory: crate::memory::MemoryBudget,
}

impl Default for InstallOptions {
    fn default() -> Self {
        InstallOptions {
            prefix: String::new(),
            allow_scripts: false,
            max_unpacked_bytes: 512 << 20,
            max_entries: 100_000,
            node_version: None,
            concurrency: 8,
            memory: crate::memory::MemoryBudget::unlimited(),
        }
    }
}

/// An install-time script kiln did not run, for the build log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallScript {
    pub name: String,
    pub version: String,
    pub path: String,
    pub event: String,
    pub command: String,
}

#[derive(Debug, Clone)]
pub struct Installation {
    /// One per installed package, in `node_modules` path order.
    pub packages: Vec<InstalledPackage>,
    /// Entries no single package owns: the prefix and `node_modules` directories (scope and
    /// nested `node_modules` directories included), `.bin` and its links, and the hidden
    /// lockfile `node_modules/.package-lock.json`.
    pub shared: Vec<Entry>,
    pub bins: Vec<BinLink>,
    pub skipped_scripts: Vec<InstallScript>,
    pub skipped_optional: Vec<SkippedOptional>,
    /// Links and stray files npm leaves out of tarballs, unlinkable bins and the like.
    pub warnings: Vec<String>,
}

impl Installation {
    /// Every entry, parents before children, each path once.
    pub fn entries(&self) -> Vec<Entry> {
        let mut all: BTreeMap<String, Entry> = BTreeMap::new();
        for entry in self.shared.iter().chain(self.packages.iter().flat_map(|p| p.entries.iter())) {
            all.entry(entry.path.clone()).or_insert_with(|| entry.clone());
        }
        all.into_values().collect()
    }
}

fn clean_prefix(raw: &str) -> Result<String, NpmError> {
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(NpmError::Manifest {
                    file: "install prefix".into(),
                    why: format!("{raw:?} climbs out with ..; give a path inside the image such as opt/app"),
                });
            }
            other => parts.push(other),
        }
    }
    Ok(parts.join("/"))
}

/// Resolves (or takes from `lock`), fetches, verifies and lays out the production
/// dependencies of `package_json` under `options.prefix`.
pub async fn install<S: NpmSource>(
    source: &S,
    package_json: &[u8],
    lock: Option<&[u8]>,
    options: &InstallOptions,
) -> Result<Installation, NpmError> {
    let prefix = clean_prefix(&options.prefix)?;
    let value: Value = serde_json::from_slice(package_json).map_err(|e| NpmError::Manifest {
        file: "package.json".into(),
        why: format!("is not valid JSON ({e}); fix the file"),
    })?;
    if !value.is_object() {
        return Err(NpmError::Manifest {
            file: "package.json".into(),
            why: "is not a JSON object; fix the file".into(),
        });
    }
    let root = Manifest::from_value(&value);
    let node_version = options.node_version.as_deref();
    let (tree, skipped_optional) = match lock {
        Some(lock) => lock::tree_from_lock(root, lock, node_version)?,
        None => resolve::resolve(source, root, node_version).await?,
    };
    let ids: Vec<usize> = tree.installed().into_iter().filter(|&id| !tree.nodes[id].in_bundle).collect();
    let mut dists: HashMap<usize, Dist> = HashMap::new();
    for &id in &ids {
        let node = &tree.nodes[id];
        let mut dist = node.manifest.dist.clone();
        // Old locks may lack `resolved` or `integrity`; the registry still knows them.
        if dist.tarball.is_empty() || (dist.integrity.is_none() && dist.shasum.is_none()) {
            let packument = source.packument(&node.name).await?;
            let Some(found) = packument.get(&node.version) else {
                return Err(NpmError::NoMatch {
                    name: node.name.clone(),
                    spec: node.version.clone(),
                    chain: node.chain.clone(),
                    available: packument.newest(5),
                });
            };
            dist = found.dist.clone();
        }
        dists.insert(id, dist);
    }
    let max = options.max_unpacked_bytes;
    let downloads: Vec<(usize, Result<bytes::Bytes, NpmError>)> =
        futures::stream::iter(ids.iter().copied().map(|id| {
            let url = dists.get(&id).map(|d| d.tarball.clone()).unwrap_or_default();
            async move { (id, source.tarball(&url, max).await) }
        }))
        .buffered(options.concurrency.max(1))
        .collect()
        .await;
    let mut budget = options.max_unpacked_bytes;
    let mut fetched = Vec::new();
    let mut scripts = Vec::new();
    let mut warnings = Vec::new();
    for (id, download) in downloads {
        let node = &tree.nodes[id];
        let bytes = download?;
        let dist = dists.remove(&id).unwrap_or_default();
        let (name, version, url) = (node.name.clone(), node.version.clone(), dist.tarball.clone());
        let integrity =
            tarball::verify(&bytes, dist.integrity.as_deref(), dist.shasum.as_deref()).map_err(|p| match p {
                IntegrityProblem::Missing => {
                    NpmError::NoIntegrity { name: name.clone(), version: version.clone(), url: url.clone() }
                }
                IntegrityProblem::Invalid => NpmError::BadIntegrity {
                    name: name.clone(),
                    version: version.clone(),
                    integrity: dist.integrity.clone().or(dist.shasum.clone()).unwrap_or_default(),
                },
                IntegrityProblem::Mismatch { expected, actual } => NpmError::Integrity {
                    name: name.clone(),
                    version: version.clone(),
                    url: url.clone(),
                    expected,
                    actual,
                },
            })?;
        let unpacked =
            tarball::unpack(&bytes, &mut budget, options.max_entries, &options.memory).map_err(|p| match p {
                UnpackProblem::Corrupt(why) => {
                    NpmError::Tarball { name: name.clone(), version: version.clone(), url: url.clone(), why }
                }
                UnpackProblem::Unsafe { path, why } => {
                    NpmError::Unsafe { name: name.clone(), version: version.clone(), path, why }
                }
                UnpackProblem::TooBig(why) => NpmError::TooBig { name: name.clone(), version: version.clone(), why },
            })?;
        for skipped in &unpacked.skipped {
            warnings.push(format!("{name}@{version}: left out {skipped}, as npm does"));
        }
        let manifest = match &unpacked.manifest {
            Some(value) => {
                let mut m = Manifest::from_value(value);
                if m.name != name || m.version != version {
                    warnings
                        .push(format!("{name}@{version}: the tarball's package.json says {}@{}", m.name, m.version));
                }
                m.name = name.clone();
                m.version = version.clone();
                m
            }
            None => {
                warnings.push(format!("{name}@{version}: the tarball has no package.json"));
                (*node.manifest).clone()
            }
        };
        let gyp = matches!(unpacked.items.get("binding.gyp"), Some(Item::File { .. }));
        let mut found = manifest.install_scripts(gyp);
        for (event, command) in node.manifest.install_scripts(false) {
            if !found.iter().any(|(e, _)| *e == event) {
                found.push((event, command));
            }
        }
        if found.is_empty() && node.manifest.has_install_script {
            found.push(("install".into(), "(unknown: the registry marks it hasInstallScript)".into()));
        }
        for (event, command) in found {
            scripts.push(InstallScript {
                name: name.clone(),
                version: version.clone(),
                path: tree.path(id),
                event,
                command,
            });
        }
        fetched.push(Fetched { id, resolved: url, integrity, unpacked, manifest });
    }
    if !scripts.is_empty() && !options.allow_scripts {
        let list: Vec<String> =
            scripts.iter().map(|s| format!("{}@{} ({}: {})", s.name, s.version, s.event, s.command)).collect();
        return Err(NpmError::ScriptsRefused { list: list.join(", ") });
    }
    let layout = layout::lay_out(&tree, fetched, &prefix)?;
    warnings.extend(layout.warnings);
    Ok(Installation {
        packages: layout.packages,
        shared: layout.shared,
        bins: layout.bins,
        skipped_scripts: scripts,
        skipped_optional,
        warnings,
    })
}
