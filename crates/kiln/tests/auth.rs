//! Tokens and permissions on every route: what an anonymous caller, a bad token and the
//! first administrator get.

mod common;

use common::{Server, base_image};
use serde_json::json;

#[test]
fn every_api_route_needs_a_valid_token() {
    let server = Server::start();
    let anonymous = server.http_as(None);
    let answer = anonymous.get("/v1/images");
    assert_eq!(answer.status, 401, "{}", answer.text);
    assert!(answer.headers.get("www-authenticate").is_some_and(|v| v.to_str().unwrap_or("").starts_with("Bearer")));
    assert_eq!(anonymous.post("/v1/base-images", base_image("x")).status, 401);
    let wrong = server.http_as(Some("kiln_not-a-real-token-at-all"));
    let answer = wrong.get("/v1/images");
    assert_eq!(answer.status, 401);
    assert!(!answer.text.contains("kiln_not-a-real-token"), "errors never echo the token");
    // Health, the API document and the schemas stay public.
    assert_eq!(anonymous.get("/healthz").status, 200);
    assert_eq!(anonymous.get("/v1/openapi.json").status, 200);
    assert_eq!(anonymous.get("/v1/schemas/image").status, 200);
    let me = server.http().get("/v1/whoami");
    assert_eq!(me.body["subject"], "admin");
    assert!(me.body["permissions"].as_array().is_some_and(|p| p.iter().any(|x| x == "*:*")), "{}", me.text);
}

#[test]
fn the_first_start_prints_a_generated_token_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let start = || {
        Server::start_with(&data, |command| {
            command.env_remove("KILN_ADMIN_TOKEN");
        })
    };
    let (first, lines) = start();
    let token_line = lines.iter().find(|l| l.contains("token is shown this once")).expect("token printed");
    let token = token_line.trim().rsplit(' ').next().expect("token").to_string();
    assert!(token.starts_with("kiln_") && token.len() > 40, "{token}");
    assert_eq!(first.http_as(Some(&token)).get("/v1/whoami").body["subject"], "admin");
    drop(first);
    let store = std::fs::read(data.join("kiln.redb")).expect("store file");
    assert!(!store.windows(token.len()).any(|w| w == token.as_bytes()), "the store holds only the token's hash");
    let (_second, lines) = start();
    assert!(!lines.iter().any(|l| l.contains("token")), "printed again: {lines:?}");
}

/// The token a first start (or a reset) printed on one of `lines`.
fn printed_token(lines: &[String]) -> Option<String> {
    lines.iter().find(|l| l.contains("shown this once")).and_then(|l| l.trim().rsplit(' ').next()).map(str::to_string)
}

fn reset_token(data: &std::path::Path, given: Option<&str>) -> std::process::Output {
    let mut command = std::process::Command::new(common::KILN);
    command.args(["admin", "reset-token", "--data-dir"]).arg(data).env_remove("KILN_ADMIN_TOKEN");
    if let Some(token) = given {
        command.env("KILN_ADMIN_TOKEN", token);
    }
    command.output().expect("run kiln admin reset-token")
}

#[test]
fn a_start_that_cannot_listen_keeps_the_token_for_the_next() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("address").port();
    let failed = std::process::Command::new(common::KILN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(&data)
        .env_remove("KILN_ADMIN_TOKEN")
        .env("KILN_LOG", "warn")
        .env("KILN_CONTROLLER", "false")
        .output()
        .expect("run kiln serve");
    let (out, err) = (common::stdout(&failed), common::stderr(&failed));
    assert!(!failed.status.success(), "started on a busy port: {out}");
    assert!(err.contains("cannot listen") && err.contains(&port.to_string()), "{err}");
    assert!(!out.contains("token"), "a start that failed printed a token: {out}");
    drop(busy);

    let (server, lines) = Server::start_with(&data, |command| {
        command.env_remove("KILN_ADMIN_TOKEN");
    });
    let token = printed_token(&lines).unwrap_or_else(|| panic!("the next start printed no token: {lines:?}"));
    assert_eq!(server.http_as(Some(&token)).get("/v1/whoami").body["subject"], "admin");
}

