//! The controller makes base images real: against a `docker-registry` with htpasswd auth on
//! loopback, a base image becomes READY with the pushed digest, and a wrong password, a
//! missing tag and a dead host each give ERROR with a reason that says so and clears once
//! the problem is fixed.

mod common;
#[path = "registry/reference.rs"]
#[allow(dead_code)]
mod reference;

use std::time::{Duration, Instant};

use common::Server;
use reference::{Htpasswd, Reference};
use serde_json::json;
use sha2::{Digest as _, Sha256};

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Pushes a one-layer linux/amd64 image to `repository:tag`; returns its manifest digest.
fn push_image(registry: &Reference, auth: &Htpasswd, repository: &str, tag: &str) -> String {
    let layer = format!("layer of {repository}:{tag}").into_bytes();
    push_layer(&registry.base, auth, repository, tag, &layer)
}

/// Pushes an image of one `layer` to the registry at `base`; returns its manifest digest.
fn push_layer(base: &str, auth: &Htpasswd, repository: &str, tag: &str, layer: &[u8]) -> String {
    let client = reqwest::blocking::Client::new();
    let config = serde_json::to_vec(
        &json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}),
    )
    .expect("json");
    let layer = layer.to_vec();
    for blob in [&config, &layer] {
        let started = client
            .post(format!("{base}/v2/{repository}/blobs/uploads/"))
            .basic_auth(&auth.user, Some(&auth.password))
            .send()
            .expect("start upload");
        assert_eq!(started.status(), 202);
        let location = started.headers()["location"].to_str().expect("location").to_string();
        let separator = if location.contains('?') { '&' } else { '?' };
        let url = if location.starts_with("http") { location.clone() } else { format!("{base}{location}") };
        let done = client
            .put(format!("{url}{separator}digest={}", digest(blob)))
            .basic_auth(&auth.user, Some(&auth.password))
            .body(blob.to_vec())
            .send()
            .expect("finish upload");
        assert_eq!(done.status(), 201, "{:?}", done.text());
    }
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(&layer), "size": layer.len()}],
    }))
    .expect("json");
    let pushed = client
        .put(format!("{base}/v2/{repository}/manifests/{tag}"))
        .basic_auth(&auth.user, Some(&auth.password))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.clone())
        .send()
        .expect("push manifest");
    assert_eq!(pushed.status(), 201, "{:?}", pushed.text());
    digest(&manifest)
}

