//! API tokens: created for oneself (or, with `tokens:write`, for another subject), shown
//! once, listed without their secret, revoked by id.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use kiln_model::auth::{Token, User};
use kiln_store::Precondition;
use kiln_store::records::{self, GLOBAL, encode, key};

use crate::auth::{Ctx, RequestContext, tokens};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, PathParam};
use crate::objects;
use crate::state::AppState;
use crate::view::View;

/// Longest lifetime a token may be given.
const MAX_DAYS: u32 = 3650;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenRequest {
    /// Whose token; default: the caller. Needs `tokens:write` for anyone else.
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Days until it expires (1 to 3650); none: it never expires.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedToken {
    /// The secret. Shown this once; Kiln keeps only its hash.
    pub token: String,
    #[serde(flatten)]
    pub info: Token,
}

#[derive(Serialize, ToSchema)]
pub struct TokenList {
    pub items: Vec<Token>,
}

fn shown(mut token: Token) -> Token {
    token.hash.clear();
    token
}

fn acting_for(ctx: &RequestContext, subject: &str, action: &str) -> ApiResult<()> {
    // Another subject's tokens are its keys to every organisation it is bound in.
    if *subject == *ctx.subject { Ok(()) } else { ctx.require_globally("tokens", action) }
}

/// Create a token.
#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", operation_id = "createToken", security(("bearer" = [])),
    request_body = TokenRequest,
    responses((status = 201, body = CreatedToken), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    JsonBody(request): JsonBody<TokenRequest>,
) -> ApiResult<Response> {
    let subject = request.subject.clone().unwrap_or_else(|| ctx.subject.to_string());
    acting_for(&ctx, &subject, "write")?;
    if let Some(description) = &request.description {
        let mut errors = kiln_model::ValidationErrors::default();
        kiln_model::validation::check_text(&mut errors, "description", description, 255);
        errors.into_result().map_err(ApiError::invalid)?;
    }
    let expires = match request.expires_in_days {
        None => None,
        Some(days) if (1..=MAX_DAYS).contains(&days) => Some(Utc::now() + Duration::days(i64::from(days))),
        Some(days) => {
            return Err(ApiError::field("expiresInDays", format!("{days} is out of range: use 1 to {MAX_DAYS}")));
        }
    };
    let view = View::new(state.store.clone());
    let user: User = view
        .get(GLOBAL, &subject)
        .await?
        .ok_or_else(|| ApiError::field("subject", format!("no user or service account named {subject:?}")))?;
    let secret = tokens::generate()?;
    let token = tokens::new_token(&secret, &subject, request.description, expires);
    let ops = vec![
        kiln_store::Op::Put {
            key: key::<Token>(GLOBAL, &token.id),
            value: encode(&token)?,
            expect: Precondition::Absent,
        },
        kiln_store::Op::Check {
            key: key::<User>(GLOBAL, &user.name),
            expect: user.revision.map_or(Precondition::Present, Precondition::Revision),
        },
    ];
    let revision = objects::commit(&view, ops, "token", &token.id).await?;
    let mut info = shown(token);
    info.revision = Some(revision);
    Ok((StatusCode::CREATED, axum::Json(CreatedToken { token: secret, info })).into_response())
}

/// List tokens (never their secrets): the caller's own, or another `subject`'s with `tokens:read`.
#[utoipa::path(get, path = "/v1/tokens", tag = "tokens", operation_id = "listTokens", security(("bearer" = [])),
    params(("subject" = Option<String>, Query)),
    responses((status = 200, body = TokenList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    RawQuery(raw): RawQuery,
) -> ApiResult<axum::Json<TokenList>> {
    let mut subject = ctx.subject.to_string();
    for (name, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "subject" => subject = value.into_owned(),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {other:?}: only subject is accepted"
                )));
            }
        }
    }
    acting_for(&ctx, &subject, "read")?;
    let view = View::new(state.store.clone());
    let all: Vec<Token> = view.all(GLOBAL).await?;
    let items = all.into_iter().filter(|t| t.subject == subject).map(shown).collect();
    Ok(axum::Json(TokenList { items }))
}

/// Revoke a token by id: the caller's own, or anyone's with `tokens:write`.
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "tokens", operation_id = "revokeToken", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Token), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParam(id): PathParam<String>,
) -> ApiResult<axum::Json<Token>> {
    let view = View::new(state.store.clone());
    let not_found = || ApiError::not_found(format!("token {id:?} does not exist"));
    let mut token: Token = match view.store().get(&key::<Token>(GLOBAL, &id)).await? {
        Some(entry) => records::decode(&entry)?,
        None => return Err(not_found()),
    };
    // Another subject's token is invisible without the permission: 404, not 403.
    if *token.subject != *ctx.subject && ctx.require_globally("tokens", "write").is_err() {
        return Err(not_found());
    }
    if token.revoked_time.is_none() {
        let revision = token.revision.unwrap_or(0);
        token.revoked_time = Some(Utc::now());
        let ops = vec![kiln_store::Op::Put {
            key: key::<Token>(GLOBAL, &id),
            value: encode(&token)?,
            expect: Precondition::Revision(revision),
        }];
        token.revision = Some(objects::commit(&view, ops, "token", &id).await?);
    }
    Ok(axum::Json(shown(token)))
}
