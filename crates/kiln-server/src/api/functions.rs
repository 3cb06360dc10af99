//! Functions over the REST API. Pushing code puts it on a built image as one small layer and
//! a new manifest that reuses every layer of the image, so changing code never rebuilds,
//! re-pushes or even reads the dependencies (the CNAB seed's separation of code and
//! runtime); the function is then an object to list, read and delete.

use std::io::Read;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

use kiln_build::{NewLayer, write_layer};
use kiln_model::function::{check_function_name, function_tag};
use kiln_model::{Function, Image, Status};
use kiln_packages::archive::{Entry, EntryKind};
use kiln_store::{Precondition, StoreError, records};

use crate::auth::{Ctx, RequestContext};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::PathParam;
use crate::state::AppState;
use kiln_builder::builds::parent::image_repository;
use kiln_builder::functions::compose::{ComposeError, compose, load_runtime};
use kiln_builder::functions::validate::check_code;
use kiln_builder::functions::{publish_ops, remove_ops};

/// Largest upload of function code (compressed or not) and largest unpacked tar.
const MAX_CODE: usize = 64 << 20;

fn unprocessable(message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
}

fn internal(message: String) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
}

/// The uploaded tar (gzip-compressed or not) as checked entries, relative to the code's root.
fn code_entries(body: &[u8]) -> ApiResult<Vec<Entry>> {
    let tar = if body.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .take(MAX_CODE as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| unprocessable(format!("function code: not a valid gzip stream: {e}")))?;
        if out.len() > MAX_CODE {
            return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "function code unpacks to more than 64 MiB"));
        }
        out
    } else {
        body.to_vec()
    };
    kiln_packages::deb::unpack::safe_entries("function code", &tar)
        .map_err(|e| unprocessable(format!("function code: {e}")))
}

/// The code's entries below `function/`, readable by the function server's user.
fn layer_entries(entries: Vec<Entry>) -> Vec<Entry> {
    let mut out = vec![Entry { path: "function".into(), kind: EntryKind::Directory, mode: 0o755, uid: 0, gid: 0 }];
    for entry in entries {
        let mode = match &entry.kind {
            EntryKind::Directory => 0o755,
            EntryKind::File { .. } if entry.mode & 0o111 != 0 => 0o755,
            _ => 0o644,
        };
        let kind = match entry.kind {
            EntryKind::Hardlink { target } => EntryKind::Hardlink { target: format!("function/{target}") },
            other => other,
        };
        out.push(Entry { path: format!("function/{}", entry.path), kind, mode, uid: 0, gid: 0 });
    }
    out
}

fn compose_failed(e: ComposeError) -> ApiError {
    match e {
        ComposeError::NoManifest { .. } | ComposeError::Unusable { .. } => ApiError::conflict(e.to_string()),
        other => internal(other.to_string()),
    }
}

async fn read_function(state: &AppState, ctx: &RequestContext, name: &str) -> ApiResult<(Function, u64)> {
    let missing = || ApiError::not_found(format!("function {name:?} does not exist in organization {:?}", ctx.org));
    if ctx.public_only {
        return Err(missing());
    }
    let entry = state.store.get(&records::key::<Function>(&ctx.org, name)).await?.ok_or_else(missing)?;
    Ok((records::decode(&entry)?, entry.mod_revision))
}

