//! Turning the resolved tree and its unpacked tarballs into image entries under the caller's
//! prefix: each package's own files, the shared `node_modules` directories, `.bin` links for
//! top-level packages and npm's hidden lockfile so `npm ls` inside the image agrees.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::error::NpmError;
use super::manifest::{Manifest, purl};
use super::tarball::{Item, Unpacked};
use super::tree::{ROOT, Tree};
use kiln_archive::tree::{Entry, EntryKind};

/// One package as installed, with every entry below its directory (the directory included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledPackage {
    pub name: String,
    pub version: String,
    /// Relative to the prefix: `node_modules/axios`, `node_modules/a/node_modules/b`.
    pub path: String,
    /// SPDX id where a common spelling was recognised, else the package's own words.
    pub license: Option<String>,
    pub purl: String,
    pub resolved: String,
    /// The SRI the tarball was verified against.
    pub integrity: String,
    /// Reached only through optional dependencies.
    pub optional: bool,
    pub entries: Vec<Entry>,
}

/// A `.bin` symlink: `{prefix}/node_modules/.bin/{name}` → `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinLink {
    pub name: String,
    pub package: String,
    pub target: String,
}

/// A downloaded, verified and unpacked package.
pub struct Fetched {
    pub id: usize,
    pub resolved: String,
    pub integrity: String,
    pub unpacked: Unpacked,
    /// The tarball's package.json, or the registry's view when the tarball had none.
    pub manifest: Manifest,
}

pub struct Layout {
    pub packages: Vec<InstalledPackage>,
    pub shared: Vec<Entry>,
    pub bins: Vec<BinLink>,
    pub warnings: Vec<String>,
}

fn dir(path: String) -> Entry {
    Entry { path, kind: EntryKind::Directory, mode: 0o755, uid: 0, gid: 0 }
}

fn join(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_string(),
        (_, true) => prefix.to_string(),
        _ => format!("{prefix}/{rest}"),
    }
}

