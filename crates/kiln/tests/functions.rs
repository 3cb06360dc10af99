//! Functions as objects, through the real binary and a server building from the Debian
//! fixture mirror: `kiln function push` refuses code that cannot run (missing or empty
//! directory, a Node handler on a Python image, a syntax error, no handler), packs only what
//! `.kilnignore` and its defaults let through, and functions are listed, shown, moved,
//! composed again when their image is rebuilt, swept of stale tags and deleted; function
//! images pushed before functions were records are adopted as records.

mod common;
#[path = "builds/mirror.rs"]
mod mirror;

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Server, image_settled, stderr, stdout};
use mirror::{Mirror, apt_config, fixture_dir};
use serde_json::{Value, json};

fn wait_for<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(started.elapsed() < limit, "{what} did not happen within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn write(dir: &Path, path: &str, text: &str) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
    std::fs::write(path, text).expect("file");
}

fn push(server: &Server, image: &str, code: &Path, name: &str) -> std::process::Output {
    server.kiln(&["function", "push", image, "--code", code.to_str().expect("utf-8"), "--name", name])
}

/// `(status, manifest)` of `repository:reference` in Kiln's registry.
fn manifest(server: &Server, repository: &str, reference: &str) -> (u16, Value) {
    let answer = common::admin_client()
        .get(format!("{}/v2/{repository}/manifests/{reference}", server.url))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .expect("manifest");
    let status = answer.status().as_u16();
    (status, answer.json().unwrap_or(Value::Null))
}

/// The names inside a gzipped layer blob.
fn layer_names(server: &Server, repository: &str, digest: &str) -> Vec<String> {
    let bytes = common::admin_client()
        .get(format!("{}/v2/{repository}/blobs/{digest}", server.url))
        .send()
        .and_then(|r| r.bytes())
        .expect("layer blob");
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut tar).expect("gzip");
    let mut archive = tar::Archive::new(&tar[..]);
    let mut names: Vec<String> = archive
        .entries()
        .expect("entries")
        .map(|e| e.expect("entry").path().expect("path").display().to_string().trim_end_matches('/').to_string())
        .collect();
    names.sort();
    names
}

fn layer_digests(manifest: &Value) -> Vec<Value> {
    manifest["layers"].as_array().expect("layers").iter().map(|l| l["digest"].clone()).collect()
}

