//! Claiming, running and finishing tasks: the dispatcher scans the queue, claims what is
//! due with a compare-and-swap on the task, and each claimed task runs beside a keeper that
//! writes progress and log lines, renews the lease and notices a cancel.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kiln_model::{LogLine, Task, TaskState};
use kiln_store::{Op, Precondition, StoreError, records};
use tokio_util::sync::CancellationToken;

use super::context::TaskContext;
use super::{Engine, Outcome, TaskError, log_key, queue_key};

/// How often the keeper writes progress and logs.
const FLUSH_EVERY: Duration = Duration::from_millis(250);

pub(super) async fn dispatch(engine: Arc<Engine>) {
    let stopping = engine.stopping.clone();
    while !stopping.is_cancelled() {
        // Subscribe before scanning so no new task slips between the two.
        let mut events = match engine.store.watch("task-queue/", 0).await {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(error = %e, "task engine cannot watch the queue; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = stopping.cancelled() => return,
                }
            }
        };
        let wait = match scan(&engine).await {
            Ok(wait) => wait,
            Err(e) => {
                tracing::warn!(error = %e, "task queue scan failed");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = engine.wake.notified() => {}
            _ = events.recv() => {}
            _ = stopping.cancelled() => return,
        }
    }
}

/// Claims every task that is due while workers are free; returns when to look again.
async fn scan(engine: &Arc<Engine>) -> Result<Duration, StoreError> {
    let mut wait = engine.settings.lease;
    let mut after: Option<String> = None;
    loop {
        let page = engine.store.list("task-queue/", after.as_deref(), 500).await?;
        for entry in &page.entries {
            if engine.running.lock().map_err(super::poisoned)?.len() >= engine.settings.workers {
                return Ok(wait);
            }
            let id = entry.key.trim_start_matches("task-queue/");
            let org = String::from_utf8_lossy(&entry.value).to_string();
            let key = records::key::<Task>(&org, id);
            let Some(task_entry) = engine.store.get(&key).await? else {
                // The queue entry outlived its task (deleted organisation): drop it.
                let _ = engine.store.delete(&entry.key, Precondition::Revision(entry.mod_revision)).await;
                continue;
            };
            let task: Task = records::decode(&task_entry)?;
            match due_in(engine, &task) {
                Some(later) if !later.is_zero() => wait = wait.min(later),
                Some(_) => claim(engine, task, task_entry.mod_revision).await?,
                None => {}
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(wait),
        }
    }
}

/// When the task may be claimed: zero if now, `None` if another live worker holds it.
fn due_in(engine: &Engine, task: &Task) -> Option<Duration> {
    let now = Utc::now();
    let until = |time: Option<DateTime<Utc>>| time.map_or(Duration::ZERO, |t| (t - now).to_std().unwrap_or_default());
    match task.state {
        TaskState::Queued => Some(until(task.not_before)),
        TaskState::Running => {
            let owner = task.owner.as_deref().unwrap_or_default();
            if owner == engine.owner {
                return None;
            }
            // Our node restarted: the process that held it is gone, take it back now.
            if owner.split('/').next() == Some(engine.settings.node.as_str()) {
                return Some(Duration::ZERO);
            }
            Some(until(task.lease_expires))
        }
        _ => None,
    }
}

async fn claim(engine: &Arc<Engine>, mut task: Task, revision: u64) -> Result<(), StoreError> {
    let now = Utc::now();
    let key = records::key::<Task>(&task.organization, &task.id);
    if task.cancel_requested || task.attempts >= task.max_attempts {
        // A cancel that found no live worker, or a task whose workers kept dying.
        let outcome = if task.cancel_requested {
            Outcome::Cancelled
        } else {
            Outcome::Failed(format!(
                "gave up after {} attempts: the worker stopped each time (crash or restart); see the log",
                task.attempts
            ))
        };
        return finish_at(engine, task, revision, outcome).await.map(|_| ());
    }
    task.state = TaskState::Running;
    task.owner = Some(engine.owner.clone());
    task.lease_expires = Some(now + engine.settings.lease);
    task.attempts += 1;
    task.started_time = Some(now);
    task.not_before = None;
    match engine.store.put(&key, records::encode(&task)?, Precondition::Revision(revision)).await {
        Ok(revision) => task.revision = Some(revision),
        // Someone else claimed or changed it first; the next scan sees the new state.
        Err(StoreError::Conflict { .. }) => return Ok(()),
        Err(e) => return Err(e),
    }
    let token = CancellationToken::new();
    engine.running.lock().map_err(super::poisoned)?.insert(task.id.clone(), token.clone());
    let engine = Arc::clone(engine);
    let attempts = engine.attempts.clone();
    attempts.spawn(async move {
        let id = task.id.clone();
        let stopping = engine.stopping.clone();
        tokio::select! {
            _ = execute(&engine, task, token) => {}
            // The task stays RUNNING under this node: its next start takes it back.
            _ = stopping.cancelled() => return,
        }
        if let Ok(mut running) = engine.running.lock() {
            running.remove(&id);
        }
        if let Ok(mut reserved) = engine.scratch_reserved.lock() {
            reserved.remove(&id);
        }
        engine.wake();
    });
    Ok(())
}

async fn execute(engine: &Arc<Engine>, task: Task, token: CancellationToken) {
    let scratch = engine.settings.scratch_dir.join(&task.id);
    let Some(runner) = engine.runners.get(&task.kind).cloned() else {
        let failure = Outcome::Failed(format!("this server has no runner for {} tasks", task.kind.as_str()));
        let _ = finish(engine, &task, failure, &[]).await;
        return;
    };
    let ctx = TaskContext::new(task.clone(), scratch.clone(), token.clone(), Arc::clone(engine));
    ctx.log(format!("attempt {} of {} on {}", task.attempts, task.max_attempts, engine.settings.node));
    let started = std::time::Instant::now();
    tracing::info!(
        task = task.id,
        kind = task.kind.as_str(),
        target = task.target,
        org = task.organization,
        attempt = task.attempts,
        "task started"
    );
    // Dropped with this attempt, also when the engine stops it half-way.
    let keeper = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(keep(
        Arc::clone(engine),
        task.clone(),
        ctx.pending.clone(),
        token.clone(),
    )));
    let outcome = match tokio::fs::create_dir_all(&scratch).await {
        Err(e) => Err(TaskError::transient(format!("cannot create scratch directory {}: {e}", scratch.display()))),
        Ok(()) => {
            let limit = Duration::from_secs(task.timeout_seconds);
            let work = async {
                if limit.is_zero() {
                    return runner.run(&ctx).await;
                }
                tokio::time::timeout(limit, runner.run(&ctx)).await.unwrap_or_else(|_| {
                    Err(TaskError::permanent(format!(
                        "timed out after {} s: raise the task timeout or make the work smaller",
                        task.timeout_seconds
                    )))
                })
            };
            tokio::select! {
                result = work => result,
                _ = token.cancelled() => Err(TaskError::permanent("cancelled")),
            }
        }
    };
    keeper.abort();
    if let Err(e) = tokio::fs::remove_dir_all(&scratch).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        ctx.log(format!("warning: could not remove scratch directory {}: {e}", scratch.display()));
    }
    let outcome = match outcome {
        Ok(result) => Outcome::Succeeded(result),
        Err(_) if token.is_cancelled() => Outcome::Cancelled,
        Err(e) if e.retryable && task.attempts < task.max_attempts => {
            tracing::warn!(
                task = task.id,
                kind = task.kind.as_str(),
                target = task.target,
                org = task.organization,
                seconds = started.elapsed().as_secs_f64(),
                error = e.message,
                "task attempt failed; it will be retried"
            );
            ctx.log(format!("attempt {} failed: {}", task.attempts, e.message));
            let _ = requeue(engine, &task, &e.message, &ctx).await;
            return;
        }
        Err(e) => Outcome::Failed(e.message),
    };
    let seconds = started.elapsed().as_secs_f64();
    let (kind, target, org) = (task.kind.as_str(), task.target.as_str(), task.organization.as_str());
    match &outcome {
        Outcome::Succeeded(_) => tracing::info!(task = task.id, kind, target, org, seconds, "task succeeded"),
        Outcome::Failed(message) => {
            tracing::warn!(task = task.id, kind, target, org, seconds, error = message, "task failed")
        }
        Outcome::Cancelled => tracing::info!(task = task.id, kind, target, org, seconds, "task cancelled"),
    }
    match &outcome {
        Outcome::Succeeded(_) => ctx.log(match ctx.pending.lock().ok().and_then(|mut p| p.step_started.take()) {
            Some((step, at)) => format!("succeeded ({step} took {} ms)", at.elapsed().as_millis()),
            None => "succeeded".to_string(),
        }),
        Outcome::Failed(message) => ctx.log(format!("failed: {message}")),
        Outcome::Cancelled => ctx.log("cancelled; scratch space freed"),
    }
    let lines = take_lines(&ctx);
    if let Err(e) = finish(engine, &task, outcome, &lines).await {
        tracing::warn!(error = %e, task = task.id, "could not record the end of a task");
    }
}

