//! The REST API driven over loopback HTTP against the real binary: life cycles, conflicts,
//! bad input, filters, dependents and atomic definition files.

mod common;

use common::{Server, base_image};
use serde_json::{Value, json};

#[test]
fn base_image_life_cycle() {
    let server = Server::start();
    let http = server.http();
    let created = http.post("/v1/base-images", json!({"name": "py", "dockerUrl": "example.org/py:3", "language": "python3", "tags": [{"key": "team", "value": "a"}]}));
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.headers["location"], "/v1/base-images/py");
    let revision = created.body["revision"].as_u64().expect("revision");
    assert_eq!(created.headers["etag"], format!("\"{revision}\"").as_str());
    assert_eq!(created.body["status"], "INITIALIZED");
    assert_eq!(created.body["reference"], "example.org/py:3");
    assert!(created.body["createdTime"].is_string() && created.body["id"].is_string());

    let fetched = http.get("/v1/base-images/py");
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body, created.body);

    // PUT takes the object exactly as GET returned it.
    let mut edited = fetched.body.clone();
    edited["tags"] = json!([{"key": "team", "value": "b"}]);
    let updated = http.put("/v1/base-images/py", edited);
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert!(updated.body["revision"].as_u64() > Some(revision));
    assert_eq!(updated.body["createdTime"], created.body["createdTime"]);
    assert_eq!(updated.body["id"], created.body["id"]);

    let patched = http.call(
        "PATCH",
        "/v1/base-images/py",
        Some(&json!({"visibility": "public"})),
        &[("content-type", "application/merge-patch+json")],
    );
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.body["visibility"], "public");
    assert_eq!(patched.body["tags"][0]["value"], "b");

    let listed = http.get("/v1/base-images");
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1));

    let deleted = http.delete("/v1/base-images/py");
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(http.get("/v1/base-images/py").status, 404);
    assert_eq!(http.delete("/v1/base-images/py").status, 404);
}

#[test]
fn duplicates_and_stale_revisions_conflict() {
    let server = Server::start();
    let http = server.http();
    let first = http.post("/v1/base-images", base_image("b"));
    assert_eq!(first.status, 201);
    let again = http.post("/v1/base-images", base_image("b"));
    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(again.body["code"], 409);
    assert!(again.body["message"].as_str().unwrap_or("").contains("already exists"));

    let stale = first.body.clone();
    let mut fresh = first.body.clone();
    fresh["language"] = json!("python3.11");
    assert_eq!(http.put("/v1/base-images/b", fresh).status, 200);
    // Same revision again: refused, never a silent overwrite.
    let lost = http.put("/v1/base-images/b", stale.clone());
    assert_eq!(lost.status, 409, "{}", lost.text);
    let mut without_revision = stale.clone();
    without_revision.as_object_mut().map(|o| o.remove("revision"));
    let old_etag = format!("\"{}\"", first.body["revision"]);
    let by_header = http.call("PUT", "/v1/base-images/b", Some(&without_revision), &[("if-match", &old_etag)]);
    assert_eq!(by_header.status, 409, "{}", by_header.text);
    let delete_stale = http.call("DELETE", "/v1/base-images/b", None, &[("if-match", &old_etag)]);
    assert_eq!(delete_stale.status, 409);
    assert_eq!(http.get("/v1/base-images/b").body["language"], "python3.11");
}

#[test]
fn twenty_concurrent_updates_at_one_revision_give_one_success() {
    let server = Server::start();
    let http = server.http();
    assert_eq!(http.post("/v1/base-images", base_image("base")).status, 201);
    let image = http.post("/v1/images", json!({"name": "img", "baseImageName": "base"}));
    assert_eq!(image.status, 201, "{}", image.text);
    let body = image.body.clone();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(20));
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let mut body = body.clone();
            body["environment"] = json!([{"name": "WRITER", "value": i.to_string()}]);
            let base = http.base.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let client = common::admin_client();
                barrier.wait();
                client.put(format!("{base}/v1/images/img")).json(&body).send().map(|r| r.status().as_u16()).unwrap_or(0)
            })
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap_or(0)).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 19, "{statuses:?}");
}

