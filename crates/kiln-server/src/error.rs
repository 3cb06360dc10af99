//! The one error shape every endpoint answers with: `{code, message, details}`, where
//! `code` is the HTTP status (as Dispatch did) and `details` name fields or objects.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use kiln_model::{FieldError, ValidationErrors};
use kiln_store::StoreError;

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The HTTP status code.
    #[schema(example = 409)]
    pub code: u16,
    #[schema(example = "image \"python3-postgres\" already exists")]
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldError>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub details: Vec<FieldError>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), details: Vec::new() }
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn invalid(errors: ValidationErrors) -> ApiError {
        let message = match errors.0.as_slice() {
            [one] if one.field.is_empty() => one.to_string(),
            [one] => format!("invalid {one}"),
            many => format!("{} problems: {errors}", many.len()),
        };
        ApiError { status: StatusCode::UNPROCESSABLE_ENTITY, message, details: errors.0 }
    }
    pub fn field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::invalid(ValidationErrors::single(field, message))
    }
    pub fn with_details(mut self, details: Vec<FieldError>) -> ApiError {
        self.details = details;
        self
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Conflict { key, .. } => {
                ApiError::conflict(format!("{key} was changed by another request meanwhile: fetch it again and retry"))
            }
            other => {
                tracing::error!(error = %other, "store failure");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("the metadata store failed: {other}"))
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { code: self.status.as_u16(), message: self.message, details: self.details };
        (self.status, axum::Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
