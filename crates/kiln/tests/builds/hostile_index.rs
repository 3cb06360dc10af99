//! A Python index whose `#sha256=` fragments are paths: the build ends in ERROR naming the
//! bad hash, and a file planted outside the data directory is neither installed nor touched.
//! The parent is a small image pushed into Kiln's own registry (a dpkg status naming python3),
//! so no Debian mirror is needed to reach the Python step.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use sha2::Digest;

use crate::common::{Server, image_settled};
use crate::mirror::{Mirror, tar_with};

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// A wheel `kiln_planted-1.0-py3-none-any.whl` an index could never vouch for.
fn planted_wheel() -> Vec<u8> {
    let metadata = b"Metadata-Version: 2.1\nName: kiln-planted\nVersion: 1.0\n\n";
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    writer.start_file("kiln_planted/__init__.py", options).expect("zip entry");
    writer.write_all(b"PLANTED = True\n").expect("zip data");
    writer.start_file("kiln_planted-1.0.dist-info/METADATA", options).expect("zip entry");
    writer.write_all(metadata).expect("zip data");
    writer.finish().expect("zip").into_inner()
}

/// Pushes `default/pybase:1` into the server's registry: one layer holding a dpkg status that
/// names python3 and libc6, which is all the Python step reads of its parent.
fn push_python_parent(server: &Server) -> String {
    let status = "Package: python3\nStatus: install ok installed\nVersion: 3.11.2-1+b1\nArchitecture: amd64\n\n\
                  Package: python3.11\nStatus: install ok installed\nVersion: 3.11.2-6\nArchitecture: amd64\n\n\
                  Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u10\nArchitecture: amd64\n";
    let tar = tar_with(&[("var/lib/dpkg/status", tar::EntryType::Regular, "", status.as_bytes())]);
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(&tar).expect("gzip");
    let layer = gzip.finish().expect("gzip");
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [digest(&tar)]},
    }))
    .expect("config");
    let http = server.http();
    for blob in [&config, &layer] {
        let pushed = http.raw(
            "POST",
            &format!("/v2/default/pybase/blobs/uploads/?digest={}", digest(blob)),
            "application/octet-stream",
            blob.clone(),
        );
        assert_eq!(pushed.status, 201, "{}", pushed.text);
    }
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(&layer), "size": layer.len()}],
    }))
    .expect("manifest");
    let pushed =
        http.raw("PUT", "/v2/default/pybase/manifests/1", "application/vnd.oci.image.manifest.v1+json", manifest);
    assert_eq!(pushed.status, 201, "{}", pushed.text);
    format!("{}/default/pybase:1", server.url.trim_start_matches("http://"))
}

/// Every file in `dir` with its content's digest and its modification time.
fn snapshot(dir: &Path) -> Vec<(String, String, SystemTime)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| {
            let path = entry.expect("entry").path();
            let modified = std::fs::metadata(&path).and_then(|m| m.modified()).expect("mtime");
            (path.display().to_string(), digest(&std::fs::read(&path).expect("read")), modified)
        })
        .collect();
    out.sort();
    out
}

/// A directory removed when dropped, named in lower case only: Kiln used to lower-case a
/// fragment before using it as a path, so a mixed-case temporary name would hide the hole.
struct Outside(std::path::PathBuf);

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn reason(image: &Value) -> String {
    let lines: Vec<&str> =
        image["reason"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    lines.join("\n")
}

#[test]
fn index_fragments_that_are_paths_are_refused_and_touch_nothing() {
    let temp = tempfile::tempdir().expect("temp dir");
    // Outside the data directory: the file a hostile page points at, dated long ago so a
    // touch would show.
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let outside = Outside(std::env::temp_dir().join(format!("kiln-outside-{}-{nanos}", std::process::id())));
    let outside = outside.0.as_path();
    std::fs::create_dir_all(outside).expect("outside dir");
    let planted = outside.join("planted.whl");
    std::fs::write(&planted, planted_wheel()).expect("planted wheel");
    let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    std::fs::File::options().append(true).open(&planted).and_then(|f| f.set_modified(long_ago)).expect("date it");
    let before = snapshot(outside);

    // Absolute (joining it drops the cache's directory), and climbing out of the cache
    // (`<data>/cache/wheels`) to the temporary directory.
    let absolute = format!("/../..{}", planted.display());
    let climbing = "../../../../climbed.whl".to_string();
    let cases = [("planted", "kiln-planted", &absolute), ("climber", "kiln-climber", &climbing)];
    let index_root = temp.path().join("index");
    std::fs::create_dir_all(index_root.join("files")).expect("files dir");
    for (_, project, fragment) in cases {
        let filename = format!("{}-1.0-py3-none-any.whl", project.replace('-', "_"));
        std::fs::write(index_root.join("files").join(&filename), planted_wheel()).expect("served wheel");
        let dir = index_root.join("simple").join(project);
        std::fs::create_dir_all(&dir).expect("project dir");
        let page = format!("<a href=\"../../files/{filename}#sha256={fragment}\">{filename}</a>\n");
        std::fs::write(dir.join("index.html"), page).expect("project page");
    }
    let index = Mirror::serve(&index_root, 0.0);

    let server = Server::start_with(&temp.path().join("data"), |command| {
        command
            .env("KILN_CONTROLLER", "true")
            .env("KILN_CONTROLLER_RETRY_SECONDS", "1")
            .env("KILN_PYPI_INDEX_URL", format!("{}/simple", index.url));
    })
    .0;
    let http = server.http();
    let reference = push_python_parent(&server);
    let base = http.post("/v1/base-images", json!({"name": "pybase", "reference": reference, "language": "python3"}));
    assert_eq!(base.status, 201, "{}", base.text);
    let started = std::time::Instant::now();
    loop {
        let base = http.get("/v1/base-images/pybase").body;
        if base["status"] == "READY" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the parent never became READY: {base}");
        std::thread::sleep(Duration::from_millis(100));
    }

    for (name, project, _) in cases {
        let manifest = format!("{project}\n");
        let image = json!({"name": name, "baseImageName": "pybase", "runtimeDependencies": {"manifest": manifest}});
        let created = http.post("/v1/images", image);
        assert_eq!(created.status, 201, "{}", created.text);
    }
    let settled: Vec<Value> = cases.iter().map(|(name, _, _)| image_settled(&server, name)).collect();
    let after = snapshot(outside);
    assert_eq!(after, before, "nothing outside the data directory is read as a wheel, touched or written");
    assert!(!temp.path().join("climbed.whl").exists());
    for ((name, project, fragment), image) in cases.iter().zip(&settled) {
        assert_eq!(image["status"], "ERROR", "{name}: {image}");
        let reason = reason(image);
        let filename = format!("{}-1.0-py3-none-any.whl", project.replace('-', "_"));
        for part in [filename.as_str(), &format!("{fragment:?}"), "is not a sha256 hash", "cannot be verified"] {
            assert!(reason.contains(part), "{name}: {part:?} not in {reason}");
        }
    }
    let catalog = http.get("/v2/_catalog?n=1000").body["repositories"].to_string();
    assert!(!catalog.contains("planted") && !catalog.contains("climber"), "failed builds pushed: {catalog}");
}