#[test]
fn bad_input_is_refused_with_the_field_named() {
    let server = Server::start();
    let http = server.http();
    let malformed =
        http.raw("POST", "/v1/base-images", "application/json", b"{\"name\": \"x\",\n \"reference\": }".to_vec());
    assert_eq!(malformed.status, 400, "{}", malformed.text);
    assert_eq!(malformed.body["details"][0]["line"], 2);

    let mut unknown = base_image("u");
    unknown["colour"] = json!("red");
    let answer = http.post("/v1/base-images", unknown);
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert!(answer.body["message"].as_str().unwrap_or("").contains("colour"), "{}", answer.text);

    let long = http.post("/v1/base-images", base_image(&"n".repeat(64)));
    assert_eq!(long.status, 422, "{}", long.text);
    assert_eq!(long.body["details"][0]["field"], "name");

    let mut bad_ref = base_image("r");
    bad_ref["reference"] = json!("Not A Reference");
    let answer = http.post("/v1/base-images", bad_ref);
    assert_eq!(
        (answer.status, answer.body["details"][0]["field"].as_str()),
        (422, Some("reference")),
        "{}",
        answer.text
    );

    let wrong_type = http.post("/v1/images", json!({"name": "i", "baseImageName": "b", "extendable": "yes"}));
    assert_eq!(wrong_type.status, 400);
    assert_eq!(wrong_type.body["details"][0]["field"], "extendable", "{}", wrong_type.text);

    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(10 * 1024 * 1024));
    let answer = http.raw("POST", "/v1/images", "application/json", huge.into_bytes());
    assert_eq!(answer.status, 413, "{}", &answer.text[..answer.text.len().min(200)]);
    assert_eq!(answer.body["code"], 413);

    let yaml = http.raw("POST", "/v1/apply", "application/yaml", b"kind: BaseImage\nname: [unclosed\n".to_vec());
    assert_eq!(yaml.status, 422, "{}", yaml.text);
    assert!(yaml.body["details"][0]["line"].is_number(), "{}", yaml.text);

    let bad_mode = http.raw(
        "POST",
        "/v1/apply?mode=bogus",
        "application/yaml",
        b"kind: Image\nname: x\nbaseImageName: y\n".to_vec(),
    );
    assert_eq!((bad_mode.status, bad_mode.body["code"].as_u64()), (400, Some(400)), "{}", bad_mode.text);
    let bad_path = http.get("/v1/images/%FF");
    assert_eq!((bad_path.status, bad_path.body["code"].as_u64()), (400, Some(400)), "{}", bad_path.text);
    let both = http.raw(
        "POST",
        "/v1/apply",
        "application/yaml",
        b"kind: BaseImage\nname: b\nreference: r.example/b:1\ndockerUrl: r.example/b:2\nlanguage: python3\n".to_vec(),
    );
    assert_eq!((both.status, both.body["details"][0]["field"].as_str()), (422, Some("dockerUrl")), "{}", both.text);

    let bad_query = http.get("/v1/images?status=SLEEPING");
    assert_eq!(bad_query.status, 400);
    assert_eq!(http.get("/v1/images?colour=red").status, 400);
    assert_eq!(http.get("/v1/nothing-here").status, 404);
    assert_eq!(http.call("POST", "/v1/base-images/x", Some(&json!({})), &[]).status, 405);
    // Nothing was stored by any of it.
    assert_eq!(http.get("/v1/base-images").body["items"], json!([]));
    assert_eq!(http.get("/v1/images").body["items"], json!([]));
}

