//! HTTP handlers for `/v1`: thin wrappers that parse the request, call the object
//! operations and shape the answer (status, `ETag`, `Location`).

pub mod apply;
pub mod audit;
pub mod builds;
pub mod functions;
pub mod identity;
pub mod registry;
pub mod resources;
pub mod schemas;
pub mod system;
pub mod tasks;
pub mod tokens;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::IntoParams;

use kiln_model::{Decision, Ecosystem, Status};

use crate::error::{ApiError, ApiResult};
use crate::objects::{DEFAULT_PAGE, MAX_PAGE};
use crate::resource::ListFilter;

/// Query parameters of the base-image and image lists. (The structs below document the
/// queries; `parse_list_query` reads them and refuses anything else.)
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[allow(dead_code)]
pub struct ImageListParams {
    /// Tag filter, `key` or `key=value`; repeat to require several.
    tag: Option<Vec<String>>,
    /// Only objects of this language.
    language: Option<String>,
    /// Only objects in this status (`INITIALIZED`, `READY`, `ERROR`, …).
    status: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<usize>,
    /// `nextPageToken` of the previous page.
    page_token: Option<String>,
}

/// Query parameters of the package-source list.
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[allow(dead_code)]
pub struct SourceListParams {
    /// Tag filter, `key` or `key=value`; repeat to require several.
    tag: Option<Vec<String>>,
    /// Only sources of this ecosystem (`deb`, `pypi`, `npm`, …).
    ecosystem: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<usize>,
    /// `nextPageToken` of the previous page.
    page_token: Option<String>,
}

/// Query parameters of a list with paging only.
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[allow(dead_code)]
pub struct PageParams {
    /// Page size, 1 to 1000 (default 100).
    limit: Option<usize>,
    /// `nextPageToken` of the previous page.
    page_token: Option<String>,
}

/// Query parameters of the package catalog list.
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[allow(dead_code)]
pub struct PackageListParams {
    /// Only entries of this ecosystem (`deb`, `pypi`, `npm`, …).
    ecosystem: Option<String>,
    /// Only `approved` or `denied` entries.
    decision: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<usize>,
    /// `nextPageToken` of the previous page.
    page_token: Option<String>,
}

pub struct ListQuery {
    pub filter: ListFilter,
    pub limit: usize,
    pub page_token: Option<String>,
}

/// Parses a list query, refusing unknown parameters and filters the kind does not have.
pub fn parse_list_query(raw: Option<&str>, allowed: &[&str]) -> ApiResult<ListQuery> {
    let mut query = ListQuery { filter: ListFilter::default(), limit: DEFAULT_PAGE, page_token: None };
    for (name, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let value = value.into_owned();
        if !allowed.contains(&name.as_ref()) && !matches!(name.as_ref(), "limit" | "pageToken") {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter {name:?}: use one of {}, limit, pageToken",
                allowed.join(", ")
            )));
        }
        match name.as_ref() {
            "tag" => query.filter.tags.push(value),
            "language" => query.filter.language = Some(value),
            "status" => {
                query.filter.status = Some(
                    Status::parse(&value)
                        .ok_or_else(|| ApiError::bad_request(format!("status {value:?} is not a status")))?,
                )
            }
            "ecosystem" => {
                query.filter.ecosystem = Some(Ecosystem::parse(&value).ok_or_else(|| {
                    ApiError::bad_request(format!("ecosystem {value:?} is not known: use deb, rpm, apk, pypi or npm"))
                })?)
            }
            "decision" => {
                query.filter.decision = Some(match value.as_str() {
                    "approved" => Decision::Approved,
                    "denied" => Decision::Denied,
                    _ => return Err(ApiError::bad_request(format!("decision {value:?} is not approved or denied"))),
                })
            }
            "limit" => {
                query.limit = value.parse::<usize>().ok().filter(|n| (1..=MAX_PAGE).contains(n)).ok_or_else(|| {
                    ApiError::bad_request(format!("limit {value:?} must be a number from 1 to {MAX_PAGE}"))
                })?
            }
            _ => query.page_token = Some(value),
        }
    }
    Ok(query)
}

/// `If-Match: "12"` (or `12`); `*` means "any existing revision" and is the same as none.
pub fn if_match(headers: &HeaderMap) -> ApiResult<Option<u64>> {
    let Some(value) = headers.get(header::IF_MATCH) else { return Ok(None) };
    let text = value.to_str().map_err(|_| ApiError::bad_request("If-Match is not readable text"))?.trim();
    if text == "*" {
        return Ok(None);
    }
    let text = text.trim_start_matches("W/").trim_matches('"');
    text.parse::<u64>().map(Some).map_err(|_| {
        ApiError::bad_request(format!("If-Match {text:?} is not a revision: send the ETag a GET returned"))
    })
}

/// `?force=true` on deletes.
pub fn force_flag(raw: Option<&str>) -> ApiResult<bool> {
    let mut force = false;
    for (name, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match (name.as_ref(), value.as_ref()) {
            ("force", "true" | "1" | "") => force = true,
            ("force", "false" | "0") => force = false,
            ("force", other) => return Err(ApiError::bad_request(format!("force {other:?} must be true or false"))),
            (other, _) => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {other:?}: only force is accepted"
                )));
            }
        }
    }
    Ok(force)
}

/// A JSON answer with the object's revision as its `ETag`.
pub fn with_etag<T: Serialize>(
    status: StatusCode,
    revision: Option<u64>,
    location: Option<String>,
    body: &T,
) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(revision) = revision
        && let Ok(value) = HeaderValue::from_str(&format!("\"{revision}\""))
    {
        response.headers_mut().insert(header::ETAG, value);
    }
    if let Some(location) = location
        && let Ok(value) = HeaderValue::from_str(&location)
    {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Percent-encodes a name for use in a `Location` path segment.
pub fn encode_segment(name: &str) -> String {
    url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>().replace('+', "%20")
}
