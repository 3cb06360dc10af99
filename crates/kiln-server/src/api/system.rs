//! Liveness: is the server up and can it read its store.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Ctx;
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
#[utoipa::path(get, path = "/healthz", tag = "system", operation_id = "health", security(()), responses((status = 200, body = Health), (status = 500, body = ErrorBody)))]
pub async fn health(State(state): State<AppState>) -> ApiResult<axum::Json<Health>> {
    let revision = state.store.revision().await?;
    Ok(axum::Json(Health { status: "ok".into(), revision, version: env!("CARGO_PKG_VERSION").into() }))
}

/// The caller as Kiln sees it.
#[derive(Serialize, ToSchema)]
pub struct Identity {
    pub subject: String,
    /// The organisation the request acted in (`X-Kiln-Org`, default `default`).
    pub organization: String,
    /// Permissions held in that organisation, such as `images:write`.
    pub permissions: Vec<String>,
}

/// Who am I: the token's subject and its permissions in the requested organisation.
#[utoipa::path(get, path = "/v1/whoami", tag = "system", operation_id = "whoami", security(("bearer" = [])),
    responses((status = 200, body = Identity), (status = 401, body = ErrorBody)))]
pub async fn whoami(Ctx(ctx): Ctx) -> axum::Json<Identity> {
    axum::Json(Identity {
        subject: ctx.subject.to_string(),
        organization: ctx.org.to_string(),
        permissions: ctx.permissions.iter().map(ToString::to_string).collect(),
    })
}
