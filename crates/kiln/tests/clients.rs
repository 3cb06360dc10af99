//! Drives real OCI clients — skopeo, umoci, podman and the `oras` Python SDK — against Kiln's
//! `/v2/` registry, because the conformance suite (tests/registry.rs) checks the protocol as we
//! read the spec, while these check it as the tools people use actually speak it: the Docker
//! token flow, blob reuse, digests preserved byte for byte, referrers, refusals they can read.
//!
//! One `kiln serve` is shared by the binary; every test works in repositories of its own and in
//! a private temp directory (tool configuration, credentials, policy, caches, podman's storage),
//! so the machine's own container configuration, credentials and caches are neither used nor
//! changed. A missing tool fails the test and names scripts/test.sh.

#[path = "registry/kiln.rs"]
mod kiln;
#[path = "clients/sandbox.rs"]
mod sandbox;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::{Value, json};
use sha2::Digest as _;

use sandbox::{Sandbox, require, run};

const ORG: &str = "default";
/// The files the source image's three layers hold, as (directory inserted, path in rootfs, content).
const LAYERS: &[(&str, &str, &str)] = &[
    ("one", "etc/kiln-one.txt", "first layer\n"),
    ("two", "srv/data/kiln-two.txt", "second layer\n"),
    ("three", "opt/kiln/three.txt", "third layer\n"),
];

/// A file of incompressible bytes in the second layer, so layers stream through Kiln in more
/// than one read and a truncated or reordered blob cannot go unnoticed.
const BIG_FILE: &str = "srv/data/big.bin";

fn big_file() -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..3 * 1024 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

struct Shared {
    server: kiln::Kiln,
    /// `127.0.0.1:PORT`, how image references name the registry.
    host: String,
    http: Client,
}

fn kiln() -> &'static Shared {
    static SHARED: LazyLock<Shared> = LazyLock::new(|| {
        let server = kiln::Kiln::start(&[]);
        let host = server.base.trim_start_matches("http://").trim_end_matches('/').to_string();
        let http = Client::builder().timeout(Duration::from_secs(60)).build().expect("build the HTTP client");
        Shared { server, host, http }
    });
    &SHARED
}

impl Shared {
    fn image(&self, repository: &str, tag: &str) -> String {
        format!("docker://{}/{repository}:{tag}", self.host)
    }

    /// A registry GET as the administrator (Basic, a token as password, as clients send it).
    fn registry_get(&self, path: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let url = format!("{}{path}", self.server.base);
        let response = self
            .http
            .get(&url)
            .basic_auth("kiln", Some(kiln::ADMIN_TOKEN))
            .header("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json")
            .send()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().unwrap_or_else(|e| panic!("GET {url}: body: {e}")).to_vec();
        (status, headers, body)
    }

