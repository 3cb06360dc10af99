//! Honouring a package-lock.json (lockfileVersion 2 or 3) the way `npm ci` does: the tree is
//! taken exactly as locked, but only after proving it agrees with package.json and that
//! every package finds a satisfying copy of each dependency where Node will look for it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use super::error::NpmError;
use super::manifest::{EdgeKind, Manifest, parse_spec, platform_problem, satisfies, valid_name};
use super::resolve::SkippedOptional;
use super::tree::{ROOT, Tree};

fn lock_error(why: impl Into<String>) -> NpmError {
    NpmError::Lockfile { why: why.into() }
}

fn mismatch(why: impl Into<String>) -> NpmError {
    NpmError::LockMismatch { why: why.into() }
}

/// The package names of a lock key: `node_modules/a/node_modules/@s/b` → `[a, @s/b]`.
fn key_names(key: &str) -> Option<Vec<&str>> {
    let rest = key.strip_prefix("node_modules/")?;
    let names: Vec<&str> = rest.split("/node_modules/").collect();
    names.iter().all(|n| valid_name(n)).then_some(names)
}

fn compare_root(root: &Manifest, locked: &Manifest) -> Result<(), NpmError> {
    let sides = [
        ("dependencies", &root.dependencies, &locked.dependencies),
        ("optionalDependencies", &root.optional_dependencies, &locked.optional_dependencies),
    ];
    for (field, wanted, recorded) in sides {
        for (name, spec) in wanted {
            match recorded.get(name) {
                Some(r) if r == spec => {}
                Some(r) => {
                    return Err(mismatch(format!(
                        "package.json {field} has {name}@{spec:?} but the lock recorded {r:?}"
                    )));
                }
                None => {
                    return Err(mismatch(format!("package.json {field} has {name}@{spec:?} but the lock does not")));
                }
            }
        }
        if let Some(name) = recorded.keys().find(|n| !wanted.contains_key(*n)) {
            return Err(mismatch(format!("the lock has {name} in {field} but package.json no longer does")));
        }
    }
    Ok(())
}

pub fn tree_from_lock(
    root: Manifest,
    lock: &[u8],
    node_version: Option<&str>,
) -> Result<(Tree, Vec<SkippedOptional>), NpmError> {
    let value: Value = serde_json::from_slice(lock)
        .map_err(|e| lock_error(format!("is not valid JSON ({e}); regenerate it with npm install")))?;
    match value.get("lockfileVersion").and_then(Value::as_u64) {
        Some(2 | 3) => {}
        Some(other) => {
            return Err(lock_error(format!(
                "has lockfileVersion {other}; only 2 and 3 are supported: run npm install with npm 7 or later to upgrade it"
            )));
        }
        None => return Err(lock_error("has no lockfileVersion: regenerate it with npm 7 or later")),
    }
    let Some(Value::Object(packages)) = value.get("packages") else {
        return Err(lock_error("has no packages map: regenerate it with npm 7 or later"));
    };
    if let Some(locked_root) = packages.get("") {
        compare_root(&root, &Manifest::from_value(locked_root))?;
    }
    let mut tree = Tree::new(root, "package.json");
    let mut keys: Vec<(usize, &String)> = Vec::new();
    for key in packages.keys().filter(|k| !k.is_empty()) {
        let names = key_names(key).ok_or_else(|| {
            lock_error(format!(
                "entry {key:?} is not a node_modules path: workspaces and linked folders are not supported"
            ))
        })?;
        keys.push((names.len(), key));
    }
    keys.sort();
    let mut ids: HashMap<&str, usize> = HashMap::from([("", ROOT)]);
    for (_, key) in keys {
        let entry = &packages[key.as_str()];
        let (parent_key, name) = match key.rsplit_once("/node_modules/") {
            Some((parent, name)) => (parent, name),
            None => ("", key.trim_start_matches("node_modules/")),
        };
        let Some(&parent) = ids.get(parent_key) else {
            return Err(lock_error(format!("entry {key:?} lies under {parent_key:?}, which the lock does not list")));
        };
        if entry.get("link").and_then(Value::as_bool) == Some(true) {
            return Err(lock_error(format!("entry {key:?} is a link to a local folder, which kiln cannot install")));
        }
        let mut manifest = Manifest::from_value(entry);
        if !manifest.name.is_empty() && manifest.name != name {
            return Err(lock_error(format!(
                "entry {key:?} installs {} under another name (an npm: alias), which kiln does not support",
                manifest.name
            )));
        }
        if manifest.version.is_empty() {
            return Err(lock_error(format!("entry {key:?} has no version: regenerate the lock")));
        }
        manifest.name = name.to_string();
        let chain = format!("package-lock.json {key}");
        let id = tree.add(parent, Arc::new(manifest), chain);
        tree.nodes[id].in_bundle = entry.get("inBundle").and_then(Value::as_bool) == Some(true);
        ids.insert(key.as_str(), id);
    }
    verify(tree, node_version)
}

/// Checks every edge of every needed package against the locked tree, then drops what is
/// not needed (dev dependencies, optional packages for other platforms).
fn verify(mut tree: Tree, node_version: Option<&str>) -> Result<(Tree, Vec<SkippedOptional>), NpmError> {
    tree.prune(&HashSet::new());
    let mut excluded = HashSet::new();
    let mut skipped = Vec::new();
    for id in tree.installed() {
        let node = &tree.nodes[id];
        if node.in_bundle {
            continue;
        }
        if let Some(why) = platform_problem(&node.manifest, node_version) {
            if node.optional {
                skipped.push(SkippedOptional {
                    name: node.name.clone(),
                    spec: node.version.clone(),
                    chain: node.chain.clone(),
                    why,
                });
                excluded.insert(id);
                continue;
            }
            return Err(NpmError::Platform {
                name: node.name.clone(),
                version: node.version.clone(),
                chain: node.chain.clone(),
                why,
            });
        }
    }
    tree.prune(&excluded);
    let mut checked: Vec<usize> = vec![ROOT];
    checked.extend(tree.installed());
    for id in checked {
        let node = &tree.nodes[id];
        if node.in_bundle {
            continue;
        }
        let where_ = if id == ROOT { "package.json".to_string() } else { tree.path(id) };
        for edge in &node.edges {
            let spec = parse_spec(&edge.spec).map_err(|why| NpmError::UnsupportedSpec {
                name: edge.name.clone(),
                spec: edge.spec.clone(),
                chain: node.chain.clone(),
                why,
            })?;
            let found = tree.lookup(id, &edge.name).filter(|f| !excluded.contains(f));
            match found {
                None if edge.kind == EdgeKind::Optional => {}
                None => {
                    return Err(mismatch(format!(
                        "{where_} needs {}@{:?} but the lock has no copy it can load",
                        edge.name, edge.spec
                    )));
                }
                Some(found) => {
                    if satisfies(&tree.nodes[found].version, &spec) == Some(false) {
                        return Err(mismatch(format!(
                            "{where_} needs {}@{:?} but the lock has {} at {}",
                            edge.name,
                            edge.spec,
                            tree.nodes[found].version,
                            tree.path(found)
                        )));
                    }
                }
            }
        }
    }
    Ok((tree, skipped))
}
