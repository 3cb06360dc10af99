//! Installation tested end to end without a network: packuments and tarballs are built in
//! memory and served through `NpmSource`, so every case names exactly what the registry said.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use serde_json::{Value, json};
use sha2::Digest;

use super::manifest::{Spec, parse_spec};
use super::*;
use crate::memory::MemoryBudget;
use kiln_archive::tree::EntryKind;

const REGISTRY: &str = "https://registry.test";

/// A gzipped tar; each path is written raw into the header so hostile names survive.
fn tgz(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data, mode) in files {
        let mut header = tar::Header::new_old();
        let name = &mut header.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_size(data.len() as u64);
        header.set_mode(*mode);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder.append(&header, *data).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

fn sri(bytes: &[u8]) -> String {
    format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(bytes)))
}

#[derive(Default)]
struct Registry {
    packuments: BTreeMap<String, Value>,
    tarballs: HashMap<String, Bytes>,
}

impl Registry {
    /// Publishes `name@version` whose package.json is `extra` plus name and version.
    fn publish(&mut self, name: &str, version: &str, extra: Value) -> &mut Self {
        self.publish_files(name, version, extra, &[("package/index.js", b"module.exports = 1\n", 0o644)])
    }

    fn publish_files(&mut self, name: &str, version: &str, extra: Value, files: &[(&str, &[u8], u32)]) -> &mut Self {
        let mut manifest = extra;
        manifest["name"] = json!(name);
        manifest["version"] = json!(version);
        let package_json = serde_json::to_vec(&manifest).unwrap();
        let mut all = vec![("package/package.json", package_json.as_slice(), 0o644)];
        all.extend_from_slice(files);
        let tarball = tgz(&all);
        let url = format!("{REGISTRY}/{name}/-/{}-{version}.tgz", name.rsplit('/').next().unwrap());
        manifest["dist"] = json!({ "tarball": url, "integrity": sri(&tarball) });
        self.tarballs.insert(url, Bytes::from(tarball));
        let packument =
            self.packuments.entry(name.to_string()).or_insert_with(|| json!({ "name": name, "versions": {} }));
        packument["versions"][version] = manifest;
        self
    }

    fn tag(&mut self, name: &str, tag: &str, version: &str) -> &mut Self {
        self.packuments.get_mut(name).unwrap()["dist-tags"][tag] = json!(version);
        self
    }
}

impl NpmSource for Registry {
    async fn packument(&self, name: &str) -> Result<Arc<Packument>, NpmError> {
        let url = format!("{REGISTRY}/{name}");
        let value = self.packuments.get(name).ok_or(NpmError::NotFound { name: name.into(), url })?;
        Ok(Arc::new(Packument::from_json(name, &serde_json::to_vec(value).unwrap(), None).unwrap()))
    }

    async fn tarball(&self, url: &str, _max_bytes: u64) -> Result<Bytes, NpmError> {
        self.tarballs.get(url).cloned().ok_or(NpmError::Registry { url: url.into(), why: "404".into() })
    }
}

fn package_json(dependencies: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({ "name": "app", "version": "1.0.0", "dependencies": dependencies })).unwrap()
}

fn options() -> InstallOptions {
    InstallOptions { prefix: "opt/app".into(), ..InstallOptions::default() }
}

async fn install_deps(registry: &Registry, deps: Value) -> Result<Installation, NpmError> {
    install(registry, &package_json(deps), None, &options()).await
}

fn versions(installation: &Installation) -> Vec<(String, String)> {
    installation.packages.iter().map(|p| (p.path.clone(), p.version.clone())).collect()
}

fn pair(path: &str, version: &str) -> (String, String) {
    (path.to_string(), version.to_string())
}

