//! The handlers behind each `/v2/<name>/…` endpoint; `crate::route` picks one.

pub mod blob;
pub mod listing;
pub mod manifest;
pub mod upload;

use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;

/// Sets a header whose value the registry made itself (digests, locations, ranges).
pub fn set(response: &mut Response, name: &'static str, value: impl AsRef<str>) {
    if let Ok(value) = HeaderValue::from_str(value.as_ref()) {
        response.headers_mut().insert(HeaderName::from_static(name), value);
    }
}
