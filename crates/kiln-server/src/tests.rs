//! Every operation in the OpenAPI document is routed, and every route is documented.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use super::*;

fn state() -> (tempfile::TempDir, AppState) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = kiln_store::EmbeddedStore::open(&dir.path().join("kiln.redb")).expect("store");
    (dir, AppState::new(Arc::new(store)))
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let (_dir, state) = state();
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
            let request = Request::builder().method(method).uri(&concrete).body(Body::from("{}")).expect("request");
            let response = app.clone().oneshot(request).await.expect("response");
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
    let (_dir, state) = state();
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
async fn restart_finishes_interrupted_deletes() {
    use kiln_model::{BaseImage, Image, Status};
    use kiln_store::Precondition;
    use kiln_store::records::{encode, key};

    let (_dir, state) = state();
    let store = state.store.clone();
    let base = |name: &str, status: Status| {
        let mut b: BaseImage = serde_json::from_value(
            serde_json::json!({"name": name, "reference": "r.example/b:1", "language": "python3"}),
        )
        .expect("base image");
        b.status = status;
        b
    };
    // A delete that crashed after marking: nothing depends on it, so it goes.
    let lonely = base("lonely", Status::Deleting);
    store
        .put(&key::<BaseImage>(DEFAULT_ORG, "lonely"), encode(&lonely).expect("encode"), Precondition::Absent)
        .await
        .expect("put");
    // One whose image appeared before the crash: kept, in ERROR, with the reason.
    let used = base("used", Status::Deleting);
    store
        .put(&key::<BaseImage>(DEFAULT_ORG, "used"), encode(&used).expect("encode"), Precondition::Absent)
        .await
        .expect("put");
    let image: Image =
        serde_json::from_value(serde_json::json!({"name": "img", "baseImageName": "used"})).expect("image");
    store
        .put(&key::<Image>(DEFAULT_ORG, "img"), encode(&image).expect("encode"), Precondition::Absent)
        .await
        .expect("put");
    let untouched = base("fine", Status::Initialized);
    store
        .put(&key::<BaseImage>(DEFAULT_ORG, "fine"), encode(&untouched).expect("encode"), Precondition::Absent)
        .await
        .expect("put");

    assert_eq!(recover(store.clone()).await.expect("recover"), 2);
    assert!(store.get(&key::<BaseImage>(DEFAULT_ORG, "lonely")).await.expect("get").is_none());
    let entry = store.get(&key::<BaseImage>(DEFAULT_ORG, "used")).await.expect("get").expect("kept");
    let kept: BaseImage = kiln_store::records::decode(&entry).expect("decode");
    assert_eq!(kept.status, Status::Error);
    assert!(kept.reason[0].contains("interrupted"));
    assert!(store.get(&key::<BaseImage>(DEFAULT_ORG, "fine")).await.expect("get").is_some());
    assert_eq!(recover(store).await.expect("recover again"), 0, "recovery is idempotent");
}
