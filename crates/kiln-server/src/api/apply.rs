//! `POST /v1/apply`: a whole definition file (the seed's format or Dispatch-style
//! multi-document YAML, or JSON) created or updated in one transaction: every document is
//! checked first, and either all are written or none.

use std::path::{Path, PathBuf};

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use kiln_model::FieldError;
use kiln_model::definition::{Definition, Kind, load};
use kiln_model::includes::{Includes, ReadError, Reader};

use crate::auth::{Ctx, RequestContext};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Body;
use crate::objects::{self, Planned};
use crate::resource::Resource;
use crate::state::AppState;
use crate::view::View;

#[derive(Debug, Clone, Copy, Default, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApplyMode {
    /// Every document must name a new object.
    #[default]
    Create,
    /// Every document must name an existing object; a `revision` in it is checked.
    Update,
}

#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents the query; `parse_mode` reads it.
pub struct ApplyParams {
    /// `create` (default) or `update`.
    #[param(inline)]
    mode: Option<ApplyMode>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppliedItem {
    /// 0-based index of the document in the file.
    pub document: usize,
    pub kind: Kind,
    pub name: String,
    /// `created` or `updated`.
    pub action: String,
    /// The object as stored.
    pub object: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct ApplyResult {
    pub items: Vec<AppliedItem>,
}

fn parse_mode(raw: Option<&str>) -> ApiResult<ApplyMode> {
    let mut mode = ApplyMode::default();
    for (name, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match (name.as_ref(), value.as_ref()) {
            ("mode", "create") => mode = ApplyMode::Create,
            ("mode", "update") => mode = ApplyMode::Update,
            ("mode", other) => {
                return Err(ApiError::bad_request(format!("mode {other:?} is not known: use create or update")));
            }
            (other, _) => {
                return Err(ApiError::bad_request(format!("unknown query parameter {other:?}: only mode is accepted")));
            }
        }
    }
    Ok(mode)
}

/// Refuses every `@file`, `-r` and `-c` reference: the server's files are not the user's.
struct NoLocalFiles;

impl Reader for NoLocalFiles {
    fn read(&self, path: &Path, _confine_to: Option<&Path>, _limit: u64) -> Result<Vec<u8>, ReadError> {
        Err(ReadError::Io(format!(
            "the server cannot read local files; inline the text of {:?} (the kiln CLI does this for you)",
            path.display().to_string()
        )))
    }
}

/// Create or update every object of a definition file at once.
#[utoipa::path(post, path = "/v1/apply", tag = "definitions", operation_id = "apply", security(("bearer" = [])), params(ApplyParams),
    request_body(description = "A definition file: YAML documents separated by `---`, or JSON (one object or a list)",
        content((String = "application/yaml"), (Object = "application/json"))),
    responses(
        (status = 200, description = "Updated", body = ApplyResult),
        (status = 201, description = "Created", body = ApplyResult),
        (status = 400, description = "Unreadable body", body = ErrorBody),
        (status = 409, description = "An object exists (create), or changed meanwhile", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, description = "Invalid documents; `details` give document, line and column", body = ErrorBody),
    ))]
