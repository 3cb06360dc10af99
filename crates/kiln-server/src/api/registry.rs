//! Registry maintenance over the REST API: run garbage collection now instead of waiting
//! for its next turn (after deleting images, or in tests).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Ctx;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// What one garbage collection removed.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcReport {
    pub blobs_removed: u64,
    pub bytes_freed: u64,
    /// Repository links to removed blobs.
    pub links_removed: u64,
    /// Abandoned uploads removed.
    pub uploads_removed: u64,
}

/// Collect registry garbage: blobs no manifest references once their grace period has
/// passed, and abandoned uploads. Spans every organisation, so it needs `registry:write`
/// bound in all of them.
#[utoipa::path(post, path = "/v1/registry/gc", tag = "registry", operation_id = "collectRegistryGarbage",
    security(("bearer" = ["registry:write"])),
    responses((status = 200, body = GcReport), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "this server has no registry")))]
pub async fn collect(State(state): State<AppState>, Ctx(_ctx): Ctx) -> ApiResult<axum::Json<GcReport>> {
    let registry = state.registry_server.ok_or_else(|| ApiError::not_found("this server runs no registry"))?;
    let report = kiln_registry::gc::collect(&registry).await.map_err(|e| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("garbage collection failed: {}", e.message))
    })?;
    Ok(axum::Json(GcReport {
        blobs_removed: report.blobs_removed,
        bytes_freed: report.bytes_freed,
        links_removed: report.links_removed,
        uploads_removed: report.uploads_removed,
    }))
}
