//! The seeds' examples under `examples/`, end to end on loopback: each definition created with
//! `kiln create -f`, built from the Debian fixture mirror and the Python fixture index, run
//! under runc with its handler, answering `POST /`; and Python requirements that cannot be
//! met end in ERROR with the reason and nothing pushed.

mod common;
#[path = "examples/hostile_npm.rs"]
mod hostile_npm;
#[path = "builds/mirror.rs"]
mod mirror;
#[path = "builds/runc.rs"]
mod runc;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Server, assert_valid_spdx, image_settled, stderr, stdout};
use mirror::{Mirror, apt_config, fixture_dir, npm_fixture, pypi_fixture};
use serde_json::{Value, json};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// A wheel of `name` 1.0 with `files` besides its metadata; `record` lists what RECORD
/// claims (path, content) when it should differ from the files.
fn wheel(name: &str, tags: &str, files: &[(&str, &[u8])], record: Option<&[(&str, &[u8])]>) -> (String, Vec<u8>) {
    use base64::Engine;
    use sha2::Digest;
    use std::io::Write;
    let filename = format!("{}-1.0-{tags}.whl", name.replace('-', "_"));
    let metadata = format!("Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n\n");
    let dist_info = format!("{}-1.0.dist-info", name.replace('-', "_"));
    let mut all: Vec<(String, Vec<u8>)> = files.iter().map(|(p, d)| (p.to_string(), d.to_vec())).collect();
    all.push((format!("{dist_info}/METADATA"), metadata.into_bytes()));
    let claimed: Vec<(String, Vec<u8>)> = match record {
        Some(list) => list.iter().map(|(p, d)| (p.to_string(), d.to_vec())).chain(all.last().cloned()).collect(),
        None => all.clone(),
    };
    let mut record_text = String::new();
    for (path, data) in &claimed {
        let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(data));
        record_text.push_str(&format!("{path},sha256={hash},{}\n", data.len()));
    }
    record_text.push_str(&format!("{dist_info}/RECORD,,\n"));
    all.push((format!("{dist_info}/RECORD"), record_text.into_bytes()));
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for (path, data) in &all {
        writer.start_file(path.as_str(), options).expect("zip entry");
        writer.write_all(data).expect("zip data");
    }
    (filename, writer.finish().expect("zip").into_inner())
}

