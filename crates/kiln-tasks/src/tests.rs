//! The engine against the embedded store: runs, retries, cancels, timeouts, scratch
//! limits and taking back work a dead process held.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use kiln_model::{Task, TaskKind, TaskState};
use kiln_store::{KvStore, Op, Precondition, StoreError, records};

use super::*;

/// Behaves as the test's `mode` says and counts its attempts.
struct Scripted {
    mode: &'static str,
    calls: AtomicU32,
}

#[async_trait]
impl Runner for Scripted {
    async fn run(&self, ctx: &TaskContext) -> Result<serde_json::Value, TaskError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        ctx.step("working", 10);
        ctx.log("hello from the runner");
        tokio::fs::write(ctx.scratch().join("file"), b"scratch")
            .await
            .map_err(|e| TaskError::transient(e.to_string()))?;
        match self.mode {
            "flaky" if call == 0 => Err(TaskError::transient("network hiccup")),
            "broken" => Err(TaskError::permanent("package x is unknown")),
            "slow" => {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(serde_json::json!({}))
            }
            "greedy" => {
                ctx.reserve_scratch(u64::MAX / 2)?;
                Ok(serde_json::json!({}))
            }
            _ => Ok(serde_json::json!({"call": call})),
        }
    }

    async fn settle(&self, _store: &dyn KvStore, task: &Task, outcome: &Outcome) -> Result<Vec<Op>, StoreError> {
        let state = match outcome {
            Outcome::Succeeded(_) => "ok",
            Outcome::Failed(_) => "failed",
            Outcome::Cancelled => "cancelled",
        };
        Ok(vec![Op::Put { key: format!("settled/{}", task.id), value: state.into(), expect: Precondition::Any }])
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<dyn KvStore>,
    scratch: std::path::PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn KvStore> =
        Arc::new(kiln_store::EmbeddedStore::open(&dir.path().join("kiln.redb")).expect("store"));
    let scratch = dir.path().join("scratch");
    Fixture { _dir: dir, store, scratch }
}

fn engine(f: &Fixture, node: &str, mode: &'static str, adjust: impl FnOnce(&mut TaskSettings)) -> Arc<Engine> {
    let mut settings = TaskSettings::new(f.scratch.clone(), node.to_string());
    settings.retry_min = Duration::from_millis(50);
    adjust(&mut settings);
    let mut engine = Engine::new(Arc::clone(&f.store), settings);
    engine.register(TaskKind::BuildImage, Arc::new(Scripted { mode, calls: AtomicU32::new(0) }));
    Arc::new(engine)
}

async fn submit(engine: &Engine, store: &Arc<dyn KvStore>, timeout: Option<Duration>) -> Task {
    let new = NewTask {
        org: "default".into(),
        kind: TaskKind::BuildImage,
        target: "app".into(),
        params: serde_json::json!({}),
        timeout,
    };
    let (task, ops) = engine.plan(new).expect("plan");
    store.txn(ops).await.expect("commit");
    engine.wake();
    task
}

async fn read(store: &Arc<dyn KvStore>, id: &str) -> Task {
    let entry = store.get(&records::key::<Task>("default", id)).await.expect("get").expect("task exists");
    records::decode(&entry).expect("decode")
}