/// Polls the base image until `done` holds (bounded), returning it.
fn wait_for(
    http: &common::Http,
    org: &str,
    name: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = http.call("GET", &format!("/v1/base-images/{name}"), None, &[("x-kiln-org", org)]);
        if done(&answer.body) {
            return answer.body;
        }
        assert!(Instant::now() < deadline, "base image {name} never got there: {}", answer.text);
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn base_images_become_ready_or_say_why_not() {
    let auth = Htpasswd {
        realm: "kiln-base-images".to_string(),
        user: "puller".to_string(),
        password: "right-password".to_string(),
    };
    let registry = Reference::start_with(Some(&auth));
    let host = registry.base.trim_start_matches("http://").to_string();
    let pushed = push_image(&registry, &auth, "lib/python", "3.11");

    let dir = tempfile::tempdir().expect("temp dir");
    let (server, _) = Server::start_with(&dir.path().join("data"), |command| {
        command.env("KILN_CONTROLLER", "true").env("KILN_CONTROLLER_RETRY_SECONDS", "1");
    });
    let admin = server.http();
    assert_eq!(admin.post("/v1/organizations", json!({"name": "acme"})).status, 201);
    let in_org = |org: &str, method: &str, path: &str, body: serde_json::Value| {
        admin.call(method, path, Some(&body), &[("x-kiln-org", org)])
    };
    let credential =
        |password: &str| json!({"host": host, "username": auth.user, "password": password, "insecure": true});
    assert_eq!(in_org("default", "POST", "/v1/registry-credentials", credential("right-password")).status, 201);
    assert_eq!(in_org("acme", "POST", "/v1/registry-credentials", credential("wrong-password")).status, 201);
    let shown = in_org("default", "GET", &format!("/v1/registry-credentials/{host}"), json!(null));
    assert!(!shown.text.contains("right-password") && shown.body["hasPassword"] == true, "{}", shown.text);

    let base = |name: &str, reference: String| json!({"name": name, "reference": reference, "language": "python3"});
    let reference = format!("{host}/lib/python:3.11");
    assert_eq!(in_org("default", "POST", "/v1/base-images", base("python", reference.clone())).status, 201);
    assert_eq!(in_org("acme", "POST", "/v1/base-images", base("python", reference.clone())).status, 201);
    let missing_tag = format!("{host}/lib/python:3.12");
    assert_eq!(in_org("default", "POST", "/v1/base-images", base("later", missing_tag)).status, 201);
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        drop(listener);
        format!("127.0.0.1:{port}/lib/python:3.11")
    };
    assert_eq!(in_org("default", "POST", "/v1/base-images", base("gone", dead)).status, 201);

    let ready = wait_for(&admin, "default", "python", |b| b["status"] == "READY");
    assert_eq!(ready["digest"], pushed.as_str(), "{ready}");
    assert_eq!(ready["platform"], "linux/amd64");
    assert!(ready["configDigest"].as_str().is_some_and(|d| d.starts_with("sha256:")), "{ready}");
    assert_eq!(ready["reason"], json!([]));

    let reason = |b: &serde_json::Value| b["reason"][0].as_str().unwrap_or_default().to_string();
    let refused = wait_for(&admin, "acme", "python", |b| b["status"] == "ERROR");
    assert!(reason(&refused).starts_with("unauthorized"), "{refused}");
    assert!(!refused.to_string().contains("wrong-password"), "the password never shows: {refused}");
    let later = wait_for(&admin, "default", "later", |b| b["status"] == "ERROR");
    assert!(reason(&later).starts_with("not found"), "{later}");
    let gone = wait_for(&admin, "default", "gone", |b| b["status"] == "ERROR");
    assert!(reason(&gone).starts_with("network"), "{gone}");

    // Fixing the problem clears the reason: new credentials wake the controller, a pushed
    // tag is found on the next retry.
    let fixed = json!({"host": host, "username": auth.user, "password": "right-password", "insecure": true});
    assert_eq!(in_org("acme", "PUT", &format!("/v1/registry-credentials/{host}"), fixed).status, 200);
    let recovered = wait_for(&admin, "acme", "python", |b| b["status"] == "READY");
    assert_eq!((recovered["digest"].as_str(), recovered["reason"].clone()), (Some(pushed.as_str()), json!([])));
    let pushed_later = push_image(&registry, &auth, "lib/python", "3.12");
    let found = wait_for(&admin, "default", "later", |b| b["status"] == "READY");
    assert_eq!(found["digest"], pushed_later.as_str());
}

