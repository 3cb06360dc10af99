//! Daemonless builds through the real binary against Debian repositories on loopback: the
//! python3 root image bootstrapped and run under runc, a system package added on top and
//! loaded inside the container, reproducible digests, a `kill -9` mid-build finished after a
//! restart, a cancel that frees its scratch space, and hostile or impossible inputs ending in
//! ERROR with nothing pushed.

mod common;
#[path = "builds/hostile_index.rs"]
mod hostile_index;
#[path = "builds/mirror.rs"]
mod mirror;
#[path = "builds/runc.rs"]
mod runc;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Server, assert_valid_spdx, deb_licences, image_settled, referred_sbom, stderr, stdout};
use mirror::{Mirror, TestPackage, apt_config, deb, fixture_dir, signed_repository, tar_with};
use serde_json::{Value, json};

fn build_server(data_dir: &Path, apt: &Path, extra: &[&str]) -> Server {
    Server::start_with(data_dir, |command| {
        command
            .args(extra)
            .env("KILN_CONTROLLER", "true")
            .env("KILN_APT_CONFIG_DIR", apt)
            .env("KILN_CONTROLLER_RETRY_SECONDS", "1");
    })
    .0
}

fn wait_for<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(started.elapsed() < limit, "{what} did not happen within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn task_end(server: &Server, id: &str) -> Value {
    wait_for(&format!("task {id} ending"), Duration::from_secs(300), || {
        let task = server.http().get(&format!("/v1/tasks/{id}")).body;
        ["succeeded", "failed", "cancelled"].contains(&task["state"].as_str().unwrap_or_default()).then_some(task)
    })
}

/// `host/repository:tag` → (repository, tag).
fn repository_and_tag(reference: &str) -> (String, String) {
    let path = reference.split_once('/').map(|(_, p)| p).unwrap_or(reference);
    let (repository, tag) = path.rsplit_once(':').unwrap_or((path, "latest"));
    (repository.to_string(), tag.to_string())
}

