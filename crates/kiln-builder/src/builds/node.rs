//! The builder's Node step: an image's package.json resolved (or its package-lock.json taken
//! as it is) against the organisation's npm registry, every tarball checked against its
//! integrity, and the tree laid out as npm's `node_modules` under [`NODE_PREFIX`], with no
//! install script ever run.

use kiln_archive::tree::{Entry, EntryKind};
use kiln_build::RuntimePackage;
use kiln_build::plugins::NODE_PREFIX;
use kiln_model::image::ManifestFormat;
use kiln_model::{Ecosystem, Image, LockedPackage, PackageSource};
use kiln_packages::deb::status::parse_status;
use kiln_packages::npm::{self, HttpRegistry, InstallOptions, RegistryAuth};
use kiln_store::records;
use serde_json::{Map, Value};

use super::BuildRunner;
use super::debian::source_credentials;
use crate::error::BuildError;
use kiln_tasks::TaskContext;

/// What an image asks of npm: its package.json and, when given, its package-lock.json.
#[derive(Debug, Clone)]
pub struct NodeManifest {
    pub package_json: Vec<u8>,
    pub lockfile: Option<Vec<u8>>,
}

/// The package.json an image declares (or one made from its package list), or `None` when
/// it asks for no npm packages.
pub fn manifest(image: &Image, language: Option<&str>) -> Result<Option<NodeManifest>, BuildError> {
    let deps = &image.runtime_dependencies;
    let node = match deps.format {
        Some(ManifestFormat::PackageJson) => true,
        Some(ManifestFormat::RequirementsTxt) => false,
        None => language.is_some_and(|l| l.starts_with("node")),
    };
    if !node || (deps.manifest.is_none() && deps.packages.is_empty()) {
        return Ok(None);
    }
    let package_json = match &deps.manifest {
        Some(text) => text.clone().into_bytes(),
        None => {
            let dependencies: Map<String, Value> = deps
                .packages
                .iter()
                .map(|p| (p.name.clone(), Value::String(p.version.clone().unwrap_or_else(|| "*".to_string()))))
                .collect();
            let document = serde_json::json!({"name": image.name, "private": true, "dependencies": dependencies});
            serde_json::to_vec(&document).map_err(|e| BuildError::refused(format!("writing package.json: {e}")))?
        }
    };
    Ok(Some(NodeManifest { package_json, lockfile: deps.lockfile.clone().map(String::into_bytes) }))
}

/// `18.19.0` from the parent's `nodejs` package (`18.19.0+dfsg-6~deb12u2`), so packages whose
/// `engines.node` refuses it are not chosen.
pub fn node_version(dpkg_status: &str) -> Result<String, BuildError> {
    let installed =
        parse_status(dpkg_status).map_err(|e| BuildError::packages("the parent's dpkg status cannot be read", e))?;
    let package = installed
        .iter()
        .find(|p| p.name == "nodejs")
        .ok_or_else(|| BuildError::refused("the parent has no nodejs package: build Node images on a nodejs image"))?;
    let version = package.version.split_once(':').map_or(package.version.as_str(), |(_, v)| v);
    let upstream = version.split(['+', '-', '~']).next().unwrap_or_default();
    if upstream.split('.').count() != 3 || !upstream.split('.').all(|p| p.parse::<u64>().is_ok()) {
        return Err(BuildError::refused(format!("cannot tell the Node version from nodejs {:?}", package.version)));
    }
    Ok(upstream.to_string())
}

/// The registry to use: the organisation's first `npm` package source, else the default.
async fn registry(runner: &BuildRunner, ctx: &TaskContext) -> Result<(String, HttpRegistry), BuildError> {
    let org = &ctx.task.organization;
    let store = ctx.store();
    let failed = |e: kiln_store::StoreError| BuildError::store("reading package sources", e);
    let page = store.list(&records::prefix::<PackageSource>(org), None, 1000).await.map_err(failed)?;
    let mut chosen = None;
    for entry in &page.entries {
        let source: PackageSource = records::decode(entry).map_err(failed)?;
        if source.ecosystem != Ecosystem::Npm {
            continue;
        }
        if chosen.is_some() {
            ctx.log(format!("npm: package source {:?} is not searched: npm uses one registry", source.name));
            continue;
        }
        let auth = match source_credentials(store.as_ref(), org, &source.name).await? {
            // A token alone (no user name) is sent as a bearer token, as npm's `_authToken`.
            Some((username, password)) if username.is_empty() => RegistryAuth::Bearer(password),
            Some((username, password)) => RegistryAuth::Basic { username, password },
            None => RegistryAuth::None,
        };
        chosen = Some((source.name.clone(), source.url.clone(), auth));
    }
    let (label, url, auth) = match chosen {
        Some(found) => found,
        None => match &runner.settings.npm_registry_url {
            Some(url) => (format!("npm:{url}"), url.clone(), RegistryAuth::None),
            None => {
                return Err(BuildError::refused(
                    "no npm registry is configured: add a package source (ecosystem npm) or start kiln serve with --npm-registry-url",
                ));
            }
        },
    };
    let registry = HttpRegistry::new(runner.http.clone(), &url, auth)
        .map_err(|e| BuildError::packages(format!("npm registry {label}"), e))?;
    Ok((label, registry))
}

/// What the Node step adds: packages to layer, the directories and links no one package
/// owns, lock entries and the package-lock.json that replays the tree.
pub struct NodePackages {
    pub packages: Vec<RuntimePackage>,
    pub shared: Vec<Entry>,
    pub lock: Vec<LockedPackage>,
    pub lockfile: String,
}