#[test]
fn kiln_push_copies_an_image_out_byte_for_byte() {
    let auth =
        Htpasswd { realm: "kiln-push".to_string(), user: "pusher".to_string(), password: "push-password".to_string() };
    let registry = Reference::start_with(Some(&auth));
    let host = registry.base.trim_start_matches("http://").to_string();
    let server = Server::start();
    let client = reqwest::blocking::Client::new();
    let put = |path: String, content_type: &str, body: Vec<u8>| {
        client
            .request(
                if path.contains("/uploads/") { reqwest::Method::POST } else { reqwest::Method::PUT },
                format!("{}{path}", server.url),
            )
            .basic_auth("kiln", Some(common::ADMIN_TOKEN))
            .header("content-type", content_type)
            .body(body)
            .send()
            .expect("request to kiln")
            .status()
    };
    let layer = vec![7u8; 300_000];
    for blob in [b"{}".to_vec(), layer.clone()] {
        let status =
            put(format!("/v2/default/app/blobs/uploads/?digest={}", digest(&blob)), "application/octet-stream", blob);
        assert_eq!(status, 201);
    }
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest(b"{}"), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(&layer), "size": layer.len()}],
    }))
    .expect("json");
    assert_eq!(
        put("/v2/default/app/manifests/1.0".into(), "application/vnd.oci.image.manifest.v1+json", manifest.clone()),
        201
    );

    let admin = server.http();
    let credential = json!({"host": host, "username": auth.user, "password": "wrong", "insecure": true});
    assert_eq!(admin.post("/v1/registry-credentials", credential).status, 201);
    let destination = format!("{host}/team/app:1.0");
    let refused = server.kiln(&["push", "repository", "default/app:1.0", "--to", &destination]);
    assert!(!refused.status.success());
    assert!(common::stderr(&refused).contains("unauthorized"), "{}", common::stderr(&refused));

    let fixed = json!({"host": host, "username": auth.user, "password": auth.password, "insecure": true});
    assert_eq!(admin.put(&format!("/v1/registry-credentials/{host}"), fixed).status, 200);
    let pushed = server.kiln(&["push", "repository", "default/app:1.0", "--to", &destination, "-o", "json"]);
    assert!(pushed.status.success(), "{}", common::stderr(&pushed));
    let report: serde_json::Value = serde_json::from_str(&common::stdout(&pushed)).expect("json report");
    assert_eq!(
        (report["blobsCopied"].as_u64(), report["digest"].as_str()),
        (Some(2), Some(digest(&manifest).as_str()))
    );
    let copied = client
        .get(format!("{}/v2/team/app/manifests/1.0", registry.base))
        .basic_auth(&auth.user, Some(&auth.password))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .expect("pull from the destination");
    assert_eq!(copied.bytes().expect("body").to_vec(), manifest, "the manifest arrives byte for byte");
    let layer_back = client
        .get(format!("{}/v2/team/app/blobs/{}", registry.base, digest(&layer)))
        .basic_auth(&auth.user, Some(&auth.password))
        .send()
        .expect("pull the layer");
    assert_eq!(layer_back.bytes().expect("body").to_vec(), layer);
    let again = server.kiln(&["push", "repository", "default/app:1.0", "--to", &destination, "-o", "json"]);
    let report: serde_json::Value = serde_json::from_str(&common::stdout(&again)).expect("json report");
    assert_eq!((report["blobsCopied"].as_u64(), report["blobsPresent"].as_u64()), (Some(0), Some(2)), "{report}");

    assert_eq!(admin.post("/v1/base-images", common::base_image("base")).status, 201);
    assert_eq!(admin.post("/v1/images", json!({"name": "fn", "baseImageName": "base"})).status, 201);
    let unbuilt = server.kiln(&["push", "image", "fn", "--to", &destination]);
    assert!(common::stderr(&unbuilt).contains("not built yet"), "{}", common::stderr(&unbuilt));
}

#[test]
fn a_registry_with_a_private_ca_is_trusted_only_with_its_certificate() {
    let (registry, certificate) = Reference::start_tls();
    let host = registry.base.trim_start_matches("https://").to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, _) = Server::start_with(&dir.path().join("data"), |command| {
        command.env("KILN_CONTROLLER", "true").env("KILN_CONTROLLER_RETRY_SECONDS", "1");
    });
    let admin = server.http();
    let base = json!({"name": "tls", "reference": format!("{host}/lib/missing:1"), "language": "python3"});
    assert_eq!(admin.post("/v1/base-images", base).status, 201);
    // Without the CA the certificate is refused, which is a network problem to the user.
    let untrusted = wait_for(&admin, "default", "tls", |b| b["status"] == "ERROR");
    let reason = untrusted["reason"][0].as_str().unwrap_or_default().to_string();
    assert!(reason.starts_with("network") && reason.to_lowercase().contains("certificate"), "{reason}");
    // With it, the TLS handshake succeeds and the registry's own answer comes through.
    let credential = json!({"host": host, "caCertificate": certificate});
    assert_eq!(admin.post("/v1/registry-credentials", credential).status, 201);
    let trusted =
        wait_for(&admin, "default", "tls", |b| b["reason"][0].as_str().is_some_and(|r| r.starts_with("not found")));
    assert_eq!(trusted["status"], "ERROR", "{trusted}");
}