fn catalog(server: &Server) -> Vec<String> {
    let answer = server.http().get("/v2/_catalog?n=1000");
    answer.body["repositories"]
        .as_array()
        .map(|r| r.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

fn hostile_packages() -> Vec<TestPackage> {
    let honest = deb("kiln-honest", tar_with(&[("./usr/share/kiln-honest", tar::EntryType::Regular, "", b"ok\n")]));
    let mut swapped = honest.clone();
    let last = swapped.len() - 2;
    swapped[last] ^= 0x55;
    vec![
        TestPackage {
            name: "kiln-dotdot",
            depends: "",
            file: deb(
                "kiln-dotdot",
                tar_with(&[("../etc/passwd", tar::EntryType::Regular, "", b"root::0:0::/:/bin/sh\n")]),
            ),
            claimed: None,
        },
        TestPackage {
            name: "kiln-symlink",
            depends: "",
            file: deb(
                "kiln-symlink",
                tar_with(&[("./usr/lib/escape", tar::EntryType::Symlink, "../../../../etc", b"")]),
            ),
            claimed: None,
        },
        TestPackage {
            name: "kiln-corrupt",
            depends: "",
            file: b"!<arch>\nthis is not a package".to_vec(),
            claimed: None,
        },
        TestPackage { name: "kiln-tampered", depends: "", file: swapped, claimed: Some(honest.clone()) },
        TestPackage { name: "kiln-needy", depends: "kiln-middle", file: honest.clone(), claimed: None },
        TestPackage { name: "kiln-middle", depends: "kiln-honest (>= 2.0)", file: honest.clone(), claimed: None },
        TestPackage { name: "kiln-honest", depends: "", file: honest, claimed: None },
    ]
}

#[test]
fn python3_root_image_runs_and_takes_system_packages() {
    let temp = tempfile::tempdir().expect("temp dir");
    let mirror = Mirror::serve(&fixture_dir(), 0.0);
    let apt = apt_config(temp.path(), &mirror);
    let server = build_server(&temp.path().join("data"), &apt, &[]);
    let http = server.http();

    // The root image: bootstrapped, registered READY, and its function server answers.
    let bootstrap = server.kiln(&["bootstrap", "python3", "--wait"]);
    assert!(bootstrap.status.success(), "{}\n{}", stdout(&bootstrap), stderr(&bootstrap));
    let base = http.get("/v1/base-images/python3").body;
    assert_eq!(base["status"], "READY", "{base}");
    // Kiln knows what it put in a root image, and the CLI shows it under the image's name.
    let root_inventory = server.kiln(&["inventory", "python3"]);
    assert!(root_inventory.status.success(), "{}", stderr(&root_inventory));
    assert!(
        stdout(&root_inventory).contains("python3.11")
            && stdout(&root_inventory).contains("libc6")
            && stdout(&root_inventory).contains("(concluded)"),
        "{}",
        stdout(&root_inventory)
    );
    root_licences(&server, "python3");
    let unknown = server.kiln(&["inventory", "no-such-thing"]);
    assert!(!unknown.status.success() && stderr(&unknown).contains("no image or base image"), "{}", stderr(&unknown));
    let (repository, tag) = repository_and_tag(base["reference"].as_str().expect("base reference"));
    // The fixture mirrors this machine's own release, so its os-release names it too.
    let (codename, _) = os_release();
    assert_eq!(tag, codename, "a root image is tagged with its release's codename");
    let root_dir = temp.path().join("root");
    std::fs::create_dir_all(&root_dir).expect("root dir");
    let bundle = runc::bundle(&server.url, &repository, &tag, &root_dir);
    let function = bundle.join("rootfs/function");
    std::fs::create_dir_all(&function).expect("function dir");
    std::fs::write(
        function.join("handler.py"),
        "import os\ndef handle(context, payload):\n    return {\"echo\": payload, \"uid\": os.getuid(), \"context\": context}\n",
    )
    .expect("handler");
    let port = free_port();
    runc::configure(&bundle, &[("PORT", &port.to_string())], None);
    let container = runc::Running::start(&bundle, &format!("kiln-test-{port}"));
    let client = reqwest::blocking::Client::new();
    let function_url = format!("http://127.0.0.1:{port}");
    wait_for("the function server answering /healthz", Duration::from_secs(30), || {
        client.get(format!("{function_url}/healthz")).send().ok().filter(|r| r.status().is_success())
    });
    let answer = client
        .post(&function_url)
        .json(&json!({"context": {"id": "c1"}, "payload": {"n": 1}}))
        .send()
        .expect("POST to the function");
    assert!(answer.status().is_success(), "{}", container.log());
    let body: Value = answer.json().expect("function answer");
    assert_eq!(body["echo"], json!({"n": 1}), "{body}");
    assert_ne!(body["uid"], json!(0), "the function server runs as a non-root user");
    drop(container);

    // An image adding libpq5: only what the root image lacks is added, and it loads.
    let deps = temp.path().join("system.yaml");
    std::fs::write(&deps, "packages:\n  - name: libpq5\n").expect("system deps");
    let created = server.kiln(&[
        "create",
        "image",
        "pg",
        "python3",
        "--system-deps",
        deps.to_str().expect("utf-8"),
        "--version",
        "1.0",
        "--wait",
    ]);
    assert!(created.status.success(), "{}\n{}", stdout(&created), stderr(&created));
    let image = http.get("/v1/images/pg").body;
    assert_eq!(image["status"], "READY", "{image}");
    let digest = image["digest"].as_str().expect("digest").to_string();
    let (repository, tag) = repository_and_tag(image["reference"].as_str().expect("reference"));
    assert_eq!(tag, "1.0");
    let pg_dir = temp.path().join("pg");
    std::fs::create_dir_all(&pg_dir).expect("pg dir");
    let bundle = runc::bundle(&server.url, &repository, &tag, &pg_dir);
    runc::configure(
        &bundle,
        &[],
        Some(&["python3", "-c", "import ctypes; ctypes.CDLL('libpq.so.5'); print('libpq loaded')"]),
    );
    let loaded = runc::run_once(&bundle, &format!("kiln-pg-{}", free_port()));
    assert!(stdout(&loaded).contains("libpq loaded"), "{}\n{}", stdout(&loaded), stderr(&loaded));

    // dpkg's own database lists what was added, for the image's tools and for scanners.
    let status = std::fs::read_to_string(bundle.join("rootfs/var/lib/dpkg/status")).expect("dpkg status");
    let libpq_status =
        status.split("\n\n").find(|s| s.starts_with("Package: libpq5\n")).expect("libpq5 in dpkg status");
    assert!(libpq_status.contains("Status: install ok installed"), "{libpq_status}");
    assert!(status.contains("Package: python3.11\n"), "the parent's packages stay in dpkg status");

    // Inventory both ways, the SBOM and the Dockerfile.
    let packages = http.get("/v1/images/pg/packages").body;
    let items = packages["items"].as_array().expect("inventory");
    let libpq = items.iter().find(|p| p["name"] == "libpq5").expect("libpq5 in the inventory");
    assert!(libpq["purl"].as_str().unwrap_or_default().starts_with("pkg:deb/debian/libpq5@"), "{libpq}");
    let distro = format!("distro=debian-{}", os_release().1);
    assert!(libpq["purl"].as_str().unwrap_or_default().ends_with(&distro), "{libpq} should end with {distro}");
    assert!(items.iter().any(|p| p["name"] == "python3.11"), "the parent's packages are listed too");
    // The parent's packages keep the licences their copyright files give, as in the parent.
    let inherited: Vec<Value> = items.iter().filter(|p| p["layer"].is_null()).cloned().collect();
    let (licensed, all) = deb_licences(&Value::Array(inherited));
    assert!(all > 15 && licensed * 10 >= all * 9, "only {licensed} of the parent's {all} packages have a licence");
    let libc = items.iter().find(|p| p["name"] == "libc6").expect("libc6 from the parent");
    assert_eq!(libc["licenseKind"], "concluded", "{libc}");
    let users = http.get("/v1/packages/deb/libpq5/images").body;
    assert!(users["items"].as_array().expect("images").iter().any(|i| i["image"] == "pg"), "{users}");
    // An image's name finds its last build's log.
    let logs = server.kiln(&["logs", "pg"]);
    assert!(logs.status.success(), "{}", stderr(&logs));
    assert!(stdout(&logs).contains("pushed "), "{}", stdout(&logs));
    let sbom = server.kiln(&["sbom", "pg"]);
    assert!(stdout(&sbom).contains("SPDX-2.3") && stdout(&sbom).contains("libpq5"), "{}", stderr(&sbom));
    // libpq5's copyright file names licences SPDX lacks: each is declared with its text.
    let document: Value = serde_json::from_str(&stdout(&sbom)).expect("SPDX JSON");
    let refs = document["hasExtractedLicensingInfos"].as_array().cloned().unwrap_or_default();
    assert!(refs.iter().any(|r| r["comment"].as_str().is_some_and(|c| c.contains("libpq5"))), "{refs:?}");
    assert_valid_spdx(&stdout(&sbom), "the SBOM of pg");
    let dockerfile = http.get("/v1/images/pg/dockerfile").text;
    assert!(dockerfile.contains("libpq5"), "{dockerfile}");

    // The same definition builds to the same digest, from its lock too.
    for locked in [false, true] {
        let rebuild = http.post("/v1/images/pg/rebuild", json!({"locked": locked}));
        assert_eq!(rebuild.status, 202, "{}", rebuild.text);
        let task = task_end(&server, rebuild.body["id"].as_str().expect("task id"));
        assert_eq!(task["state"], "succeeded", "{task}");
        assert_eq!(http.get("/v1/images/pg").body["digest"], json!(digest), "rebuild (locked: {locked})");
        // Nothing was unpacked or compressed again: every package layer came from the first build.
        let log = stdout(&server.kiln(&["logs", rebuild.body["id"].as_str().expect("task id")]));
        let package_layers: Vec<&str> =
            log.lines().filter(|l| l.starts_with("layer ") && l.contains("): package")).collect();
        assert!(!package_layers.is_empty(), "{log}");
        assert!(package_layers.iter().all(|l| l.contains(" bytes, reused): ")), "{log}");
    }

    // The debug variant: pg's layers as they are plus busybox, a shell under runc; pg itself
    // is untouched.
    let debugged = server.kiln(&["debug", "pg"]);
    assert!(debugged.status.success(), "{}", stderr(&debugged));
    let debug_reference = stdout(&debugged).trim().split('@').next().unwrap_or_default().to_string();
    assert!(debug_reference.ends_with("/default/pg:1.0-debug"), "{debug_reference}");
    assert!(stderr(&debugged).contains("--entrypoint busybox"), "{}", stderr(&debugged));
    assert_eq!(http.get("/v1/images/pg").body["digest"], json!(digest), "the image stays as it was");
    let manifest = |tag: &str| -> Value {
        common::admin_client()
            .get(format!("{}/v2/{repository}/manifests/{tag}", server.url))
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .and_then(|r| r.json())
            .expect("manifest")
    };
    let (layers, debug_layers) = (manifest("1.0")["layers"].clone(), manifest("1.0-debug")["layers"].clone());
    let (layers, debug_layers) = (layers.as_array().expect("layers"), debug_layers.as_array().expect("layers"));
    // busybox-static, then dpkg's database with it added.
    assert_eq!(debug_layers.len(), layers.len() + 2, "two layers more");
    assert_eq!(debug_layers[..layers.len()], layers[..], "the image's own layers, unchanged");
    let debug_dir = temp.path().join("pg-debug");
    std::fs::create_dir_all(&debug_dir).expect("debug dir");
    let bundle = runc::bundle(&server.url, &repository, "1.0-debug", &debug_dir);
    runc::configure(&bundle, &[], Some(&["busybox", "sh", "-c", "echo shell as $(id -un); ls /usr/lib/kiln"]));
    let shell = runc::run_once(&bundle, &format!("kiln-debug-{}", free_port()));
    assert!(
        stdout(&shell).contains("shell as kiln") && stdout(&shell).contains("server.py"),
        "{}\n{}",
        stdout(&shell),
        stderr(&shell)
    );
    let debug_task = server.http().get("/v1/tasks?kind=debug-image").body;
    assert_eq!(debug_task["items"][0]["state"], "succeeded", "{debug_task}");
    let debug_sbom =
        referred_sbom(&http, &repository, debug_task["items"][0]["result"]["digest"].as_str().expect("digest"));
    assert!(
        debug_sbom.contains("busybox-static") && debug_sbom.contains("libpq5"),
        "the variant's SBOM lists all it holds"
    );

    // Hostile and impossible inputs, from a signed repository of their own.
    let hostile_root = temp.path().join("hostile");
    let key = signed_repository(&hostile_root, &hostile_packages());
    let hostile = Mirror::serve(&hostile_root, 0.0);
    let source = http.post(
        "/v1/package-sources",
        json!({"name": "hostile", "ecosystem": "deb", "url": format!("{}/repo", hostile.url),
               "suite": "kiln-test", "components": ["main"], "keyring": key}),
    );
    assert_eq!(source.status, 201, "{}", source.text);
    let cases: [(&str, Value, &[&str]); 7] = [
        ("bad-unknown", json!({"name": "kiln-no-such-package"}), &["kiln-no-such-package", "hostile"]),
        ("bad-version", json!({"name": "kiln-honest", "version": "9.9"}), &["9.9", "available: 1.0"]),
        ("bad-unsat", json!({"name": "kiln-needy"}), &["kiln-honest (>= 2.0)", "kiln-needy 1.0 → kiln-middle 1.0"]),
        ("bad-corrupt", json!({"name": "kiln-corrupt"}), &["kiln-corrupt"]),
        ("bad-dotdot", json!({"name": "kiln-dotdot"}), &["../etc/passwd"]),
        ("bad-symlink", json!({"name": "kiln-symlink"}), &["outside the image root"]),
        ("bad-tampered", json!({"name": "kiln-tampered"}), &["kiln-tampered", "SHA-256"]),
    ];
    for (name, package, _) in &cases {
        let created = http.post(
            "/v1/images",
            json!({"name": name, "baseImageName": "python3", "systemDependencies": {"packages": [package]}}),
        );
        assert_eq!(created.status, 201, "{}", created.text);
    }
    for (name, _, expected) in &cases {
        let image = image_settled(&server, name);
        assert_eq!(image["status"], "ERROR", "{name}: {image}");
        let reason = image["reason"].to_string();
        for part in *expected {
            assert!(reason.contains(part), "{name}: {part:?} not in {reason}");
        }
    }
    let repositories = catalog(&server);
    assert!(!repositories.iter().any(|r| r.contains("bad-")), "failed builds pushed: {repositories:?}");
    let unbuilt = http.post("/v1/images/bad-unknown/debug", json!({}));
    assert_eq!(unbuilt.status, 409, "{}", unbuilt.text);
    assert!(unbuilt.text.contains("not built"), "{}", unbuilt.text);

    // Deleting the image takes its registry content, build record and index entries along.
    assert_eq!(http.delete("/v1/images/pg").status, 200);
    assert_eq!(http.get("/v1/images/pg/packages").status, 404);
    let users = http.get("/v1/packages/deb/libpq5/images").body;
    assert_eq!(users["items"], json!([]), "{users}");
    assert!(!catalog(&server).iter().any(|r| r.ends_with("/pg")), "the image's repository is gone");

    // A child follows its parent: when the parent is rebuilt to another digest, the child is
    // rebuilt on it without being asked (Dispatch left children on their first parent).
    let parent = json!({"name": "layered", "baseImageName": "python3", "extendable": true});
    assert_eq!(http.post("/v1/images", parent.clone()).status, 201);
    let layered = image_settled(&server, "layered");
    assert_eq!(layered["status"], "READY", "{layered}");
    let child = json!({"name": "on-layered", "parentImageName": "layered",
                       "systemDependencies": {"packages": [{"name": "libpq5"}]}});
    assert_eq!(http.post("/v1/images", child).status, 201);
    let first = image_settled(&server, "on-layered");
    assert_eq!(first["status"], "READY", "{first}");
    assert_eq!(first["buildParentDigest"], layered["digest"], "{first}");
    let mut changed = parent;
    changed["systemDependencies"] = json!({"packages": [{"name": "libstdc++6"}]});
    let put = http.put("/v1/images/layered", changed);
    assert_eq!(put.status, 200, "{}", put.text);
    let relayered = wait_for("the parent's rebuild", Duration::from_secs(300), || {
        let image = http.get("/v1/images/layered").body;
        (image["status"] == "READY" && image["digest"] != layered["digest"]).then_some(image)
    });
    let rebuilt = wait_for("the child's rebuild", Duration::from_secs(300), || {
        let image = http.get("/v1/images/on-layered").body;
        (image["status"] == "READY" && image["buildParentDigest"] == relayered["digest"]).then_some(image)
    });
    assert_ne!(rebuilt["digest"], first["digest"], "the child's image has the parent's new layers");
    let record = http.get("/v1/images/on-layered/build").body;
    assert_eq!(record["parentDigest"], relayered["digest"], "{record}");
    let log = server.kiln(&["logs", rebuilt["buildTask"].as_str().expect("build task")]);
    assert!(stdout(&log).contains("rebuilding: the parent changed"), "{}", stdout(&log));
}

/// At least 90% of a root image's Debian packages have a licence (most of them from
/// copyright files written as free text, marked concluded, the rest declared), libc6 and
/// libstdc++6 included, and its SBOM passes the SPDX validator.
fn root_licences(server: &Server, language: &str) {
    let http = server.http();
    let items = http.get(&format!("/v1/base-images/{language}/packages")).body["items"].clone();
    let (licensed, all) = deb_licences(&items);
    println!("{language} root image: {licensed} of {all} Debian packages have a licence");
    assert!(all > 15 && licensed * 10 >= all * 9, "{language}: only {licensed} of {all} packages have a licence");
    let item = |name: &str| items.as_array().into_iter().flatten().find(|i| i["name"] == name).cloned();
    let libc = item("libc6").expect("libc6 in the root image");
    assert_eq!(libc["licenseKind"], "concluded", "{libc}");
    assert!(libc["license"].as_str().is_some_and(|l| l.contains("LGPL-2.1-or-later")), "{libc}");
    let zlib = item("zlib1g").expect("zlib1g in the root image");
    assert_eq!((zlib["license"].as_str(), zlib["licenseKind"].as_str()), (Some("Zlib"), Some("declared")), "{zlib}");
    if let Some(libstdcxx) = item("libstdc++6") {
        assert!(
            libstdcxx["license"].as_str().is_some_and(|l| l.contains("GPL-3.0-or-later WITH GCC-exception-3.1")),
            "{libstdcxx}"
        );
    }
    let base = http.get(&format!("/v1/base-images/{language}")).body;
    let (repository, _) = repository_and_tag(base["reference"].as_str().expect("base reference"));
    let sbom = referred_sbom(&http, &repository, base["digest"].as_str().expect("base digest"));
    let document: Value = serde_json::from_str(&sbom).expect("SPDX JSON");
    let libc = document["packages"].as_array().into_iter().flatten().find(|p| p["name"] == "libc6").cloned();
    let libc = libc.expect("libc6 in the SBOM");
    assert_eq!(libc["licenseDeclared"], "NOASSERTION", "a conclusion is no declaration: {libc}");
    assert!(libc["licenseConcluded"].as_str().is_some_and(|l| l.contains("GPL")), "{libc}");
    assert_valid_spdx(&sbom, &format!("the SBOM of the {language} root image"));
}

#[test]
fn nodejs_root_image_answers_under_runc() {
    let temp = tempfile::tempdir().expect("temp dir");
    let mirror = Mirror::serve(&fixture_dir(), 0.0);
    let apt = apt_config(temp.path(), &mirror);
    let server = build_server(&temp.path().join("data"), &apt, &[]);
    let bootstrap = server.kiln(&["bootstrap", "nodejs", "--wait"]);
    assert!(bootstrap.status.success(), "{}\n{}", stdout(&bootstrap), stderr(&bootstrap));
    let base = server.http().get("/v1/base-images/nodejs").body;
    assert_eq!((base["status"].as_str(), base["language"].as_str()), (Some("READY"), Some("nodejs")), "{base}");
    root_licences(&server, "nodejs");
    let (repository, tag) = repository_and_tag(base["reference"].as_str().expect("reference"));
    let bundle = runc::bundle(&server.url, &repository, &tag, temp.path());
    let function = bundle.join("rootfs/function");
    std::fs::create_dir_all(&function).expect("function dir");
    std::fs::write(
        function.join("handler.js"),
        "exports.handle = (context, payload) => ({ doubled: payload.n * 2, uid: process.getuid(), node: process.version });\n",
    )
    .expect("handler");
    let port = free_port();
    runc::configure(&bundle, &[("PORT", &port.to_string())], None);
    let container = runc::Running::start(&bundle, &format!("kiln-node-{port}"));
    let client = reqwest::blocking::Client::new();
    let url = format!("http://127.0.0.1:{port}");
    wait_for("the node function server answering /healthz", Duration::from_secs(30), || {
        client.get(format!("{url}/healthz")).send().ok().filter(|r| r.status().is_success())
    });
    let answer = client.post(&url).json(&json!({"context": {}, "payload": {"n": 21}})).send().expect("POST");
    assert!(answer.status().is_success(), "{}", container.log());
    let body: Value = answer.json().expect("JSON");
    assert_eq!(body["doubled"], 42, "{body}");
    assert_ne!(body["uid"], 0, "the function server runs as a non-root user");
    assert!(body["node"].as_str().is_some_and(|v| v.starts_with('v')), "{body}");
}

/// A python3 bootstrap against a mirror slowed enough to act mid-way; returns the task id
/// once it is downloading.
fn bootstrap_until_fetching(server: &Server) -> String {
    let answer = server.http().post("/v1/bootstrap", json!({"languages": ["python3"]}));
    assert_eq!(answer.status, 202, "{}", answer.text);
    let id = answer.body["items"][0]["id"].as_str().expect("task id").to_string();
    wait_for("the build downloading", Duration::from_secs(60), || {
        let task = server.http().get(&format!("/v1/tasks/{id}")).body;
        (task["progress"]["step"] == "fetch" && task["progress"]["bytes"].as_u64().unwrap_or(0) > 0).then_some(())
    });
    id
}

#[test]
fn a_build_killed_mid_way_finishes_after_restart() {
    let temp = tempfile::tempdir().expect("temp dir");
    let mirror = Mirror::serve(&fixture_dir(), 0.1);
    let apt = apt_config(temp.path(), &mirror);
    let data = temp.path().join("data");
    let lease = ["--task-lease-seconds", "3"];
    let mut server = build_server(&data, &apt, &lease);
    let id = bootstrap_until_fetching(&server);
    server.kill_hard();

    let server = build_server(&data, &apt, &lease);
    let task = task_end(&server, &id);
    assert_eq!(task["state"], "succeeded", "{task}");
    assert!(task["attempts"].as_u64().unwrap_or(0) >= 2, "the restart ran it again: {task}");
    let base = server.http().get("/v1/base-images/python3").body;
    assert_eq!(base["status"], "READY", "{base}");

    // The layer records outlive the process: after another restart the same bootstrap reuses
    // every package layer and gives the same image.
    drop(server);
    let server = build_server(&data, &apt, &lease);
    let log = bootstrap_again(&server, &base["digest"]);
    let reused: Vec<&str> =
        log.lines().filter(|l| l.starts_with("layer ") && l.contains(", reused): package")).collect();
    assert!(!reused.is_empty() && !log.contains(" bytes): package"), "{log}");
    // A layer whose blob left the registry (as collection would take it) is written again.
    let gone = reused[0].split_whitespace().nth(2).and_then(|d| d.strip_prefix("sha256:")).expect("layer digest");
    let file = find_file(&data, gone).expect("the layer's blob file");
    std::fs::remove_file(&file).expect("remove the blob");
    let log = bootstrap_again(&server, &base["digest"]);
    assert!(log.lines().any(|l| l.contains(gone) && l.contains(" bytes): package")), "{log}");
    assert!(file.exists(), "the layer is back in the registry");
}

/// Bootstraps python3 once more and checks it gives `digest`; returns the task's log.
fn bootstrap_again(server: &Server, digest: &Value) -> String {
    let answer = server.http().post("/v1/bootstrap", json!({"languages": ["python3"]}));
    assert_eq!(answer.status, 202, "{}", answer.text);
    let id = answer.body["items"][0]["id"].as_str().expect("task id").to_string();
    let task = task_end(server, &id);
    assert_eq!(task["state"], "succeeded", "{task}");
    assert_eq!(task["result"]["digest"], *digest, "{task}");
    stdout(&server.kiln(&["logs", &id]))
}

fn find_file(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if entry.file_name() == name {
            return Some(path);
        }
    }
    None
}

#[test]
fn a_cancel_stops_the_build_and_frees_its_scratch_space() {
    let temp = tempfile::tempdir().expect("temp dir");
    let mirror = Mirror::serve(&fixture_dir(), 0.2);
    let apt = apt_config(temp.path(), &mirror);
    let data = temp.path().join("data");
    let server = build_server(&data, &apt, &[]);
    let id = bootstrap_until_fetching(&server);
    let scratch = data.join("scratch");
    assert!(std::fs::read_dir(&scratch).map(|d| d.count()).unwrap_or(0) > 0, "the build holds scratch space");

    let cancelled = server.kiln(&["cancel", &id]);
    assert!(cancelled.status.success(), "{}", stderr(&cancelled));
    let task = task_end(&server, &id);
    assert_eq!(task["state"], "cancelled", "{task}");
    let left = wait_for("scratch space freed", Duration::from_secs(10), || {
        let left = std::fs::read_dir(&scratch).map(|d| d.count()).unwrap_or(0);
        (left == 0).then_some(left)
    });
    assert_eq!(left, 0);
    assert!(!catalog(&server).iter().any(|r| r.ends_with("base/python3")), "a cancelled build pushed nothing");
}

/// This machine's release codename and major version, from `/etc/os-release`.
fn os_release() -> (String, String) {
    let text = std::fs::read_to_string("/etc/os-release").expect("/etc/os-release");
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{name}=")))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| panic!("{name} in /etc/os-release"))
    };
    (field("VERSION_CODENAME"), field("VERSION_ID"))
}
