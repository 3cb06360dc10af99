//! End-to-end tests of `assemble`: reproducible digests, layers shared across images, and
//! layers that untar to the intended tree.

use std::collections::BTreeMap;
use std::io::Read;

use flate2::read::GzDecoder;
use kiln_archive::tree::EntryKind;

use super::*;
use crate::dpkg::tests::package;

const EPOCH: i64 = 1_700_000_000;

fn sized(name: &str, size: usize) -> UnpackedPackage {
    let mut p = package(name, None);
    p.entries.push(Entry {
        path: format!("usr/share/{name}/data"),
        kind: EntryKind::File { data: vec![b'x'; size].into() },
        mode: 0o644,
        uid: 0,
        gid: 0,
    });
    p.entries.push(Entry { path: "bin".into(), kind: EntryKind::Directory, mode: 0o755, uid: 0, gid: 0 });
    p.entries.push(Entry {
        path: format!("bin/{name}"),
        kind: EntryKind::File { data: b"#!/bin/sh\n".to_vec().into() },
        mode: 0o755,
        uid: 0,
        gid: 0,
    });
    p
}

fn input(packages: Vec<UnpackedPackage>, scratch: &std::path::Path) -> AssembleInput {
    AssembleInput {
        parent: None,
        packages,
        runtime: Vec::new(),
        parent_runtime: Vec::new(),
        extra_files: vec![fixups::file("usr/lib/kiln/server.py", b"print()\n".to_vec(), 0o644, 0)],
        settings: ImageSettings { user: Some("kiln".into()), ..ImageSettings::default() },
        layer_budget: 2,
        source_date_epoch: EPOCH,
        scratch_dir: scratch.to_path_buf(),
        merged_usr: true,
        distro: Some("debian-12".into()),
        reuse: BTreeMap::new(),
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"))
}

fn run(input: AssembleInput) -> AssembledImage {
    assemble(input).unwrap_or_else(|e| panic!("{e}"))
}

/// (path, mode, uid, mtime, content or link target) of every entry of a layer file.
fn untar(blob: &LayerBlob) -> BTreeMap<String, (u32, u64, u64, String)> {
    let bytes = std::fs::read(&blob.path).unwrap_or_default();
    let mut archive = tar::Archive::new(GzDecoder::new(bytes.as_slice()));
    let mut out = BTreeMap::new();
    for entry in archive.entries().into_iter().flatten().flatten() {
        let mut entry = entry;
        let path = entry.path().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        let header = entry.header().clone();
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap_or_default();
        if let Ok(Some(link)) = entry.link_name() {
            text = link.to_string_lossy().into_owned();
        }
        let meta = (header.mode().unwrap_or(0), header.uid().unwrap_or(9), header.mtime().unwrap_or(0), text);
        out.insert(path, meta);
    }
    out
}

#[test]
fn reused_layers_give_the_image_written_layers_give() {
    let (a, b, c) = (tempdir(), tempdir(), tempdir());
    let packages = vec![sized("big", 5000), sized("small", 10), sized("tiny", 1)];
    let written = run(input(packages.clone(), a.path()));
    let planned = package_layers(&input(packages.clone(), a.path())).unwrap_or_else(|e| panic!("{e}"));
    let planned_keys: Vec<Option<Digest>> = planned.iter().map(|l| l.key.clone()).collect();
    let keyed: Vec<Option<Digest>> = written.keyed.iter().map(|(k, _)| Some(k.clone())).collect();
    assert_eq!(planned_keys, keyed, "the plan names the layers assemble makes");
    assert_eq!(planned[1].packages, [("small".to_string(), "amd64".to_string()), ("tiny".into(), "amd64".into())]);
    // Slimmed packages with every layer known: the same image, only the metadata and files written.
    let slimmed: Vec<UnpackedPackage> = packages.iter().map(UnpackedPackage::slimmed).collect();
    assert_eq!(slimmed[0].unpacked_size(), packages[0].unpacked_size());
    let mut reusing = input(slimmed.clone(), b.path());
    reusing.reuse = written.keyed.iter().cloned().collect();
    let reused = run(reusing);
    assert_eq!(reused.manifest_digest, written.manifest_digest);
    assert_eq!(reused.inventory, written.inventory);
    assert_eq!(reused.layers.len(), 2, "metadata and files only");
    assert_eq!(reused.reused, written.layers[..2].iter().map(|l| l.digest.clone()).collect::<Vec<_>>());
    assert!(reused.log.iter().any(|l| l.starts_with("layer 1: sha256:") && l.contains(", reused): package big")));
    // A slimmed package whose layer is unknown cannot be layered.
    let mut partly = input(slimmed, c.path());
    partly.reuse = written.keyed.iter().take(1).cloned().collect();
    assert!(matches!(assemble(partly), Err(AssembleError::Slimmed { what }) if what.contains("small")));
    // Another origin, epoch or gzip level is another key; no origin, no key.
    let mut other = packages[0].clone();
    other.origin = Some("sha256:other".into());
    let key = |p: &UnpackedPackage, epoch| layer_key(&[p], true, epoch);
    assert_ne!(key(&packages[0], EPOCH), key(&other, EPOCH));
    assert_ne!(key(&packages[0], EPOCH), key(&packages[0], EPOCH + 1));
    other.origin = None;
    assert_eq!(key(&other, EPOCH), None);
}

#[test]
fn same_input_same_manifest_digest() {
    let (a, b) = (tempdir(), tempdir());
    let packages = vec![sized("big", 5000), sized("small", 10), sized("tiny", 1)];
    let one = run(input(packages.clone(), a.path()));
    let two = run(input(packages, b.path()));
    assert_eq!(one.manifest_digest, two.manifest_digest);
    assert_eq!(one.config, two.config);
    assert_eq!(
        one.layers.iter().map(|l| &l.digest).collect::<Vec<_>>(),
        two.layers.iter().map(|l| &l.digest).collect::<Vec<_>>()
    );
    // big alone, small+tiny shared, metadata, extra files.
    assert_eq!(one.layers.len(), 4);
    assert_eq!(one.inventory.len(), 3);
    assert_eq!(one.inventory[0].layer.as_deref(), Some(one.layers[0].digest.as_str()));
    assert_eq!(one.inventory[1].layer, one.inventory[2].layer);
    assert_eq!(one.inventory[0].purl, "pkg:deb/debian/big@1.0-1?arch=amd64&distro=debian-12");
    assert!(one.log.iter().any(|l| l.starts_with("layer 1: sha256:") && l.ends_with("package big=1.0-1")));
}

#[test]
fn package_layer_does_not_depend_on_other_packages() {
    let (a, b) = (tempdir(), tempdir());
    let one = run(input(vec![sized("big", 5000), sized("other", 10)], a.path()));
    let mut second = input(vec![sized("zzz", 10), sized("big", 5000), sized("more", 3)], b.path());
    second.layer_budget = 3;
    let two = run(second);
    let digest_of =
        |image: &AssembledImage| image.inventory.iter().find(|i| i.name == "big").and_then(|i| i.layer.clone());
    assert!(digest_of(&one).is_some());
    assert_eq!(digest_of(&one), digest_of(&two));
    assert_ne!(one.manifest_digest, two.manifest_digest);
}

#[test]
fn layers_untar_to_the_expected_tree() {
    let dir = tempdir();
    let image = run(input(vec![sized("big", 100)], dir.path()));
    assert_eq!(image.layers.len(), 3, "package, metadata, files");
    let package = untar(&image.layers[0]);
    assert!(package.values().all(|(_, _, mtime, _)| *mtime == EPOCH as u64));
    assert!(package.contains_key("usr/bin/big"), "merged /usr: {:?}", package.keys().collect::<Vec<_>>());
    assert!(!package.keys().any(|k| k.starts_with("bin")));
    assert_eq!(package["usr/bin/big"].0, 0o755);
    assert_eq!(
        package["var/lib/dpkg/info/big.list"].3,
        "/.\n/etc\n/etc/x.conf\n/usr/lib/x\n/usr/share/big/data\n/bin\n/bin/big\n"
    );

    let metadata = untar(&image.layers[1]);
    assert_eq!(metadata["bin"].3, "usr/bin");
    assert_eq!(metadata["lib"].3, "usr/lib");
    assert!(metadata["var/lib/dpkg/status"].3.starts_with("Package: big\nStatus: install ok installed\n"));
    assert_eq!(metadata["home/kiln/"].1, 1000);
    assert!(metadata["etc/passwd"].3.contains("kiln:x:1000:1000"));
    assert!(metadata.values().all(|(_, _, mtime, _)| *mtime == EPOCH as u64));

    let files = untar(&image.layers[2]);
    assert_eq!(files["usr/lib/kiln/server.py"], (0o644, 0, EPOCH as u64, "print()\n".to_string()));
}

#[test]
fn builds_on_a_parent() {
    let dir = tempdir();
    let parent_layer = Descriptor::for_content(kiln_oci::media_types::OCI_LAYER_TAR_GZIP, b"p");
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        Digest::sha256(b"p")
    );
    let mut build = input(vec![sized("big", 10)], dir.path());
    build.parent = Some(ParentImage {
        config: config.into_bytes(),
        layers: vec![parent_layer.clone()],
        dpkg_status: "Package: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.4\n\n".into(),
        passwd: Some("root:x:0:0:root:/root:/bin/bash\n".into()),
        group: None,
        licences: BTreeMap::new(),
    });
    let image = run(build);
    let names: Vec<(&str, bool)> = image.inventory.iter().map(|i| (i.name.as_str(), i.layer.is_some())).collect();
    assert_eq!(names, [("base-files", false), ("big", true)]);
    assert!(image.dpkg_status.starts_with("Package: base-files\n"));
    let manifest: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap_or_default();
    assert_eq!(manifest["layers"][0]["digest"], parent_layer.digest.as_str());
    assert_eq!(manifest["layers"].as_array().map(Vec::len), Some(4));
    let metadata = untar(&image.layers[1]);
    assert!(!metadata.contains_key("bin"), "a parent keeps its own /bin");
    assert!(metadata["etc/passwd"].3.starts_with("root:x:0:0:root:/root:/bin/bash\nkiln:"));
}