/// A gzip tar of raw entries (name, symlink target or `None` for an empty file), written byte
/// for byte as a hostile builder would.
fn raw_layer(entries: &[(&str, Option<&str>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (name, link) in entries {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
            header.set_entry_type(tar::EntryType::Symlink);
        }
        header.set_size(0);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        builder.append(&header, &b""[..]).expect("entry");
    }
    builder.into_inner().and_then(|gz| gz.finish()).expect("layer")
}

/// Layers that would reach outside a root — a whiteout climbing to a host file, a symlink
/// leaving the root — make the base image ERROR naming the entry, whether it was copied from
/// another registry (and then never lands in Kiln's) or pushed into Kiln's own; a canary
/// outside the data directory stays as it was, across a restart too.
#[test]
fn hostile_layers_fail_the_base_image_naming_the_entry() {
    let dir = tempfile::tempdir().expect("temp dir");
    let canary = dir.path().join("outside/victim");
    std::fs::create_dir_all(canary.parent().expect("parent")).expect("canary dir");
    std::fs::write(&canary, "alive").expect("canary");
    let before = std::fs::metadata(&canary).and_then(|m| m.modified()).expect("mtime");
    let climbing = format!("../../../../../../..{}/.wh.victim", canary.parent().expect("parent").display());

    let foreign = Reference::start_with(None);
    let anyone = Htpasswd { realm: String::new(), user: "anyone".into(), password: "x".into() };
    push_layer(&foreign.base, &anyone, "lib/hostile", "1", &raw_layer(&[("ok", None), (&climbing, None)]));
    let data = dir.path().join("data");
    let start = || {
        Server::start_with(&data, |command| {
            // A name of its own, so references to Kiln's registry outlive the port.
            command
                .env("KILN_CONTROLLER", "true")
                .env("KILN_CONTROLLER_RETRY_SECONDS", "1")
                .env("KILN_REGISTRY_HOST", "kiln.internal:5000");
        })
        .0
    };
    let mut server = start();
    let admin = server.http();
    let kiln = Htpasswd { realm: String::new(), user: "kiln".into(), password: common::ADMIN_TOKEN.into() };
    let escape = raw_layer(&[("etc", Some("../../../../../../../etc")), ("etc/.wh.passwd", None)]);
    push_layer(&server.url, &kiln, "default/pushed", "1", &escape);
    let foreign_host = foreign.base.trim_start_matches("http://").to_string();
    let credential = json!({"host": foreign_host, "username": "anyone", "password": "x", "insecure": true});
    assert_eq!(admin.post("/v1/registry-credentials", credential).status, 201);
    let local_host = "kiln.internal:5000";
    for (name, reference) in
        [("copied", format!("{foreign_host}/lib/hostile:1")), ("pushed", format!("{local_host}/default/pushed:1"))]
    {
        let created =
            admin.post("/v1/base-images", json!({"name": name, "reference": reference, "language": "python3"}));
        assert_eq!(created.status, 201, "{}", created.text);
    }
    let reason = |b: &serde_json::Value| b["reason"][0].as_str().unwrap_or_default().to_string();
    let copied = wait_for(&admin, "default", "copied", |b| b["status"] == "ERROR");
    assert!(reason(&copied).contains("unsafe") && reason(&copied).contains(&climbing), "{copied}");
    let pushed = wait_for(&admin, "default", "pushed", |b| b["status"] == "ERROR");
    assert!(reason(&pushed).contains("\"etc\"") && reason(&pushed).contains("outside the root"), "{pushed}");
    // The refused copy never entered Kiln's registry, so no build can republish it.
    let tags = admin.get("/v2/default/base/copied/tags/list");
    assert!(tags.body["tags"].as_array().is_none_or(Vec::is_empty), "{}", tags.text);
    let image = admin.post("/v1/images", json!({"name": "on-hostile", "baseImageName": "pushed"}));
    assert!(image.status == 201 || image.status == 409 || image.status == 422, "{}", image.text);

    server.terminate();
    let server = start();
    let admin = server.http();
    // The restarted controller checks again (every second here) and finds the same.
    std::thread::sleep(Duration::from_secs(3));
    for name in ["copied", "pushed"] {
        let again = admin.get(&format!("/v1/base-images/{name}"));
        assert!(again.body["status"] == "ERROR" && reason(&again.body).contains("unsafe"), "{}", again.text);
    }
    let on = admin.get("/v1/images/on-hostile");
    assert_ne!(on.body["status"], "READY", "{}", on.text);
    assert_eq!(std::fs::read_to_string(&canary).expect("canary"), "alive");
    assert_eq!(std::fs::metadata(&canary).and_then(|m| m.modified()).expect("mtime"), before);
}