fn take_lines(ctx: &TaskContext) -> Vec<String> {
    ctx.pending.lock().map(|mut p| std::mem::take(&mut p.lines)).unwrap_or_default()
}

/// Writes progress and log lines, renews the lease, and cancels the work if the task was
/// cancelled elsewhere or another worker took it over.
async fn keep(
    engine: Arc<Engine>,
    task: Task,
    pending: Arc<std::sync::Mutex<super::context::Pending>>,
    token: CancellationToken,
) {
    let key = records::key::<Task>(&task.organization, &task.id);
    let renew_every = engine.settings.lease / 3;
    let mut renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(FLUSH_EVERY).await;
        let (lines, progress, dirty) = match pending.lock() {
            Ok(mut p) => {
                let dirty = p.progress_dirty;
                p.progress_dirty = false;
                (std::mem::take(&mut p.lines), p.progress.clone(), dirty)
            }
            Err(_) => return,
        };
        let renew = renewed.elapsed() >= renew_every;
        if lines.is_empty() && !dirty && !renew {
            continue;
        }
        let written = async {
            let entry = engine.store.get(&key).await?.ok_or(StoreError::Invalid("task vanished".into()))?;
            let mut current: Task = records::decode(&entry)?;
            if current.owner.as_deref() != Some(engine.owner.as_str()) || current.state != TaskState::Running {
                token.cancel();
                return Ok(false);
            }
            if current.cancel_requested {
                token.cancel();
            }
            current.progress = progress.clone();
            current.lease_expires = Some(Utc::now() + engine.settings.lease);
            let mut ops = log_ops(&current, &lines)?;
            current.log_lines += lines.len() as u64;
            ops.push(Op::Put {
                key: key.clone(),
                value: records::encode(&current)?,
                expect: Precondition::Revision(entry.mod_revision),
            });
            engine.store.txn(ops).await.map(|_| true)
        }
        .await;
        match written {
            Ok(true) => renewed = tokio::time::Instant::now(),
            Ok(false) => return,
            // Put the lines back in front; the next tick writes them.
            Err(_) => {
                if let Ok(mut p) = pending.lock() {
                    let newer = std::mem::take(&mut p.lines);
                    p.lines = lines;
                    p.lines.extend(newer);
                    p.progress_dirty |= dirty;
                }
            }
        }
    }
}