pub async fn apply(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    Body(bytes): Body,
) -> ApiResult<Response> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if !matches!(
            essence.as_str(),
            "application/yaml" | "application/x-yaml" | "text/yaml" | "text/plain" | "application/json"
        ) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("content type {ct:?} is not accepted here: send application/yaml or application/json"),
            ));
        }
    }
    let text =
        std::str::from_utf8(&bytes).map_err(|e| ApiError::bad_request(format!("the body is not UTF-8 text: {e}")))?;
    let mode = parse_mode(raw.as_deref())?;
    // Every reference reaches the reader, which refuses it, so the answer says why.
    let loaded = load(text, &Includes { root: PathBuf::new(), allow_outside: true, reader: &NoLocalFiles });
    let definitions = loaded.map_err(ApiError::invalid)?;
    let mut view = View::new(state.store.clone());
    let mut ops = Vec::new();
    let mut items = Vec::new();
    let mut failures: Vec<(usize, ApiError)> = Vec::new();
    for loaded in definitions {
        let document = loaded.document;
        let kind = loaded.definition.kind();
        let planned = match loaded.definition {
            Definition::BaseImage(o) => plan(&mut view, &ctx, mode, o).await,
            Definition::Image(o) => plan(&mut view, &ctx, mode, o).await,
            Definition::Package(o) => plan(&mut view, &ctx, mode, o).await,
            Definition::PackageSource(o) => plan(&mut view, &ctx, mode, o).await,
        };
        match planned {
            Ok((name, object, mut item_ops)) => {
                ops.append(&mut item_ops);
                let action = match mode {
                    ApplyMode::Create => "created",
                    ApplyMode::Update => "updated",
                };
                items.push(AppliedItem { document, kind, name, action: action.into(), object });
            }
            Err(e) => failures.push((document, e)),
        }
    }
    if !failures.is_empty() {
        return Err(combine(failures));
    }
    let revision = match view.store().txn(merge_checks(ops)).await {
        Ok(revision) => revision,
        Err(kiln_store::StoreError::Conflict { key, expected, .. }) => {
            let owner = items.iter().find(|item| key.ends_with(&format!("/{}", item.name)));
            return Err(ApiError::conflict(match (owner, expected) {
                (Some(item), kiln_store::Precondition::Absent) => {
                    format!(
                        "document {}: {} {:?} was created by another request meanwhile",
                        item.document,
                        item.kind.as_str(),
                        item.name
                    )
                }
                (Some(item), _) => format!(
                    "document {}: {} {:?} was changed by another request meanwhile: fetch it again and retry",
                    item.document,
                    item.kind.as_str(),
                    item.name
                ),
                (None, _) => {
                    "an object the file depends on was changed by another request meanwhile: retry".to_string()
                }
            }));
        }
        Err(e) => return Err(e.into()),
    };
    for item in &mut items {
        item.object["revision"] = serde_json::json!(revision);
    }
    let status = match mode {
        ApplyMode::Create => StatusCode::CREATED,
        ApplyMode::Update => StatusCode::OK,
    };
    Ok((status, axum::Json(ApplyResult { items })).into_response())
}

async fn plan<R: Resource>(
    view: &mut View,
    ctx: &RequestContext,
    mode: ApplyMode,
    object: R,
) -> ApiResult<(String, serde_json::Value, Vec<kiln_store::Op>)> {
    ctx.require(R::COLLECTION, "write")?;
    let name = object.key_name();
    let Planned { object, ops } = match mode {
        ApplyMode::Create => objects::plan_create(view, &ctx.org, object).await?,
        ApplyMode::Update => {
            let expected = object.revision();
            objects::plan_update(view, &ctx.org, &name, object, expected).await?
        }
    };
    let value = serde_json::to_value(&object).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok((name, value, ops))
}

/// Several documents may depend on the same object (many images on one base image): keep
/// one check and one dependents touch per key, and no check where the batch writes the key.
fn merge_checks(ops: Vec<kiln_store::Op>) -> Vec<kiln_store::Op> {
    use kiln_store::Op;
    let is_touch = |op: &Op| matches!(op, Op::Put { key, .. } if key.starts_with("dependents/"));
    let written: std::collections::HashSet<String> =
        ops.iter().filter(|op| !matches!(op, Op::Check { .. })).map(|op| op.key().to_string()).collect();
    let mut seen = std::collections::HashSet::new();
    ops.into_iter()
        .filter(|op| match op {
            Op::Check { key, .. } => !written.contains(key) && seen.insert(key.clone()),
            op if is_touch(op) => seen.insert(op.key().to_string()),
            _ => true,
        })
        .collect()
}

/// One answer for all failed documents: their common status if they agree, else 422.
fn combine(failures: Vec<(usize, ApiError)>) -> ApiError {
    let status = failures[0].1.status;
    let status =
        if failures.iter().all(|(_, e)| e.status == status) { status } else { StatusCode::UNPROCESSABLE_ENTITY };
    let mut messages = Vec::new();
    let mut details = Vec::new();
    for (document, error) in failures {
        messages.push(format!("document {document}: {}", error.message));
        if error.details.is_empty() {
            let mut detail = FieldError::new("", error.message);
            detail.document = Some(document);
            details.push(detail);
        }
        for mut detail in error.details {
            detail.document = Some(document);
            details.push(detail);
        }
    }
    ApiError::new(status, messages.join("; ")).with_details(details)
}