    fn registry_json(&self, path: &str) -> (reqwest::header::HeaderMap, Value) {
        let (status, headers, body) = self.registry_get(path);
        assert_eq!(status, 200, "GET {path}: {}", String::from_utf8_lossy(&body));
        let value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}"));
        (headers, value)
    }

    fn catalog(&self) -> Vec<String> {
        let (_, catalog) = self.registry_json("/v2/_catalog?n=10000");
        let names =
            catalog["repositories"].as_array().unwrap_or_else(|| panic!("catalog without repositories: {catalog}"));
        names.iter().map(|n| n.as_str().expect("repository name").to_string()).collect()
    }

    /// A REST call as the administrator; returns the JSON answer after checking its status.
    fn rest(&self, path: &str, body: Value, expected: u16) -> Value {
        let url = format!("{}{path}", self.server.base);
        let response = self
            .http
            .post(&url)
            .bearer_auth(kiln::ADMIN_TOKEN)
            .json(&body)
            .send()
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = response.status().as_u16();
        let text = response.text().unwrap_or_default();
        assert_eq!(status, expected, "POST {path} {body}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// A fresh user bound to `role` in the default organisation, and a token of theirs.
    fn token_with_role(&self, role: &str) -> String {
        let name = format!("clients-{}", unique());
        self.rest("/v1/users", json!({"name": name}), 201);
        self.rest("/v1/role-bindings", json!({"subject": name, "role": role, "organization": ORG}), 201);
        let token = self.rest("/v1/tokens", json!({"subject": name, "description": "tests/clients.rs"}), 201);
        token["token"].as_str().unwrap_or_else(|| panic!("no token in {token}")).to_string()
    }
}

fn unique() -> String {
    format!("{:016x}", getrandom::u64().expect("random number"))
}

fn fresh_repository(test: &str) -> String {
    format!("{ORG}/{test}-{}", unique())
}

fn admin_creds() -> String {
    format!("kiln:{}", kiln::ADMIN_TOKEN)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

impl Sandbox {
    /// An OCI image layout `layout:v1` with one layer per entry of `LAYERS`, built by umoci,
    /// then garbage-collected so the layout holds exactly the image's blobs.
    fn build_layout(&self, layout: &str) {
        for (dir, path, content) in LAYERS {
            self.write(&format!("layers/{dir}/{path}"), content.as_bytes());
        }
        self.write(&format!("layers/two/{BIG_FILE}"), &big_file());
        let image = format!("{layout}:v1");
        run(&mut self.umoci(&["init", "--layout", layout])).ok();
        run(&mut self.umoci(&["new", "--image", &image])).ok();
        for (dir, _, _) in LAYERS {
            let source = self.path(&format!("layers/{dir}"));
            run(self.umoci(&["insert", "--rootless", "--image", &image]).arg(source).arg("/")).ok();
        }
        run(&mut self.umoci(&["config", "--image", &image, "--config.cmd", "/bin/true"])).ok();
        run(&mut self.umoci(&["gc", "--layout", layout])).ok();
    }

    /// Copies the layout's `v1` into Kiln as the administrator; returns the manifest digest.
    fn push_layout(&self, layout: &str, repository: &str) -> String {
        let k = kiln();
        let destination = k.image(repository, "v1");
        let creds = admin_creds();
        run(&mut self.skopeo(&[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            &creds,
            &format!("oci:{layout}:v1"),
            &destination,
        ]))
        .ok();
        manifest_digest(&self.path(layout), "v1")
    }
}

/// The digest `index.json` names for `tag`.
fn manifest_digest(layout: &Path, tag: &str) -> String {
    let index = std::fs::read(layout.join("index.json")).expect("index.json");
    let index: Value = serde_json::from_slice(&index).expect("index.json is JSON");
    let manifests = index["manifests"].as_array().expect("index.json lists manifests");
    let entry = manifests
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("{}: no manifest tagged {tag}: {index}", layout.display()));
    entry["digest"].as_str().expect("digest").to_string()
}

/// Every blob of a layout, by file name, with its bytes.
fn blobs(layout: &Path) -> BTreeMap<String, Vec<u8>> {
    let dir = layout.join("blobs/sha256");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    entries
        .map(|entry| {
            let entry = entry.expect("directory entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(entry.path()).expect("blob"))
        })
        .collect()
}

/// skopeo copies a three-layer OCI layout into Kiln and back out; every byte survives, and
/// `skopeo inspect` reads the image through the registry.
#[test]
fn skopeo_round_trip_is_byte_equal() {
    require(&["skopeo", "umoci"]);
    let k = kiln();
    let sandbox = Sandbox::new("skopeo");
    sandbox.build_layout("source");
    let repository = fresh_repository("skopeo");
    let digest = sandbox.push_layout("source", &repository);
    let source_blobs = blobs(&sandbox.path("source"));
    assert_eq!(source_blobs.len(), LAYERS.len() + 2, "layers, config and manifest: {:?}", source_blobs.keys());

    let creds = admin_creds();
    let image = k.image(&repository, "v1");
    let inspected = run(&mut sandbox.skopeo(&["inspect", "--tls-verify=false", "--creds", &creds, &image])).ok();
    let inspected: Value = serde_json::from_str(&inspected.stdout).expect("skopeo inspect prints JSON");
    assert_eq!(inspected["Digest"], digest, "{inspected}");
    assert_eq!(inspected["Layers"].as_array().map(Vec::len), Some(LAYERS.len()), "{inspected}");
    assert_eq!(inspected["Name"], format!("{}/{repository}", k.host), "{inspected}");
    assert!(inspected["RepoTags"].as_array().is_some_and(|t| t.contains(&json!("v1"))), "{inspected}");

    let raw = run(&mut sandbox.skopeo(&["inspect", "--raw", "--tls-verify=false", "--creds", &creds, &image])).ok();
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    assert_eq!(raw.stdout.as_bytes(), &source_blobs[hex][..], "the manifest Kiln serves is the one pushed");

    run(&mut sandbox.skopeo(&["copy", "--src-tls-verify=false", "--src-creds", &creds, &image, "oci:back:v1"])).ok();
    assert_eq!(manifest_digest(&sandbox.path("back"), "v1"), digest, "the manifest digest survives the round trip");
    let back_blobs = blobs(&sandbox.path("back"));
    assert_eq!(
        back_blobs.keys().collect::<Vec<_>>(),
        source_blobs.keys().collect::<Vec<_>>(),
        "the same blobs come back"
    );
    for (name, bytes) in &back_blobs {
        assert_eq!(sha256_hex(bytes), *name, "blob {name} is what its name says");
        assert!(bytes == &source_blobs[name], "blob {name} differs after the round trip");
    }

    let unversioned = format!("docker://{}/{repository}", k.host);
    let tags = run(&mut sandbox.skopeo(&["list-tags", "--tls-verify=false", "--creds", &creds, &unversioned])).ok();
    let tags: Value = serde_json::from_str(&tags.stdout).expect("skopeo list-tags prints JSON");
    assert_eq!(tags["Tags"], json!(["v1"]), "{tags}");

    // Registry to registry: skopeo remembers (in its blob-info cache) where it pushed the layers
    // and mounts them across repositories instead of copying them.
    let copy = fresh_repository("skopeo-copy");
    let copied = k.image(&copy, "v1");
    let ran = run(&mut sandbox.skopeo(&[
        "--debug",
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--src-creds",
        &creds,
        "--dest-creds",
        &creds,
        &image,
        &copied,
    ]))
    .ok();
    assert_eq!(ran.stderr.matches("mount OK").count(), LAYERS.len(), "every layer is mounted: {}", ran.stderr);
    let (status, headers, _) = k.registry_get(&format!("/v2/{copy}/manifests/v1"));
    assert_eq!(status, 200);
    assert_eq!(headers.get("docker-content-digest").and_then(|v| v.to_str().ok()), Some(digest.as_str()));

    // skopeo deletes by digest; the copy's manifest is then gone and the original untouched.
    run(&mut sandbox.skopeo(&["delete", "--tls-verify=false", "--creds", &creds, &copied])).ok();
    let (status, _, body) = k.registry_get(&format!("/v2/{copy}/manifests/{digest}"));
    assert_eq!(status, 404, "deleted: {}", String::from_utf8_lossy(&body));
    let (status, _, _) = k.registry_get(&format!("/v2/{repository}/manifests/{digest}"));
    assert_eq!(status, 200, "the original stays");
}

/// `skopeo copy --all` pushes an OCI image index (the manifest first, by digest, then the
/// index naming it) and copies it back out unchanged.
#[test]
fn skopeo_copies_an_image_index() {
    require(&["skopeo", "umoci"]);
    let k = kiln();
    let sandbox = Sandbox::new("index");
    sandbox.build_layout("source");
    let layout = sandbox.path("source");
    let manifest = manifest_digest(&layout, "v1");
    let manifest_bytes = std::fs::read(layout.join("blobs/sha256").join(manifest.trim_start_matches("sha256:")))
        .expect("the manifest blob");
    let config_digest = serde_json::from_slice::<Value>(&manifest_bytes).expect("manifest JSON")["config"]["digest"]
        .as_str()
        .expect("config digest")
        .to_string();
    let config: Value = serde_json::from_slice(
        &std::fs::read(layout.join("blobs/sha256").join(config_digest.trim_start_matches("sha256:"))).expect("config"),
    )
    .expect("config JSON");
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest,
            "size": manifest_bytes.len(),
            "platform": {"architecture": config["architecture"], "os": config["os"]},
        }],
        "annotations": {"org.opencontainers.image.description": "kiln clients test"},
    });
    let index_bytes = serde_json::to_vec(&index).expect("index JSON");
    let index_hex = sha256_hex(&index_bytes);
    std::fs::write(layout.join("blobs/sha256").join(&index_hex), &index_bytes).expect("write the index blob");
    let mut layout_index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index.json"))
            .expect("index.json JSON");
    layout_index["manifests"].as_array_mut().expect("manifests").push(json!({
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": format!("sha256:{index_hex}"),
        "size": index_bytes.len(),
        "annotations": {"org.opencontainers.image.ref.name": "all"},
    }));
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&layout_index).expect("JSON")).expect("index.json");

    let repository = fresh_repository("index");
    let creds = admin_creds();
    let image = k.image(&repository, "all");
    let pushed = run(&mut sandbox.skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        "oci:source:all",
        &image,
    ]))
    .ok();
    let raw = run(&mut sandbox.skopeo(&["inspect", "--raw", "--tls-verify=false", "--creds", &creds, &image])).ok();
    assert!(
        raw.stdout.as_bytes() == &index_bytes[..],
        "Kiln serves the index as pushed: {}\n{}",
        raw.stdout,
        pushed.stderr
    );
    let (status, headers, _) = k.registry_get(&format!("/v2/{repository}/manifests/{manifest}"));
    assert_eq!(status, 200, "the image the index names is stored by digest");
    assert_eq!(headers.get("docker-content-digest").and_then(|v| v.to_str().ok()), Some(manifest.as_str()));

    run(&mut sandbox.skopeo(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        "--src-creds",
        &creds,
        &image,
        "oci:back:all",
    ]))
    .ok();
    assert_eq!(manifest_digest(&sandbox.path("back"), "all"), format!("sha256:{index_hex}"));
    assert!(blobs(&sandbox.path("back")) == blobs(&layout), "the index, the image and its blobs come back unchanged");
}

