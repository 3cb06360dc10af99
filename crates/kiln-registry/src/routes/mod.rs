//! The handlers behind each `/v2/<name>/…` endpoint; `crate::route` picks one.

pub mod blob;
pub mod listing;
pub mod manifest;
pub mod upload;

use std::collections::HashMap;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;

/// The request's query parameters; an unreadable query counts as none.
pub fn query(request: &Request) -> HashMap<String, String> {
    request.uri().query().and_then(|q| serde_urlencoded::from_str(q).ok()).unwrap_or_default()
}

/// Sets a header whose value the registry made itself (digests, locations, ranges).
pub fn set(response: &mut Response, name: &'static str, value: impl AsRef<str>) {
    if let Ok(value) = HeaderValue::from_str(value.as_ref()) {
        response.headers_mut().insert(HeaderName::from_static(name), value);
    }
}
