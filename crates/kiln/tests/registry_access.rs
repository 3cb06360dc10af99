//! The registry behind Kiln's tokens and roles, its garbage collector and its refusals of
//! bad input, driven over HTTP against the real binary.

mod common;

use std::time::Duration;

use common::{ADMIN_TOKEN, Server};
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::json;
use sha2::{Digest as _, Sha256};

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

struct Registry {
    base: String,
    client: Client,
    token: Option<String>,
}

impl Registry {
    fn new(server: &Server, token: Option<&str>) -> Registry {
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Registry { base: server.url.clone(), client, token: token.map(str::to_string) }
    }

    fn send(&self, request: RequestBuilder) -> Response {
        let request = match &self.token {
            Some(token) => request.basic_auth("someone", Some(token)),
            None => request,
        };
        request.send().expect("request to kiln")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn push_blob(&self, repository: &str, bytes: &[u8]) -> Response {
        let url = self.url(&format!("/v2/{repository}/blobs/uploads/?digest={}", digest(bytes)));
        self.send(self.client.post(url).body(bytes.to_vec()))
    }

    /// Pushes an image manifest with the empty config and one layer; returns its digest.
    fn push_image(&self, repository: &str, tag: &str, layer: &[u8]) -> String {
        assert_eq!(self.push_blob(repository, b"{}").status(), 201);
        assert_eq!(self.push_blob(repository, layer).status(), 201);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest(b"{}"), "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(layer), "size": layer.len()}],
        });
        let body = serde_json::to_vec(&manifest).expect("json");
        let answer = self.send(
            self.client
                .put(self.url(&format!("/v2/{repository}/manifests/{tag}")))
                .header("content-type", "application/vnd.oci.image.manifest.v1+json")
                .body(body.clone()),
        );
        assert_eq!(answer.status(), 201, "{:?}", answer.text());
        digest(&body)
    }
}

fn error_code(response: Response) -> String {
    let body: serde_json::Value = response.json().expect("error body");
    body["errors"][0]["code"].as_str().unwrap_or_default().to_string()
}

fn token_for(admin: &common::Http, user: &str, role: &str, org: &str) -> String {
    assert_eq!(admin.post("/v1/users", json!({"name": user})).status, 201);
    let bound = admin.post("/v1/role-bindings", json!({"subject": user, "role": role, "organization": org}));
    assert_eq!(bound.status, 201, "{}", bound.text);
    let token = admin.post("/v1/tokens", json!({"subject": user}));
    token.body["token"].as_str().expect("token").to_string()
}

#[test]
fn roles_decide_who_pulls_and_pushes() {
    let server = Server::start();
    let admin = server.http();
    assert_eq!(admin.post("/v1/organizations", json!({"name": "acme"})).status, 201);
    let lead = Registry::new(&server, Some(&token_for(&admin, "lena", "developer-lead", "default")));
    let reader = Registry::new(&server, Some(&token_for(&admin, "fred", "function-developer", "default")));
    let outsider = Registry::new(&server, Some(&token_for(&admin, "otto", "developer-lead", "acme")));
    let anonymous = Registry::new(&server, None);

    let challenge = anonymous.send(anonymous.client.get(anonymous.url("/v2/")));
    assert_eq!(challenge.status(), 401);
    let header = challenge.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(header.starts_with("Bearer realm=\"http://") && header.contains("/v2/token"), "{header}");
    // The Docker token flow: Basic credentials in, a bearer token out, which then works.
    let issued: serde_json::Value =
        lead.send(lead.client.get(lead.url("/v2/token?service=kiln"))).json().expect("json");
    let bearer = issued["token"].as_str().expect("token").to_string();
    let ok = anonymous.client.get(anonymous.url("/v2/")).bearer_auth(&bearer).send().expect("request");
    assert_eq!(ok.status(), 200);
    let wrong = Registry::new(&server, Some("kiln_not-a-token"));
    assert_eq!(wrong.send(wrong.client.get(wrong.url("/v2/"))).status(), 401);

    let manifest = lead.push_image("default/app", "v1", b"layer bytes");
    let pulled = reader.send(reader.client.get(reader.url(&format!("/v2/default/app/manifests/{manifest}"))));
    assert_eq!(pulled.status(), 200, "function developers pull");
    let refused = reader.push_blob("default/app", b"not allowed");
    assert_eq!(refused.status(), 403);
    assert_eq!(error_code(refused), "DENIED");
    let hidden = outsider.send(outsider.client.get(outsider.url("/v2/default/app/tags/list")));
    assert_eq!(hidden.status(), 404, "another organisation's repository looks unknown");
    assert_eq!(error_code(hidden), "NAME_UNKNOWN");
    let catalog: serde_json::Value =
        outsider.send(outsider.client.get(outsider.url("/v2/_catalog"))).json().expect("catalog");
    assert_eq!(catalog["repositories"], json!([]), "the catalog shows only what the caller may pull");
    let anonymous_pull = anonymous.send(anonymous.client.get(anonymous.url("/v2/default/app/manifests/v1")));
    assert_eq!(anonymous_pull.status(), 401);
    assert!(
        anonymous_pull.headers()["www-authenticate"]
            .to_str()
            .unwrap_or_default()
            .contains("repository:default/app:pull")
    );

    // Registry writes are audited like every other mutation.
    let audit = admin.get("/v1/audit?subject=lena&limit=100");
    let paths: Vec<&str> =
        audit.body["items"].as_array().expect("items").iter().filter_map(|e| e["path"].as_str()).collect();
    assert!(paths.contains(&"/v2/default/app/manifests/v1"), "{paths:?}");
}