/// umoci unpacks (rootless) the image as pulled back out of Kiln: every layer's file is in
/// the rootfs, so what the registry served is a usable image, not just matching digests.
#[test]
fn umoci_unpacks_the_image_kiln_served() {
    require(&["skopeo", "umoci"]);
    let k = kiln();
    let sandbox = Sandbox::new("umoci");
    sandbox.build_layout("source");
    let repository = fresh_repository("umoci");
    sandbox.push_layout("source", &repository);
    let creds = admin_creds();
    let image = k.image(&repository, "v1");
    run(&mut sandbox.skopeo(&["copy", "--src-tls-verify=false", "--src-creds", &creds, &image, "oci:pulled:v1"])).ok();
    run(&mut sandbox.umoci(&["unpack", "--rootless", "--image", "pulled:v1", "bundle"])).ok();
    for (_, path, content) in LAYERS {
        let file = sandbox.path(&format!("bundle/rootfs/{path}"));
        let got = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{} after unpack: {e}", file.display()));
        assert_eq!(got, *content, "{}", file.display());
    }
    let big = std::fs::read(sandbox.path(&format!("bundle/rootfs/{BIG_FILE}"))).expect("the big file after unpack");
    assert!(big == big_file(), "{BIG_FILE} differs after the trip through Kiln");
    let config: Value =
        serde_json::from_slice(&std::fs::read(sandbox.path("bundle/config.json")).expect("runtime config"))
            .expect("config.json is JSON");
    assert_eq!(config["process"]["args"], json!(["/bin/true"]), "the image config came through: {config}");
}