#[test]
fn reset_token_gives_a_locked_out_administrator_a_way_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let start = || {
        Server::start_with(&data, |command| {
            command.env_remove("KILN_ADMIN_TOKEN");
        })
    };
    let (mut server, lines) = start();
    let old = printed_token(&lines).expect("first start prints a token");
    let second = server.http_as(Some(&old)).post("/v1/tokens", json!({"description": "another of admin's"}));
    assert_eq!(second.status, 201, "{}", second.text);
    let second = second.body["token"].as_str().expect("secret").to_string();

    let refused = reset_token(&data, None);
    assert!(!refused.status.success(), "reset while a server runs: {}", common::stdout(&refused));
    let err = common::stderr(&refused);
    assert!(err.contains("a kiln server is using") && err.contains("stop it"), "{err}");
    assert!(!common::stdout(&refused).contains("kiln_"), "no token is printed when refused");
    assert_eq!(server.http_as(Some(&old)).get("/v1/whoami").status, 200, "a refused reset changes nothing");
    assert!(server.terminate().is_some_and(|s| s.success()), "the server stops on SIGTERM");

    let reset = reset_token(&data, None);
    let out = common::stdout(&reset);
    assert!(reset.status.success(), "{out}\n{}", common::stderr(&reset));
    let printed: Vec<String> = out.lines().map(str::to_string).collect();
    let new = printed_token(&printed).unwrap_or_else(|| panic!("no token printed: {out}"));
    assert!(new.starts_with("kiln_") && new != old, "{out}");
    let (server, lines) = start();
    assert!(!lines.iter().any(|l| l.contains("token")), "a restart prints no token: {lines:?}");
    assert_eq!(server.http_as(Some(&new)).get("/v1/whoami").body["subject"], "admin");
    for lost in [&old, &second] {
        let answer = server.http_as(Some(lost)).get("/v1/whoami");
        assert_eq!(answer.status, 401, "an earlier token of admin still works: {}", answer.text);
    }
    let audit = server.http_as(Some(&new)).get("/v1/audit?subject=admin").text;
    assert!(audit.contains("reset-token"), "the reset is in the audit log: {audit}");
    drop(server);

    // KILN_ADMIN_TOKEN chooses the new token, as at first start; it is not echoed.
    let chosen = "kiln-chosen-admin-token-after-reset";
    let reset = reset_token(&data, Some(chosen));
    assert!(reset.status.success(), "{}", common::stderr(&reset));
    assert!(!common::stdout(&reset).contains(chosen), "{}", common::stdout(&reset));
    let (server, _) = start();
    assert_eq!(server.http_as(Some(chosen)).get("/v1/whoami").status, 200);
    assert_eq!(server.http_as(Some(&new)).get("/v1/whoami").status, 401);

    let nowhere = reset_token(&dir.path().join("typo"), None);
    assert!(!nowhere.status.success() && common::stderr(&nowhere).contains("--data-dir"), "{:?}", nowhere);
    assert!(!dir.path().join("typo").exists(), "a mistyped directory is not created");
}

/// Creates a user bound to `role` in `org` and returns a fresh token of theirs.
fn subject_with_role(admin: &common::Http, name: &str, role: &str, org: &str) -> String {
    assert_eq!(admin.post("/v1/users", json!({"name": name})).status, 201);
    let bound = admin.post("/v1/role-bindings", json!({"subject": name, "role": role, "organization": org}));
    assert_eq!(bound.status, 201, "{}", bound.text);
    let token = admin.post("/v1/tokens", json!({"subject": name, "description": "matrix"}));
    assert_eq!(token.status, 201, "{}", token.text);
    token.body["token"].as_str().expect("secret").to_string()
}

fn call(server: &Server, token: Option<&str>, org: &str, method: &str, path: &str) -> common::Answer {
    let http = server.http_as(token);
    http.call(method, path, Some(&json!({})), &[("x-kiln-org", org)])
}

