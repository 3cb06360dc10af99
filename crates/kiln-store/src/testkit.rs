//! The store contract as an executable suite, run against every backend so they all
//! behave the same (the embedded one now, etcd when replicas come).

use std::time::Duration;

use crate::kv::{KvStore, Op, Precondition, StoreError, WatchEventKind};

/// Runs every contract check against a fresh store from `open`. Panics on the first
/// deviation, naming it.
pub async fn run_contract<S: KvStore, F: Fn() -> S>(open: F) {
    let store = open();
    revisions_and_preconditions(&store).await;
    transactions_are_atomic(&store).await;
    listing_pages_in_order(&store).await;
    watch_replays_and_follows(&store).await;
    concurrent_writers_conflict(&store).await;
}

async fn revisions_and_preconditions<S: KvStore>(store: &S) {
    let r1 = store.put("c/a", b"1".to_vec(), Precondition::Absent).await.expect("create");
    let err = store.put("c/a", b"2".to_vec(), Precondition::Absent).await.expect_err("second create must conflict");
    assert!(matches!(err, StoreError::Conflict { actual: Some(r), .. } if r == r1), "{err}");
    let r2 = store.put("c/a", b"2".to_vec(), Precondition::Revision(r1)).await.expect("update at current revision");
    assert!(r2 > r1);
    let stale = store.put("c/a", b"3".to_vec(), Precondition::Revision(r1)).await;
    assert!(matches!(stale, Err(StoreError::Conflict { .. })), "stale update must conflict");
    let entry = store.get("c/a").await.expect("get").expect("present");
    assert_eq!(
        (entry.value.as_slice(), entry.create_revision, entry.mod_revision, entry.version),
        (b"2".as_slice(), r1, r2, 2)
    );
    assert!(store.delete("c/a", Precondition::Revision(r1)).await.is_err(), "stale delete must conflict");
    assert!(store.delete("c/a", Precondition::Revision(r2)).await.expect("delete").is_some());
    assert!(store.get("c/a").await.expect("get").is_none());
    assert_eq!(store.delete("c/a", Precondition::Any).await.expect("delete missing"), None);
    assert!(store.revision().await.expect("revision") > r2);
}

async fn transactions_are_atomic<S: KvStore>(store: &S) {
    let r = store.put("t/x", b"x".to_vec(), Precondition::Absent).await.expect("seed");
    let failed = store
        .txn(vec![
            Op::Put { key: "t/y".into(), value: b"y".to_vec(), expect: Precondition::Absent },
            Op::Check { key: "t/x".into(), expect: Precondition::Revision(r + 100) },
        ])
        .await;
    assert!(matches!(failed, Err(StoreError::Conflict { ref key, .. }) if key == "t/x"), "{failed:?}");
    assert!(store.get("t/y").await.expect("get").is_none(), "a failed transaction must write nothing");
    let done = store
        .txn(vec![
            Op::Put { key: "t/y".into(), value: b"y".to_vec(), expect: Precondition::Absent },
            Op::Delete { key: "t/x".into(), expect: Precondition::Revision(r) },
        ])
        .await
        .expect("transaction");
    let y = store.get("t/y").await.expect("get").expect("y written");
    assert_eq!(y.mod_revision, done);
    assert!(store.get("t/x").await.expect("get").is_none());
    let dup = store
        .txn(vec![
            Op::Delete { key: "t/y".into(), expect: Precondition::Any },
            Op::Delete { key: "t/y".into(), expect: Precondition::Any },
        ])
        .await;
    assert!(matches!(dup, Err(StoreError::Invalid(_))), "{dup:?}");
}

async fn listing_pages_in_order<S: KvStore>(store: &S) {
    for i in (0..25).rev() {
        store.put(&format!("l/{i:03}"), vec![i as u8], Precondition::Any).await.expect("put");
    }
    store.put("l0", b"outside".to_vec(), Precondition::Any).await.expect("put");
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store.list("l/", after.as_deref(), 10).await.expect("list");
        pages += 1;
        seen.extend(page.entries.iter().map(|e| e.key.clone()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
        assert!(pages < 10, "listing does not end");
    }
    let expected: Vec<String> = (0..25).map(|i| format!("l/{i:03}")).collect();
    assert_eq!(seen, expected);
    assert_eq!(pages, 3);
}

async fn watch_replays_and_follows<S: KvStore>(store: &S) {
    let start = store.put("w/a", b"1".to_vec(), Precondition::Any).await.expect("put");
    store.put("other/z", b"z".to_vec(), Precondition::Any).await.expect("put");
    let mut watch = store.watch("w/", start).await.expect("watch");
    let first =
        tokio::time::timeout(Duration::from_secs(5), watch.recv()).await.expect("replayed").expect("open").expect("ok");
    assert_eq!((first.kind, first.entry.key.as_str(), first.entry.mod_revision), (WatchEventKind::Put, "w/a", start));
    let deleted = store.delete("w/a", Precondition::Any).await.expect("delete").expect("existed");
    let second = tokio::time::timeout(Duration::from_secs(5), watch.recv())
        .await
        .expect("live event")
        .expect("open")
        .expect("ok");
    assert_eq!((second.kind, second.entry.mod_revision), (WatchEventKind::Delete, deleted));
    let mut from_now = store.watch("w/", 0).await.expect("watch");
    let r = store.put("w/b", b"2".to_vec(), Precondition::Any).await.expect("put");
    let event =
        tokio::time::timeout(Duration::from_secs(5), from_now.recv()).await.expect("event").expect("open").expect("ok");
    assert_eq!(event.entry.mod_revision, r);
}

async fn concurrent_writers_conflict<S: KvStore>(store: &S) {
    let r = store.put("cc/k", b"0".to_vec(), Precondition::Any).await.expect("seed");
    let attempts = (0..20).map(|i| store.put("cc/k", vec![i], Precondition::Revision(r)));
    let results = futures::future::join_all(attempts).await;
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "exactly one writer at a revision may win: {results:?}");
}
