//! Liveness: is the server up and can it read its store.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` when the store answers.
    pub status: String,
    /// Newest store revision.
    pub revision: u64,
    pub version: String,
}

/// Health check.
#[utoipa::path(get, path = "/healthz", tag = "system", operation_id = "health", responses((status = 200, body = Health), (status = 500, body = ErrorBody)))]
pub async fn health(State(state): State<AppState>) -> ApiResult<axum::Json<Health>> {
    let revision = state.store.revision().await?;
    Ok(axum::Json(Health { status: "ok".into(), revision, version: env!("CARGO_PKG_VERSION").into() }))
}