/// Put a function's code on an image: one layer (under `/function`) on top of the image's
/// own, written as the manifest `<org>/<image>:fn-<function>`. Nothing is rebuilt. The code
/// must hold what the image's function server loads (`KILN_FUNCTION_MODULE`, `handler.py`
/// or `handler.js`, defining `KILN_FUNCTION_HANDLER`, `handle`). A function of the same name
/// is replaced, also when it was on another image (its old tag is removed).
#[utoipa::path(put, path = "/v1/images/{name}/functions/{function}", tag = "functions", operation_id = "putFunctionCode", security(("bearer" = ["images:write"])),
    params(("name" = String, Path), ("function" = String, Path, description = "Lower-case letters, digits, `-`, `_` and `.`")),
    request_body(content = Vec<u8>, content_type = "application/x-tar", description = "The function's directory as a tar, gzip-compressed or not"),
    responses((status = 200, description = "The function was replaced", body = Function), (status = 201, body = Function),
        (status = 400, description = "The code cannot run on the image (empty, no module, no handler)", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The image is not READY, or the function changed meanwhile", body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_code(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParam((name, function)): PathParam<(String, String)>,
    body: Body,
) -> ApiResult<(StatusCode, axum::Json<Function>)> {
    check_function_name(&function).map_err(unprocessable)?;
    let (Some(registry), Some(settings)) = (state.registry_server.clone(), state.builds.clone()) else {
        return Err(ApiError::not_found("this server runs no builder"));
    };
    let entry = state.store.get(&records::key::<Image>(&ctx.org, &name)).await?;
    let image: Image =
        entry.as_ref().map(records::decode).transpose()?.ok_or_else(|| {
            ApiError::not_found(format!("image {name:?} does not exist in organization {:?}", ctx.org))
        })?;
    let runtime_digest = match (&image.digest, image.status) {
        (Some(digest), Status::Ready | Status::Updating) => digest.clone(),
        _ => {
            return Err(ApiError::conflict(format!(
                "image {name:?} is {}: wait until it is READY",
                image.status.as_str()
            )));
        }
    };
    let previous_entry = state.store.get(&records::key::<Function>(&ctx.org, &function)).await?;
    let previous: Option<Function> = previous_entry.as_ref().map(records::decode).transpose()?;
    let body = axum::body::to_bytes(body, MAX_CODE)
        .await
        .map_err(|_| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "function code is larger than 64 MiB"))?;
    let entries = code_entries(&body)?;

    let repository = image_repository(&ctx.org, &image.name);
    let runtime = load_runtime(&registry, &repository, &image.name, &runtime_digest).await.map_err(compose_failed)?;
    check_code(&image.name, &runtime.runtime, &entries).map_err(ApiError::bad_request)?;

    let entries = layer_entries(entries);
    let scratch = settings.cache_dir.join("function-scratch");
    let epoch = settings.source_date_epoch;
    let layer = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
        write_layer(&entries, epoch, &scratch).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| internal(format!("writing the code layer stopped: {e}")))?
    .map_err(|e| internal(format!("writing the code layer: {e}")))?;
    let imported = registry.import_file(&repository, &layer.path, &layer.digest).await;
    let _ = tokio::fs::remove_file(&layer.path).await;
    imported.map_err(|e| internal(e.message))?;
    let code = NewLayer {
        descriptor: layer.descriptor(),
        diff_id: layer.diff_id.clone(),
        created_by: format!("kiln: function {function} code"),
    };
    let digest = compose(&registry, &repository, &runtime, &function, code, epoch).await.map_err(compose_failed)?;

    let now = Utc::now();
    let record = Function {
        name: function.clone(),
        organization: ctx.org.to_string(),
        image: image.name.clone(),
        status: Status::Ready,
        reason: Vec::new(),
        reference: format!("{}/{repository}:{}", settings.registry_host, function_tag(&function)),
        digest: digest.to_string(),
        runtime_digest,
        layer: layer.digest.to_string(),
        layer_size: layer.size,
        layer_diff_id: layer.diff_id.to_string(),
        language: runtime.runtime.language.map(str::to_string),
        module: runtime.runtime.module_file(),
        handler: runtime.runtime.language.map(|_| runtime.runtime.handler.clone()),
        compose_task: None,
        failed_runtime_digest: None,
        created_time: Some(previous.as_ref().and_then(|p| p.created_time).unwrap_or(now)),
        updated_time: Some(now),
        revision: None,
    };
    let expect = previous_entry.as_ref().map_or(Precondition::Absent, |e| Precondition::Revision(e.mod_revision));
    let ops = publish_ops(state.store.as_ref(), &record, expect, previous.as_ref()).await?;
    let revision = match state.store.txn(ops).await {
        Ok(revision) => revision,
        Err(StoreError::Conflict { .. }) => {
            return Err(ApiError::conflict(format!(
                "function {function:?} changed while its code was pushed: push it again"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    if let (Some(engine), Some(task)) = (&state.tasks, previous.as_ref().and_then(|p| p.compose_task.as_deref())) {
        // Its result would be thrown away; stop spending time on it.
        let _ = engine.cancel(&ctx.org, task).await;
    }
    let mut record = record;
    record.revision = Some(revision);
    let status = if previous.is_some() { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, axum::Json(record)))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FunctionList {
    pub items: Vec<Function>,
    /// Pass as `pageToken` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// The organisation's functions, by name.
#[utoipa::path(get, path = "/v1/functions", tag = "functions", operation_id = "listFunctions", security(("bearer" = ["images:read"])),
    params(("image" = Option<String>, Query, description = "only functions on this image"),
        ("limit" = Option<usize>, Query, description = "at most this many (1 to 1000, default 1000)"),
        ("pageToken" = Option<String>, Query)),
    responses((status = 200, body = FunctionList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    RawQuery(raw): RawQuery,
) -> ApiResult<axum::Json<FunctionList>> {
    let (mut image, mut limit, mut after) = (None, 1000usize, None);
    for (name, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "image" => image = Some(value.into_owned()),
            "limit" => {
                limit =
                    value.parse().ok().filter(|n| (1..=1000).contains(n)).ok_or_else(|| {
                        ApiError::bad_request(format!("limit {value:?} must be a number from 1 to 1000"))
                    })?
            }
            "pageToken" => after = Some(value.into_owned()),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {other:?}: use image, limit or pageToken"
                )));
            }
        }
    }
    let prefix = records::prefix::<Function>(&ctx.org);
    let mut items = Vec::new();
    let mut next_page_token = None;
    if !ctx.public_only {
        let mut cursor = after.map(|name| format!("{prefix}{name}"));
        'pages: loop {
            let page = state.store.list(&prefix, cursor.as_deref(), 500).await?;
            for entry in &page.entries {
                let function: Function = records::decode(entry)?;
                if image.as_ref().is_some_and(|i| *i != function.image) {
                    continue;
                }
                if items.len() == limit {
                    next_page_token = items.last().map(|f: &Function| f.name.clone());
                    break 'pages;
                }
                items.push(function);
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    Ok(axum::Json(FunctionList { items, next_page_token }))
}

/// One function: its image, reference and digest, the image digest it was composed over.
#[utoipa::path(get, path = "/v1/functions/{name}", tag = "functions", operation_id = "getFunction", security(("bearer" = ["images:read"])),
    params(("name" = String, Path)),
    responses((status = 200, body = Function), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParam(name): PathParam<String>,
) -> ApiResult<axum::Json<Function>> {
    Ok(axum::Json(read_function(&state, &ctx, &name).await?.0))
}

/// Deletes a function and its image's tag and manifest; the registry's garbage collection
/// then frees the blobs only it used (its code layer, its config).
#[utoipa::path(delete, path = "/v1/functions/{name}", tag = "functions", operation_id = "deleteFunction", security(("bearer" = ["images:write"])),
    params(("name" = String, Path)),
    responses((status = 200, body = Function), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The function changed meanwhile", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParam(name): PathParam<String>,
) -> ApiResult<axum::Json<Function>> {
    let (function, revision) = read_function(&state, &ctx, &name).await?;
    let ops = remove_ops(state.store.as_ref(), &function, revision).await?;
    match state.store.txn(ops).await {
        Ok(_) => {}
        Err(StoreError::Conflict { .. }) => {
            return Err(ApiError::conflict(format!("function {name:?} changed meanwhile: delete it again")));
        }
        Err(e) => return Err(e.into()),
    }
    if let (Some(engine), Some(task)) = (&state.tasks, function.compose_task.as_deref()) {
        let _ = engine.cancel(&ctx.org, task).await;
    }
    Ok(axum::Json(function))
}
