//! The parts of package.json, packument versions and lock entries that installation needs,
//! read leniently: the registry holds fifteen years of hand-written manifests, so a field of
//! the wrong shape is treated as absent rather than failing a whole packument.

use std::collections::{BTreeMap, BTreeSet};

use nodejs_semver::{Range, Version};
use serde_json::Value;

/// One version of a package as any of the three sources describe it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub dependencies: BTreeMap<String, String>,
    pub optional_dependencies: BTreeMap<String, String>,
    pub peer_dependencies: BTreeMap<String, String>,
    /// Peers marked optional in `peerDependenciesMeta`: npm does not install them.
    pub optional_peers: BTreeSet<String>,
    /// Dependencies that ship inside the tarball and so are never fetched on their own.
    pub bundled: BTreeSet<String>,
    pub bin: BTreeMap<String, String>,
    pub scripts: BTreeMap<String, String>,
    pub has_install_script: bool,
    pub os: Vec<String>,
    pub cpu: Vec<String>,
    pub engines: BTreeMap<String, String>,
    pub license: Option<String>,
    pub dist: Dist,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dist {
    pub tarball: String,
    pub integrity: Option<String>,
    pub shasum: Option<String>,
}

fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    let Some(Value::Object(map)) = value else { return BTreeMap::new() };
    map.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect()
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

fn string(value: Option<&Value>) -> Option<String> {
    value.and_then(Value::as_str).map(str::to_string)
}

impl Manifest {
    pub fn from_value(value: &Value) -> Manifest {
        let get = |key: &str| value.get(key);
        let name = string(get("name")).unwrap_or_default();
        let optional_dependencies = string_map(get("optionalDependencies"));
        let mut dependencies = string_map(get("dependencies"));
        // npm lets an optional entry override a regular one of the same name.
        dependencies.retain(|name, _| !optional_dependencies.contains_key(name));
        let optional_peers = match get("peerDependenciesMeta") {
            Some(Value::Object(meta)) => meta
                .iter()
                .filter(|(_, m)| m.get("optional").and_then(Value::as_bool) == Some(true))
                .map(|(k, _)| k.clone())
                .collect(),
            _ => BTreeSet::new(),
        };
        let bundled = match get("bundleDependencies").or_else(|| get("bundledDependencies")) {
            Some(Value::Bool(true)) => dependencies.keys().cloned().collect(),
            other => string_list(other).into_iter().collect(),
        };
        let bin = match get("bin") {
            Some(Value::String(path)) => {
                let short = name.rsplit('/').next().unwrap_or(&name).to_string();
                BTreeMap::from([(short, path.clone())])
            }
            other => string_map(other),
        };
        let dist = match get("dist") {
            Some(dist) => Dist {
                tarball: string(dist.get("tarball")).unwrap_or_default(),
                integrity: string(dist.get("integrity")),
                shasum: string(dist.get("shasum")),
            },
            // Lock entries keep the same facts at the top level.
            None => Dist {
                tarball: string(get("resolved")).unwrap_or_default(),
                integrity: string(get("integrity")),
                shasum: None,
            },
        };
        Manifest {
            version: string(get("version")).unwrap_or_default(),
            dependencies,
            optional_dependencies,
            peer_dependencies: string_map(get("peerDependencies")),
            optional_peers,
            bundled,
            bin,
            scripts: string_map(get("scripts")),
            has_install_script: get("hasInstallScript").and_then(Value::as_bool) == Some(true),
            os: string_list(get("os")),
            cpu: string_list(get("cpu")),
            engines: string_map(get("engines")),
            license: license_of(value),
            dist,
            name,
        }
    }

