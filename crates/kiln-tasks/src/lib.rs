//! The task engine: long work (builds, bootstrap) runs as stored tasks that workers claim
//! under a lease, so a crash or `kill -9` loses nothing — whoever notices the lapsed lease
//! (a restart of the same node at once, another node after the lease) runs it again.

mod context;
mod keys;
mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use kiln_model::{Task, TaskKind, TaskState};
use kiln_store::{KvStore, Op, Precondition, StoreError, records};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use context::TaskContext;
pub use keys::{log_key, log_prefix, queue_key};

/// How the engine runs work.
#[derive(Debug, Clone)]
pub struct TaskSettings {
    /// Tasks run at the same time by this process.
    pub workers: usize,
    /// How long a claim holds without a heartbeat; a dead worker's tasks wait this long
    /// before another node takes them (a restart of the same node takes them at once).
    pub lease: Duration,
    /// Work running longer than this fails; zero means no limit.
    pub default_timeout: Duration,
    pub max_attempts: u32,
    /// First wait before retrying a failed attempt; doubled per attempt.
    pub retry_min: Duration,
    /// Where tasks get their scratch directories (`<dir>/<task id>`), removed afterwards.
    pub scratch_dir: PathBuf,
    /// Scratch bytes all running tasks together may claim; checked before work starts.
    pub scratch_limit: u64,
    /// Stable name of this node; tasks it owned before a restart are taken back at once.
    pub node: String,
}

impl TaskSettings {
    pub fn new(scratch_dir: PathBuf, node: String) -> TaskSettings {
        TaskSettings {
            workers: 2,
            lease: Duration::from_secs(30),
            default_timeout: Duration::from_secs(30 * 60),
            max_attempts: 3,
            retry_min: Duration::from_secs(5),
            scratch_dir,
            scratch_limit: 20 * 1024 * 1024 * 1024,
            node,
        }
    }
}

/// Why an attempt failed, and whether another attempt may succeed.
#[derive(Debug, Clone)]
pub struct TaskError {
    pub message: String,
    pub retryable: bool,
}

impl TaskError {
    /// A failure that another attempt will not fix (bad input, a missing package).
    pub fn permanent(message: impl Into<String>) -> TaskError {
        TaskError { message: message.into(), retryable: false }
    }
    /// A failure that may pass (network, a busy store).
    pub fn transient(message: impl Into<String>) -> TaskError {
        TaskError { message: message.into(), retryable: true }
    }
}

/// How a task ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    Succeeded(serde_json::Value),
    Failed(String),
    Cancelled,
}

/// Does one kind of task.
#[async_trait]
pub trait Runner: Send + Sync + 'static {
    async fn run(&self, ctx: &TaskContext) -> Result<serde_json::Value, TaskError>;

    /// Writes to commit together with the task's final state, such as the image it built
    /// moving to `READY` or `ERROR`. Read at the revisions the ops check; a conflict makes
    /// the engine call this again.
    async fn settle(&self, store: &dyn KvStore, task: &Task, outcome: &Outcome) -> Result<Vec<Op>, StoreError>;
}

/// A task to create, together with the object it acts on.
pub struct NewTask {
    pub org: String,
    pub kind: TaskKind,
    pub target: String,
    pub params: serde_json::Value,
    pub timeout: Option<Duration>,
}

pub struct Engine {
    store: Arc<dyn KvStore>,
    settings: TaskSettings,
    /// `<node>/<uuid>`: this process's claim on the tasks it runs.
    owner: String,
    runners: HashMap<TaskKind, Arc<dyn Runner>>,
    wake: Notify,
    running: Mutex<HashMap<String, CancellationToken>>,
    scratch_reserved: Mutex<HashMap<String, u64>>,
    /// Cancelled by `stop`: the dispatcher and every attempt end without recording an end.
    stopping: CancellationToken,
    /// The attempts in flight, so `stop` can wait for them.
    attempts: tokio_util::task::TaskTracker,
}

