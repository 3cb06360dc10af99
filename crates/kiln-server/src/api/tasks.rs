//! Tasks over the REST API: list and read them, cancel them, read their logs, and follow
//! them live as Server-Sent Events (replayed from the store, then from its watch, so a
//! client that connects late or reconnects misses nothing).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Serialize;
use utoipa::ToSchema;

use kiln_model::{LogLine, Task, TaskKind, TaskState};
use kiln_store::records;

use crate::auth::Ctx;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::objects::{DEFAULT_PAGE, MAX_PAGE};
use crate::state::AppState;
use kiln_tasks::{CancelError, log_prefix};

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskList {
    /// Newest first.
    pub items: Vec<Task>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskLog {
    pub items: Vec<LogLine>,
    /// Pass as `after` to read on.
    pub next: u64,
}

fn parse_limit(value: &str) -> ApiResult<usize> {
    value
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_PAGE).contains(n))
        .ok_or_else(|| ApiError::bad_request(format!("limit {value:?} must be a number from 1 to {MAX_PAGE}")))
}

/// The organisation's tasks, newest first.
#[utoipa::path(get, path = "/v1/tasks", tag = "tasks", operation_id = "listTasks", security(("bearer" = ["tasks:read"])),
    params(("state" = Option<String>, Query, description = "queued, running, succeeded, failed or cancelled"),
        ("kind" = Option<String>, Query, description = "build-image, bootstrap, compose-function or debug-image"),
        ("target" = Option<String>, Query, description = "the object a task acts on, such as an image name"),
        ("limit" = Option<usize>, Query)),
    responses((status = 200, body = TaskList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    RawQuery(raw): RawQuery,
) -> ApiResult<axum::Json<TaskList>> {
    let (mut wanted_state, mut kind, mut target, mut limit) = (None, None, None, DEFAULT_PAGE);
    for (name, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "state" => {
                wanted_state = Some(TaskState::parse(&value).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "state {value:?} is not a task state: use queued, running, succeeded, failed or cancelled"
                    ))
                })?)
            }
            "kind" => {
                kind = Some(match value.as_ref() {
                    "build-image" => TaskKind::BuildImage,
                    "bootstrap" => TaskKind::Bootstrap,
                    "compose-function" => TaskKind::ComposeFunction,
                    "debug-image" => TaskKind::DebugImage,
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "kind {other:?} is not a task kind: use build-image, bootstrap, compose-function or debug-image"
                        )));
                    }
                })
            }
            "target" => target = Some(value.into_owned()),
            "limit" => limit = parse_limit(&value)?,
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {other:?}: use state, kind, target or limit"
                )));
            }
        }
    }
    let prefix = records::prefix::<Task>(&ctx.org);
    let mut items = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = state.store.list(&prefix, after.as_deref(), 512).await?;
        for entry in &page.entries {
            let task: Task = records::decode(entry)?;
            if wanted_state.is_none_or(|s| s == task.state)
                && kind.is_none_or(|k| k == task.kind)
                && target.as_ref().is_none_or(|t| *t == task.target)
            {
                items.push(task);
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    items.sort_by(|a, b| b.created_time.cmp(&a.created_time).then_with(|| a.id.cmp(&b.id)));
    items.truncate(limit);
    Ok(axum::Json(TaskList { items }))
}

async fn read(state: &AppState, org: &str, id: &str) -> ApiResult<Task> {
    let entry = state
        .store
        .get(&records::key::<Task>(org, id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("task {id:?} does not exist in organization {org:?}")))?;
    Ok(records::decode(&entry)?)
}

#[utoipa::path(get, path = "/v1/tasks/{id}", tag = "tasks", operation_id = "getTask", security(("bearer" = ["tasks:read"])),
    params(("id" = String, Path)),
    responses((status = 200, body = Task), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(State(state): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> ApiResult<axum::Json<Task>> {
    Ok(axum::Json(read(&state, &ctx.org, &id).await?))
}

/// Cancel a task. A queued task ends at once; a running one is told to stop, frees its
/// scratch space and ends `cancelled` shortly after (follow its events to see when).
#[utoipa::path(delete, path = "/v1/tasks/{id}", tag = "tasks", operation_id = "cancelTask", security(("bearer" = ["tasks:write"])),
    params(("id" = String, Path)),
    responses((status = 202, body = Task), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "the task already ended")))]
pub async fn cancel(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<Task>)> {
    let engine = state.tasks.clone().ok_or_else(|| ApiError::not_found("this server runs no task engine"))?;
    match engine.cancel_through(state.store.as_ref(), &ctx.org, &id).await {
        Ok(task) => Ok((StatusCode::ACCEPTED, axum::Json(task))),
        Err(CancelError::NotFound(_)) => {
            Err(ApiError::not_found(format!("task {id:?} does not exist in organization {:?}", ctx.org)))
        }
        Err(e @ CancelError::Ended { .. }) => Err(ApiError::conflict(e.to_string())),
        Err(CancelError::Store(e)) => Err(e.into()),
    }
}

