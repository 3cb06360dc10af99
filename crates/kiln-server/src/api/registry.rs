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

/// Copy an image from this registry to another one.
#[derive(serde::Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CopyRequest {
    /// A repository of this registry in the request's organisation with a tag or digest:
    /// `default/app:1.0` or `default/app@sha256:…`.
    #[schema(example = "default/app:1.0")]
    pub source: String,
    /// Where to: `host[:port]/repository[:tag]`; the organisation's registry credentials for
    /// the host are used.
    #[schema(example = "registry.example:5000/team/app:1.0")]
    pub destination: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CopyResult {
    /// Digest of the copied manifest (the same at the destination).
    pub digest: String,
    pub destination: String,
    pub blobs_copied: u64,
    /// Blobs the destination already had.
    pub blobs_present: u64,
    pub bytes_copied: u64,
}

/// Push an image of this registry to another registry (`kiln push`).
#[utoipa::path(post, path = "/v1/registry/copies", tag = "registry", operation_id = "copyImageOut",
    security(("bearer" = ["repositories:read"])), request_body = CopyRequest,
    responses((status = 200, body = CopyResult), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "source unknown, or no registry"),
        (status = 422, body = ErrorBody), (status = 502, body = ErrorBody, description = "the destination refused or failed")))]
pub async fn copy(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    crate::extract::JsonBody(request): crate::extract::JsonBody<CopyRequest>,
) -> ApiResult<axum::Json<CopyResult>> {
    use kiln_registry::copy::CopyError;
    let registry = state.registry_server.ok_or_else(|| ApiError::not_found("this server runs no registry"))?;
    let not_ours = || {
        ApiError::field(
            "source",
            format!(
                "{:?} is not a repository of organisation {:?}: name it <organisation>/<name>:<tag>",
                request.source, ctx.org
            ),
        )
    };
    let source = kiln_model::reference::Reference::parse(&request.source).map_err(|_| not_ours())?;
    let repository = source.repository.clone();
    if source.registry.is_some()
        || kiln_registry::names::check_repository(&repository).is_err()
        || kiln_registry::names::organisation(&repository) != &*ctx.org
    {
        return Err(not_ours());
    }
    let reference = source.digest.or(source.tag).unwrap_or_else(|| "latest".to_string());
    let destination = kiln_model::reference::Reference::parse(&request.destination)
        .map_err(|e| ApiError::field("destination", e.to_string()))?;
    let host = destination
        .registry
        .clone()
        .ok_or_else(|| ApiError::field("destination", "name the registry host: host[:port]/repository[:tag]"))?;
    let to_reference = destination.digest.clone().or(destination.tag.clone()).unwrap_or_else(|| "latest".to_string());
    let options = kiln_builder::hosts::host_options(state.store.as_ref(), &ctx.org, &host).await?;
    let client =
        kiln_registry_client::Client::new(&host, options).map_err(|e| ApiError::field("destination", e.to_string()))?;
    let report = kiln_registry::copy::copy_out(
        &registry,
        &repository,
        &reference,
        &client,
        &destination.repository,
        &to_reference,
    )
    .await
    .map_err(|e| match e {
        CopyError::Source(message) => ApiError::not_found(message),
        CopyError::Destination(error) => ApiError::new(StatusCode::BAD_GATEWAY, format!("{host}: {error}")),
    })?;
    Ok(axum::Json(CopyResult {
        digest: report.digest.map(|d| d.to_string()).unwrap_or_default(),
        destination: request.destination,
        blobs_copied: report.blobs_copied,
        blobs_present: report.blobs_present,
        bytes_copied: report.bytes_copied,
    }))
}