    /// The dependency edges npm installs for this package, in name order.
    pub fn edges(&self) -> Vec<Edge> {
        let mut edges: Vec<Edge> = Vec::new();
        let mut add = |map: &BTreeMap<String, String>, kind: EdgeKind| {
            for (name, spec) in map {
                if self.bundled.contains(name) {
                    continue;
                }
                edges.push(Edge { name: name.clone(), spec: spec.clone(), kind });
            }
        };
        add(&self.dependencies, EdgeKind::Prod);
        add(&self.optional_dependencies, EdgeKind::Optional);
        let peers: BTreeMap<String, String> = self
            .peer_dependencies
            .iter()
            .filter(|(name, _)| {
                !self.optional_peers.contains(*name)
                    && !self.dependencies.contains_key(*name)
                    && !self.optional_dependencies.contains_key(*name)
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        add(&peers, EdgeKind::Peer);
        edges.sort_by(|a, b| a.name.cmp(&b.name));
        edges
    }

    /// Lifecycle scripts npm would run at install time, as (event, command).
    pub fn install_scripts(&self, has_binding_gyp: bool) -> Vec<(String, String)> {
        let mut found: Vec<(String, String)> = ["preinstall", "install", "postinstall"]
            .iter()
            .filter_map(|event| self.scripts.get(*event).map(|cmd| (event.to_string(), cmd.clone())))
            .collect();
        // npm invents `node-gyp rebuild` for a native addon that brings no install step of its own.
        if has_binding_gyp && !self.scripts.contains_key("install") && !self.scripts.contains_key("preinstall") {
            found.push(("install".into(), "node-gyp rebuild".into()));
        }
        found
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeKind {
    Prod,
    Optional,
    Peer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub name: String,
    pub spec: String,
    pub kind: EdgeKind,
}

/// What a dependency's right-hand side asks for.
#[derive(Debug, Clone)]
pub enum Spec {
    Range(Range),
    Tag(String),
}

/// Classifies a dependency spec; `Err` carries why it cannot be installed from a registry.
pub fn parse_spec(spec: &str) -> Result<Spec, String> {
    let trimmed = spec.trim();
    if trimmed.starts_with("npm:") {
        return Err("is an npm: alias, which kiln does not install: depend on the real package name".into());
    }
    const OTHER_SOURCES: [&str; 10] =
        ["git+", "git:", "github:", "gitlab:", "bitbucket:", "gist:", "file:", "link:", "workspace:", "http"];
    if OTHER_SOURCES.iter().any(|p| trimmed.starts_with(p)) || trimmed.contains("://") || trimmed.contains('/') {
        return Err(
            "is not a registry version range (git, file, link and URL dependencies are refused): publish the package to a registry and use a version range".into(),
        );
    }
    if let Ok(range) = Range::parse(trimmed) {
        return Ok(Spec::Range(range));
    }
    let is_tag = !trimmed.is_empty()
        && trimmed.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        && !trimmed.starts_with(|c: char| c.is_ascii_digit() || c == 'v');
    if is_tag {
        return Ok(Spec::Tag(trimmed.to_string()));
    }
    Err("is neither a semver range nor a dist-tag: fix the range in package.json".into())
}

/// Whether `version` meets `spec` without asking the registry; tags cannot be judged here.
pub fn satisfies(version: &str, spec: &Spec) -> Option<bool> {
    match spec {
        Spec::Range(range) => Some(Version::parse(version).is_ok_and(|v| range.satisfies(&v))),
        Spec::Tag(_) => None,
    }
}

/// Why a package may not be installed on linux/x64 (and the optional node version), if so.
pub fn platform_problem(manifest: &Manifest, node_version: Option<&str>) -> Option<String> {
    fn excludes(list: &[String], target: &str) -> bool {
        if list.iter().any(|item| item.strip_prefix('!') == Some(target)) {
            return true;
        }
        let positives: Vec<&String> = list.iter().filter(|item| !item.starts_with('!')).collect();
        !positives.is_empty() && !positives.iter().any(|item| *item == target || *item == "any")
    }
    if excludes(&manifest.os, "linux") {
        return Some(format!("its os field {:?} excludes linux", manifest.os));
    }
    if excludes(&manifest.cpu, "x64") {
        return Some(format!("its cpu field {:?} excludes x64", manifest.cpu));
    }
    if let (Some(node), Some(wanted)) = (node_version, manifest.engines.get("node")) {
        let fits = match (Version::parse(node), Range::parse(wanted)) {
            (Ok(node), Ok(range)) => range.satisfies(&node),
            // An unreadable engines range is ignored, as npm does.
            _ => true,
        };
        if !fits {
            return Some(format!("its engines.node {wanted:?} excludes node {node}"));
        }
    }
    None
}

fn license_of(value: &Value) -> Option<String> {
    let one = |v: &Value| match v {
        Value::String(s) => Some(normalise_license(s)),
        Value::Object(o) => o.get("type").and_then(Value::as_str).map(normalise_license),
        _ => None,
    };
    if let Some(found) = value.get("license").and_then(one) {
        return Some(found);
    }
    // The legacy `licenses` array meant the user may choose any of them.
    let all: Vec<String> = match value.get("licenses") {
        Some(Value::Array(items)) => items.iter().filter_map(one).collect(),
        Some(other) => one(other).into_iter().collect(),
        None => Vec::new(),
    };
    match all.len() {
        0 => None,
        1 => all.into_iter().next(),
        _ => Some(all.join(" OR ")),
    }
}

/// Maps the spellings seen in the wild onto SPDX ids; anything unknown passes through.
pub fn normalise_license(raw: &str) -> String {
    let trimmed = raw.trim();
    let key: String =
        trimmed.to_ascii_lowercase().replace(['_', ','], " ").split_whitespace().collect::<Vec<_>>().join(" ");
    let id = match key.as_str() {
        "mit" | "mit license" | "the mit license" | "expat" | "mit/x11" => "MIT",
        "isc" | "isc license" => "ISC",
        "apache-2.0"
        | "apache 2.0"
        | "apache 2"
        | "apache-2"
        | "apache2"
        | "apache2.0"
        | "apache v2"
        | "apache-v2"
        | "apache license 2.0"
        | "apache license version 2.0"
        | "apache license v2"
        | "apache-2.0 license"
        | "apache 2.0 license" => "Apache-2.0",
        "bsd-3-clause"
        | "bsd 3-clause"
        | "bsd-3"
        | "bsd 3 clause"
        | "3-clause bsd"
        | "new bsd"
        | "bsd new"
        | "modified bsd"
        | "revised bsd"
        | "bsd-3-clause license" => "BSD-3-Clause",
        "bsd-2-clause" | "bsd 2-clause" | "bsd-2" | "bsd 2 clause" | "2-clause bsd" | "simplified bsd" | "freebsd" => {
            "BSD-2-Clause"
        }
        "0bsd" => "0BSD",
        "unlicense" | "the unlicense" => "Unlicense",
        "cc0-1.0" | "cc0" | "cc0 1.0" => "CC0-1.0",
        "mpl-2.0" | "mpl 2.0" | "mpl2" => "MPL-2.0",
        "gpl-2.0" | "gplv2" | "gpl-2" | "gpl 2.0" => "GPL-2.0-only",
        "gpl-3.0" | "gplv3" | "gpl-3" | "gpl 3.0" => "GPL-3.0-only",
        "lgpl-2.1" | "lgplv2.1" => "LGPL-2.1-only",
        "lgpl-3.0" | "lgplv3" => "LGPL-3.0-only",
        "wtfpl" => "WTFPL",
        "blueoak-1.0.0" => "BlueOak-1.0.0",
        "python-2.0" => "Python-2.0",
        "cc-by-4.0" => "CC-BY-4.0",
        "cc-by-3.0" => "CC-BY-3.0",
        "artistic-2.0" => "Artistic-2.0",
        "zlib" => "Zlib",
        _ => trimmed,
    };
    id.to_string()
}

/// The package URL SBOMs use: `pkg:npm/%40scope/name@1.0.0`.
pub fn purl(name: &str, version: &str) -> String {
    let name = match name.strip_prefix('@') {
        Some(rest) => format!("%40{rest}"),
        None => name.to_string(),
    };
    format!("pkg:npm/{name}@{}", version.replace('+', "%2B"))
}

/// npm's name rules, tightened to what can go into a URL path and a directory name safely.
pub fn valid_name(name: &str) -> bool {
    fn part(p: &str) -> bool {
        !p.is_empty()
            && !p.starts_with('.')
            && p.len() <= 214
            && p.chars().all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
    }
    match name.strip_prefix('@') {
        Some(scoped) => scoped.split_once('/').is_some_and(|(scope, pkg)| part(scope) && part(pkg)),
        None => part(name),
    }
}