/// podman pulls an image from Kiln and pushes it back under a new name, which the catalog
/// then lists, and which skopeo reads as the same image content.
#[test]
fn podman_pulls_and_pushes() {
    require(&["skopeo", "umoci", "podman"]);
    let k = kiln();
    let sandbox = Sandbox::new("podman");
    sandbox.build_layout("source");
    let source = fresh_repository("podman-source");
    sandbox.push_layout("source", &source);
    let creds = admin_creds();
    let policy = sandbox.path("policy.json");
    let policy = policy.to_str().expect("UTF-8 temp path");
    let pulled = format!("{}/{source}:v1", k.host);
    // `podman login` checks the credentials on `/v2/` through the token flow and keeps them
    // in the sandbox's auth file, which the pull then uses.
    let wrong =
        run(&mut sandbox.podman(&["login", "--tls-verify=false", "-u", "kiln", "-p", "kiln_wrong", &k.host])).failed();
    assert!(wrong.stderr.contains("invalid username/password"), "{}", wrong.stderr);
    run(&mut sandbox.podman(&["login", "--tls-verify=false", "-u", "kiln", "-p", kiln::ADMIN_TOKEN, &k.host])).ok();
    run(&mut sandbox.podman(&["pull", "--tls-verify=false", "--signature-policy", policy, &pulled])).ok();
    let images = run(&mut sandbox.podman(&["images", "--format", "{{.Repository}}:{{.Tag}}"])).ok();
    assert!(images.stdout.lines().any(|l| l == pulled), "podman holds {pulled}: {}", images.stdout);

    let target = fresh_repository("podman-pushed");
    let pushed = format!("{}/{target}:v2", k.host);
    run(&mut sandbox.podman(&[
        "push",
        "--tls-verify=false",
        "--creds",
        &creds,
        "--signature-policy",
        policy,
        &pulled,
        &format!("docker://{pushed}"),
    ]))
    .ok();
    // The Docker schema 2 form too, which podman converts to on request.
    let docker = fresh_repository("podman-docker");
    run(&mut sandbox.podman(&[
        "push",
        "--format",
        "v2s2",
        "--tls-verify=false",
        "--creds",
        &creds,
        "--signature-policy",
        policy,
        &pulled,
        &format!("docker://{}/{docker}:v3", k.host),
    ]))
    .ok();
    let (status, headers, body) = k.registry_get(&format!("/v2/{docker}/manifests/v3"));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/vnd.docker.distribution.manifest.v2+json")
    );

    let catalog = k.catalog();
    assert!(catalog.contains(&target), "{target} is in the catalog after podman push: {catalog:?}");
    assert!(catalog.contains(&docker), "{docker} is in the catalog after podman push: {catalog:?}");
    let (_, tags) = k.registry_json(&format!("/v2/{target}/tags/list"));
    assert_eq!(tags["tags"], json!(["v2"]), "{tags}");

    // podman may recompress layers on push, so compare what an image is made of: its config's
    // layer diff IDs and command.
    let config_of = |repository: &str, tag: &str| -> Value {
        let ran = run(&mut sandbox.skopeo(&[
            "inspect",
            "--config",
            "--tls-verify=false",
            "--creds",
            &creds,
            &k.image(repository, tag),
        ]))
        .ok();
        serde_json::from_str(&ran.stdout).expect("skopeo inspect --config prints JSON")
    };
    let before = config_of(&source, "v1");
    let after = config_of(&target, "v2");
    assert_eq!(before["rootfs"], after["rootfs"], "the same layers");
    assert_eq!(after["rootfs"]["diff_ids"].as_array().map(Vec::len), Some(LAYERS.len()), "{after}");
    assert_eq!(before["config"]["Cmd"], after["config"]["Cmd"], "the same command");
}