fn log_ops(task: &Task, lines: &[String]) -> Result<Vec<Op>, StoreError> {
    let now = Utc::now();
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let seq = task.log_lines + i as u64;
            let value = records::encode_value(&LogLine { seq, time: now, line: line.clone() })?;
            Ok(Op::Put { key: log_key(&task.organization, &task.id, seq), value, expect: Precondition::Absent })
        })
        .collect()
}

/// Puts a failed attempt back in the queue after a backoff.
async fn requeue(engine: &Engine, task: &Task, message: &str, ctx: &TaskContext) -> Result<(), StoreError> {
    let key = records::key::<Task>(&task.organization, &task.id);
    loop {
        let Some(entry) = engine.store.get(&key).await? else { return Ok(()) };
        let mut current: Task = records::decode(&entry)?;
        if current.owner.as_deref() != Some(engine.owner.as_str()) {
            return Ok(());
        }
        let delay = engine.settings.retry_min.saturating_mul(2u32.saturating_pow(current.attempts.saturating_sub(1)));
        current.state = TaskState::Queued;
        current.owner = None;
        current.lease_expires = None;
        current.not_before = Some(Utc::now() + delay);
        current.error = Some(message.to_string());
        let lines = take_lines(ctx);
        let mut ops = log_ops(&current, &lines)?;
        current.log_lines += lines.len() as u64;
        ops.push(Op::Put {
            key: key.clone(),
            value: records::encode(&current)?,
            expect: Precondition::Revision(entry.mod_revision),
        });
        match engine.store.txn(ops).await {
            Err(StoreError::Conflict { .. }) => continue,
            other => return other.map(|_| ()),
        }
    }
}

