//! A base image built elsewhere, in a private registry: registering it copies it into Kiln's
//! registry and reads what it holds (dpkg packages and a Python distribution added by its
//! own builder), so images built on it install only what is missing, list everything, and
//! keep building after the other registry is gone.

mod common;
#[path = "builds/mirror.rs"]
mod mirror;
#[path = "registry/reference.rs"]
#[allow(dead_code)]
mod reference;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, stderr};
use mirror::{Mirror, apt_config, fixture_dir};
use reference::{Htpasswd, Reference};
use serde_json::{Value, json};

fn run(command: &mut Command) {
    let output = command.output().expect("run a tool");
    assert!(
        output.status.success(),
        "{command:?}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn wait_for(what: &str, mut probe: impl FnMut() -> Option<Value>) -> Value {
    let started = Instant::now();
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(started.elapsed() < Duration::from_secs(300), "{what} did not happen");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Kiln's python3 root image with `six` installed the way another builder would, pushed to
/// `registry` as `foreign/python3:1`.
fn foreign_image(server: &Server, registry: &Reference, auth: &Htpasswd, dir: &Path) {
    let python3 = server.http().get("/v1/base-images/python3").body;
    let reference = python3["reference"].as_str().expect("python3 reference").to_string();
    let layout = dir.join("layout");
    let bundle = dir.join("bundle");
    run(Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false", "--src-creds"])
        .arg(format!("kiln:{}", common::ADMIN_TOKEN))
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}:py", layout.display())));
    run(Command::new("umoci").args(["unpack", "--image"]).arg(format!("{}:py", layout.display())).arg(&bundle));
    let dist_info = bundle.join("rootfs/usr/lib/python3/dist-packages/six-1.16.0.dist-info");
    std::fs::create_dir_all(&dist_info).expect("dist-info dir");
    std::fs::write(dist_info.join("METADATA"), "Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\nLicense: MIT\n\n")
        .expect("METADATA");
    std::fs::write(bundle.join("rootfs/usr/lib/python3/dist-packages/six.py"), "PY3 = True\n").expect("six.py");
    run(Command::new("umoci").args(["repack", "--image"]).arg(format!("{}:py", layout.display())).arg(&bundle));
    let host = registry.base.trim_start_matches("http://");
    run(Command::new("skopeo")
        .args(["copy", "-q", "--dest-tls-verify=false", "--dest-creds"])
        .arg(format!("{}:{}", auth.user, auth.password))
        .arg(format!("oci:{}:py", layout.display()))
        .arg(format!("docker://{host}/foreign/python3:1")));
}

#[test]
fn a_base_image_from_another_registry_is_copied_in_and_read() {
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
    let bootstrap = server.kiln(&["bootstrap", "python3", "--wait"]);
    assert!(bootstrap.status.success(), "{}", stderr(&bootstrap));
    let auth = Htpasswd { realm: "kiln-foreign".into(), user: "puller".into(), password: "pull-secret".into() };
    let registry = Reference::start_with(Some(&auth));
    foreign_image(&server, &registry, &auth, temp.path());
    let host = registry.base.trim_start_matches("http://").to_string();

    let http = server.http();
    let credential = json!({"host": host, "username": auth.user, "password": auth.password, "insecure": true});
    assert_eq!(http.post("/v1/registry-credentials", credential).status, 201);
    let base = json!({"name": "foreign", "reference": format!("{host}/foreign/python3:1"), "language": "python3"});
    assert_eq!(http.post("/v1/base-images", base).status, 201);
    let ready = wait_for("the foreign base image READY", || {
        let base = http.get("/v1/base-images/foreign").body;
        (base["status"] != "INITIALIZED").then_some(base)
    });
    assert_eq!(ready["status"], "READY", "{ready}");

    let packages = wait_for("the foreign base image read", || {
        let answer = http.get("/v1/base-images/foreign/packages");
        (answer.status == 200).then_some(answer.body)
    });
    assert_eq!(packages["digest"], ready["digest"]);
    let items = packages["items"].as_array().expect("items");
    assert!(items.iter().any(|i| i["ecosystem"] == "deb" && i["name"] == "python3"), "{packages}");
    let six = items.iter().find(|i| i["ecosystem"] == "pypi" && i["name"] == "six").expect("six is found");
    assert_eq!(six["version"], "1.16.0");

    let image = json!({"name": "on-foreign", "baseImageName": "foreign",
                       "systemDependencies": {"packages": [{"name": "libpq5"}]}});
    assert_eq!(http.post("/v1/images", image).status, 201);
    let built = wait_for("on-foreign settled", || {
        let image = http.get("/v1/images/on-foreign").body;
        ["READY", "ERROR"].contains(&image["status"].as_str().unwrap_or_default()).then_some(image)
    });
    assert_eq!(built["status"], "READY", "{built}");
    let inventory = http.get("/v1/images/on-foreign/packages").body["items"].to_string();
    for wanted in ["\"libpq5\"", "\"six\"", "\"python3.11\""] {
        assert!(inventory.contains(wanted), "{wanted} not in {inventory}");
    }

    // The other registry goes away; Kiln builds from its own copy.
    drop(registry);
    let rebuild = http.post("/v1/images/on-foreign/rebuild", json!({}));
    assert_eq!(rebuild.status, 202, "{}", rebuild.text);
    let task = rebuild.body["id"].as_str().expect("task id").to_string();
    let ended = wait_for("the rebuild ending", || {
        let task = http.get(&format!("/v1/tasks/{task}")).body;
        ["succeeded", "failed", "cancelled"].contains(&task["state"].as_str().unwrap_or_default()).then_some(task)
    });
    assert_eq!(ended["state"], "succeeded", "{ended}");
}