/// The `oras` Python SDK pushes an artifact with an `artifactType`, pulls it back byte-equal
/// and attaches two referrers (one typed by its config, one by `artifactType`) that the
/// referrers API lists and filters.
#[test]
fn oras_artifacts_and_referrers() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = workspace.join("target/tools-venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run scripts/test.sh, which creates the tools venv with the oras package",
        python.display()
    );
    let k = kiln();
    let sandbox = Sandbox::new("oras");
    let probe = run(sandbox.command(python.to_str().expect("UTF-8 path")).args(["-c", "import oras"]));
    assert!(
        probe.status.success(),
        "the Python package `oras` is not in {}: run scripts/test.sh, which installs it ({})",
        python.display(),
        probe.stderr
    );

    let payload: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    sandbox.write("work/payload.bin", &payload);
    sandbox.write("work/sbom.json", br#"{"spdxVersion":"SPDX-2.3","name":"kiln-clients-test"}"#);
    let repository = fresh_repository("oras");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/oras_driver.py");
    let ran = run(sandbox
        .command(python.to_str().expect("UTF-8 path"))
        .arg(&script)
        .args([&k.host, &repository, kiln::ADMIN_TOKEN])
        .arg(sandbox.path("work")))
    .ok();
    let result: Value = serde_json::from_str(ran.stdout.trim())
        .unwrap_or_else(|e| panic!("the oras driver printed no JSON ({e}):\n{}\n{}", ran.stdout, ran.stderr));

    assert_eq!(result["pulled"], json!(["payload.bin"]), "{result}");
    assert_eq!(result["tags"], json!(["sbom", "signature", "v1"]), "{result}");
    let pulled = std::fs::read(sandbox.path("work/pulled/payload.bin")).expect("the pulled payload");
    assert!(pulled == payload, "the payload pulled through oras differs from the one pushed");

    let artifact = result["artifact"]["digest"].as_str().expect("artifact digest");
    let (_, manifest) = k.registry_json(&format!("/v2/{repository}/manifests/{artifact}"));
    assert_eq!(manifest["artifactType"], "application/vnd.kiln.test.artifact.v1", "{manifest}");
    assert_eq!(manifest["config"]["mediaType"], "application/vnd.oci.empty.v1+json", "{manifest}");

    let sbom = result["sbom"]["digest"].as_str().expect("sbom digest");
    let signature = result["signature"]["digest"].as_str().expect("signature digest");
    let referrers = |filter: Option<&str>| -> (Option<String>, BTreeMap<String, String>) {
        // `+` in a query is a space to every server (Go's and ours alike), as clients know.
        let query = filter.map(|f| format!("?artifactType={}", f.replace('+', "%2B"))).unwrap_or_default();
        let (headers, index) = k.registry_json(&format!("/v2/{repository}/referrers/{artifact}{query}"));
        assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json", "{index}");
        let listed = index["manifests"]
            .as_array()
            .unwrap_or_else(|| panic!("referrers without manifests: {index}"))
            .iter()
            .map(|m| {
                (
                    m["digest"].as_str().expect("digest").to_string(),
                    m["artifactType"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let applied = headers.get("oci-filters-applied").map(|v| v.to_str().expect("ASCII header").to_string());
        (applied, listed)
    };
    let sbom_type = "application/vnd.kiln.test.sbom.v1+json";
    let signature_type = "application/vnd.kiln.test.signature.v1";
    let (applied, all) = referrers(None);
    assert_eq!(applied, None, "no filter asked, none applied");
    assert_eq!(
        all,
        BTreeMap::from([
            (sbom.to_string(), sbom_type.to_string()),
            (signature.to_string(), signature_type.to_string())
        ]),
        "both referrers, each with its type"
    );
    let (applied, only_sbom) = referrers(Some(sbom_type));
    assert_eq!(applied.as_deref(), Some("artifactType"));
    assert_eq!(only_sbom.keys().collect::<Vec<_>>(), vec![sbom], "{only_sbom:?}");
    let (applied, only_signature) = referrers(Some(signature_type));
    assert_eq!(applied.as_deref(), Some("artifactType"));
    assert_eq!(only_signature.keys().collect::<Vec<_>>(), vec![signature], "{only_signature:?}");
}

/// Without credentials skopeo is refused with an authentication error it can report (not a
/// crash, not a hang); a bad token likewise; a function developer (repositories:read only)
/// pulls but may not push.
#[test]
fn anonymous_and_read_only_callers() {
    require(&["skopeo", "umoci"]);
    let k = kiln();
    let sandbox = Sandbox::new("access");
    sandbox.build_layout("source");
    let repository = fresh_repository("access");
    let digest = sandbox.push_layout("source", &repository);
    let image = k.image(&repository, "v1");

    let anonymous = run(&mut sandbox.skopeo(&["inspect", "--tls-verify=false", "--no-creds", &image])).failed();
    assert_eq!(anonymous.status.code(), Some(1), "a clean failure, not a crash: {}", anonymous.stderr);
    let said = anonymous.stderr.to_lowercase();
    assert!(
        said.contains("unauthorized") || said.contains("authentication required"),
        "skopeo reports an authentication error: {}",
        anonymous.stderr
    );
    assert!(!said.contains("panic"), "{}", anonymous.stderr);

    let bogus =
        run(&mut sandbox.skopeo(&["inspect", "--tls-verify=false", "--creds", "kiln:kiln_not-a-token", &image]))
            .failed();
    assert!(bogus.stderr.to_lowercase().contains("unauthorized"), "a wrong token is unauthorized: {}", bogus.stderr);

    let developer = format!("kiln:{}", k.token_with_role("function-developer"));
    let inspected = run(&mut sandbox.skopeo(&["inspect", "--tls-verify=false", "--creds", &developer, &image])).ok();
    let inspected: Value = serde_json::from_str(&inspected.stdout).expect("skopeo inspect prints JSON");
    assert_eq!(inspected["Digest"], digest, "a function developer reads the image");
    run(&mut sandbox.skopeo(&["copy", "--src-tls-verify=false", "--src-creds", &developer, &image, "oci:pulled:v1"]))
        .ok();
    assert_eq!(manifest_digest(&sandbox.path("pulled"), "v1"), digest, "a function developer pulls the image");

    let refused_repository = fresh_repository("access-refused");
    let refused = run(&mut sandbox.skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &developer,
        "oci:source:v1",
        &k.image(&refused_repository, "v1"),
    ]))
    .failed();
    let said = refused.stderr.to_lowercase();
    assert!(
        said.contains("denied") || said.contains("not allowed"),
        "the push is refused as denied: {}",
        refused.stderr
    );
    assert!(!k.catalog().contains(&refused_repository), "a refused push leaves no repository behind");
    // Overwriting an existing tag is a push too.
    let overwrite = run(&mut sandbox.skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &developer,
        "oci:source:v1",
        &image,
    ]))
    .failed();
    assert!(overwrite.stderr.to_lowercase().contains("denied"), "{}", overwrite.stderr);
}