#[test]
fn ranges_follow_npm_semantics() {
    let mut registry = Registry::default();
    for v in ["1.0.0", "1.2.3", "1.2.9", "1.3.0", "2.0.0", "2.1.0-beta.1"] {
        registry.publish("a", v, json!({}));
    }
    registry.tag("a", "latest", "2.0.0").tag("a", "next", "2.1.0-beta.1");
    let packument = Packument::from_json("a", &serde_json::to_vec(&registry.packuments["a"]).unwrap(), None).unwrap();
    let pick = |spec: &str| packument.pick(&parse_spec(spec).unwrap()).map(|m| m.version.clone());
    assert_eq!(pick("^1.0.0").as_deref(), Some("1.3.0"));
    assert_eq!(pick("~1.2.0").as_deref(), Some("1.2.9"));
    assert_eq!(pick("1.2.x").as_deref(), Some("1.2.9"));
    assert_eq!(pick(">=1.0.0 <1.2.5").as_deref(), Some("1.2.3"));
    assert_eq!(pick("^0.1.0 || 1.0.0").as_deref(), Some("1.0.0"));
    assert_eq!(pick("1.2.3").as_deref(), Some("1.2.3"));
    assert_eq!(pick("*").as_deref(), Some("2.0.0"));
    assert_eq!(pick("").as_deref(), Some("2.0.0"));
    assert_eq!(pick("latest").as_deref(), Some("2.0.0"));
    assert_eq!(pick("next").as_deref(), Some("2.1.0-beta.1"));
    assert_eq!(pick("^3.0.0"), None);
    assert!(matches!(parse_spec("^1"), Ok(Spec::Range(_))));
    for refused in ["npm:b@1", "git+https://x/y.git", "github:u/r", "file:../x", "https://x/y.tgz", "user/repo"] {
        assert!(parse_spec(refused).is_err(), "{refused}");
    }
}

#[tokio::test]
async fn latest_is_preferred_when_it_satisfies() {
    let mut registry = Registry::default();
    registry.publish("a", "1.0.0", json!({})).publish("a", "1.1.0", json!({})).publish("a", "1.2.0", json!({}));
    registry.tag("a", "latest", "1.1.0");
    let installation = install_deps(&registry, json!({ "a": "^1.0.0" })).await.unwrap();
    assert_eq!(versions(&installation), [pair("node_modules/a", "1.1.0")]);
    let installation = install_deps(&registry, json!({ "a": ">1.1.0" })).await.unwrap();
    assert_eq!(versions(&installation), [pair("node_modules/a", "1.2.0")]);
}

#[tokio::test]
async fn unknown_package_and_unsatisfiable_range_are_named() {
    let mut registry = Registry::default();
    registry.publish("a", "1.0.0", json!({})).publish("a", "1.1.0", json!({}));
    let error = install_deps(&registry, json!({ "nope": "^1" })).await.unwrap_err().to_string();
    assert!(error.contains("nope") && error.contains("https://registry.test/nope"), "{error}");
    let error = install_deps(&registry, json!({ "a": "^2" })).await.unwrap_err().to_string();
    assert!(error.contains("no version of a satisfies \"^2\"") && error.contains("1.1.0, 1.0.0"), "{error}");
    let error = install_deps(&registry, json!({ "a": "git+https://example.com/a.git" })).await.unwrap_err();
    assert!(error.to_string().starts_with("dependency a@"), "{error}");
}

#[tokio::test]
async fn conflicting_versions_nest_under_their_dependent() {
    let mut registry = Registry::default();
    registry.publish("a", "1.0.0", json!({})).publish("a", "2.0.0", json!({}));
    registry.publish("b", "1.0.0", json!({ "dependencies": { "a": "^2.0.0", "c": "^1" } }));
    registry.publish("c", "1.0.0", json!({ "dependencies": { "a": "^2.0.0" } }));
    let installation = install_deps(&registry, json!({ "a": "^1.0.0", "b": "^1.0.0" })).await.unwrap();
    assert_eq!(
        versions(&installation),
        [
            pair("node_modules/a", "1.0.0"),
            pair("node_modules/b", "1.0.0"),
            pair("node_modules/b/node_modules/a", "2.0.0"),
            pair("node_modules/c", "1.0.0"),
            pair("node_modules/c/node_modules/a", "2.0.0"),
        ]
    );
    let paths: Vec<String> = installation.entries().into_iter().map(|e| e.path).collect();
    assert!(paths.contains(&"opt/app/node_modules/b/node_modules".to_string()));
    assert!(paths.contains(&"opt/app/node_modules/b/node_modules/a/index.js".to_string()));
    let mut sorted = paths.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(paths, sorted, "entries come parents first, each once");
}

