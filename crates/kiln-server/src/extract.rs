//! Request-body extraction with Kiln's error shape: size limit (413), media type (415),
//! syntax and unknown fields (400, naming the field), instead of axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use kiln_model::FieldError;

use crate::error::ApiError;

/// Largest request body accepted. Objects are a few kilobytes; a definition file with
/// manifests inline stays far below this.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Raw body bytes, bounded by [`MAX_BODY_BYTES`].
pub struct Body(pub Bytes);

/// A refused body is still read (and dropped) up to this size, so the client gets to read
/// the 413 instead of a broken connection; beyond it the connection is simply closed.
const DRAIN_BYTES: usize = 64 * 1024 * 1024;

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Body, ApiError> {
        use futures::StreamExt;
        let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        if declared.is_some_and(|length| length > DRAIN_BYTES) {
            return Err(too_large());
        }
        let mut stream = req.into_body().into_data_stream();
        let mut collected = Vec::new();
        let mut seen = 0usize;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ApiError::bad_request(format!("reading the request body failed: {e}")))?;
            seen += chunk.len();
            if seen > DRAIN_BYTES {
                break;
            }
            if seen <= MAX_BODY_BYTES {
                collected.extend_from_slice(&chunk);
            }
        }
        if seen > MAX_BODY_BYTES {
            return Err(too_large());
        }
        Ok(Body(Bytes::from(collected)))
    }
}

fn too_large() -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("request body is larger than {MAX_BODY_BYTES} bytes"))
}

/// A JSON body decoded into `T`.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<JsonBody<T>, ApiError> {
        require_json(req.headers())?;
        let Body(bytes) = Body::from_request(req, state).await?;
        decode_json(&bytes).map(JsonBody)
    }
}

pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        None => Ok(()),
        Some(ct) if is_json(ct) => Ok(()),
        Some(ct) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type {ct:?} is not accepted here: send application/json"),
        )),
    }
}

pub fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        json_error(if path == "." { String::new() } else { path }, e.into_inner())
    })?;
    deserializer.end().map_err(|e| json_error(String::new(), e))?;
    Ok(value)
}

fn json_error(field: String, inner: serde_json::Error) -> ApiError {
    let mut detail = FieldError::new(field.clone(), inner.to_string());
    if inner.is_syntax() || inner.is_eof() {
        detail.line = Some(inner.line() as u64);
        detail.column = Some(inner.column() as u64);
    }
    let message = if field.is_empty() {
        format!("invalid JSON body: {inner}")
    } else {
        format!("invalid JSON body at {field}: {inner}")
    };
    ApiError::bad_request(message).with_details(vec![detail])
}

/// A path parameter, with Kiln's error shape when it cannot be read (bad percent-encoding).
pub struct PathParam<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> axum::extract::FromRequestParts<S> for PathParam<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<PathParam<T>, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| PathParam(value))
            .map_err(|e| ApiError::bad_request(format!("the path cannot be read: {}", e.body_text().to_lowercase())))
    }
}
