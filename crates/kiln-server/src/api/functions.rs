//! Functions over the REST API: pushing code (done by `kiln_builder::functions::push`, which
//! puts it on a built image as one small layer), then the function as an object to list,
//! read and delete.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use kiln_builder::functions::push::{MAX_CODE, PushError, Pusher};
use kiln_builder::functions::remove_ops;
use kiln_model::Function;
use kiln_model::function::check_function_name;
use kiln_store::{StoreError, records};

use crate::auth::{Ctx, RequestContext};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::PathParam;
use crate::state::AppState;

fn unprocessable(message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
}

impl From<PushError> for ApiError {
    fn from(e: PushError) -> ApiError {
        let message = e.to_string();
        let status = match e {
            PushError::Store(store) => return store.into(),
            PushError::NoImage { .. } => StatusCode::NOT_FOUND,
            PushError::NotReady { .. } | PushError::ImageUnusable(_) | PushError::Changed { .. } => {
                StatusCode::CONFLICT
            }
            PushError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            PushError::Malformed(_) => StatusCode::UNPROCESSABLE_ENTITY,
            PushError::Unrunnable(_) => StatusCode::BAD_REQUEST,
            PushError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, message)
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
    let (Some(registry), Some(settings)) = (state.registry_server.as_ref(), state.builds.as_ref()) else {
        return Err(ApiError::not_found("this server runs no builder"));
    };
    let body = axum::body::to_bytes(body, MAX_CODE)
        .await
        .map_err(|_| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "function code is larger than 64 MiB"))?;
    let pusher = Pusher { store: state.store.as_ref(), registry, settings, engine: state.tasks.as_deref() };
    let pushed = pusher.push(&ctx.org, &name, &function, &body).await?;
    let status = if pushed.replaced { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, axum::Json(pushed.function)))
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