#[tokio::test]
async fn peers_are_installed_beside_and_conflicts_are_refused() {
    let mut registry = Registry::default();
    registry.publish("host", "1.0.0", json!({})).publish("host", "2.0.0", json!({}));
    registry.tag("host", "latest", "2.0.0");
    registry.publish("plugin", "1.0.0", json!({ "peerDependencies": { "host": "^1.0.0" } }));
    let installation = install_deps(&registry, json!({ "plugin": "1.0.0" })).await.unwrap();
    assert_eq!(versions(&installation), [pair("node_modules/host", "1.0.0"), pair("node_modules/plugin", "1.0.0")]);
    let error = install_deps(&registry, json!({ "plugin": "1.0.0", "host": "^2" })).await.unwrap_err().to_string();
    assert!(
        error.starts_with("peer dependency conflict: package.json → plugin@1.0.0 needs host@\"^1.0.0\""),
        "{error}"
    );
    assert!(error.contains("host@2.0.0 is installed at node_modules/host"), "{error}");
}

#[tokio::test]
async fn optional_dependency_for_another_platform_is_skipped() {
    let mut registry = Registry::default();
    registry.publish("fsevents", "2.0.0", json!({ "os": ["darwin"] }));
    registry.publish("watcher", "1.0.0", json!({ "optionalDependencies": { "fsevents": "^2", "gone": "^1" } }));
    registry.publish("linux-only", "1.0.0", json!({ "os": ["!win32"], "cpu": ["x64", "arm64"] }));
    let installation = install_deps(&registry, json!({ "watcher": "^1", "linux-only": "^1" })).await.unwrap();
    assert_eq!(
        versions(&installation),
        [pair("node_modules/linux-only", "1.0.0"), pair("node_modules/watcher", "1.0.0")]
    );
    let skipped: Vec<&str> = installation.skipped_optional.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(skipped, ["fsevents", "gone"]);
    let error = install_deps(&registry, json!({ "fsevents": "^2" })).await.unwrap_err().to_string();
    assert!(error.starts_with("fsevents@2.0.0 (package.json) cannot run on linux/x64: its os field"), "{error}");
}

#[tokio::test]
async fn a_failure_inside_an_optional_dependency_drops_only_that_dependency() {
    let mut registry = Registry::default();
    registry.publish("native", "1.0.0", json!({ "dependencies": { "helper": "^9" } }));
    registry.publish("helper", "1.0.0", json!({}));
    registry.publish("app-core", "1.0.0", json!({ "optionalDependencies": { "native": "1" } }));
    let installation = install_deps(&registry, json!({ "app-core": "1" })).await.unwrap();
    assert_eq!(versions(&installation), [pair("node_modules/app-core", "1.0.0")]);
    let skipped = &installation.skipped_optional[0];
    assert_eq!(skipped.name, "native");
    assert!(skipped.why.contains("no version of helper satisfies \"^9\""), "{}", skipped.why);
    let old_node = InstallOptions { node_version: Some("16.0.0".into()), ..options() };
    registry.publish("modern", "1.0.0", json!({ "engines": { "node": ">=18" } }));
    let error = install(&registry, &package_json(json!({ "modern": "1" })), None, &old_node).await.unwrap_err();
    assert!(error.to_string().contains("its engines.node \">=18\" excludes node 16.0.0"), "{error}");
}

fn lock_for(registry: &Registry, entries: &[(&str, &str, &str)], root: Value) -> Vec<u8> {
    let mut packages = serde_json::Map::new();
    packages.insert("".into(), root);
    for (path, name, version) in entries {
        let manifest = &registry.packuments[*name]["versions"][*version];
        let mut entry = json!({
            "version": version,
            "resolved": manifest["dist"]["tarball"],
            "integrity": manifest["dist"]["integrity"],
        });
        for field in ["dependencies", "optionalDependencies", "os"] {
            if let Some(value) = manifest.get(field) {
                entry[field] = value.clone();
            }
        }
        packages.insert(path.to_string(), entry);
    }
    serde_json::to_vec(&json!({ "name": "app", "lockfileVersion": 3, "requires": true, "packages": packages })).unwrap()
}

