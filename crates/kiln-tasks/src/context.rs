//! What a runner sees while it works: its task, its scratch directory, a way to report
//! progress and log lines (buffered here, written to the store by the worker's keeper) and
//! the signal that it must stop.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use kiln_model::{Progress, Task};
use tokio_util::sync::CancellationToken;

use super::{Engine, TaskError};

/// Progress and log lines not yet written to the store.
#[derive(Default)]
pub(super) struct Pending {
    pub progress: Progress,
    pub progress_dirty: bool,
    pub lines: Vec<String>,
    /// The step under way and when it started, so the log says how long each one took.
    pub step_started: Option<(String, std::time::Instant)>,
}

pub struct TaskContext {
    pub task: Task,
    scratch: PathBuf,
    pub(super) cancel: CancellationToken,
    pub(super) pending: Arc<Mutex<Pending>>,
    pub(super) engine: Arc<Engine>,
}

impl TaskContext {
    pub(super) fn new(task: Task, scratch: PathBuf, cancel: CancellationToken, engine: Arc<Engine>) -> TaskContext {
        let pending = Pending { progress: task.progress.clone(), ..Default::default() };
        TaskContext { task, scratch, cancel, pending: Arc::new(Mutex::new(pending)), engine }
    }

    /// A directory only this task uses; it is emptied when the task ends, however it ends.
    pub fn scratch(&self) -> &Path {
        &self.scratch
    }

    /// Claims scratch space before the work that needs it starts.
    pub fn reserve_scratch(&self, bytes: u64) -> Result<(), TaskError> {
        self.engine.reserve_scratch(&self.task.id, bytes)
    }

    pub fn store(&self) -> &Arc<dyn kiln_store::KvStore> {
        &self.engine.store
    }

    /// Starts a named step; `percent` is how far the whole task is at its start.
    pub fn step(&self, step: &str, percent: u8) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.progress =
                Progress { step: step.to_string(), bytes: 0, total_bytes: None, percent: percent.min(100) };
            pending.progress_dirty = true;
            let line = match pending.step_started.take() {
                Some((previous, at)) => format!("step: {step} ({previous} took {} ms)", at.elapsed().as_millis()),
                None => format!("step: {step}"),
            };
            pending.lines.push(line);
            pending.step_started = Some((step.to_string(), std::time::Instant::now()));
        }
    }

    /// Bytes moved so far within the current step.
    pub fn bytes(&self, done: u64, total: Option<u64>) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.progress.bytes = done;
            pending.progress.total_bytes = total;
            pending.progress_dirty = true;
        }
    }

    pub fn log(&self, line: impl Into<String>) {
        let line: String = line.into();
        if let Ok(mut pending) = self.pending.lock() {
            // Keep lines bounded: one runaway message must not fill the store.
            pending.lines.extend(line.lines().map(|l| l.chars().take(4096).collect::<String>()));
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Fails with the cancellation error if the task was told to stop; call between steps.
    pub fn check_cancelled(&self) -> Result<(), TaskError> {
        if self.cancel.is_cancelled() { Err(TaskError::permanent("cancelled")) } else { Ok(()) }
    }
}
