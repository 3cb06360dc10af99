//! Running a built image the way a platform would: its manifest and blobs pulled from Kiln's
//! registry into an OCI layout, unpacked into a bundle by umoci, run by runc.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::ADMIN_TOKEN;

fn registry_get(base: &str, path: &str) -> Vec<u8> {
    let response = reqwest::blocking::Client::new()
        .get(format!("{base}{path}"))
        .basic_auth("kiln", Some(ADMIN_TOKEN))
        .header("accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json")
        .send()
        .expect("registry GET");
    assert!(response.status().is_success(), "GET {path}: {}", response.status());
    response.bytes().expect("registry body").to_vec()
}

fn put_blob(layout: &Path, bytes: &[u8]) -> String {
    let hex = hex::encode(Sha256::digest(bytes));
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).expect("blobs dir");
    std::fs::write(dir.join(&hex), bytes).expect("write blob");
    format!("sha256:{hex}")
}

/// `repository:tag` from Kiln's registry at `base`, unpacked by umoci into `dir/bundle`.
pub fn bundle(base: &str, repository: &str, tag: &str, dir: &Path) -> PathBuf {
    let layout = dir.join("layout");
    let manifest = registry_get(base, &format!("/v2/{repository}/manifests/{tag}"));
    let parsed: Value = serde_json::from_slice(&manifest).expect("manifest JSON");
    let mut digests = vec![parsed["config"]["digest"].as_str().expect("config digest").to_string()];
    digests.extend(
        parsed["layers"].as_array().expect("layers").iter().filter_map(|l| l["digest"].as_str()).map(str::to_string),
    );
    for digest in &digests {
        let blob = registry_get(base, &format!("/v2/{repository}/blobs/{digest}"));
        assert_eq!(&put_blob(&layout, &blob), digest, "the registry served {digest} with other content");
    }
    let manifest_digest = put_blob(&layout, &manifest);
    std::fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("oci-layout");
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
        "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": "test"}}]});
    std::fs::write(layout.join("index.json"), index.to_string()).expect("index.json");
    let bundle = dir.join("bundle");
    let output = Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:test", layout.display()))
        .arg(&bundle)
        .output()
        .expect("run umoci");
    assert!(output.status.success(), "umoci unpack: {}", String::from_utf8_lossy(&output.stderr));
    bundle
}

/// Edits the bundle's runtime config: no terminal, the host's network (so loopback reaches
/// the function server), extra environment and, when given, another command.
pub fn configure(bundle: &Path, env: &[(&str, &str)], args: Option<&[&str]>) {
    let path = bundle.join("config.json");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&path).expect("config.json")).expect("JSON");
    config["process"]["terminal"] = json!(false);
    if let Some(namespaces) = config["linux"]["namespaces"].as_array_mut() {
        namespaces.retain(|n| n["type"] != "network");
    }
    if let Some(list) = config["process"]["env"].as_array_mut() {
        for (key, value) in env {
            list.push(json!(format!("{key}={value}")));
        }
    }
    if let Some(args) = args {
        config["process"]["args"] = json!(args);
    }
    std::fs::write(&path, config.to_string()).expect("write config.json");
}

/// runc with its state kept beside the bundle.
fn runc(bundle: &Path) -> Command {
    let mut command = Command::new("runc");
    command.arg("--root").arg(bundle.with_file_name("runc-state"));
    command
}

/// Runs the bundle's process to its end.
pub fn run_once(bundle: &Path, id: &str) -> Output {
    runc(bundle).args(["run", "--bundle"]).arg(bundle).arg(id).stdin(Stdio::null()).output().expect("run runc")
}

/// A container running in the background; killed and deleted on drop.
pub struct Running {
    bundle: PathBuf,
    id: String,
    child: Child,
}

impl Running {
    pub fn start(bundle: &Path, id: &str) -> Running {
        let log = std::fs::File::create(bundle.with_file_name("container.log")).expect("container log");
        let child = runc(bundle)
            .args(["run", "--bundle"])
            .arg(bundle)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start runc");
        Running { bundle: bundle.to_path_buf(), id: id.to_string(), child }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.bundle.with_file_name("container.log")).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = runc(&self.bundle).args(["kill", &self.id, "KILL"]).output();
        let _ = self.child.wait();
        let _ = runc(&self.bundle).args(["delete", "--force", &self.id]).output();
    }
}
