//! Every operation in the OpenAPI document is routed, and every route is documented.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use std::sync::Arc;

use super::*;

const TOKEN: &str = "unit-test-admin-token-000000";

/// A store with the first administrator, whose token is `TOKEN`.
async fn state() -> (tempfile::TempDir, AppState) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = kiln_store::EmbeddedStore::open(&dir.path().join("kiln.redb")).expect("store");
    auth::bootstrap::ensure_admin(&store, Some(TOKEN)).await.expect("administrator");
    (dir, AppState::new(Arc::new(store)))
}

fn request(method: &str, uri: &str, body: Body) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(body)
        .expect("request")
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let (_dir, state) = state().await;
    let app = app(state);
    let document = openapi();
    let mut checked = 0;
    for (path, item) in &document.paths.paths {
        let concrete = path.replace("{name}", "x").replace("{ecosystem}", "deb");
        let operations = [
            ("GET", item.get.is_some()),
            ("POST", item.post.is_some()),
            ("PUT", item.put.is_some()),
            ("PATCH", item.patch.is_some()),
            ("DELETE", item.delete.is_some()),
        ];
        for (method, present) in operations {
            let response = app.clone().oneshot(request(method, &concrete, Body::from("{}"))).await.expect("response");
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
            let routed = status != StatusCode::METHOD_NOT_ALLOWED
                && !String::from_utf8_lossy(&bytes).contains("no such endpoint");
            assert_eq!(routed, present, "{method} {path}: documented={present} but answered {status}");
            checked += usize::from(present);
        }
    }
    assert!(checked >= 28, "only {checked} operations documented");
}

#[tokio::test]
async fn undocumented_routes_are_only_the_docs() {
    let (_dir, state) = state().await;
    let app = app(state);
    for path in UNDOCUMENTED_ROUTES {
        let response =
            app.clone().oneshot(Request::get(path).body(Body::empty()).expect("request")).await.expect("response");
        assert!(response.status().is_success() || response.status().is_redirection(), "{path}: {}", response.status());
        assert!(!openapi().paths.paths.contains_key(path));
    }
}

#[test]
fn operation_ids_are_unique() {
    let document = openapi();
    let mut seen = std::collections::HashSet::new();
    for item in document.paths.paths.values() {
        for operation in [&item.get, &item.post, &item.put, &item.patch, &item.delete].into_iter().flatten() {
            let id = operation.operation_id.clone().unwrap_or_default();
            assert!(seen.insert(id.clone()), "operationId {id:?} is used twice");
        }
    }
}

#[tokio::test]
async fn every_documented_query_parameter_is_accepted() {
    let (_dir, state) = state().await;
    let app = app(state);
    let document = serde_json::to_value(openapi()).expect("document");
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().expect("paths") {
        let Some(parameters) = item["get"]["parameters"].as_array() else { continue };
        for parameter in parameters.iter().filter(|p| p["in"] == "query") {
            let name = parameter["name"].as_str().expect("name");
            let uri = format!("{}?{name}=1", path.replace("{name}", "x").replace("{ecosystem}", "deb"));
            let response = app.clone().oneshot(request("GET", &uri, Body::empty())).await.expect("response");
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
            assert!(
                !String::from_utf8_lossy(&bytes).contains("unknown query parameter"),
                "{uri} is documented but refused"
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} query parameters documented");
}

#[test]
fn every_operation_declares_its_permission() {
    let document = openapi();
    let table = auth::route_table(&document);
    for (path, item) in &document.paths.paths {
        for (method, operation) in [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ] {
            if operation.is_some() {
                let method = axum::http::Method::from_bytes(method.as_bytes()).expect("method");
                assert!(table.get(&method, path).is_some(), "{method} {path} declares no permission in its security");
            }
        }
    }
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    use kiln_store::records::{GLOBAL, encode, key};
    let (_dir, state) = state().await;
    let secret = "an-expired-token-for-the-test";
    let mut token =
        auth::tokens::new_token(secret, "admin", None, Some(chrono::Utc::now() - chrono::Duration::minutes(1)));
    token.revision = None;
    let token_key = key::<kiln_model::auth::Token>(GLOBAL, &token.id);
    let value = encode(&token).expect("encode");
    state.store.put(&token_key, value, kiln_store::Precondition::Absent).await.expect("store the token");
    let app = app(state);
    let request = Request::get("/v1/images")
        .header("authorization", format!("Bearer {secret}"))
        .body(Body::empty())
        .expect("request");
    let response = app.oneshot(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    assert!(String::from_utf8_lossy(&body).contains("expired"));
}

#[tokio::test]
async fn changes_made_outside_this_server_reach_the_permission_cache() {
    use kiln_model::auth::RoleBinding;
    use kiln_store::records::{GLOBAL, key};
    let (_dir, state) = state().await;
    let store = state.store.clone();
    let app = app(state);
    let whoami = || async {
        let response = app.clone().oneshot(request("GET", "/v1/whoami", Body::empty())).await.expect("response");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        serde_json::from_slice::<serde_json::Value>(&body).expect("json")
    };
    assert_eq!(whoami().await["permissions"], serde_json::json!(["*:*"]));
    // Another replica (here: a direct store write) takes the administrator's binding away.
    let binding = RoleBinding {
        subject: "admin".into(),
        role: "admin".into(),
        organization: "*".into(),
        created_time: None,
        revision: None,
    };
    store
        .delete(&key::<RoleBinding>(GLOBAL, &binding.name()), kiln_store::Precondition::Any)
        .await
        .expect("delete binding");
    let mut seen = serde_json::Value::Null;
    for _ in 0..200 {
        seen = whoami().await["permissions"].clone();
        if seen == serde_json::json!([]) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(seen, serde_json::json!([]), "the cache kept a binding that is gone");
}

#[tokio::test]
async fn a_corrupt_package_index_entry_is_an_error_not_an_empty_list() {
    let (_dir, state) = state().await;
    let store = state.store.clone();
    let app = app(state);
    let key = kiln_builder::builds::record::package_index_key("default", "deb", "libpq5", "pg");
    store.put(&key, b"{\"formatVersion\":1,\"data\":7}".to_vec(), kiln_store::Precondition::Any).await.expect("put");
    let response =
        app.oneshot(request("GET", "/v1/packages/deb/libpq5/images", Body::empty())).await.expect("response");
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains(&key), "the error names the entry: {text}");
}