#[test]
fn garbage_collection_keeps_what_is_referenced_or_in_flight() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, _) = Server::start_with(&dir.path().join("data"), |command| {
        command.env("KILN_REGISTRY_GC_GRACE_SECONDS", "0");
    });
    let admin = server.http();
    let registry = Registry::new(&server, Some(ADMIN_TOKEN));
    let kept_layer = b"referenced layer".to_vec();
    let manifest = registry.push_image("default/gc", "v1", &kept_layer);
    assert_eq!(registry.push_blob("default/gc", b"orphan blob").status(), 201);
    // An upload in flight holds part of a blob that no record announces yet.
    let started = registry.send(registry.client.post(registry.url("/v2/default/gc/blobs/uploads/")));
    assert_eq!(started.status(), 202);
    let location = started.headers()["location"].to_str().expect("location").to_string();
    let patched = registry.send(registry.client.patch(registry.url(&location)).body(b"in flight".to_vec()));
    assert_eq!(patched.status(), 202);

    let report = admin.post("/v1/registry/gc", json!({}));
    assert_eq!(report.status, 200, "{}", report.text);
    assert_eq!(report.body["blobsRemoved"], 1, "only the orphan goes: {}", report.text);
    let orphan =
        registry.send(registry.client.head(registry.url(&format!("/v2/default/gc/blobs/{}", digest(b"orphan blob")))));
    assert_eq!(orphan.status(), 404);
    let kept =
        registry.send(registry.client.get(registry.url(&format!("/v2/default/gc/blobs/{}", digest(&kept_layer)))));
    assert_eq!(kept.bytes().expect("body").to_vec(), kept_layer);

    let deleted = registry.send(registry.client.delete(registry.url(&format!("/v2/default/gc/manifests/{manifest}"))));
    assert_eq!(deleted.status(), 202);
    let report = admin.post("/v1/registry/gc", json!({}));
    assert_eq!(report.body["blobsRemoved"], 2, "the layer and the config follow their manifest: {}", report.text);
    let blob_files = walk(&dir.path().join("data/registry/blobs"));
    assert!(blob_files.is_empty(), "no blob file is left: {blob_files:?}");
    // The upload survived both runs and still completes.
    let finished =
        registry.send(registry.client.put(registry.url(&format!("{location}?digest={}", digest(b"in flight")))));
    assert_eq!(finished.status(), 201);
    let developer = server.http_as(Some(&token_for(&admin, "dora", "developer-lead", "default")));
    assert_eq!(developer.post("/v1/registry/gc", json!({})).status, 403, "collection spans organisations");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn bad_input_is_refused_and_nothing_is_stored() {
    let server = Server::start();
    let registry = Registry::new(&server, Some(ADMIN_TOKEN));
    for name in ["default/../etc", "default/%2e%2e/etc", "Default/app", "default/app/"] {
        let answer = registry.send(registry.client.get(registry.url(&format!("/v2/{name}/tags/list"))));
        assert!([400, 404].contains(&answer.status().as_u16()), "{name}: {}", answer.status());
    }
    let dotted = registry.send(registry.client.get(registry.url("/v2/default/../etc/tags/list")));
    assert_ne!(dotted.status(), 200);

    let wrong = registry.send(
        registry
            .client
            .post(registry.url(&format!("/v2/default/bad/blobs/uploads/?digest={}", digest(b"other"))))
            .body(b"bytes".to_vec()),
    );
    assert_eq!(wrong.status(), 400);
    assert_eq!(error_code(wrong), "DIGEST_INVALID");

    // A chunk longer than its declared range is cut back entirely.
    let started = registry.send(registry.client.post(registry.url("/v2/default/bad/blobs/uploads/")));
    let location = started.headers()["location"].to_str().expect("location").to_string();
    let past = registry.send(
        registry.client.patch(registry.url(&location)).header("content-range", "0-3").body(b"0123456789".to_vec()),
    );
    assert_eq!(past.status(), 416);
    let status = registry.send(registry.client.get(registry.url(&location)));
    assert_eq!(status.headers()["range"], "0-0", "nothing of the refused chunk stayed");

    // A 100 MB manifest is refused without being read whole.
    let huge = vec![b' '; 100 * 1024 * 1024];
    let request = registry
        .client
        .put(registry.url("/v2/default/bad/manifests/huge"))
        .basic_auth("someone", registry.token.as_deref())
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(huge);
    match request.send() {
        Ok(answer) => assert_eq!(answer.status(), 413),
        // Kiln answers 413 from the headers and closes; the client may still be writing the
        // body then and see a broken pipe instead of the answer. Either way it was refused.
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    let stored = registry.send(registry.client.get(registry.url("/v2/default/bad/manifests/huge")));
    assert_eq!(stored.status(), 404, "nothing of the huge manifest was stored");
    let missing = registry.send(
        registry
            .client
            .put(registry.url("/v2/default/bad/manifests/dangling"))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(
                serde_json::to_vec(&json!({
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest(b"{}"), "size": 2},
                    "layers": [],
                }))
                .expect("json"),
            ),
    );
    assert_eq!(missing.status(), 400);
    assert_eq!(error_code(missing), "MANIFEST_BLOB_UNKNOWN");
    let tags = registry.send(registry.client.get(registry.url("/v2/default/bad/tags/list")));
    assert_eq!(tags.status(), 404, "no manifest and no tag was stored, so the repository is unknown");
}