async fn lines(state: &AppState, org: &str, id: &str, after: u64, limit: usize) -> ApiResult<Vec<LogLine>> {
    let prefix = log_prefix(org, id);
    let start = after.checked_sub(1).map(|seq| kiln_tasks::log_key(org, id, seq));
    let page = state.store.list(&prefix, start.as_deref(), limit).await?;
    page.entries.iter().map(|e| kiln_store::records::decode_value(&e.key, &e.value).map_err(ApiError::from)).collect()
}

/// The task's log from line `after` on.
#[utoipa::path(get, path = "/v1/tasks/{id}/logs", tag = "tasks", operation_id = "getTaskLogs", security(("bearer" = ["tasks:read"])),
    params(("id" = String, Path), ("after" = Option<u64>, Query, description = "first line to return (0-based)"), ("limit" = Option<usize>, Query)),
    responses((status = 200, body = TaskLog), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn logs(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<axum::Json<TaskLog>> {
    let (mut after, mut limit) = (0u64, MAX_PAGE);
    for (name, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "after" => {
                after =
                    value.parse().map_err(|_| ApiError::bad_request(format!("after {value:?} is not a line number")))?
            }
            "limit" => limit = parse_limit(&value)?,
            other => {
                return Err(ApiError::bad_request(format!("unknown query parameter {other:?}: use after or limit")));
            }
        }
    }
    read(&state, &ctx.org, &id).await?;
    let items = lines(&state, &ctx.org, &id, after, limit).await?;
    let next = items.last().map_or(after, |l| l.seq + 1);
    Ok(axum::Json(TaskLog { items, next }))
}

/// Follow a task: `log` events (id = line number), `progress` events (the task) whenever
/// its state or progress changes, and a final `end` event with the finished task. A
/// reconnecting client sends `Last-Event-ID` and gets only the lines after it.
#[utoipa::path(get, path = "/v1/tasks/{id}/events", tag = "tasks", operation_id = "followTask", security(("bearer" = ["tasks:read"])),
    params(("id" = String, Path)),
    responses((status = 200, content_type = "text/event-stream", body = String), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let org = ctx.org.to_string();
    // Subscribe first, then read, so nothing written in between is missed.
    let mut watch = state.store.watch("task", 0).await?;
    let task = read(&state, &org, &id).await?;
    let mut next = match headers.get("last-event-id") {
        None => 0,
        // Only ids this stream sent come back, and no log reaches the last line number: a
        // value past it (or not a number) would replay from the start or overflow.
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .and_then(|seq| seq.checked_add(1))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "Last-Event-ID is not the number of a log line this stream sent: reconnect without it",
                )
            })?,
    };
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Event>(64);
    let task_key = records::key::<Task>(&org, &id);
    let log_prefix = log_prefix(&org, &id);
    tokio::spawn(async move {
        let send = |event: Event| sender.send(event);
        let _ = send(progress_event(&task)).await;
        // Replay what is stored.
        loop {
            let Ok(batch) = lines(&state, &org, &id, next, 500).await else { return };
            if batch.is_empty() {
                break;
            }
            for line in batch {
                next = line.seq + 1;
                if send(log_event(&line)).await.is_err() {
                    return;
                }
            }
        }
        if task.state.is_terminal() {
            let _ = send(end_event(&task)).await;
            return;
        }
        while let Some(Ok(change)) = watch.recv().await {
            let key = &change.entry.key;
            if key.starts_with(&log_prefix) {
                let line = match kiln_store::records::decode_value::<LogLine>(key, &change.entry.value) {
                    Ok(line) => line,
                    Err(e) => {
                        // A line that does not read ends the stream rather than leaving a gap.
                        tracing::error!(error = %e, "task log line is unreadable");
                        return;
                    }
                };
                if line.seq >= next {
                    next = line.seq + 1;
                    if send(log_event(&line)).await.is_err() {
                        return;
                    }
                }
            } else if *key == task_key {
                let Ok(task) = records::decode::<Task>(&change.entry) else { return };
                if task.state.is_terminal() {
                    let _ = send(end_event(&task)).await;
                    return;
                }
                if send(progress_event(&task)).await.is_err() {
                    return;
                }
            }
        }
    });
    let stream = futures::stream::poll_fn(move |cx| receiver.poll_recv(cx).map(|event| event.map(Ok)));
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

fn json_event(name: &str, value: &impl Serialize) -> Event {
    Event::default().event(name).data(serde_json::to_string(value).unwrap_or_else(|_| "{}".to_string()))
}

fn log_event(line: &LogLine) -> Event {
    json_event("log", line).id(line.seq.to_string())
}

fn progress_event(task: &Task) -> Event {
    json_event("progress", task)
}

fn end_event(task: &Task) -> Event {
    json_event("end", task)
}