/// Resolves, fetches, verifies and lays out. `recorded_lock` (from `--locked`) wins over the
/// image's own package-lock.json.
pub async fn install(
    runner: &BuildRunner,
    ctx: &TaskContext,
    manifest: &NodeManifest,
    node_version: String,
    recorded_lock: Option<&str>,
    memory: &kiln_packages::memory::MemoryBudget,
) -> Result<NodePackages, BuildError> {
    let (label, registry) = registry(runner, ctx).await?;
    let lockfile = recorded_lock.map(|l| l.as_bytes().to_vec()).or_else(|| manifest.lockfile.clone());
    ctx.log(format!(
        "npm: {} for Node {node_version} from {label}",
        if lockfile.is_some() { "installing package-lock.json" } else { "resolving package.json" }
    ));
    let options = InstallOptions {
        prefix: NODE_PREFIX.to_string(),
        node_version: Some(node_version),
        allow_scripts: runner.settings.npm_allow_scripts,
        memory: memory.clone(),
        ..InstallOptions::default()
    };
    let installation = npm::install(&registry, &manifest.package_json, lockfile.as_deref(), &options)
        .await
        .map_err(|e| BuildError::packages("npm", e))?;
    for warning in &installation.warnings {
        ctx.log(format!("npm: {warning}"));
    }
    for skipped in &installation.skipped_optional {
        ctx.log(format!("npm: optional {skipped:?} skipped"));
    }
    for script in &installation.skipped_scripts {
        ctx.log(format!(
            "npm: {} {} has a {} script that was not run: {}",
            script.name, script.version, script.event, script.command
        ));
    }
    let lockfile = replay_lock(&manifest.package_json, &installation.shared)?;
    let mut packages = Vec::new();
    let mut lock = Vec::new();
    for package in installation.packages {
        ctx.log(format!("add npm {}@{} at {}", package.name, package.version, package.path));
        lock.push(LockedPackage {
            ecosystem: Ecosystem::Npm,
            name: package.name.clone(),
            version: package.version.clone(),
            architecture: String::new(),
            sha256: String::new(),
            size: 0,
            source: label.clone(),
            filename: package.path.clone(),
            integrity: Some(package.integrity.clone()),
        });
        packages.push(RuntimePackage {
            ecosystem: Ecosystem::Npm,
            name: package.name,
            version: package.version,
            license: package.license,
            purl: package.purl,
            location: Some(package.path),
            entries: package.entries,
        });
    }
    Ok(NodePackages { packages, shared: installation.shared, lock, lockfile })
}

/// A package-lock.json (v3) of the tree just laid out: npm's hidden lockfile with the root
/// entry it leaves out, so `--locked` installs this exact tree again.
fn replay_lock(package_json: &[u8], shared: &[Entry]) -> Result<String, BuildError> {
    let hidden_path = format!("{NODE_PREFIX}/node_modules/.package-lock.json");
    let hidden = shared
        .iter()
        .find_map(|e| match &e.kind {
            EntryKind::File { data } if e.path == hidden_path => Some(data),
            _ => None,
        })
        .ok_or_else(|| BuildError::refused("npm: the installer wrote no node_modules/.package-lock.json"))?;
    let unreadable = |e: serde_json::Error| BuildError::refused(format!("npm: reading the tree's lock: {e}"));
    let mut document: Value = serde_json::from_slice(hidden).map_err(unreadable)?;
    let root: Value = serde_json::from_slice(package_json).map_err(unreadable)?;
    let mut root_entry = Map::new();
    for field in ["name", "version", "dependencies", "optionalDependencies", "peerDependencies"] {
        if let Some(value) = root.get(field) {
            root_entry.insert(field.to_string(), value.clone());
        }
    }
    let Some(packages) = document.get_mut("packages").and_then(Value::as_object_mut) else {
        return Err(BuildError::refused("npm: the tree's lock has no packages"));
    };
    packages.insert(String::new(), Value::Object(root_entry));
    if let Some(object) = document.as_object_mut() {
        object.insert("lockfileVersion".to_string(), Value::from(3));
    }
    serde_json::to_string_pretty(&document).map_err(unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_version_is_the_upstream_part() {
        let status =
            "Package: nodejs\nStatus: install ok installed\nVersion: 18.19.0+dfsg-6~deb12u2\nArchitecture: amd64\n\n";
        assert_eq!(node_version(status).expect("version"), "18.19.0");
        let epoch = "Package: nodejs\nStatus: install ok installed\nVersion: 1:20.1.0-1\nArchitecture: amd64\n\n";
        assert_eq!(node_version(epoch).expect("version"), "20.1.0");
        let none = "Package: python3\nStatus: install ok installed\nVersion: 3.11.2-1+b1\nArchitecture: amd64\n\n";
        assert!(node_version(none).is_err());
    }

    #[test]
    fn replayed_lock_has_the_root_entry() {
        let hidden =
            br#"{"name":"x","lockfileVersion":3,"requires":true,"packages":{"node_modules/a":{"version":"1.0.0"}}}"#;
        let shared = vec![Entry {
            path: format!("{NODE_PREFIX}/node_modules/.package-lock.json"),
            kind: EntryKind::File { data: hidden.to_vec().into() },
            mode: 0o644,
            uid: 0,
            gid: 0,
        }];
        let text = replay_lock(br#"{"name":"x","dependencies":{"a":"^1.0.0"}}"#, &shared).expect("lock");
        let lock: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(lock["packages"][""]["dependencies"]["a"], "^1.0.0");
        assert_eq!(lock["packages"]["node_modules/a"]["version"], "1.0.0");
        assert_eq!(lock["lockfileVersion"], 3);
    }
}
