//! A small npm registry the Node example's test writes itself, each package wrong in one way
//! Kiln must refuse: an install script, a tarball that fails its integrity, a tarball with
//! `../` in a path, one with an absolute path. Served as static files like the npm fixture.

use std::path::Path;

use base64::Engine;
use serde_json::json;
use sha2::Digest;

/// A tarball holding `package/<path>` for each file, as npm packs them.
fn tarball(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (path, data) in files {
        let mut header = tar::Header::new_gnu();
        let name =
            if path.starts_with('/') || path.starts_with("..") { path.to_string() } else { format!("package/{path}") };
        // Written into the raw header: the tar crate itself refuses `..` and absolute names.
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder.append(&header, *data).expect("tar entry");
    }
    builder.into_inner().and_then(|gz| gz.finish()).expect("tarball")
}

/// Writes `name` 1.0.0 with `files` (besides package.json); `scripts` go in its metadata;
/// `tamper` makes the published integrity not match the tarball.
fn publish(root: &Path, name: &str, files: &[(&str, &[u8])], scripts: serde_json::Value, tamper: bool) {
    let manifest = json!({"name": name, "version": "1.0.0", "license": "MIT", "scripts": scripts});
    let manifest_text = serde_json::to_vec(&manifest).expect("json");
    let mut all: Vec<(&str, &[u8])> = vec![("package.json", &manifest_text)];
    all.extend_from_slice(files);
    let bytes = tarball(&all);
    let mut digest = sha2::Sha512::digest(&bytes).to_vec();
    if tamper {
        digest[0] ^= 1;
    }
    let integrity = format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(digest));
    let dir = root.join(name).join("-");
    std::fs::create_dir_all(&dir).expect("package dir");
    let filename = format!("{name}-1.0.0.tgz");
    std::fs::write(dir.join(&filename), &bytes).expect("tarball");
    let mut version = manifest.clone();
    version["dist"] = json!({"tarball": format!("/{name}/-/{filename}"), "integrity": integrity});
    let packument = json!({"name": name, "dist-tags": {"latest": "1.0.0"}, "versions": {"1.0.0": version}});
    std::fs::write(root.join(name).join("index.html"), serde_json::to_vec(&packument).expect("json"))
        .expect("packument");
}

/// The registry's packages: `kiln-scripted`, `kiln-tampered`, `kiln-escape`, `kiln-absolute`.
pub fn write(root: &Path) {
    let index: &[u8] = b"module.exports = 1;\n";
    publish(root, "kiln-scripted", &[("index.js", index)], json!({"postinstall": "node steal.js"}), false);
    publish(root, "kiln-tampered", &[("index.js", index)], json!({}), true);
    publish(root, "kiln-escape", &[("../../../../etc/passwd", b"root::0:0::/:/bin/sh\n")], json!({}), false);
    publish(root, "kiln-absolute", &[("/etc/shadow", b"x\n")], json!({}), false);
}