/// Waits (bounded) until the task reaches a terminal state.
async fn settled(store: &Arc<dyn KvStore>, id: &str) -> Task {
    for _ in 0..200 {
        let task = read(store, id).await;
        if task.state.is_terminal() {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("task {id} did not finish within 10 s: {:?}", read(store, id).await);
}

async fn log_lines(store: &Arc<dyn KvStore>, id: &str) -> Vec<String> {
    let page = store.list(&log_prefix("default", id), None, 1000).await.expect("list");
    page.entries
        .iter()
        .map(|e| records::decode_value::<kiln_model::LogLine>(&e.key, &e.value).expect("log line").line)
        .collect()
}

#[tokio::test]
async fn a_task_runs_logs_settles_and_leaves_no_scratch() {
    let f = fixture();
    let engine = engine(&f, "n1", "ok", |_| {});
    engine.start();
    let task = submit(&engine, &f.store, None).await;
    let done = settled(&f.store, &task.id).await;
    assert_eq!(done.state, TaskState::Succeeded, "{done:?}");
    assert_eq!(done.result, Some(serde_json::json!({"call": 0})));
    assert_eq!(done.attempts, 1);
    let settled = f.store.get(&format!("settled/{}", task.id)).await.unwrap().expect("settled in the same commit");
    assert_eq!(settled.value, b"ok");
    assert!(f.store.get(&queue_key(&task.id)).await.unwrap().is_none(), "queue entry removed");
    let lines = log_lines(&f.store, &task.id).await;
    assert!(lines.iter().any(|l| l == "hello from the runner"), "{lines:?}");
    // The last step's time closes the log.
    let last = lines.last().map(String::as_str).unwrap_or_default();
    assert!(last.starts_with("succeeded (working took ") && last.ends_with(" ms)"), "{lines:?}");
    assert_eq!(done.log_lines as usize, lines.len());
    assert!(!f.scratch.join(&task.id).exists(), "scratch directory removed");
}

#[tokio::test]
async fn transient_failures_are_retried_and_permanent_ones_are_not() {
    let f = fixture();
    let flaky = engine(&f, "n1", "flaky", |_| {});
    flaky.start();
    let task = submit(&flaky, &f.store, None).await;
    let done = settled(&f.store, &task.id).await;
    assert_eq!((done.state, done.attempts), (TaskState::Succeeded, 2), "{done:?}");
    assert!(log_lines(&f.store, &task.id).await.iter().any(|l| l.contains("network hiccup")));

    let g = fixture();
    let broken = engine(&g, "n1", "broken", |_| {});
    broken.start();
    let task = submit(&broken, &g.store, None).await;
    let done = settled(&g.store, &task.id).await;
    assert_eq!((done.state, done.attempts), (TaskState::Failed, 1), "{done:?}");
    assert_eq!(done.error.as_deref(), Some("package x is unknown"));
}

#[tokio::test]
async fn cancel_stops_running_work_and_frees_scratch() {
    let f = fixture();
    let engine = engine(&f, "n1", "slow", |_| {});
    engine.start();
    let task = submit(&engine, &f.store, None).await;
    for _ in 0..100 {
        if f.scratch.join(&task.id).join("file").exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(f.scratch.join(&task.id).join("file").exists(), "the runner started");
    engine.cancel("default", &task.id).await.expect("cancel");
    let done = settled(&f.store, &task.id).await;
    assert_eq!(done.state, TaskState::Cancelled);
    assert!(!f.scratch.join(&task.id).exists(), "scratch freed");
    let again = engine.cancel("default", &task.id).await.unwrap_err();
    assert!(again.to_string().contains("already ended"), "{again}");
}

#[tokio::test]
async fn a_queued_task_cancels_at_once_and_timeouts_fail() {
    let f = fixture();
    let idle = engine(&f, "n1", "ok", |_| {});
    // Not started: the task stays queued.
    let task = submit(&idle, &f.store, None).await;
    let cancelled = idle.cancel("default", &task.id).await.expect("cancel");
    assert_eq!(cancelled.state, TaskState::Cancelled);
    assert_eq!(f.store.get(&format!("settled/{}", task.id)).await.unwrap().expect("settled").value, b"cancelled");

    let slow = engine(&f, "n2", "slow", |_| {});
    slow.start();
    let task = submit(&slow, &f.store, Some(Duration::from_secs(1))).await;
    let done = settled(&f.store, &task.id).await;
    assert_eq!(done.state, TaskState::Failed);
    assert!(done.error.as_deref().is_some_and(|e| e.contains("timed out after 1 s")), "{done:?}");
}

#[tokio::test]
async fn scratch_limits_are_checked_before_work() {
    let f = fixture();
    let engine = engine(&f, "n1", "greedy", |s| s.scratch_limit = 1024 * 1024);
    engine.start();
    let task = submit(&engine, &f.store, None).await;
    let done = settled(&f.store, &task.id).await;
    assert_eq!(done.state, TaskState::Failed);
    let error = done.error.unwrap_or_default();
    assert!(error.contains("scratch space") && error.contains("--scratch-limit-bytes"), "{error}");
}

#[tokio::test]
async fn work_held_by_a_dead_process_is_taken_back() {
    let f = fixture();
    let idle = engine(&f, "n1", "ok", |_| {});
    let mut ours = submit(&idle, &f.store, None).await;
    let mut theirs = submit(&idle, &f.store, None).await;
    let mut live = submit(&idle, &f.store, None).await;
    // As a killed process left them: running, leases in the future except for the other node's.
    for (task, owner, lease) in [
        (&mut ours, "n1/old-process", Utc::now() + chrono::Duration::seconds(600)),
        (&mut theirs, "n9/x", Utc::now() - chrono::Duration::seconds(1)),
        (&mut live, "n9/x", Utc::now() + chrono::Duration::seconds(600)),
    ] {
        let current = read(&f.store, &task.id).await;
        task.state = TaskState::Running;
        task.owner = Some(owner.to_string());
        task.lease_expires = Some(lease);
        task.attempts = 1;
        let key = records::key::<Task>("default", &task.id);
        let value = records::encode(&*task).unwrap();
        f.store.put(&key, value, Precondition::Revision(current.revision.unwrap())).await.unwrap();
    }
    let restarted = engine(&f, "n1", "ok", |_| {});
    restarted.start();
    for task in [&ours, &theirs] {
        let done = settled(&f.store, &task.id).await;
        assert_eq!((done.state, done.attempts), (TaskState::Succeeded, 2), "{done:?}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(read(&f.store, &live.id).await.state, TaskState::Running, "a live lease of another node is respected");
}

#[tokio::test]
async fn a_stopped_engine_leaves_its_task_running_for_its_next_start() {
    let f = fixture();
    let first = engine(&f, "n1", "slow", |_| {});
    let dispatcher = first.start();
    let task = submit(&first, &f.store, None).await;
    for _ in 0..200 {
        if read(&f.store, &task.id).await.state == TaskState::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::timeout(Duration::from_secs(5), first.stop()).await.expect("stop ends the attempt in flight");
    tokio::time::timeout(Duration::from_secs(5), dispatcher).await.expect("the dispatcher ends").expect("no panic");
    let held = read(&f.store, &task.id).await;
    assert_eq!(held.state, TaskState::Running, "a stop is not a failure: {held:?}");
    assert!(f.store.get(&format!("settled/{}", task.id)).await.unwrap().is_none(), "nothing settled on stop");

    // The same node starts again and takes its task back at once.
    let second = engine(&f, "n1", "ok", |_| {});
    second.start();
    let done = settled(&f.store, &task.id).await;
    assert_eq!(done.state, TaskState::Succeeded, "{done:?}");
    assert_eq!(done.attempts, 2);
}