#[tokio::test]
async fn lockfile_is_honoured_and_a_stale_one_refused() {
    let mut registry = Registry::default();
    registry.publish("a", "1.0.0", json!({ "dependencies": { "b": "^1" } })).publish("a", "1.5.0", json!({}));
    registry.publish("b", "1.0.0", json!({})).publish("tool", "1.0.0", json!({}));
    let root = json!({ "name": "app", "dependencies": { "a": "^1.0.0" }, "devDependencies": { "tool": "^1" } });
    let entries = [
        ("node_modules/a", "a", "1.0.0"),
        ("node_modules/a/node_modules/b", "b", "1.0.0"),
        ("node_modules/tool", "tool", "1.0.0"),
    ];
    let lock = lock_for(&registry, &entries, root);
    let deps = package_json(json!({ "a": "^1.0.0" }));
    let installation = install(&registry, &deps, Some(&lock), &options()).await.unwrap();
    // The lock's older version wins over latest; the dev-only tool is left out.
    assert_eq!(
        versions(&installation),
        [pair("node_modules/a", "1.0.0"), pair("node_modules/a/node_modules/b", "1.0.0")]
    );
    let stale = package_json(json!({ "a": "^1.5.0" }));
    let error = install(&registry, &stale, Some(&lock), &options()).await.unwrap_err().to_string();
    assert!(
        error.starts_with("package-lock.json does not match package.json: package.json dependencies has a@"),
        "{error}"
    );
    assert!(error.ends_with("run npm install to update the lock"), "{error}");
    // A lock whose root agrees but whose tree cannot satisfy it is refused too.
    let root = json!({ "dependencies": { "a": "^1.5.0" } });
    let lock = lock_for(&registry, &[("node_modules/a", "a", "1.0.0")], root);
    let error = install(&registry, &stale, Some(&lock), &options()).await.unwrap_err().to_string();
    assert!(error.contains("package.json needs a@\"^1.5.0\" but the lock has 1.0.0 at node_modules/a"), "{error}");
    // An optional package locked for another platform is left out, not refused.
    registry.publish("fsevents", "2.0.0", json!({ "os": ["darwin"] }));
    let with_optional = serde_json::to_vec(&json!({ "optionalDependencies": { "fsevents": "^2" } })).unwrap();
    let root = json!({ "optionalDependencies": { "fsevents": "^2" } });
    let lock = lock_for(&registry, &[("node_modules/fsevents", "fsevents", "2.0.0")], root);
    let installation = install(&registry, &with_optional, Some(&lock), &options()).await.unwrap();
    assert!(installation.packages.is_empty());
    assert_eq!(installation.skipped_optional[0].name, "fsevents");
    let old = br#"{"lockfileVersion": 1, "dependencies": {}}"#;
    let error = install(&registry, &deps, Some(old), &options()).await.unwrap_err().to_string();
    assert!(error.contains("lockfileVersion 1"), "{error}");
}

#[tokio::test]
async fn integrity_mismatch_is_refused() {
    let mut registry = Registry::default();
    registry.publish("a", "1.0.0", json!({}));
    let url = format!("{REGISTRY}/a/-/a-1.0.0.tgz");
    registry.tarballs.insert(url.clone(), Bytes::from(tgz(&[("package/evil.js", b"x", 0o644)])));
    let error = install_deps(&registry, json!({ "a": "1.0.0" })).await.unwrap_err();
    let NpmError::Integrity { name, version, url: got, expected, actual } = &error else { panic!("{error}") };
    assert_eq!((name.as_str(), version.as_str(), got.as_str()), ("a", "1.0.0", url.as_str()));
    assert!(expected.starts_with("sha512-") && actual.starts_with("sha512-") && expected != actual);
}

#[test]
fn shasum_is_checked_when_there_is_no_integrity() {
    let bytes = b"tarball";
    let sha1 = hex::encode(sha1::Sha1::digest(bytes));
    assert!(tarball::verify(bytes, None, Some(&sha1)).unwrap().starts_with("sha1-"));
    assert!(tarball::verify(b"other", None, Some(&sha1)).is_err());
    assert_eq!(tarball::verify(bytes, None, None), Err(tarball::IntegrityProblem::Missing));
    // The strongest algorithm decides.
    let both = format!("sha1-AAAA {}", sri(bytes));
    assert!(tarball::verify(bytes, Some(&both), None).unwrap().starts_with("sha512-"));
}

#[test]
fn escaping_paths_are_refused() {
    for path in ["package/../../etc/passwd", "/etc/passwd", "../x"] {
        let archive = tgz(&[(path, b"x", 0o644)]);
        let result = tarball::unpack(&archive, &mut (1 << 20), 100, &MemoryBudget::unlimited());
        assert!(matches!(result, Err(tarball::UnpackProblem::Unsafe { .. })), "{path}: {result:?}");
    }
}