#[test]
fn functions_are_checked_listed_followed_and_deleted() {
    let temp = tempfile::tempdir().expect("temp dir");
    let debian = Mirror::serve(&fixture_dir(), 0.0);
    let apt = apt_config(temp.path(), &debian);
    let server = Server::start_with(&temp.path().join("data"), |command| {
        command
            .env("KILN_CONTROLLER", "true")
            .env("KILN_APT_CONFIG_DIR", &apt)
            .env("KILN_CONTROLLER_RETRY_SECONDS", "1");
    })
    .0;
    let http = server.http();
    let bootstrap = server.kiln(&["bootstrap", "python3", "--wait"]);
    assert!(bootstrap.status.success(), "{}", stderr(&bootstrap));
    for (name, greeting) in [("fnbase", "one"), ("fnother", "other")] {
        let image = json!({"name": name, "baseImageName": "python3",
                           "environment": [{"name": "GREETING", "value": greeting}]});
        assert_eq!(http.post("/v1/images", image).status, 201);
    }
    let image = image_settled(&server, "fnbase");
    assert_eq!(image["status"], "READY", "{image}");

    // Code that cannot run is refused, by path or file, saying what to do; nothing is stored.
    let missing = temp.path().join("nonexistent");
    let refused = push(&server, "fnbase", &missing, "greet");
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains(&missing.display().to_string()) && stderr(&refused).contains("does not exist"),
        "{}",
        stderr(&refused)
    );
    let empty = temp.path().join("empty");
    write(&empty, "requirements.txt", "requests\n");
    let refused = push(&server, "fnbase", &empty, "greet");
    assert!(stderr(&refused).contains("holds no files"), "{}", stderr(&refused));
    let node = temp.path().join("node");
    write(&node, "handler.js", "exports.handle = (context, payload) => payload;\n");
    let refused = push(&server, "fnbase", &node, "greet");
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("no handler.py") && stderr(&refused).contains("nodejs image"),
        "{}",
        stderr(&refused)
    );
    let broken = temp.path().join("broken");
    write(&broken, "handler.py", "def handle(context, payload)\n    return 1\n");
    let refused = push(&server, "fnbase", &broken, "greet");
    assert!(stderr(&refused).contains("handler.py line 1"), "{}", stderr(&refused));
    let unnamed = temp.path().join("unnamed");
    write(&unnamed, "handler.py", "def run(context, payload):\n    return 1\n");
    let refused = push(&server, "fnbase", &unnamed, "greet");
    assert!(stderr(&refused).contains("does not define handle"), "{}", stderr(&refused));
    let listed = http.get("/v1/functions");
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body["items"], json!([]), "refused code stored a function");

    // Only what the function needs goes into its layer.
    let code = temp.path().join("greet");
    write(
        &code,
        "handler.py",
        "import os\n\ndef handle(context, payload):\n    return {\"greeting\": os.environ.get(\"GREETING\")}\n",
    );
    write(&code, "lib/util.py", "X = 1\n");
    write(&code, "requirements.txt", "requests\n");
    write(&code, "images.yaml", "kind: Image\nname: fnbase\nbaseImageName: python3\n");
    write(&code, ".git/HEAD", "ref: refs/heads/main\n");
    write(&code, "lib/__pycache__/util.cpython-311.pyc", "");
    write(&code, "secret.txt", "do not ship\n");
    write(&code, ".kilnignore", "secret.txt\n");
    let pushed = push(&server, "fnbase", &code, "greet");
    assert!(pushed.status.success(), "{}", stderr(&pushed));
    assert!(stdout(&pushed).trim().contains("/default/fnbase:fn-greet@sha256:"), "{}", stdout(&pushed));
    let function = http.get("/v1/functions/greet").body;
    assert_eq!(function["image"], "fnbase", "{function}");
    assert_eq!(function["runtimeDigest"], image["digest"], "{function}");
    assert_eq!((&function["module"], &function["handler"]), (&json!("handler.py"), &json!("handle")));
    assert_eq!(
        layer_names(&server, "default/fnbase", function["layer"].as_str().expect("layer")),
        ["function", "function/handler.py", "function/lib", "function/lib/util.py"]
    );

    // Listed and shown like other objects.
    let table = server.kiln(&["function", "list"]);
    assert!(stdout(&table).contains("greet") && stdout(&table).contains("fnbase"), "{}", stdout(&table));
    let listed = server.kiln(&["-o", "json", "get", "functions"]);
    let listed: Value = serde_json::from_str(&stdout(&listed)).expect("json list");
    assert_eq!(listed[0]["kind"], "Function", "{listed}");
    assert_eq!(listed[0]["digest"], function["digest"], "{listed}");
    let shown = server.kiln(&["-o", "yaml", "function", "get", "greet"]);
    assert!(stdout(&shown).contains("runtimeDigest:"), "{}", stdout(&shown));
    assert_eq!(http.get("/v1/functions?image=fnother").body["items"], json!([]));
    assert_eq!(http.get("/v1/functions/nothing").status, 404);

    // The image is rebuilt with a new digest: the function follows it, same code layer.
    let old_digest = function["digest"].as_str().expect("digest").to_string();
    let mut changed = http.get("/v1/images/fnbase").body;
    changed["environment"] = json!([{"name": "GREETING", "value": "two"}]);
    let put = http.put("/v1/images/fnbase", changed);
    assert_eq!(put.status, 200, "{}", put.text);
    let rebuilt = wait_for("the image's rebuild", Duration::from_secs(300), || {
        let image = http.get("/v1/images/fnbase").body;
        (image["status"] == "READY" && image["digest"] != function["runtimeDigest"]).then_some(image)
    });
    let followed = wait_for("the function following its image", Duration::from_secs(120), || {
        let f = http.get("/v1/functions/greet").body;
        (f["status"] == "READY" && f["runtimeDigest"] == rebuilt["digest"]).then_some(f)
    });
    assert_ne!(followed["digest"], json!(old_digest), "{followed}");
    assert_eq!(followed["layer"], function["layer"], "the code layer is reused");
    let (_, runtime) = manifest(&server, "default/fnbase", rebuilt["digest"].as_str().expect("digest"));
    let (status, composed) = manifest(&server, "default/fnbase", "fn-greet");
    assert_eq!(status, 200);
    let mut expected = layer_digests(&runtime);
    expected.push(function["layer"].clone());
    assert_eq!(layer_digests(&composed), expected, "the new build's layers plus the same code layer");
    assert_eq!(manifest(&server, "default/fnbase", &old_digest).0, 404, "the replaced function image is dropped");
    let tasks = http.get("/v1/tasks?kind=compose-function").body;
    assert!(tasks["items"].as_array().is_some_and(|t| t.iter().any(|t| t["state"] == "succeeded")), "{tasks}");

    // Pushed onto another image: the function moves, its old tag goes.
    let on_base = manifest(&server, "default/fnbase", "fn-greet").1;
    assert_eq!(image_settled(&server, "fnother")["status"], "READY");
    let moved = http.raw("PUT", "/v1/images/fnother/functions/greet", "application/x-tar", {
        let mut builder = tar::Builder::new(Vec::new());
        builder.append_path_with_name(code.join("handler.py"), "handler.py").expect("tar");
        builder.into_inner().expect("tar")
    });
    assert_eq!(moved.status, 200, "a replaced function answers 200: {}", moved.text);
    assert_eq!(moved.body["image"], "fnother");
    assert_eq!(manifest(&server, "default/fnbase", "fn-greet").0, 404, "the old tag is removed with the move");
    assert_eq!(manifest(&server, "default/fnother", "fn-greet").0, 200);

    // A tag the record does not own (as an older Kiln could leave) is swept away.
    let stale = common::admin_client()
        .put(format!("{}/v2/default/fnbase/manifests/fn-greet", server.url))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(serde_json::to_vec(&on_base).expect("manifest bytes"))
        .send()
        .expect("stale push");
    assert_eq!(stale.status().as_u16(), 201);
    wait_for("the stale tag's removal", Duration::from_secs(90), || {
        (manifest(&server, "default/fnbase", "fn-greet").0 == 404).then_some(())
    });
    assert_eq!(manifest(&server, "default/fnother", "fn-greet").0, 200, "the owned tag stays");

    // Deleted: the record, its tag and its manifest.
    let digest = http.get("/v1/functions/greet").body["digest"].as_str().expect("digest").to_string();
    let deleted = server.kiln(&["function", "delete", "greet"]);
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    assert_eq!(http.get("/v1/functions/greet").status, 404);
    assert_eq!(manifest(&server, "default/fnother", "fn-greet").0, 404);
    assert_eq!(manifest(&server, "default/fnother", &digest).0, 404);
    let again = server.kiln(&["function", "delete", "greet"]);
    assert!(!again.status.success() && stderr(&again).contains("does not exist"), "{}", stderr(&again));

    // A function image pushed before functions were records (a tag, a config naming it, no
    // record) becomes one; a tag whose config names another function stays a plain tag.
    let client = common::admin_client();
    let config_digest = on_base["config"]["digest"].as_str().expect("config digest");
    let config: Value = client
        .get(format!("{}/v2/default/fnbase/blobs/{config_digest}", server.url))
        .send()
        .and_then(|r| r.json())
        .expect("config");
    let mut legacy_config = config.clone();
    legacy_config["config"]["Labels"]["dev.kiln.function"] = json!("legacy");
    let legacy_bytes = serde_json::to_vec(&legacy_config).expect("config bytes");
    let legacy_digest = format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&legacy_bytes)));
    let upload = client.post(format!("{}/v2/default/fnbase/blobs/uploads/", server.url)).send().expect("upload");
    let location = upload.headers()["location"].to_str().expect("location").to_string();
    let location = if location.starts_with('/') { format!("{}{location}", server.url) } else { location };
    let separator = if location.contains('?') { '&' } else { '?' };
    let put = client.put(format!("{location}{separator}digest={legacy_digest}")).body(legacy_bytes.clone()).send();
    assert_eq!(put.expect("config upload").status().as_u16(), 201);
    let mut legacy_manifest = on_base.clone();
    legacy_manifest["config"]["digest"] = json!(legacy_digest);
    legacy_manifest["config"]["size"] = json!(legacy_bytes.len());
    for (tag, body) in [("fn-legacy", &legacy_manifest), ("fn-bogus", &on_base)] {
        let pushed = client
            .put(format!("{}/v2/default/fnbase/manifests/{tag}", server.url))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(serde_json::to_vec(body).expect("manifest bytes"))
            .send()
            .expect("legacy push");
        assert_eq!(pushed.status().as_u16(), 201, "{tag}");
    }
    let adopted = wait_for("the legacy function's adoption", Duration::from_secs(90), || {
        let answer = http.get("/v1/functions/legacy");
        (answer.status == 200 && answer.body["status"] == "READY").then_some(answer.body)
    });
    assert_eq!(adopted["image"], "fnbase");
    assert_eq!(adopted["layer"], *layer_digests(&legacy_manifest).last().expect("code layer"), "{adopted}");
    assert!(adopted["reference"].as_str().is_some_and(|r| r.ends_with("/default/fnbase:fn-legacy")), "{adopted}");
    assert_eq!(adopted["module"], "handler.py");
    assert_eq!(http.get("/v1/functions/bogus").status, 404, "a config naming another function is not adopted");
    assert_eq!(manifest(&server, "default/fnbase", "fn-bogus").0, 200, "and its tag is left alone");
    let deleted = server.kiln(&["function", "delete", "legacy"]);
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    assert_eq!(manifest(&server, "default/fnbase", "fn-legacy").0, 404);
}