#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("task {0:?} does not exist")]
    NotFound(String),
    #[error("task {id:?} already ended: it {state}")]
    Ended { id: String, state: &'static str },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Engine {
    pub fn new(store: Arc<dyn KvStore>, settings: TaskSettings) -> Engine {
        let owner = format!("{}/{}", settings.node, uuid::Uuid::new_v4());
        Engine {
            store,
            settings,
            owner,
            runners: HashMap::new(),
            wake: Notify::new(),
            running: Mutex::new(HashMap::new()),
            scratch_reserved: Mutex::new(HashMap::new()),
            stopping: CancellationToken::new(),
            attempts: tokio_util::task::TaskTracker::new(),
        }
    }

    pub fn register(&mut self, kind: TaskKind, runner: Arc<dyn Runner>) {
        self.runners.insert(kind, runner);
    }

    pub fn settings(&self) -> &TaskSettings {
        &self.settings
    }

    /// Builds the task and the writes that create it; commit them with whatever asked for it.
    pub fn plan(&self, new: NewTask) -> Result<(Task, Vec<Op>), StoreError> {
        let task = Task {
            id: uuid::Uuid::new_v4().to_string(),
            organization: new.org,
            kind: new.kind,
            target: new.target,
            params: new.params,
            state: TaskState::Queued,
            attempts: 0,
            max_attempts: self.settings.max_attempts,
            owner: None,
            lease_expires: None,
            not_before: None,
            timeout_seconds: new.timeout.unwrap_or(self.settings.default_timeout).as_secs(),
            cancel_requested: false,
            progress: Default::default(),
            log_lines: 0,
            result: None,
            error: None,
            created_time: Utc::now(),
            started_time: None,
            finished_time: None,
            revision: None,
        };
        let ops = vec![
            Op::Put {
                key: records::key::<Task>(&task.organization, &task.id),
                value: records::encode(&task)?,
                expect: Precondition::Absent,
            },
            Op::Put {
                key: queue_key(&task.id),
                value: task.organization.clone().into_bytes(),
                expect: Precondition::Absent,
            },
        ];
        Ok((task, ops))
    }

    /// Tells the dispatcher there may be new work (the store watch tells it too).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Starts claiming tasks. [`Engine::stop`] ends the dispatcher and every attempt in
    /// flight; an attempt stopped that way stays `RUNNING` under this node's name, so the
    /// next start of this node takes it back at once (as after a crash).
    pub fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let engine = Arc::clone(self);
        tokio::spawn(async move { worker::dispatch(engine).await })
    }

    /// Stops claiming and ends the attempts in flight; returns when they have ended.
    pub async fn stop(&self) {
        self.stopping.cancel();
        self.attempts.close();
        self.attempts.wait().await;
    }

    /// Cancels a task: a queued one ends at once; a running one is told to stop and ends
    /// when its worker has cleaned up.
    pub async fn cancel(&self, org: &str, id: &str) -> Result<Task, CancelError> {
        self.cancel_through(self.store.as_ref(), org, id).await
    }

    /// `cancel`, writing through `store` (a request's store, so its audit entry joins).
    pub async fn cancel_through(&self, store: &dyn KvStore, org: &str, id: &str) -> Result<Task, CancelError> {
        let key = records::key::<Task>(org, id);
        loop {
            let entry = store.get(&key).await?.ok_or_else(|| CancelError::NotFound(id.to_string()))?;
            let mut task: Task = records::decode(&entry)?;
            if task.state.is_terminal() {
                return Err(CancelError::Ended { id: id.to_string(), state: task.state.as_str() });
            }
            task.cancel_requested = true;
            let mut ops = Vec::new();
            if task.state == TaskState::Queued {
                task.state = TaskState::Cancelled;
                task.finished_time = Some(Utc::now());
                task.error = Some("cancelled before it started".to_string());
                ops.push(Op::Delete { key: queue_key(id), expect: Precondition::Any });
                if let Some(runner) = self.runners.get(&task.kind) {
                    ops.extend(runner.settle(store, &task, &Outcome::Cancelled).await?);
                }
            }
            ops.push(Op::Put {
                key: key.clone(),
                value: records::encode(&task)?,
                expect: Precondition::Revision(entry.mod_revision),
            });
            match store.txn(ops).await {
                Ok(revision) => {
                    if let Some(token) = self.running.lock().map_err(poisoned)?.get(id) {
                        token.cancel();
                    }
                    task.revision = Some(revision);
                    return Ok(task);
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Claims scratch bytes for a task, refusing up front when the limit would be passed.
    fn reserve_scratch(&self, task: &str, bytes: u64) -> Result<(), TaskError> {
        let mut reserved =
            self.scratch_reserved.lock().map_err(|_| TaskError::transient("scratch accounting failed"))?;
        let others: u64 = reserved.iter().filter(|(id, _)| id.as_str() != task).map(|(_, b)| *b).sum();
        let limit = self.settings.scratch_limit;
        if others.saturating_add(bytes) > limit {
            return Err(TaskError::permanent(format!(
                "the task needs {} of scratch space but only {} of the {} limit is free: raise --scratch-limit-bytes or wait for other tasks",
                human(bytes),
                human(limit.saturating_sub(others)),
                human(limit)
            )));
        }
        reserved.insert(task.to_string(), bytes);
        Ok(())
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Backend("task engine state lock poisoned".to_string())
}

pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests;