/// Records the final state, the runner's settling writes and the last log lines in one commit.
async fn finish(engine: &Engine, task: &Task, outcome: Outcome, lines: &[String]) -> Result<(), StoreError> {
    let key = records::key::<Task>(&task.organization, &task.id);
    loop {
        let Some(entry) = engine.store.get(&key).await? else { return Ok(()) };
        let current: Task = records::decode(&entry)?;
        if current.owner.as_deref() != Some(engine.owner.as_str()) || current.state.is_terminal() {
            return Ok(());
        }
        match finish_with(engine, current, entry.mod_revision, outcome.clone(), lines).await {
            Err(StoreError::Conflict { .. }) => continue,
            other => return other,
        }
    }
}

async fn finish_at(engine: &Engine, task: Task, revision: u64, outcome: Outcome) -> Result<(), StoreError> {
    match finish_with(engine, task, revision, outcome, &[]).await {
        Err(StoreError::Conflict { .. }) => Ok(()),
        other => other,
    }
}

async fn finish_with(
    engine: &Engine,
    mut task: Task,
    revision: u64,
    outcome: Outcome,
    lines: &[String],
) -> Result<(), StoreError> {
    let key = records::key::<Task>(&task.organization, &task.id);
    let mut ops = match engine.runners.get(&task.kind) {
        Some(runner) => runner.settle(engine.store.as_ref(), &task, &outcome).await?,
        None => Vec::new(),
    };
    ops.extend(log_ops(&task, lines)?);
    task.log_lines += lines.len() as u64;
    task.finished_time = Some(Utc::now());
    task.lease_expires = None;
    match outcome {
        Outcome::Succeeded(result) => {
            task.state = TaskState::Succeeded;
            task.result = Some(result);
            task.error = None;
            task.progress.step = "done".to_string();
            task.progress.percent = 100;
        }
        Outcome::Failed(message) => {
            task.state = TaskState::Failed;
            task.error = Some(message);
        }
        Outcome::Cancelled => {
            task.state = TaskState::Cancelled;
            task.error = Some("cancelled".to_string());
        }
    }
    ops.push(Op::Delete { key: queue_key(&task.id), expect: Precondition::Any });
    ops.push(Op::Put { key, value: records::encode(&task)?, expect: Precondition::Revision(revision) });
    engine.store.txn(ops).await.map(|_| ())
}