#[test]
fn lists_filter_and_paginate() {
    let server = Server::start();
    let http = server.http();
    for i in 0..7 {
        let mut body = base_image(&format!("b{i}"));
        body["language"] = json!(if i % 2 == 0 { "python3" } else { "nodejs" });
        body["tags"] = json!([{"key": "group", "value": if i < 3 { "one" } else { "two" }}]);
        assert_eq!(http.post("/v1/base-images", body).status, 201);
    }
    let names = |answer: &common::Answer| -> Vec<String> {
        answer.body["items"]
            .as_array()
            .map(|a| a.iter().filter_map(|o| o["name"].as_str().map(String::from)).collect())
            .unwrap_or_default()
    };
    assert_eq!(names(&http.get("/v1/base-images?language=nodejs")), ["b1", "b3", "b5"]);
    assert_eq!(names(&http.get("/v1/base-images?tag=group=one&language=python3")), ["b0", "b2"]);
    assert_eq!(names(&http.get("/v1/base-images?tag=group")).len(), 7);
    assert_eq!(names(&http.get("/v1/base-images?status=READY")).len(), 0);
    let first = http.get("/v1/base-images?limit=3");
    assert_eq!(names(&first), ["b0", "b1", "b2"]);
    let token = first.body["nextPageToken"].as_str().expect("token").to_string();
    let second = http.get(&format!("/v1/base-images?limit=3&pageToken={token}"));
    assert_eq!(names(&second), ["b3", "b4", "b5"]);
    let token = second.body["nextPageToken"].as_str().expect("token").to_string();
    let last = http.get(&format!("/v1/base-images?limit=3&pageToken={token}"));
    assert_eq!(names(&last), ["b6"]);
    assert!(last.body.get("nextPageToken").is_none());
    assert_eq!(http.get("/v1/base-images?limit=0").status, 400);
}