#[test]
fn deleting_an_image_removes_what_only_it_referenced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, _) = Server::start_with(&dir.path().join("data"), |command| {
        command.env("KILN_REGISTRY_GC_GRACE_SECONDS", "0");
    });
    let admin = server.http();
    let registry = Registry::new(&server, Some(ADMIN_TOKEN));
    registry.push_image("default/fn", "1.0", b"only the image's layer");
    registry.push_image("default/other", "1.0", b"another repository's layer");
    assert_eq!(admin.post("/v1/base-images", common::base_image("base")).status, 201);
    assert_eq!(admin.post("/v1/images", json!({"name": "fn", "baseImageName": "base"})).status, 201);

    assert_eq!(admin.delete("/v1/images/fn").status, 200);
    let gone = registry.send(registry.client.get(registry.url("/v2/default/fn/tags/list")));
    assert_eq!(gone.status(), 404, "the image's repository went with it");
    let report = admin.post("/v1/registry/gc", json!({}));
    assert_eq!(report.body["blobsRemoved"], 1, "its layer is freed; the shared empty config stays: {}", report.text);
    let kept = registry.send(registry.client.get(registry.url("/v2/default/other/manifests/1.0")));
    assert_eq!(kept.status(), 200, "another repository is untouched");
}

#[test]
fn abandoned_uploads_expire() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, _) = Server::start_with(&dir.path().join("data"), |command| {
        command.env("KILN_REGISTRY_UPLOAD_TTL_SECONDS", "0");
    });
    let registry = Registry::new(&server, Some(ADMIN_TOKEN));
    let started = registry.send(registry.client.post(registry.url("/v2/default/ttl/blobs/uploads/")));
    let location = started.headers()["location"].to_str().expect("location").to_string();
    assert_eq!(registry.send(registry.client.patch(registry.url(&location)).body(vec![1u8; 1000])).status(), 202);
    let report = server.http().post("/v1/registry/gc", json!({}));
    assert_eq!(report.body["uploadsRemoved"], 1, "{}", report.text);
    let status = registry.send(registry.client.get(registry.url(&location)));
    assert_eq!(status.status(), 404);
    assert_eq!(error_code(status), "BLOB_UPLOAD_UNKNOWN");
    assert!(walk(&dir.path().join("data/registry/uploads")).is_empty(), "the upload's file is gone");
}
