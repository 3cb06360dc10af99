//! The server starts in process through `start` and stops cleanly: every background loop
//! ends on the shutdown signal and lets go of the store.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_in_process_and_stops_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn kiln_store::KvStore> =
        Arc::new(kiln_store::EmbeddedStore::open(&dir.path().join("kiln.redb")).expect("store"));
    let mut state = AppState::new(store.clone());
    state.blobs = Some(Arc::new(kiln_registry::blobs::FsBlobStore::open(&dir.path().join("registry")).expect("blobs")));
    state.task_settings = Some(kiln_tasks::TaskSettings::new(dir.path().join("scratch"), "test-node".into()));
    state.controller = Some(kiln_builder::controllers::Settings::default());

    let shutdown = CancellationToken::new();
    let (router, background) = start(state, shutdown.clone());
    // The permission cache's follower, the task dispatcher and the engine's stopper, both
    // controllers and the registry's collector.
    assert_eq!(background.len(), 6);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = tokio::spawn(
        axum::serve(listener, service).with_graceful_shutdown(shutdown.clone().cancelled_owned()).into_future(),
    );
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: kiln\r\nconnection: close\r\n\r\n").await.expect("request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("HTTP stops")
        .expect("no panic")
        .expect("served");
    tokio::time::timeout(Duration::from_secs(10), background.stop()).await.expect("every loop ends on the signal");
    // Nothing still running holds the store: the loops are gone, not merely told to stop.
    assert_eq!(Arc::strong_count(&store), 1, "a background loop still holds the store");
}