#[tokio::test]
async fn unsafe_tarball_is_refused_naming_the_package() {
    let mut registry = Registry::default();
    registry.publish_files("a", "1.0.0", json!({}), &[("package/../../../root/.bashrc", b"x", 0o644)]);
    let error = install_deps(&registry, json!({ "a": "1" })).await.unwrap_err().to_string();
    assert!(error.starts_with("tarball of a@1.0.0: entry \"package/../../../root/.bashrc\" climbs out"), "{error}");
}

#[tokio::test]
async fn size_bomb_is_refused() {
    let zeros = vec![0u8; 4 << 20];
    let mut registry = Registry::default();
    registry.publish_files("bomb", "1.0.0", json!({}), &[("package/zeros.bin", &zeros, 0o644)]);
    let small = InstallOptions { max_unpacked_bytes: 1 << 20, ..options() };
    let error = install(&registry, &package_json(json!({ "bomb": "1" })), None, &small).await.unwrap_err();
    assert!(matches!(error, NpmError::TooBig { .. }), "{error}");
    assert!(error.to_string().contains("bomb@1.0.0"), "{error}");
    // The build's memory budget bounds tarballs too, whatever the npm step's own limit.
    let tight = InstallOptions { memory: MemoryBudget::new(1 << 20), ..options() };
    let error = install(&registry, &package_json(json!({ "bomb": "1" })), None, &tight).await.unwrap_err();
    assert!(
        error.to_string().contains("has zeros.bin, which inflates past the build's memory limit of 1 MiB"),
        "{error}"
    );
    let many: Vec<(String, Vec<u8>)> = (0..50).map(|i| (format!("package/{i}"), Vec::new())).collect();
    let files: Vec<(&str, &[u8], u32)> = many.iter().map(|(p, d)| (p.as_str(), d.as_slice(), 0o644)).collect();
    let result = tarball::unpack(&tgz(&files), &mut (1 << 20), 10, &MemoryBudget::unlimited());
    assert!(matches!(result, Err(tarball::UnpackProblem::TooBig(_))), "{result:?}");
}

#[tokio::test]
async fn install_scripts_are_refused_unless_allowed_then_reported() {
    let mut registry = Registry::default();
    registry.publish("post", "1.0.0", json!({ "scripts": { "postinstall": "node setup.js", "test": "x" } }));
    registry.publish_files("native", "1.0.0", json!({}), &[("package/binding.gyp", b"{}", 0o644)]);
    let deps = json!({ "post": "1", "native": "1" });
    let error = install_deps(&registry, deps.clone()).await.unwrap_err().to_string();
    assert!(error.contains("native@1.0.0 (install: node-gyp rebuild)"), "{error}");
    assert!(error.contains("post@1.0.0 (postinstall: node setup.js)"), "{error}");
    let allowed = InstallOptions { allow_scripts: true, ..options() };
    let installation = install(&registry, &package_json(deps), None, &allowed).await.unwrap();
    let scripts: Vec<(&str, &str)> =
        installation.skipped_scripts.iter().map(|s| (s.name.as_str(), s.event.as_str())).collect();
    assert_eq!(scripts, [("native", "install"), ("post", "postinstall")]);
    assert_eq!(installation.packages.len(), 2);
}

#[test]
fn licences_are_normalised() {
    let cases = [
        (json!({ "license": "mit" }), Some("MIT")),
        (json!({ "license": "Apache 2.0" }), Some("Apache-2.0")),
        (json!({ "license": "Apache License, Version 2.0" }), Some("Apache-2.0")),
        (json!({ "license": "isc" }), Some("ISC")),
        (json!({ "license": "New BSD" }), Some("BSD-3-Clause")),
        (json!({ "license": { "type": "MIT", "url": "x" } }), Some("MIT")),
        (json!({ "licenses": [{ "type": "MIT" }, { "type": "Apache-2.0" }] }), Some("MIT OR Apache-2.0")),
        (json!({ "license": "(MIT OR GPL-3.0-or-later)" }), Some("(MIT OR GPL-3.0-or-later)")),
        (json!({}), None),
    ];
    for (value, expected) in cases {
        assert_eq!(Manifest::from_value(&value).license.as_deref(), expected, "{value}");
    }
    assert_eq!(purl("axios", "1.7.9"), "pkg:npm/axios@1.7.9");
    assert_eq!(purl("@scope/name", "1.0.0"), "pkg:npm/%40scope/name@1.0.0");
}