/// The permission matrix, derived from the OpenAPI document: for every operation and every
/// kind of caller, the status class the permission model demands.
#[test]
fn permission_matrix_follows_the_document() {
    let server = Server::start();
    let admin = server.http();
    for org in ["acme", "other"] {
        assert_eq!(admin.post("/v1/organizations", json!({"name": org})).status, 201);
    }
    let callers = [
        ("admin", subject_with_role(&admin, "org-admin", "admin", "acme")),
        ("developer-lead", subject_with_role(&admin, "lead", "developer-lead", "acme")),
        ("function-developer", subject_with_role(&admin, "dev", "function-developer", "acme")),
        ("outsider", subject_with_role(&admin, "outsider", "admin", "other")),
    ];
    let revoked = subject_with_role(&admin, "gone", "admin", "acme");
    let id = admin.get("/v1/tokens?subject=gone").body["items"][0]["id"].as_str().expect("id").to_string();
    assert_eq!(admin.delete(&format!("/v1/tokens/{id}")).status, 200);
    // The API cannot make a token that has already expired: stop the server, put one in
    // the store directly, and serve the same data again.
    let _ = subject_with_role(&admin, "late", "admin", "acme");
    let mut stopped = server;
    assert!(stopped.terminate().is_some_and(|s| s.success()), "kiln stops on SIGTERM");
    let expired = "kiln_expired-token-of-the-matrix-test";
    {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let store = kiln_store::EmbeddedStore::open(&stopped.data_dir.join("kiln.redb")).expect("open the store");
        let past = chrono::Utc::now() - chrono::Duration::hours(1);
        let token = kiln_server::auth::tokens::new_token(expired, "late", None, Some(past));
        let key = kiln_store::records::key::<kiln_model::auth::Token>(kiln_store::records::GLOBAL, &token.id);
        let value = kiln_store::records::encode(&token).expect("encode");
        runtime
            .block_on(kiln_store::KvStore::put(&store, &key, value, kiln_store::Precondition::Absent))
            .expect("store the token");
        store.close();
    }
    let server = Server::start_in(&stopped.data_dir);
    let admin = server.http();

    let roles = admin.get("/v1/roles").body;
    let grants = |role: &str, wanted: &str| -> bool {
        let (resource, action) = wanted.split_once(':').expect("permission");
        roles["items"].as_array().expect("roles").iter().filter(|r| r["name"] == role).any(|r| {
            r["permissions"].as_array().expect("permissions").iter().filter_map(|p| p.as_str()).any(|p| {
                let (r, a) = p.split_once(':').unwrap_or(("", ""));
                (r == "*" || r == resource) && (a == "*" || a == action)
            })
        })
    };
    let tenant = ["base-images", "images", "packages", "package-sources"];
    let document = admin.get("/v1/openapi.json").body;
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().expect("paths") {
        let concrete =
            path.replace("{name}", "matrix-probe").replace("{ecosystem}", "deb").replace("{id}", "matrix-probe");
        for (method, operation) in item.as_object().expect("item") {
            let method = method.to_uppercase();
            let security = &operation["security"][0];
            let required = security["bearer"][0].as_str();
            let public = security.as_object().is_some_and(|o| o.is_empty());
            let anonymous = call(&server, None, "acme", &method, &concrete);
            if public {
                assert_ne!(anonymous.status, 401, "{method} {path} is public");
                continue;
            }
            assert_eq!(anonymous.status, 401, "{method} {path} without a token");
            assert_eq!(
                call(&server, Some("kiln_nonsense"), "acme", &method, &concrete).status,
                401,
                "{method} {path} bad token"
            );
            assert_eq!(
                call(&server, Some(&revoked), "acme", &method, &concrete).status,
                401,
                "{method} {path} revoked token"
            );
            for (role, token) in &callers {
                let answer = call(&server, Some(token), "acme", &method, &concrete);
                let Some(wanted) = required else {
                    assert!(
                        answer.status != 401,
                        "{method} {path} as {role}: any valid token will do: {}",
                        answer.text
                    );
                    continue;
                };
                let effective_role = if *role == "outsider" { "none" } else { role };
                let (resource, action) = wanted.split_once(':').unwrap_or(("", ""));
                // Changing users, roles or organisations, or maintaining the registry,
                // needs a binding in every organisation; all callers here are bound in one.
                let spans_organisations =
                    ["users", "roles", "organizations", "registry"].contains(&resource) && action == "write";
                let granted = grants(effective_role, wanted) && !spans_organisations;
                if granted || (tenant.contains(&resource) && action == "read") {
                    assert!(
                        ![401, 403].contains(&answer.status),
                        "{method} {path} as {role}: {} {}",
                        answer.status,
                        answer.text
                    );
                } else {
                    assert_eq!(answer.status, 403, "{method} {path} as {role} needs {wanted}: {}", answer.text);
                    assert!(answer.text.contains(wanted), "403 names the missing permission: {}", answer.text);
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} checks");
}

#[test]
fn organisations_keep_their_objects_apart() {
    let server = Server::start();
    let admin = server.http();
    for org in ["acme", "other"] {
        assert_eq!(admin.post("/v1/organizations", json!({"name": org})).status, 201);
    }
    let acme = subject_with_role(&admin, "alice", "developer-lead", "acme");
    let other = subject_with_role(&admin, "bob", "developer-lead", "other");
    let as_org = |token: &str, org: &str, method: &str, path: &str, body: Option<serde_json::Value>| {
        server.http_as(Some(token)).call(method, path, body.as_ref(), &[("x-kiln-org", org)])
    };
    let mut private = base_image("secret-base");
    private["visibility"] = json!("private");
    assert_eq!(admin.call("POST", "/v1/base-images", Some(&private), &[("x-kiln-org", "acme")]).status, 201);
    let mut shared = base_image("shared-base");
    shared["visibility"] = json!("public");
    assert_eq!(admin.call("POST", "/v1/base-images", Some(&shared), &[("x-kiln-org", "acme")]).status, 201);
    // The same name may exist in another organisation.
    assert_eq!(admin.call("POST", "/v1/base-images", Some(&private), &[("x-kiln-org", "other")]).status, 201);

    assert_eq!(as_org(&acme, "acme", "GET", "/v1/base-images/secret-base", None).status, 200);
    let hidden = as_org(&other, "acme", "GET", "/v1/base-images/secret-base", None);
    let missing = as_org(&other, "acme", "GET", "/v1/base-images/never-existed", None);
    assert_eq!((hidden.status, missing.status), (404, 404), "a private object looks like a missing one");
    assert_eq!(
        hidden.body["message"].as_str().map(|m| m.replace("secret-base", "X")),
        missing.body["message"].as_str().map(|m| m.replace("never-existed", "X"))
    );
    assert_eq!(
        as_org(&other, "acme", "GET", "/v1/base-images/shared-base", None).status,
        200,
        "public objects are readable by all"
    );
    let listed = as_org(&other, "acme", "GET", "/v1/base-images", None);
    let names: Vec<&str> = listed.body["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|o| o["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["shared-base"]);
    let write =
        as_org(&other, "acme", "POST", "/v1/images", Some(json!({"name": "x", "baseImageName": "shared-base"})));
    assert_eq!(write.status, 403, "{}", write.text);
    // Each sees its own organisation's object of the shared name.
    assert_eq!(as_org(&other, "other", "GET", "/v1/base-images/secret-base", None).body["organization"], "other");
}

#[test]
fn images_build_on_public_parents_of_other_organisations() {
    let server = Server::start();
    let admin = server.http();
    for org in ["acme", "other"] {
        assert_eq!(admin.post("/v1/organizations", json!({"name": org})).status, 201);
    }
    let bob = server.http_as(Some(&subject_with_role(&admin, "bob", "developer-lead", "other")));
    let in_org = |org: &'static str| [("x-kiln-org", org)];
    let in_acme =
        |method: &str, path: &str, body: serde_json::Value| admin.call(method, path, Some(&body), &in_org("acme"));
    let mut shared = base_image("shared-base");
    shared["visibility"] = json!("public");
    assert_eq!(in_acme("POST", "/v1/base-images", shared.clone()).status, 201);
    assert_eq!(in_acme("POST", "/v1/base-images", base_image("secret-base")).status, 201);
    let runtime =
        json!({"name": "runtime", "baseImageName": "shared-base", "extendable": true, "visibility": "public"});
    assert_eq!(in_acme("POST", "/v1/images", runtime).status, 201);

    let create = |name: &str, field: &str, parent: &str| {
        bob.call("POST", "/v1/images", Some(&json!({"name": name, field: parent})), &in_org("other"))
    };
    let app = create("app", "baseImageName", "acme/shared-base");
    assert_eq!(app.status, 201, "{}", app.text);
    assert_eq!(
        (app.body["baseImageName"].as_str(), app.body["language"].as_str()),
        (Some("acme/shared-base"), Some("python3"))
    );
    let layered = create("layered", "parentImageName", "acme/runtime");
    assert_eq!(layered.status, 201, "{}", layered.text);
    assert_eq!(layered.body["baseImageName"], "acme/shared-base", "the root is named from the image's organisation");
    let hidden = create("x", "baseImageName", "acme/secret-base");
    let missing = create("x", "baseImageName", "acme/never-existed");
    assert_eq!((hidden.status, missing.status), (422, 422));
    assert_eq!(
        hidden.body["message"].as_str().map(|m| m.replace("secret-base", "X")),
        missing.body["message"].as_str().map(|m| m.replace("never-existed", "X")),
        "a private parent looks like a missing one"
    );
    assert_eq!(create("x", "baseImageName", "a/b/c").status, 422);

    // The owner cannot pull the ground from under another organisation by accident, and
    // learns only how many of its images stand there, not their names.
    let refused = admin.call("DELETE", "/v1/base-images/shared-base", None, &in_org("acme"));
    assert_eq!(refused.status, 409, "{}", refused.text);
    let message = refused.body["message"].as_str().unwrap_or_default();
    assert!(message.contains("runtime") && message.contains("2 image(s) of other organisations"), "{message}");
    assert!(!message.contains("app") && !message.contains("layered"), "{message}");
    shared["visibility"] = json!("private");
    assert_eq!(in_acme("PUT", "/v1/base-images/shared-base", shared).status, 409, "must stay public");
    let forced = admin.call("DELETE", "/v1/base-images/shared-base?force=true", None, &in_org("acme"));
    assert_eq!(forced.status, 200, "{}", forced.text);
    let app = bob.call("GET", "/v1/images/app", None, &in_org("other"));
    assert_eq!(app.body["status"], "ERROR", "{}", app.text);
}

#[test]
fn binding_changes_take_effect_at_once() {
    let server = Server::start();
    let admin = server.http();
    assert_eq!(admin.post("/v1/base-images", base_image("base")).status, 201);
    let dev = subject_with_role(&admin, "carol", "function-developer", "default");
    let as_dev = server.http_as(Some(&dev));
    let image = json!({"name": "img", "baseImageName": "base"});
    assert_eq!(as_dev.post("/v1/images", image.clone()).status, 403);
    assert_eq!(
        admin
            .post("/v1/role-bindings", json!({"subject": "carol", "role": "developer-lead", "organization": "default"}))
            .status,
        201
    );
    assert_eq!(as_dev.post("/v1/images", image.clone()).status, 201);
    assert_eq!(admin.delete("/v1/role-bindings/carol.default.developer-lead").status, 200);
    assert_eq!(as_dev.delete("/v1/images/img").status, 403);
    // A custom role works the same way.
    assert_eq!(admin.post("/v1/roles", json!({"name": "image-janitor", "permissions": ["images:write"]})).status, 201);
    assert_eq!(admin.post("/v1/roles", json!({"name": "admin", "permissions": ["images:read"]})).status, 409);
    assert_eq!(
        admin
            .post("/v1/role-bindings", json!({"subject": "carol", "role": "image-janitor", "organization": "*"}))
            .status,
        201
    );
    assert_eq!(as_dev.delete("/v1/images/img").status, 200);
    // A disabled subject's tokens stop working.
    let mut carol = admin.get("/v1/users/carol").body;
    carol["disabled"] = json!(true);
    assert_eq!(admin.put("/v1/users/carol", carol).status, 200);
    assert_eq!(as_dev.get("/v1/images").status, 401);
}

#[test]
fn guessing_tokens_is_rate_limited() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, _) = Server::start_with(&dir.path().join("data"), |command| {
        command.env("KILN_AUTH_FAILURES_PER_MINUTE", "5");
    });
    let statuses: Vec<u16> =
        (0..7).map(|i| server.http_as(Some(&format!("guess-{i}"))).get("/v1/images").status).collect();
    let limited = server.http().get("/v1/images");
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert_eq!(&statuses[5..], &[429, 429], "{statuses:?}");
    assert_eq!(limited.status, 429, "even a good token waits out the window from a blocked address");
    assert!(limited.headers.get("retry-after").is_some());
}

#[test]
fn every_mutation_is_audited_and_no_token_is_written_anywhere() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("kiln.log");
    let log_file = std::fs::File::create(&log).expect("log file");
    let (server, _) = Server::start_with(&dir.path().join("data"), |command| {
        command.env("KILN_LOG", "debug").stderr(log_file);
    });
    let admin = server.http();
    assert_eq!(admin.post("/v1/base-images", base_image("audited")).status, 201);
    assert_eq!(admin.post("/v1/users", json!({"name": "dave"})).status, 201);
    assert_eq!(
        admin
            .post(
                "/v1/role-bindings",
                json!({"subject": "dave", "role": "function-developer", "organization": "default"})
            )
            .status,
        201
    );
    let created = admin.post("/v1/tokens", json!({"subject": "dave"}));
    let dave_token = created.body["token"].as_str().expect("secret").to_string();
    let dave = server.http_as(Some(&dave_token));
    assert_eq!(dave.delete("/v1/base-images/audited").status, 403);
    assert_eq!(dave.get("/v1/base-images/audited").status, 200);
    let anonymous = server.http_as(None);
    assert_eq!(anonymous.post("/v1/images", json!({})).status, 401);
    assert_eq!(dave.get("/v1/audit").status, 403, "function developers cannot read the audit log");

    let audit = admin.get("/v1/audit?limit=1000");
    assert_eq!(audit.status, 200, "{}", audit.text);
    let entries = audit.body["items"].as_array().expect("items").clone();
    let find = |subject: &str, method: &str, path: &str| {
        entries.iter().find(|e| e["subject"] == subject && e["method"] == method && e["path"] == path).cloned()
    };
    let created_entry = find("admin", "POST", "/v1/base-images").expect("the create is audited");
    assert_eq!(created_entry["status"], 201);
    assert_eq!(created_entry["committed"], true, "the entry was stored with the change: {created_entry}");
    assert!(created_entry["source"].as_str().is_some_and(|s| s.starts_with("127.")), "{created_entry}");
    let refused = find("dave", "DELETE", "/v1/base-images/audited").expect("refused delete audited");
    assert_eq!((refused["status"].as_u64(), refused["committed"].as_bool()), (Some(403), Some(false)));
    assert_eq!(find("anonymous", "POST", "/v1/images").expect("anonymous attempt audited")["status"], 401);
    assert!(find("dave", "GET", "/v1/base-images/audited").is_none(), "reads are not mutations");
    let filtered = admin.get("/v1/audit?subject=dave&status=403");
    assert_eq!(filtered.body["items"].as_array().map(Vec::len), Some(1), "{}", filtered.text);
    assert_eq!(admin.get("/v1/audit?since=yesterday").status, 400);

    drop(server);
    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(logged.contains("kiln is serving"), "the log was captured");
    for secret in [common::ADMIN_TOKEN, dave_token.as_str()] {
        assert!(!logged.contains(secret), "a token reached the log");
        assert!(!audit.text.contains(secret), "a token reached the audit log");
        let store = std::fs::read(dir.path().join("data").join("kiln.redb")).expect("store");
        assert!(!store.windows(secret.len()).any(|w| w == secret.as_bytes()), "a token reached the store");
    }
}

