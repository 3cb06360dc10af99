//! The JSON Schemas of definition files, published so editors and CI can check files
//! before they reach Kiln.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use kiln_model::definition::{SCHEMA_NAMES, schema};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::PathParam;

#[derive(Serialize, ToSchema)]
pub struct SchemaLink {
    pub name: String,
    pub url: String,
}

#[derive(Serialize, ToSchema)]
pub struct SchemaList {
    pub items: Vec<SchemaLink>,
}

/// The schemas available.
#[utoipa::path(get, path = "/v1/schemas", tag = "definitions", operation_id = "listSchemas", security(()), responses((status = 200, body = SchemaList)))]
pub async fn list() -> axum::Json<SchemaList> {
    axum::Json(SchemaList {
        items: SCHEMA_NAMES
            .iter()
            .map(|n| SchemaLink { name: n.to_string(), url: format!("/v1/schemas/{n}") })
            .collect(),
    })
}

/// One schema: `image-definition` (the seed format), `base-image`, `image`, `package`,
/// `package-source` (documents with `kind`).
#[utoipa::path(get, path = "/v1/schemas/{name}", tag = "definitions", operation_id = "getSchema", security(()), params(("name" = String, Path)),
    responses((status = 200, description = "A JSON Schema (draft 2020-12)", body = Object), (status = 404, body = ErrorBody)))]
pub async fn get(PathParam(name): PathParam<String>) -> ApiResult<Response> {
    let schema = schema(&name).ok_or_else(|| {
        ApiError::not_found(format!("no schema called {name:?}: use one of {}", SCHEMA_NAMES.join(", ")))
    })?;
    Ok(([(header::CONTENT_TYPE, "application/schema+json")], axum::Json(schema)).into_response())
}
