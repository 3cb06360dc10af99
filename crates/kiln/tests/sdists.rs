//! Python source distributions when an administrator allows them: Kiln builds its sandbox
//! image (python3 with pip, setuptools and wheel from the Debian fixture mirror), then builds
//! each sdist there under runc with no network, and installs the wheel like any other. An
//! sdist whose build reaches for the network finds none.

mod common;
#[path = "builds/mirror.rs"]
mod mirror;
#[path = "builds/runc.rs"]
mod runc;

use std::path::Path;

use common::{Server, image_settled, stderr, stdout};
use mirror::{Mirror, apt_config, fixture_dir};
use serde_json::{Value, json};
use sha2::Digest;

/// A setuptools sdist `name-1.0.tar.gz` with one module and `setup_body` run by its setup.py.
fn sdist(name: &str, module: &str, module_text: &str, setup_body: &str) -> (String, Vec<u8>) {
    let top = format!("{name}-1.0");
    let setup = format!(
        "{setup_body}\nfrom setuptools import setup\nsetup(name={name:?}, version=\"1.0\", py_modules=[{module:?}], license=\"MIT\")\n"
    );
    let pkg_info = format!("Metadata-Version: 1.1\nName: {name}\nVersion: 1.0\nLicense: MIT\n");
    let files = [
        (format!("{top}/setup.py"), setup),
        (format!("{top}/{module}.py"), module_text.to_string()),
        (format!("{top}/PKG-INFO"), pkg_info),
    ];
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (path, text) in &files {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        builder.append_data(&mut header, path, text.as_bytes()).expect("sdist entry");
    }
    (format!("{top}.tar.gz"), builder.into_inner().and_then(|gz| gz.finish()).expect("sdist"))
}

/// A simple index holding `files`, one project each.
fn index(root: &Path, files: &[(String, Vec<u8>)]) {
    std::fs::create_dir_all(root.join("files")).expect("files dir");
    for (filename, bytes) in files {
        std::fs::write(root.join("files").join(filename), bytes).expect("sdist file");
        let project = filename.trim_end_matches("-1.0.tar.gz");
        let dir = root.join("simple").join(project);
        std::fs::create_dir_all(&dir).expect("project dir");
        let digest = hex::encode(sha2::Sha256::digest(bytes));
        let page = format!("<a href=\"../../files/{filename}#sha256={digest}\">{filename}</a>\n");
        std::fs::write(dir.join("index.html"), page).expect("project page");
    }
}

#[test]
fn source_distributions_build_offline_in_a_sandbox() {
    let temp = tempfile::tempdir().expect("temp dir");
    let debian = Mirror::serve(&fixture_dir(), 0.0);
    let apt = apt_config(temp.path(), &debian);
    let index_root = temp.path().join("index");
    // Starts first so the hostile setup.py knows an address that answers on the host.
    std::fs::create_dir_all(&index_root).expect("index dir");
    let pypi = Mirror::serve(&index_root, 0.0);
    let pypi_port = pypi.url.rsplit(':').next().unwrap_or_default().to_string();
    index(
        &index_root,
        &[
            sdist("kiln-hello", "kiln_hello", "def greet():\n    return 'hello from source'\n", ""),
            sdist(
                "kiln-greedy",
                "kiln_greedy",
                "",
                &format!(
                    "import socket\ntry:\n    socket.create_connection(('127.0.0.1', {pypi_port}), timeout=3)\nexcept OSError as e:\n    raise SystemExit('no network: %s' % e)\nraise SystemExit('reached the network')\n"
                ),
            ),
        ],
    );
    let server = Server::start_with(&temp.path().join("data"), |command| {
        command
            .env("KILN_CONTROLLER", "true")
            .env("KILN_APT_CONFIG_DIR", &apt)
            .env("KILN_PYPI_INDEX_URL", format!("{}/simple", pypi.url))
            .env("KILN_PYPI_SDIST_BUILDER", "sdist-builder")
            .env("KILN_CONTROLLER_RETRY_SECONDS", "1");
    })
    .0;
    let http = server.http();
    let bootstrap = server.kiln(&["bootstrap", "python3", "--wait"]);
    assert!(bootstrap.status.success(), "{}", stderr(&bootstrap));
    let packages: Vec<Value> =
        ["python3-pip", "python3-setuptools", "python3-wheel"].iter().map(|n| json!({"name": n})).collect();
    let builder = http.post(
        "/v1/images",
        json!({"name": "sdist-builder", "baseImageName": "python3", "systemDependencies": {"packages": packages}}),
    );
    assert_eq!(builder.status, 201, "{}", builder.text);
    assert_eq!(image_settled(&server, "sdist-builder")["status"], "READY");

    for (name, requirement) in [("from-source", "kiln-hello\n"), ("greedy", "kiln-greedy\n")] {
        let created = http.post(
            "/v1/images",
            json!({"name": name, "baseImageName": "python3", "runtimeDependencies": {"manifest": requirement}}),
        );
        assert_eq!(created.status, 201, "{}", created.text);
    }
    let built = image_settled(&server, "from-source");
    assert_eq!(built["status"], "READY", "{built}");
    let items = http.get("/v1/images/from-source/packages").body["items"].clone();
    let hello = items.as_array().and_then(|i| i.iter().find(|p| p["name"] == "kiln-hello").cloned());
    assert!(hello.as_ref().is_some_and(|h| h["version"] == "1.0" && h["layer"].is_string()), "{items}");
    let log = server.kiln(&["logs", built["buildTask"].as_str().expect("build task")]);
    assert!(stdout(&log).contains("built from kiln-hello-1.0.tar.gz in the sandbox"), "{}", stdout(&log));

    let greedy = image_settled(&server, "greedy");
    assert_eq!(greedy["status"], "ERROR", "{greedy}");
    let reason = greedy["reason"].to_string();
    assert!(reason.contains("building kiln-greedy 1.0 from kiln-greedy-1.0.tar.gz"), "{reason}");
    assert!(reason.contains("no network"), "the sandbox has no network: {reason}");
    assert!(!reason.contains("reached the network"), "{reason}");

    // The installed module works in the image.
    let reference = built["reference"].as_str().expect("reference");
    let path = reference.split_once('/').map(|(_, p)| p).unwrap_or(reference);
    let (repository, tag) = path.rsplit_once(':').expect("tagged reference");
    let bundle = runc::bundle(&server.url, repository, tag, &temp.path().join("run"));
    runc::configure(&bundle, &[], Some(&["python3", "-c", "import kiln_hello; print(kiln_hello.greet())"]));
    let ran = runc::run_once(&bundle, &format!("kiln-sdist-test-{}", std::process::id()));
    assert!(stdout(&ran).contains("hello from source"), "{}\n{}", stdout(&ran), stderr(&ran));
}