/// A simple index of wheels that must all be refused, one project each.
fn hostile_index(root: &Path) {
    use sha2::Digest;
    let projects = [
        wheel("kiln-win", "cp311-cp311-win_amd64", &[("kiln_win/__init__.py", b"")], None),
        wheel("kiln-py2", "py2-none-any", &[("kiln_py2/__init__.py", b"")], None),
        wheel(
            "kiln-tampered",
            "py3-none-any",
            &[("kiln_tampered/__init__.py", b"import os\n")],
            Some(&[("kiln_tampered/__init__.py", b"print('honest')\n")]),
        ),
        wheel("kiln-escape", "py3-none-any", &[("../../../../etc/passwd", b"root::0:0::/:/bin/sh\n")], None),
    ];
    std::fs::create_dir_all(root.join("files")).expect("files dir");
    for (filename, bytes) in &projects {
        std::fs::write(root.join("files").join(filename), bytes).expect("wheel");
        let project = filename.split('-').next().unwrap_or_default().replace('_', "-");
        let dir = root.join("simple").join(&project);
        std::fs::create_dir_all(&dir).expect("project dir");
        let digest = hex::encode(sha2::Sha256::digest(bytes));
        let page = format!("<a href=\"../../files/{filename}#sha256={digest}\">{filename}</a>\n");
        std::fs::write(dir.join("index.html"), page).expect("index page");
    }
    // 300 MiB of zeros that deflate to a few hundred KiB, over the server's 256 MiB limit.
    let bomb = {
        use std::io::Write;
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        writer.start_file("kiln_bomb/zeros.bin", zip::write::SimpleFileOptions::default()).expect("zip entry");
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..300 {
            writer.write_all(&chunk).expect("zeros");
        }
        writer.start_file("kiln_bomb-1.0.dist-info/METADATA", zip::write::SimpleFileOptions::default()).expect("entry");
        writer.write_all(b"Metadata-Version: 2.1\nName: kiln-bomb\nVersion: 1.0\n\n").expect("metadata");
        writer.finish().expect("zip").into_inner()
    };
    let bomb_dir = root.join("simple/kiln-bomb");
    std::fs::create_dir_all(&bomb_dir).expect("bomb dir");
    std::fs::write(root.join("files/kiln_bomb-1.0-py3-none-any.whl"), &bomb).expect("bomb");
    std::fs::write(
        bomb_dir.join("index.html"),
        format!(
            "<a href=\"../../files/kiln_bomb-1.0-py3-none-any.whl#sha256={}\">kiln_bomb-1.0-py3-none-any.whl</a>\n",
            hex::encode(sha2::Sha256::digest(&bomb))
        ),
    )
    .expect("bomb page");
    let sdist = root.join("simple/kiln-sdist");
    std::fs::create_dir_all(&sdist).expect("sdist dir");
    std::fs::write(
        sdist.join("index.html"),
        format!("<a href=\"../../files/kiln-sdist-1.0.tar.gz#sha256={}\">kiln-sdist-1.0.tar.gz</a>\n", "0".repeat(64)),
    )
    .expect("sdist page");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// Runs `reference`'s function server under runc, with `handler` copied into `/function`
/// when given; returns the answer to `POST /` with `payload`.
fn call_function(server: &Server, dir: &Path, reference: &str, handler: Option<&Path>, payload: Value) -> Value {
    let path = reference.split_once('/').map(|(_, p)| p).unwrap_or(reference);
    let (repository, tag) = path.rsplit_once(':').expect("tagged reference");
    std::fs::create_dir_all(dir).expect("dir");
    let bundle = runc::bundle(&server.url, repository, tag, dir);
    if let Some(handler) = handler {
        let function = bundle.join("rootfs/function");
        std::fs::create_dir_all(&function).expect("function dir");
        std::fs::copy(handler, function.join(handler.file_name().expect("handler file"))).expect("copy handler");
    }
    let port = free_port();
    runc::configure(&bundle, &[("PORT", &port.to_string())], None);
    let container = runc::Running::start(&bundle, &format!("kiln-example-{port}"));
    let client = reqwest::blocking::Client::new();
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while !client.get(format!("{url}/healthz")).send().is_ok_and(|r| r.status().is_success()) {
        assert!(started.elapsed() < Duration::from_secs(30), "no function server: {}", container.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let answer = client.post(&url).json(&json!({"context": {}, "payload": payload})).send().expect("POST");
    assert!(answer.status().is_success(), "{}: {}", answer.status(), container.log());
    answer.json().expect("JSON answer")
}

#[test]
fn seed_examples_build_and_answer() {
    let temp = tempfile::tempdir().expect("temp dir");
    let debian = Mirror::serve(&fixture_dir(), 0.0);
    let pypi = Mirror::serve(&pypi_fixture(), 0.0);
    let apt = apt_config(temp.path(), &debian);
    let server = Server::start_with(&temp.path().join("data"), |command| {
        command
            .env("KILN_CONTROLLER", "true")
            .env("KILN_APT_CONFIG_DIR", &apt)
            .env("KILN_PYPI_INDEX_URL", format!("{}/simple", pypi.url))
            .env("KILN_WHEEL_SIZE_LIMIT_BYTES", (256u64 << 20).to_string())
            .env("KILN_CONTROLLER_RETRY_SECONDS", "1");
    })
    .0;
    let bootstrap = server.kiln(&["bootstrap", "python3", "--wait"]);
    assert!(bootstrap.status.success(), "{}", stderr(&bootstrap));

    // The Dispatch docs: my-python-base (requests) and my-pandas on it.
    let file = examples().join("my-pandas/images.yaml");
    let created = server.kiln(&["create", "-f", file.to_str().expect("utf-8")]);
    assert!(created.status.success(), "{}\n{}", stdout(&created), stderr(&created));
    let base = image_settled(&server, "my-python-base");
    assert_eq!(base["status"], "READY", "{base}");
    let pandas = image_settled(&server, "my-pandas");
    assert_eq!(pandas["status"], "READY", "{pandas}");
    // The function's code goes on as one layer, by a manifest write: no rebuild.
    let code = examples().join("my-pandas");
    let pushed =
        server.kiln(&["function", "push", "my-pandas", "--code", code.to_str().expect("utf-8"), "--name", "sum"]);
    assert!(pushed.status.success(), "{}", stderr(&pushed));
    let function_ref = stdout(&pushed).trim().split('@').next().unwrap_or_default().to_string();
    assert!(function_ref.ends_with("/default/my-pandas:fn-sum"), "{function_ref}");
    let answer = call_function(
        &server,
        &temp.path().join("pandas"),
        &function_ref,
        None,
        json!({"rows": [{"a": 1, "b": 10}, {"a": 2, "b": 20}]}),
    );
    assert_eq!(answer["sum"], json!({"a": 3, "b": 30}), "{answer}");
    assert_eq!(answer["pandas"], "2.2.3");
    // Changed code: a new manifest whose layers are the runtime's plus one new one.
    let changed = temp.path().join("changed");
    std::fs::create_dir_all(&changed).expect("changed dir");
    std::fs::write(changed.join("handler.py"), "def handle(context, payload):\n    return {\"v\": 2}\n")
        .expect("handler");
    let http = server.http();
    let code_tar = {
        let mut builder = tar::Builder::new(Vec::new());
        builder.append_dir_all(".", &changed).expect("tar");
        builder.into_inner().expect("tar")
    };
    let put = http.raw("PUT", "/v1/images/my-pandas/functions/sum", "application/x-tar", code_tar);
    assert_eq!(put.status, 200, "pushing the function again replaces it: {}", put.text);
    let manifest = |reference: &str| {
        let tag = reference.rsplit(':').next().unwrap_or_default();
        let answer = common::admin_client()
            .get(format!("{}/v2/default/my-pandas/manifests/{tag}", server.url))
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .expect("manifest");
        answer.json::<Value>().expect("manifest JSON")
    };
    let runtime = manifest(pandas["reference"].as_str().expect("reference"));
    let function = manifest(&function_ref);
    let runtime_layers = runtime["layers"].as_array().expect("layers").clone();
    let function_layers = function["layers"].as_array().expect("layers").clone();
    assert_eq!(function_layers.len(), runtime_layers.len() + 1);
    assert_eq!(
        function_layers[..runtime_layers.len()],
        runtime_layers[..],
        "the runtime's layers are reused as they are"
    );
    assert_eq!(function_layers.last().map(|l| l["digest"].clone()), Some(put.body["layer"].clone()));
    let hostile = {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..13].copy_from_slice(b"../etc/passwd");
        header.set_size(1);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let mut builder = tar::Builder::new(Vec::new());
        builder.append(&header, &b"x"[..]).expect("tar");
        builder.into_inner().expect("tar")
    };
    let refused = http.raw("PUT", "/v1/images/my-pandas/functions/sum", "application/x-tar", hostile);
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains("../etc/passwd"), "{}", refused.text);
    let inventory = server.http().get("/v1/images/my-pandas/packages").body;
    let items = inventory["items"].as_array().expect("inventory");
    let find = |name: &str| items.iter().find(|i| i["name"] == name && i["ecosystem"] == "pypi").cloned();
    let pandas_item = find("pandas").expect("pandas listed");
    assert_eq!(pandas_item["purl"], "pkg:pypi/pandas@2.2.3");
    assert!(pandas_item["license"].as_str().is_some_and(|l| l.contains("BSD")), "{pandas_item}");
    let parent_items = server.http().get("/v1/images/my-python-base/packages").body;
    let parent_requests =
        parent_items["items"].as_array().and_then(|i| i.iter().find(|x| x["name"] == "requests").cloned());
    let requests = find("requests").expect("requests listed");
    assert_eq!(Some(&requests), parent_requests.as_ref(), "requests comes from the parent, in the parent's layer");
    assert!(find("numpy").is_some_and(|n| n["layer"].is_string()));
    let users = server.http().get("/v1/packages/pypi/pandas/images").body;
    assert!(users["items"].as_array().is_some_and(|i| i.iter().any(|x| x["image"] == "my-pandas")), "{users}");
    let sbom = server.kiln(&["sbom", "my-pandas"]);
    assert!(stdout(&sbom).contains("pkg:pypi/pandas@2.2.3"), "the SBOM lists Python packages: {}", stderr(&sbom));
    assert_valid_spdx(&stdout(&sbom), "the SBOM of my-pandas");
    let dockerfile = server.http().get("/v1/images/my-pandas/dockerfile").text;
    assert!(dockerfile.contains("pip install") && dockerfile.contains("pandas==2.2.3"), "{dockerfile}");

    // The design document's python3-postgres, in the seed's own format.
    let file = examples().join("python3-postgres/python3-postgres.yaml");
    let created = server.kiln(&["create", "-f", file.to_str().expect("utf-8")]);
    assert!(created.status.success(), "{}\n{}", stdout(&created), stderr(&created));
    let postgres = image_settled(&server, "python3-postgres");
    assert_eq!(postgres["status"], "READY", "{postgres}");
    let answer = call_function(
        &server,
        &temp.path().join("postgres"),
        postgres["reference"].as_str().expect("reference"),
        Some(&examples().join("python3-postgres/handler.py")),
        json!({"port": free_port()}),
    );
    assert_eq!(answer["connected"], false, "{answer}");
    assert!(answer["error"].as_str().is_some_and(|e| e.contains("connect")), "{answer}");

    // Requirements that cannot be met and wheels that must not be installed: ERROR with the
    // reason, nothing pushed. The hostile index is an organisation's package source.
    let hostile_root = temp.path().join("hostile-index");
    hostile_index(&hostile_root);
    // A private index: only the package source's credentials get in.
    let hostile = Mirror::serve_with_login(&hostile_root, 0.0, Some("builder:s3cret"));
    let source = server.http().post(
        "/v1/package-sources",
        json!({"name": "hostile-pypi", "ecosystem": "pypi", "url": format!("{}/simple", hostile.url),
               "credentials": {"username": "builder", "password": "s3cret"}}),
    );
    assert_eq!(source.status, 201, "{}", source.text);
    assert!(!source.text.contains("s3cret"), "credentials are write-only");
    let cases = [
        (
            "py-unknown",
            "kiln-no-such-distribution==1.0\n",
            vec!["no project kiln-no-such-distribution", "hostile-pypi", "pip:"],
        ),
        (
            "py-conflict",
            "pandas==2.2.3\nnumpy<1.0\n",
            vec!["pandas 2.2.3 depends on numpy >=1.23.2", "the image depends on numpy <1.0"],
        ),
        ("py-bad-line", "pandas ==\n", vec!["requirements line 1"]),
        ("py-platform", "kiln-win\n", vec!["kiln-win", "no wheel for CPython 3.11"]),
        ("py-python", "kiln-py2\n", vec!["kiln-py2", "no wheel for CPython 3.11"]),
        ("py-sdist", "kiln-sdist\n", vec!["kiln-sdist", "only as source"]),
        (
            "py-sdist-pinned",
            "kiln-sdist==1.0\n",
            vec!["kiln-sdist 1.0 has no wheel for CPython 3.11", "only a source distribution", "cannot be built"],
        ),
        ("py-record", "kiln-tampered\n", vec!["kiln_tampered/__init__.py", "RECORD"]),
        ("py-escape", "kiln-escape\n", vec!["../../../../etc/passwd", "refused"]),
        ("py-bomb", "kiln-bomb\n", vec!["kiln-bomb", "268435456 bytes", "zip bomb"]),
    ];
    for (name, requirements, _) in &cases {
        let created = server.http().post(
            "/v1/images",
            json!({"name": name, "baseImageName": "python3", "runtimeDependencies": {"manifest": requirements}}),
        );
        assert_eq!(created.status, 201, "{}", created.text);
    }
    // pip's constraints: they hold what gets installed, and install nothing themselves.
    for (name, requirements) in [("py-constrained", "pandas==2.2.3\n"), ("pins-only", "requests\n")] {
        let created = server.http().post(
            "/v1/images",
            json!({"name": name, "baseImageName": "python3",
                   "runtimeDependencies": {"manifest": requirements, "constraints": "numpy<1.0\n"}}),
        );
        assert_eq!(created.status, 201, "{}", created.text);
    }
    let constrained = image_settled(&server, "py-constrained");
    assert_eq!(constrained["status"], "ERROR", "{constrained}");
    assert!(constrained["reason"].to_string().contains("note: constraint numpy<1.0"), "{constrained}");
    let unconstrained = image_settled(&server, "pins-only");
    assert_eq!(unconstrained["status"], "READY", "{unconstrained}");
    let items = server.http().get("/v1/images/pins-only/packages").body["items"].to_string();
    assert!(items.contains("\"requests\"") && !items.contains("\"numpy\""), "{items}");
    for (name, _, expected) in &cases {
        let image = image_settled(&server, name);
        assert_eq!(image["status"], "ERROR", "{name}: {image}");
        let reason = image["reason"].to_string();
        for part in expected {
            assert!(reason.contains(part), "{name}: {part:?} not in {reason}");
        }
    }
    let catalog = server.http().get("/v2/_catalog?n=1000").body;
    let repositories = catalog["repositories"].to_string();
    assert!(!repositories.contains("py-"), "failed builds pushed: {repositories}");
}

#[test]
fn nodejs_example_builds_and_answers() {
    let temp = tempfile::tempdir().expect("temp dir");
    let debian = Mirror::serve(&fixture_dir(), 0.0);
    let npm = Mirror::serve(&npm_fixture(), 0.0);
    let apt = apt_config(temp.path(), &debian);
    let server = Server::start_with(&temp.path().join("data"), |command| {
        command
            .env("KILN_CONTROLLER", "true")
            .env("KILN_APT_CONFIG_DIR", &apt)
            .env("KILN_NPM_REGISTRY_URL", &npm.url)
            .env("KILN_CONTROLLER_RETRY_SECONDS", "1");
    })
    .0;
    let bootstrap = server.kiln(&["bootstrap", "nodejs", "--wait"]);
    assert!(bootstrap.status.success(), "{}", stderr(&bootstrap));

    let file = examples().join("nodejs-lodash/images.yaml");
    let created = server.kiln(&["create", "-f", file.to_str().expect("utf-8")]);
    assert!(created.status.success(), "{}\n{}", stdout(&created), stderr(&created));
    let image = image_settled(&server, "nodejs-lodash");
    assert_eq!(image["status"], "READY", "{image}");
    let answer = call_function(
        &server,
        &temp.path().join("lodash"),
        image["reference"].as_str().expect("reference"),
        Some(&examples().join("nodejs-lodash/handler.js")),
        json!({"rows": [{"kind": "a", "n": 1}, {"kind": "b", "n": 2}, {"kind": "a", "n": 3}]}),
    );
    assert_eq!(answer["groups"], json!({"a": 4, "b": 2}), "{answer}");
    assert!(answer["lodash"].as_str().is_some_and(|v| v.starts_with("4.")), "{answer}");
    assert!(answer["axios"].as_str().is_some_and(|v| v.starts_with("1.")), "{answer}");

    let http = server.http();
    let items = http.get("/v1/images/nodejs-lodash/packages").body["items"].as_array().cloned().expect("inventory");
    let npm_item = |name: &str| items.iter().find(|i| i["ecosystem"] == "npm" && i["name"] == name).cloned();
    let lodash = npm_item("lodash").expect("lodash listed");
    assert!(lodash["purl"].as_str().is_some_and(|p| p.starts_with("pkg:npm/lodash@4.")), "{lodash}");
    assert_eq!(lodash["license"], "MIT");
    assert!(lodash["layer"].is_string(), "{lodash}");
    assert!(npm_item("axios").is_some() && npm_item("follow-redirects").is_some(), "dependencies are listed too");
    let sbom = server.kiln(&["sbom", "nodejs-lodash"]);
    assert!(stdout(&sbom).contains("pkg:npm/lodash@"), "the SBOM lists npm packages: {}", stderr(&sbom));
    assert_valid_spdx(&stdout(&sbom), "the SBOM of nodejs-lodash");
    let dockerfile = http.get("/v1/images/nodejs-lodash/dockerfile").text;
    assert!(dockerfile.contains("npm ci --omit=dev --ignore-scripts"), "{dockerfile}");
    assert!(dockerfile.contains("NODE_PATH=\"/opt/kiln/node/node_modules\""), "{dockerfile}");
    let build = http.get("/v1/images/nodejs-lodash/build").body;
    let lockfile: Value =
        serde_json::from_str(build["lock"]["npmLockfile"].as_str().expect("the tree's package-lock.json"))
            .expect("json");
    assert_eq!(lockfile["packages"][""]["dependencies"]["lodash"], "^4.17.21");
    let digest = image["digest"].clone();
    for locked in [false, true] {
        let rebuild = http.post("/v1/images/nodejs-lodash/rebuild", json!({"locked": locked}));
        assert_eq!(rebuild.status, 202, "{}", rebuild.text);
        let task = rebuild.body["id"].as_str().expect("task id").to_string();
        let started = Instant::now();
        while !["succeeded", "failed", "cancelled"]
            .contains(&http.get(&format!("/v1/tasks/{task}")).body["state"].as_str().unwrap_or_default())
        {
            assert!(started.elapsed() < Duration::from_secs(300), "rebuild {task} did not end");
            std::thread::sleep(Duration::from_millis(200));
        }
        let again = image_settled(&server, "nodejs-lodash");
        assert_eq!(again["digest"], digest, "rebuild (locked: {locked}) gives the same image: {again}");
    }

    // Packages that must not be installed, from an organisation's private npm registry.
    let hostile_root = temp.path().join("hostile-npm");
    hostile_npm::write(&hostile_root);
    let hostile = Mirror::serve_with_login(&hostile_root, 0.0, Some("builder:s3cret"));
    let source = http.post(
        "/v1/package-sources",
        json!({"name": "hostile-npm", "ecosystem": "npm", "url": hostile.url,
               "credentials": {"username": "builder", "password": "s3cret"}}),
    );
    assert_eq!(source.status, 201, "{}", source.text);
    let cases = [
        ("npm-unknown", "kiln-no-such-package", vec!["kiln-no-such-package"]),
        ("npm-scripts", "kiln-scripted", vec!["kiln-scripted", "postinstall"]),
        ("npm-integrity", "kiln-tampered", vec!["kiln-tampered", "integrity"]),
        ("npm-escape", "kiln-escape", vec!["kiln-escape", "etc/passwd"]),
        ("npm-absolute", "kiln-absolute", vec!["kiln-absolute", "etc/shadow"]),
    ];
    for (name, package, _) in &cases {
        let manifest = json!({"dependencies": {*package: "^1.0.0"}}).to_string();
        let created = http.post(
            "/v1/images",
            json!({"name": name, "baseImageName": "nodejs", "runtimeDependencies": {"manifest": manifest}}),
        );
        assert_eq!(created.status, 201, "{}", created.text);
    }
    for (name, _, expected) in &cases {
        let image = image_settled(&server, name);
        assert_eq!(image["status"], "ERROR", "{name}: {image}");
        let reason = image["reason"].to_string();
        for part in expected {
            assert!(reason.contains(part), "{name}: {part:?} not in {reason}");
        }
    }
    let repositories = http.get("/v2/_catalog?n=1000").body["repositories"].to_string();
    assert!(!repositories.contains("npm-"), "failed builds pushed: {repositories}");
}
