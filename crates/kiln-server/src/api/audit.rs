//! Reading the audit log.

use axum::extract::{RawQuery, State};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use kiln_model::auth::AuditEntry;
use kiln_store::records::{self, GLOBAL};

use crate::auth::Ctx;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::objects::{DEFAULT_PAGE, MAX_PAGE};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditList {
    pub items: Vec<AuditEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

#[derive(Default)]
struct Filter {
    subject: Option<String>,
    method: Option<String>,
    status: Option<u16>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
}

fn time(name: &str, value: &str) -> ApiResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value).map(|t| t.with_timezone(&Utc)).map_err(|_| {
        ApiError::bad_request(format!("{name} {value:?} is not an RFC 3339 time, such as 2026-11-22T10:00:00Z"))
    })
}

/// Mutations recorded in the requested organisation, oldest first.
#[utoipa::path(get, path = "/v1/audit", tag = "access", operation_id = "listAudit", security(("bearer" = ["audit:read"])),
    params(
        ("subject" = Option<String>, Query), ("method" = Option<String>, Query), ("status" = Option<u16>, Query),
        ("since" = Option<String>, Query, description = "RFC 3339 time"), ("until" = Option<String>, Query, description = "RFC 3339 time"),
        ("limit" = Option<usize>, Query), ("pageToken" = Option<String>, Query),
    ),
    responses((status = 200, body = AuditList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    RawQuery(raw): RawQuery,
) -> ApiResult<axum::Json<AuditList>> {
    let mut filter = Filter::default();
    let mut limit = DEFAULT_PAGE;
    let mut after = None;
    let prefix = records::prefix::<AuditEntry>(GLOBAL);
    for (name, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let value = value.into_owned();
        match name.as_ref() {
            "subject" => filter.subject = Some(value),
            "method" => filter.method = Some(value.to_ascii_uppercase()),
            "status" => {
                filter.status = Some(
                    value
                        .parse()
                        .map_err(|_| ApiError::bad_request(format!("status {value:?} is not an HTTP status")))?,
                )
            }
            "since" => filter.since = Some(time("since", &value)?),
            "until" => filter.until = Some(time("until", &value)?),
            "limit" => {
                limit = value.parse::<usize>().ok().filter(|n| (1..=MAX_PAGE).contains(n)).ok_or_else(|| {
                    ApiError::bad_request(format!("limit {value:?} must be a number from 1 to {MAX_PAGE}"))
                })?
            }
            "pageToken" => after = Some(format!("{prefix}{value}")),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {other:?}: use subject, method, status, since, until, limit or pageToken"
                )));
            }
        }
    }
    let mut items = Vec::new();
    loop {
        let page = state.store.list(&prefix, after.as_deref(), 512).await?;
        for entry in &page.entries {
            let record: AuditEntry = records::decode(entry)?;
            let keep = *record.organization == *ctx.org
                && filter.subject.as_ref().is_none_or(|s| *s == record.subject)
                && filter.method.as_ref().is_none_or(|m| *m == record.method)
                && filter.status.is_none_or(|s| s == record.status)
                && filter.since.is_none_or(|t| record.time >= t)
                && filter.until.is_none_or(|t| record.time <= t);
            if keep {
                items.push(record);
                if items.len() == limit {
                    let next_page_token = entry.key.strip_prefix(&prefix).map(str::to_string);
                    return Ok(axum::Json(AuditList { items, next_page_token }));
                }
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(axum::Json(AuditList { items, next_page_token: None })),
        }
    }
}