#[test]
fn an_organisation_admin_cannot_reach_beyond_its_organisation() {
    let server = Server::start();
    let admin = server.http();
    for org in ["acme", "other"] {
        assert_eq!(admin.post("/v1/organizations", json!({"name": org})).status, 201);
    }
    let acme_admin = subject_with_role(&admin, "erin", "admin", "acme");
    let _ = subject_with_role(&admin, "frank", "function-developer", "other");
    let erin = |method: &str, path: &str, body: Option<serde_json::Value>| {
        server.http_as(Some(&acme_admin)).call(method, path, body.as_ref(), &[("x-kiln-org", "acme")])
    };
    let everywhere =
        erin("POST", "/v1/role-bindings", Some(json!({"subject": "erin", "role": "admin", "organization": "*"})));
    assert_eq!(everywhere.status, 403, "{}", everywhere.text);
    assert_eq!(
        erin("POST", "/v1/role-bindings", Some(json!({"subject": "erin", "role": "admin", "organization": "other"})))
            .status,
        403
    );
    let inside = erin(
        "POST",
        "/v1/role-bindings",
        Some(json!({"subject": "frank", "role": "function-developer", "organization": "acme"})),
    );
    assert_eq!(inside.status, 201, "an organisation's admin manages its own bindings: {}", inside.text);
    assert_eq!(erin("POST", "/v1/tokens", Some(json!({"subject": "admin"}))).status, 403, "no tokens for others");
    let mut disabled = admin.get("/v1/users/admin").body;
    disabled["disabled"] = json!(true);
    assert_eq!(erin("PUT", "/v1/users/admin", Some(disabled)).status, 403);
    assert_eq!(erin("DELETE", "/v1/role-bindings/frank.other.function-developer", None).status, 404);
    let orgs = erin("GET", "/v1/organizations", None);
    let names: Vec<&str> = orgs.body["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|o| o["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["acme"], "{}", orgs.text);
    assert_eq!(erin("GET", "/v1/organizations/other", None).status, 404);
    let bindings = erin("GET", "/v1/role-bindings", None);
    assert!(
        bindings.body["items"].as_array().is_some_and(|b| b.iter().all(|x| x["organization"] == "acme")),
        "{}",
        bindings.text
    );
}