#[tokio::test]
async fn bin_links_and_hidden_lockfile_are_written() {
    let mut registry = Registry::default();
    let cli: &[(&str, &[u8], u32)] = &[("package/cli.js", b"#!/usr/bin/env node\n", 0o644)];
    registry.publish_files("lodash", "4.17.21", json!({ "license": "MIT", "bin": "./cli.js" }), cli);
    registry.publish_files("@scope/tool", "1.0.0", json!({ "bin": { "tool": "cli.js" } }), cli);
    let installation = install_deps(&registry, json!({ "lodash": "^4", "@scope/tool": "1" })).await.unwrap();
    let entries: HashMap<String, kiln_archive::tree::Entry> =
        installation.entries().into_iter().map(|e| (e.path.clone(), e)).collect();
    let link = &entries["opt/app/node_modules/.bin/lodash"];
    assert_eq!(link.kind, EntryKind::Symlink { target: "../lodash/cli.js".into() });
    let link = &entries["opt/app/node_modules/.bin/tool"];
    assert_eq!(link.kind, EntryKind::Symlink { target: "../@scope/tool/cli.js".into() });
    assert_eq!(entries["opt/app/node_modules/lodash/cli.js"].mode, 0o755);
    assert_eq!(entries["opt/app/node_modules/lodash/package.json"].mode, 0o644);
    for dir in ["opt", "opt/app", "opt/app/node_modules", "opt/app/node_modules/@scope", "opt/app/node_modules/.bin"] {
        assert_eq!(entries[dir].kind, EntryKind::Directory, "{dir}");
    }
    let EntryKind::File { data } = &entries["opt/app/node_modules/.package-lock.json"].kind else { panic!() };
    let lock: Value = serde_json::from_slice(data).unwrap();
    assert_eq!(lock["lockfileVersion"], 3);
    assert_eq!(lock["packages"]["node_modules/lodash"]["version"], "4.17.21");
    assert_eq!(lock["packages"]["node_modules/lodash"]["license"], "MIT");
    assert_eq!(lock["packages"]["node_modules/lodash"]["bin"]["lodash"], "./cli.js");
    assert!(lock["packages"]["node_modules/@scope/tool"]["integrity"].as_str().unwrap().starts_with("sha512-"));
    let lodash = installation.packages.iter().find(|p| p.name == "lodash").unwrap();
    assert_eq!(lodash.purl, "pkg:npm/lodash@4.17.21");
    assert_eq!(lodash.license.as_deref(), Some("MIT"));
    assert_eq!(lodash.resolved, "https://registry.test/lodash/-/lodash-4.17.21.tgz");
    assert!(lodash.entries.iter().all(|e| e.path.starts_with("opt/app/node_modules/lodash") && e.uid == 0));
}

#[test]
fn relative_tarball_urls_resolve_against_the_registry() {
    let base = url::Url::parse("http://127.0.0.1:4873/npm/").unwrap();
    let body = json!({ "versions": {
        "1.0.0": { "dist": { "tarball": "a/-/a-1.0.0.tgz", "integrity": "sha512-AA==" } },
        "2.0.0": { "dist": { "tarball": "/other/a-2.0.0.tgz" } },
    } });
    let packument = Packument::from_json("a", &serde_json::to_vec(&body).unwrap(), Some(&base)).unwrap();
    assert_eq!(packument.get("1.0.0").unwrap().dist.tarball, "http://127.0.0.1:4873/npm/a/-/a-1.0.0.tgz");
    assert_eq!(packument.get("2.0.0").unwrap().dist.tarball, "http://127.0.0.1:4873/other/a-2.0.0.tgz");
    let registry = HttpRegistry::new(reqwest::Client::new(), "http://127.0.0.1:4873/npm", RegistryAuth::None).unwrap();
    assert_eq!(registry.packument_url("@scope/name").unwrap().as_str(), "http://127.0.0.1:4873/npm/@scope%2fname");
}