#[test]
fn images_rest_on_base_images_and_extendable_images() {
    let server = Server::start();
    let http = server.http();
    assert_eq!(http.post("/v1/base-images", base_image("root")).status, 201);
    let missing = http.post("/v1/images", json!({"name": "a", "baseImageName": "nope"}));
    assert_eq!(missing.status, 422);
    assert_eq!(missing.body["details"][0]["field"], "baseImageName");
    let wrong_language = http.post("/v1/images", json!({"name": "a", "baseImageName": "root", "language": "nodejs"}));
    assert_eq!(wrong_language.status, 422, "{}", wrong_language.text);

    let mid = http.post("/v1/images", json!({"name": "mid", "baseImageName": "root", "extendable": true}));
    assert_eq!(mid.status, 201, "{}", mid.text);
    assert_eq!(mid.body["language"], "python3");
    let plain = http.post("/v1/images", json!({"name": "plain", "baseImageName": "root"}));
    assert_eq!(plain.status, 201);
    let on_plain = http.post("/v1/images", json!({"name": "x", "baseImageName": "plain"}));
    assert_eq!(on_plain.status, 422, "{}", on_plain.text);
    assert!(on_plain.text.contains("not extendable"));

    let leaf = http.post("/v1/images", json!({"name": "leaf", "baseImageName": "mid"}));
    assert_eq!(leaf.status, 201, "{}", leaf.text);
    assert_eq!(
        (leaf.body["parentImageName"].as_str(), leaf.body["baseImageName"].as_str()),
        (Some("mid"), Some("root"))
    );

    // mid cannot stop being extendable while leaf is built on it.
    let mut not_extendable = http.get("/v1/images/mid").body;
    not_extendable["extendable"] = json!(false);
    assert_eq!(http.put("/v1/images/mid", not_extendable).status, 409);

    let refused = http.delete("/v1/base-images/root");
    assert_eq!(refused.status, 409, "{}", refused.text);
    let listed: Vec<&str> = refused.body["details"]
        .as_array()
        .map(|d| d.iter().filter_map(|x| x["message"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(listed, ["leaf", "mid", "plain"]);
    assert_eq!(
        http.get("/v1/base-images/root").body["status"],
        "INITIALIZED",
        "a refused delete leaves the object as it was"
    );

    let forced = http.delete("/v1/base-images/root?force=true");
    assert_eq!(forced.status, 200, "{}", forced.text);
    let orphan = http.get("/v1/images/leaf");
    assert_eq!(orphan.body["status"], "ERROR");
    assert!(orphan.body["reason"][0].as_str().unwrap_or("").contains("root"), "{}", orphan.text);
}

#[test]
fn image_and_package_updates() {
    let server = Server::start();
    let http = server.http();
    assert_eq!(http.post("/v1/base-images", base_image("base")).status, 201);
    let image = http.post(
        "/v1/images",
        json!({"name": "img", "baseImageName": "base", "version": "1.0",
        "runtimeDependencies": {"packages": [{"name": "requests", "version": ">=2.31"}]}}),
    );
    assert_eq!(image.status, 201, "{}", image.text);
    let mut edited = image.body.clone();
    edited["systemDependencies"] = json!({"packages": [{"name": "libpq5"}]});
    let put = http.put("/v1/images/img", edited);
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.body["systemDependencies"]["packages"][0]["name"], "libpq5");
    let renamed = http.put("/v1/images/img", json!({"name": "other", "baseImageName": "base"}));
    assert_eq!((renamed.status, renamed.body["details"][0]["field"].as_str()), (422, Some("name")), "{}", renamed.text);
    let etag = put.headers["etag"].to_str().unwrap_or_default().to_string();
    let patched = http.call("PATCH", "/v1/images/img", Some(&json!({"version": "1.1"})), &[("if-match", &etag)]);
    assert_eq!((patched.status, patched.body["version"].as_str()), (200, Some("1.1")), "{}", patched.text);
    let stale_patch = http.call("PATCH", "/v1/images/img", Some(&json!({"version": "1.2"})), &[("if-match", &etag)]);
    assert_eq!(stale_patch.status, 409);
    assert_eq!(http.delete("/v1/images/img").status, 200);
    assert_eq!(http.get("/v1/images/img").status, 404);

    let package =
        http.post("/v1/packages", json!({"ecosystem": "pypi", "name": "psycopg2", "license": "LGPL-3.0-or-later"}));
    assert_eq!(package.status, 201);
    let mut denied = package.body.clone();
    denied["decision"] = json!("denied");
    denied["notes"] = json!("use psycopg instead");
    let put = http.put("/v1/packages/pypi/psycopg2", denied);
    assert_eq!((put.status, put.body["decision"].as_str()), (200, Some("denied")), "{}", put.text);
    let patched = http.call("PATCH", "/v1/packages/pypi/psycopg2", Some(&json!({"allowedVersions": ["2.9.9"]})), &[]);
    assert_eq!(patched.body["allowedVersions"], json!(["2.9.9"]));
    assert_eq!(patched.body["notes"], "use psycopg instead");
    assert_eq!(http.get("/v1/packages/cargo/serde").status, 404);
}

#[test]
fn packages_and_sources() {
    let server = Server::start();
    let http = server.http();
    let deb = http.post(
        "/v1/packages",
        json!({"ecosystem": "deb", "name": "libpq5", "allowedVersions": ["15.14-0+deb12u1"], "license": "PostgreSQL"}),
    );
    assert_eq!(deb.status, 201, "{}", deb.text);
    assert_eq!(deb.headers["location"], "/v1/packages/deb/libpq5");
    let pypi = http.post("/v1/packages", json!({"ecosystem": "pypi", "name": "Zope.Interface"}));
    assert_eq!(pypi.body["name"], "zope-interface");
    assert_eq!(http.get("/v1/packages/pypi/zope_interface").status, 200, "PyPI names compare normalized");
    let scoped = http.post("/v1/packages", json!({"ecosystem": "npm", "name": "@types/node", "decision": "denied"}));
    assert_eq!(scoped.status, 201, "{}", scoped.text);
    assert_eq!(http.get("/v1/packages/npm/%40types%2Fnode").body["decision"], "denied");
    assert_eq!(http.post("/v1/packages", json!({"ecosystem": "deb", "name": "libpq5"})).status, 409);
    assert_eq!(http.post("/v1/packages", json!({"ecosystem": "deb", "name": "LibPQ"})).status, 422);
    assert_eq!(http.get("/v1/packages?ecosystem=npm").body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(http.get("/v1/packages?decision=approved").body["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(http.delete("/v1/packages/npm/%40types%2Fnode").status, 200);
    // Ecosystems Kiln cannot build from are refused, not stored and silently ignored.
    let rpm = http.post("/v1/packages", json!({"ecosystem": "rpm", "name": "openssl"}));
    assert_eq!(rpm.status, 422, "{}", rpm.text);
    assert_eq!(rpm.body["details"][0]["field"], "ecosystem", "{}", rpm.text);
    assert!(rpm.text.contains("cannot be built into images yet"), "{}", rpm.text);
    let apk = http
        .post("/v1/package-sources", json!({"name": "alpine", "ecosystem": "apk", "url": "http://apk.example/alpine"}));
    assert_eq!(apk.status, 422, "{}", apk.text);
    assert_eq!(apk.body["details"][0]["field"], "ecosystem", "{}", apk.text);
    assert_eq!(http.get("/v1/package-sources/alpine").status, 404);

    let source = json!({"name": "bookworm", "ecosystem": "deb", "url": "http://deb.example/debian", "suite": "bookworm", "components": ["main"],
        "credentials": {"username": "u", "password": "s3cret"}});
    let created = http.post("/v1/package-sources", source);
    assert_eq!(created.status, 201, "{}", created.text);
    assert!(!created.text.contains("s3cret"));
    assert_eq!(created.body["hasCredentials"], true);
    // Sending back what GET returned keeps the credentials.
    let fetched = http.get("/v1/package-sources/bookworm");
    assert!(!fetched.text.contains("s3cret") && fetched.body.get("credentials").is_none());
    let kept = http.put("/v1/package-sources/bookworm", fetched.body.clone());
    assert_eq!(kept.body["hasCredentials"], true, "{}", kept.text);
    let patched = http.call(
        "PATCH",
        "/v1/package-sources/bookworm",
        Some(&json!({"credentials": null})),
        &[("content-type", "application/merge-patch+json")],
    );
    assert_eq!(patched.body["hasCredentials"], false, "{}", patched.text);
    let mut again = patched.body.clone();
    again["credentials"] = json!({"username": "u", "password": "other"});
    let restored = http.put("/v1/package-sources/bookworm", again);
    assert_eq!(restored.body["hasCredentials"], true);
    let mut cleared = restored.body.clone();
    cleared["credentials"] = Value::Null;
    assert_eq!(http.put("/v1/package-sources/bookworm", cleared).body["hasCredentials"], false);
    let missing_suite =
        http.post("/v1/package-sources", json!({"name": "x", "ecosystem": "deb", "url": "http://h/debian"}));
    assert_eq!(missing_suite.status, 422);
    let bad_url = http.post("/v1/package-sources", json!({"name": "y", "ecosystem": "pypi", "url": "ftp://h/simple"}));
    assert_eq!((bad_url.status, bad_url.body["details"][0]["field"].as_str()), (422, Some("url")));
}

#[test]
fn definition_files_apply_atomically() {
    let server = Server::start();
    let http = server.http();
    let good = "kind: BaseImage\nname: base\nreference: r.example/base:1\nlanguage: python3\n---\nkind: Image\nname: img\nbaseImageName: base\n";
    let applied = http.raw("POST", "/v1/apply", "application/yaml", good.as_bytes().to_vec());
    assert_eq!(applied.status, 201, "{}", applied.text);
    assert_eq!(applied.body["items"][1]["object"]["language"], "python3");

    let half_bad = "kind: BaseImage\nname: other\nreference: r.example/o:1\nlanguage: python3\n---\nkind: Image\nname: img2\nbaseImageName: missing\n";
    let refused = http.raw("POST", "/v1/apply", "application/yaml", half_bad.as_bytes().to_vec());
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert_eq!(refused.body["details"][0]["document"], 1);
    assert_eq!(http.get("/v1/base-images/other").status, 404, "nothing of a refused file is stored");

    // Many images on one stored base image in one file.
    let siblings = "kind: Image\nname: s1\nbaseImageName: base\n---\nkind: Image\nname: s2\nbaseImageName: base\n";
    let applied = http.raw("POST", "/v1/apply", "application/yaml", siblings.as_bytes().to_vec());
    assert_eq!(applied.status, 201, "{}", applied.text);

    let duplicate = http.raw("POST", "/v1/apply", "application/yaml", good.as_bytes().to_vec());
    assert_eq!(duplicate.status, 409, "{}", duplicate.text);

    let update = "kind: Image\nname: img\nbaseImageName: base\nenvironment:\n  - name: MODE\n    value: fast\n";
    let updated = http.raw("POST", "/v1/apply?mode=update", "application/yaml", update.as_bytes().to_vec());
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(http.get("/v1/images/img").body["environment"][0]["value"], "fast");
    let manifest_ref =
        "kind: Image\nname: img3\nbaseImageName: base\nruntimeDependencies:\n  manifest: '@requirements.txt'\n";
    let refused = http.raw("POST", "/v1/apply", "application/yaml", manifest_ref.as_bytes().to_vec());
    assert_eq!(refused.status, 422);
    assert!(refused.text.contains("cannot read local files"), "{}", refused.text);
}

#[test]
fn documents_and_schemas_are_served() {
    let server = Server::start();
    let http = server.http();
    let document = http.get("/v1/openapi.json");
    assert_eq!(document.status, 200);
    assert!(document.body["openapi"].as_str().unwrap_or("").starts_with("3."));
    let printed = std::process::Command::new(common::KILN).arg("openapi").output().expect("kiln openapi");
    let printed: Value = serde_json::from_slice(&printed.stdout).expect("json");
    assert_eq!(printed, document.body, "kiln openapi prints what the server serves");
    let docs = http.client.get(format!("{}/docs/", http.base)).send().expect("docs");
    assert_eq!(docs.status().as_u16(), 200);
    assert!(docs.text().unwrap_or_default().contains("swagger"), "the docs page is the bundled Swagger UI");
    let schemas = http.get("/v1/schemas");
    assert_eq!(schemas.body["items"].as_array().map(Vec::len), Some(5));
    let seed = http.get("/v1/schemas/image-definition");
    assert!(seed.body["properties"]["photon-packages"].is_object(), "{}", seed.text);
    assert_eq!(http.get("/v1/schemas/nope").status, 404);
    assert_eq!(http.get("/healthz").body["status"], "ok");
}

/// Parents and dependents written at the same time: whatever wins, no image may end up on a
/// base image that is gone or whose language no longer matches.
#[test]
fn racing_parent_changes_and_new_images_leave_no_skew() {
    let server = Server::start();
    let http = server.http();
    let race = |a: Box<dyn FnOnce() -> u16 + Send>, b: Box<dyn FnOnce() -> u16 + Send>| {
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let (ba, bb) = (barrier.clone(), barrier);
        let ta = std::thread::spawn(move || {
            ba.wait();
            a()
        });
        let tb = std::thread::spawn(move || {
            bb.wait();
            b()
        });
        (ta.join().unwrap_or(0), tb.join().unwrap_or(0))
    };
    for round in 0..30 {
        let base = format!("lang{round}");
        assert_eq!(http.post("/v1/base-images", base_image(&base)).status, 201);
        let mut changed = http.get(&format!("/v1/base-images/{base}")).body;
        changed["language"] = json!("nodejs");
        let url = http.base.clone();
        let (b1, b2, u1, u2) = (base.clone(), base.clone(), url.clone(), url);
        race(
            Box::new(move || {
                let c = common::admin_client();
                c.put(format!("{u1}/v1/base-images/{b1}"))
                    .json(&changed)
                    .send()
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }),
            Box::new(move || {
                let c = common::admin_client();
                let body = json!({"name": format!("img-{b2}"), "baseImageName": b2});
                c.post(format!("{u2}/v1/images")).json(&body).send().map(|r| r.status().as_u16()).unwrap_or(0)
            }),
        );
        let image = http.get(&format!("/v1/images/img-{base}"));
        if image.status == 200 {
            let base_now = http.get(&format!("/v1/base-images/{base}"));
            assert_eq!(image.body["language"], base_now.body["language"], "round {round}: image and base disagree");
        }

        let doomed = format!("gone{round}");
        assert_eq!(http.post("/v1/base-images", base_image(&doomed)).status, 201);
        let url = http.base.clone();
        let (d1, d2, u1, u2) = (doomed.clone(), doomed.clone(), url.clone(), url);
        race(
            Box::new(move || {
                let c = common::admin_client();
                c.delete(format!("{u1}/v1/base-images/{d1}")).send().map(|r| r.status().as_u16()).unwrap_or(0)
            }),
            Box::new(move || {
                let c = common::admin_client();
                let body = json!({"name": format!("img-{d2}"), "baseImageName": d2});
                c.post(format!("{u2}/v1/images")).json(&body).send().map(|r| r.status().as_u16()).unwrap_or(0)
            }),
        );
        if http.get(&format!("/v1/images/img-{doomed}")).status == 200 {
            assert_eq!(
                http.get(&format!("/v1/base-images/{doomed}")).status,
                200,
                "round {round}: image left on a deleted base"
            );
        }
    }
}

#[test]
fn a_refused_delete_changes_nothing() {
    let server = Server::start();
    let http = server.http();
    let base = http.post("/v1/base-images", base_image("kept"));
    assert_eq!(http.post("/v1/images", json!({"name": "on-kept", "baseImageName": "kept"})).status, 201);
    assert_eq!(http.delete("/v1/base-images/kept").status, 409);
    let after = http.get("/v1/base-images/kept");
    assert_eq!(after.body["revision"], base.body["revision"], "a refused delete must not write");
    assert_eq!(http.put("/v1/base-images/kept", after.body.clone()).status, 200, "{}", after.text);
}

#[test]
fn a_node_image_with_a_broken_package_json_is_refused_on_create() {
    let server = Server::start();
    let http = server.http();
    let mut node = base_image("node");
    node["language"] = json!("nodejs");
    assert_eq!(http.post("/v1/base-images", node).status, 201);
    let answer = http.post(
        "/v1/images",
        json!({"name": "n1", "baseImageName": "node", "runtimeDependencies": {"manifest": "not json"}}),
    );
    assert_eq!(answer.status, 422, "{}", answer.text);
    assert_eq!(answer.body["details"][0]["field"], "runtimeDependencies.manifest");
}

#[test]
fn names_that_differ_only_in_case_are_one_name() {
    let server = Server::start();
    let http = server.http();
    let base = |name: &str| json!({"name": name, "reference": "registry.example/kiln/base:1.0", "language": "python3"});
    assert_eq!(http.post("/v1/base-images", base("Base")).status, 201);
    let twin_base = http.post("/v1/base-images", base("base"));
    assert_eq!(twin_base.status, 409, "{}", twin_base.text);
    assert!(twin_base.text.contains("ignoring case"), "{}", twin_base.text);

    // Both spellings would push to the repository default/casetest.
    assert_eq!(http.post("/v1/images", json!({"name": "CaseTest", "baseImageName": "Base"})).status, 201);
    let twin = http.post("/v1/images", json!({"name": "casetest", "baseImageName": "Base"}));
    assert_eq!(twin.status, 409, "{}", twin.text);
    assert!(twin.text.contains("CaseTest"), "{}", twin.text);
    assert_eq!(http.get("/v1/images/casetest").status, 404, "the refused twin is not stored");

    // Within one file too: the whole file is refused.
    let file = "kind: Image\nname: Twin\nbaseImageName: Base\n---\nkind: Image\nname: twin\nbaseImageName: Base\n";
    let refused = http.raw("POST", "/v1/apply", "application/yaml", file.as_bytes().to_vec());
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(http.get("/v1/images/Twin").status, 404, "nothing of a refused file is stored");

    // Deleting releases the name for any spelling.
    assert_eq!(http.call("DELETE", "/v1/images/CaseTest", None, &[]).status, 200);
    assert_eq!(http.post("/v1/images", json!({"name": "casetest", "baseImageName": "Base"})).status, 201);
}