#[test]
fn rejects_duplicates() {
    let dir = tempdir();
    let result = assemble(input(vec![sized("a", 1), sized("a", 2)], dir.path()));
    assert!(matches!(result, Err(AssembleError::DuplicatePackage { .. })));
}

#[test]
fn language_packages_get_layers_above_system_packages_and_join_the_inventory() {
    let scratch = tempdir();
    let mut built = input(vec![sized("libc", 10)], scratch.path());
    built.layer_budget = 4;
    let wheel = |name: &str, size: usize| RuntimePackage {
        ecosystem: kiln_model::package::Ecosystem::Pypi,
        name: name.to_string(),
        version: "1.0".to_string(),
        license: Some("MIT".to_string()),
        purl: format!("pkg:pypi/{name}@1.0"),
        location: None,
        entries: vec![fixups::file(
            &format!("usr/local/lib/python3.11/dist-packages/{name}/__init__.py"),
            vec![b'#'; size],
            0o644,
            0,
        )],
    };
    built.runtime = vec![wheel("numpy", 5000), wheel("six", 10), wheel("tzdata", 20)];
    let image = run(built);
    let numpy = image.inventory.iter().find(|i| i.name == "numpy").unwrap();
    assert_eq!(numpy.ecosystem, kiln_model::package::Ecosystem::Pypi);
    assert_eq!(numpy.license.as_deref(), Some("MIT"));
    let layer = numpy.layer.as_deref().unwrap();
    let index = image.layers.iter().position(|l| l.digest.to_string() == layer).unwrap();
    let libc = image.inventory.iter().find(|i| i.name == "libc").unwrap().layer.clone().unwrap();
    assert!(image.layers.iter().position(|l| l.digest.to_string() == libc).unwrap() < index);
    assert!(untar(&image.layers[index]).contains_key("usr/local/lib/python3.11/dist-packages/numpy/__init__.py"));
}

#[test]
fn an_image_is_dated_by_its_newest_input_and_its_layers_are_not() {
    let created = |image: &AssembledImage| {
        let config: serde_json::Value = serde_json::from_slice(&image.config).unwrap_or_default();
        config["created"].as_str().unwrap_or_default().to_string()
    };
    let dated = |built: Option<i64>| {
        let (mut old, mut new) = (sized("old", 10), sized("new", 10));
        old.built = Some(1_700_000_000);
        new.built = built;
        vec![old, new]
    };
    let (a, b, c) = (tempdir(), tempdir(), tempdir());
    let first = run(input(dated(Some(1_750_000_000)), a.path()));
    assert_eq!(created(&first), "2025-06-15T15:06:40Z", "the newest package's build time");
    let again = run(input(dated(Some(1_750_000_000)), b.path()));
    assert_eq!(first.config, again.config, "the same inputs give the same config");
    let undated = run(input(dated(None), c.path()));
    assert_eq!(created(&undated), "2023-11-14T22:13:20Z");
    // Files in layers keep SOURCE_DATE_EPOCH, so a package's layer is the same bytes in every image.
    assert_eq!(first.layers[0].digest, undated.layers[0].digest);
}