/// A `bin` target as a clean path inside the package, or `None` if it would leave it.
fn clean_relative(raw: &str) -> Option<String> {
    if raw.starts_with('/') {
        return None;
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            other => parts.push(other),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

pub fn lay_out(tree: &Tree, fetched: Vec<Fetched>, prefix: &str) -> Result<Layout, NpmError> {
    let mut packages = Vec::new();
    let mut warnings = Vec::new();
    let mut bins: Vec<BinLink> = Vec::new();
    let mut owners: HashMap<String, String> = HashMap::new();
    let mut package_dirs: BTreeSet<String> = BTreeSet::new();
    let mut claimed: BTreeSet<String> = BTreeSet::new();
    let mut fetched = fetched;
    fetched.sort_by_cached_key(|f| tree.path(f.id));
    // Direct dependencies claim a bin name before anything hoisted beside them.
    let direct: BTreeSet<&str> = tree.nodes[ROOT].edges.iter().map(|e| e.name.as_str()).collect();
    let mut bin_order: Vec<&Fetched> = fetched.iter().filter(|f| tree.nodes[f.id].parent == Some(ROOT)).collect();
    bin_order.sort_by_key(|f| (!direct.contains(tree.nodes[f.id].name.as_str()), tree.nodes[f.id].name.clone()));
    let mut bin_targets: HashMap<usize, BTreeSet<String>> = HashMap::new();
    for f in &fetched {
        let node = &tree.nodes[f.id];
        for (bin, target) in &f.manifest.bin {
            let name = bin.rsplit('/').next().unwrap_or(bin);
            let file = clean_relative(target).filter(|t| matches!(f.unpacked.items.get(t), Some(Item::File { .. })));
            match file {
                Some(file) if !name.is_empty() && name != "." && name != ".." => {
                    bin_targets.entry(f.id).or_default().insert(file);
                }
                _ => warnings.push(format!(
                    "{}@{}: bin {bin:?} points at {target:?}, which is not a file of the package; not linked",
                    node.name, node.version
                )),
            }
        }
    }
    for f in &bin_order {
        let node = &tree.nodes[f.id];
        for (bin, target) in &f.manifest.bin {
            let name = bin.rsplit('/').next().unwrap_or(bin).to_string();
            let Some(file) = clean_relative(target) else { continue };
            if !bin_targets.get(&f.id).is_some_and(|t| t.contains(&file)) {
                continue;
            }
            if let Some(other) = bins.iter().find(|b| b.name == name) {
                warnings.push(format!(
                    "{}@{}: bin {name} is already linked to {}; not linked",
                    node.name, node.version, other.package
                ));
                continue;
            }
            bins.push(BinLink { name, package: node.name.clone(), target: format!("../{}/{file}", node.name) });
        }
    }
    for f in &fetched {
        let node = &tree.nodes[f.id];
        let rel = tree.path(f.id);
        let base = join(prefix, &rel);
        let label = format!("{}@{}", node.name, node.version);
        let executables = bin_targets.get(&f.id);
        let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
        entries.insert(base.clone(), dir(base.clone()));
        for (path, item) in &f.unpacked.items {
            let mut at = path.as_str();
            while let Some((parent, _)) = at.rsplit_once('/') {
                let full = format!("{base}/{parent}");
                entries.entry(full.clone()).or_insert_with(|| dir(full));
                at = parent;
            }
            let full = format!("{base}/{path}");
            let entry = match item {
                Item::Directory => dir(full.clone()),
                Item::File { data, executable } => {
                    let exec = *executable || executables.is_some_and(|t| t.contains(path));
                    Entry {
                        path: full.clone(),
                        kind: EntryKind::File { data: data.clone() },
                        mode: if exec { 0o755 } else { 0o644 },
                        uid: 0,
                        gid: 0,
                    }
                }
            };
            entries.insert(full, entry);
        }
        for (path, entry) in &entries {
            let is_dir = entry.kind == EntryKind::Directory;
            if let Some(first) = owners.get(path)
                && !is_dir
            {
                return Err(NpmError::Collision { path: path.clone(), first: first.clone(), second: label.clone() });
            }
            if !is_dir {
                owners.insert(path.clone(), label.clone());
            }
            claimed.insert(path.clone());
        }
        package_dirs.insert(base.clone());
        packages.push(InstalledPackage {
            name: node.name.clone(),
            version: node.version.clone(),
            path: rel,
            license: f.manifest.license.clone().or_else(|| node.manifest.license.clone()),
            purl: purl(&node.name, &node.version),
            resolved: f.resolved.clone(),
            integrity: f.integrity.clone(),
            optional: node.optional,
            entries: entries.into_values().collect(),
        });
    }
    let modules = join(prefix, "node_modules");
    let mut shared: BTreeMap<String, Entry> = BTreeMap::new();
    let add_dirs = |path: &str, shared: &mut BTreeMap<String, Entry>| {
        let mut at = path;
        while let Some((parent, _)) = at.rsplit_once('/') {
            if !claimed.contains(parent) {
                shared.entry(parent.to_string()).or_insert_with(|| dir(parent.to_string()));
            }
            at = parent;
        }
    };
    add_dirs(&format!("{modules}/.package-lock.json"), &mut shared);
    for base in package_dirs.iter() {
        add_dirs(base, &mut shared);
    }
    if !bins.is_empty() {
        shared.insert(format!("{modules}/.bin"), dir(format!("{modules}/.bin")));
    }
    for bin in &bins {
        let path = format!("{modules}/.bin/{}", bin.name);
        let kind = EntryKind::Symlink { target: bin.target.clone() };
        shared.insert(path.clone(), Entry { path, kind, mode: 0o777, uid: 0, gid: 0 });
    }
    let lock_path = format!("{modules}/.package-lock.json");
    let data = Bytes::from(hidden_lockfile(tree, &packages, &fetched));
    shared.insert(
        lock_path.clone(),
        Entry { path: lock_path, kind: EntryKind::File { data }, mode: 0o644, uid: 0, gid: 0 },
    );
    Ok(Layout { packages, shared: shared.into_values().collect(), bins, warnings })
}

fn object(map: &BTreeMap<String, String>) -> Value {
    Value::Object(map.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
}

/// npm's `node_modules/.package-lock.json`: what npm itself would record after installing.
fn hidden_lockfile(tree: &Tree, packages: &[InstalledPackage], fetched: &[Fetched]) -> Vec<u8> {
    let by_path: HashMap<&str, &InstalledPackage> = packages.iter().map(|p| (p.path.as_str(), p)).collect();
    let tarball_manifests: HashMap<usize, &Manifest> = fetched.iter().map(|f| (f.id, &f.manifest)).collect();
    let mut entries = Map::new();
    for id in tree.installed() {
        let node = &tree.nodes[id];
        let path = tree.path(id);
        let m = tarball_manifests.get(&id).copied().unwrap_or(&node.manifest);
        let mut e = Map::new();
        e.insert("version".into(), json!(node.version));
        if let Some(p) = by_path.get(path.as_str()) {
            e.insert("resolved".into(), json!(p.resolved));
            e.insert("integrity".into(), json!(p.integrity));
        }
        if node.in_bundle {
            e.insert("inBundle".into(), json!(true));
        }
        if node.optional {
            e.insert("optional".into(), json!(true));
        }
        if let Some(license) = &m.license {
            e.insert("license".into(), json!(license));
        }
        let fields = [
            ("dependencies", &node.manifest.dependencies),
            ("optionalDependencies", &node.manifest.optional_dependencies),
            ("peerDependencies", &node.manifest.peer_dependencies),
            ("bin", &m.bin),
            ("engines", &m.engines),
        ];
        for (key, map) in fields {
            if !map.is_empty() {
                e.insert(key.into(), object(map));
            }
        }
        if !m.os.is_empty() {
            e.insert("os".into(), json!(m.os));
        }
        if !m.cpu.is_empty() {
            e.insert("cpu".into(), json!(m.cpu));
        }
        if !m.install_scripts(false).is_empty() || node.manifest.has_install_script {
            e.insert("hasInstallScript".into(), json!(true));
        }
        entries.insert(path, Value::Object(e));
    }
    let root = &tree.nodes[ROOT];
    let mut lock = Map::new();
    lock.insert("name".into(), json!(if root.name.is_empty() { "kiln-install" } else { root.name.as_str() }));
    if !root.version.is_empty() {
        lock.insert("version".into(), json!(root.version));
    }
    lock.insert("lockfileVersion".into(), json!(3));
    lock.insert("requires".into(), json!(true));
    lock.insert("packages".into(), Value::Object(entries));
    let mut text = serde_json::to_vec_pretty(&Value::Object(lock)).unwrap_or_default();
    text.push(b'\n');
    text
}
