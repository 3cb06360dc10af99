//! Authentication and authorization for every route: a bearer token names a subject, the
//! subject's role bindings in the requested organisation grant permissions, and each
//! operation's required permission is read from its own OpenAPI `security` declaration —
//! so a route that declares none is refused, and the document and the checks never differ.

pub mod audit;
pub mod bootstrap;
pub mod cache;
pub mod limiter;
pub mod registry;
pub mod resources;
pub mod tokens;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use kiln_model::DEFAULT_ORG;
use kiln_model::auth::{ALL_ORGS, Organization, Permission, Role, RoleBinding, builtin_roles};
use kiln_store::records::{self, GLOBAL};
use kiln_store::{KvStore, Precondition};

use crate::error::ApiError;
use limiter::Limiter;

pub use kiln_model::auth::ORG_HEADER;
/// Resources that span organisations: changing them needs a binding in every organisation,
/// or an administrator of one organisation could grant itself the others.
pub const GLOBAL_RESOURCES: [&str; 4] = ["users", "roles", "organizations", "registry"];
/// Resources that belong to an organisation.
pub const TENANT_RESOURCES: [&str; 6] =
    ["base-images", "images", "packages", "package-sources", "registry-credentials", "tasks"];
/// Tenant resources whose objects may be public: reading them without a grant shows the
/// public ones instead of refusing.
pub const PUBLIC_CAPABLE: [&str; 4] = ["base-images", "images", "packages", "package-sources"];

/// What an operation requires, as declared in its OpenAPI `security`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `security(())`: anybody, no token needed.
    Public,
    /// `security(("bearer" = []))`: any valid token; the handler checks the rest.
    Authenticated,
    Permission(Permission),
}

/// Requirements by route template and method, read from the OpenAPI document. Keyed by
/// the template alone so a lookup borrows the matched path instead of copying it.
#[derive(Debug, Default)]
pub struct RouteTable(HashMap<String, Vec<(Method, Requirement)>>);

impl RouteTable {
    pub fn get(&self, method: &Method, template: &str) -> Option<&Requirement> {
        self.0.get(template)?.iter().find(|(m, _)| m == method).map(|(_, r)| r)
    }

    fn insert(&mut self, method: Method, template: String, requirement: Requirement) {
        self.0.entry(template).or_default().push((method, requirement));
    }
}

pub fn route_table(document: &utoipa::openapi::OpenApi) -> RouteTable {
    let mut table = RouteTable::default();
    let Ok(value) = serde_json::to_value(document) else { return table };
    let Some(paths) = value.get("paths").and_then(|p| p.as_object()) else { return table };
    for (path, item) in paths {
        let Some(item) = item.as_object() else { continue };
        for (method, operation) in item {
            let Ok(method) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else { continue };
            let Some(security) = operation.get("security").and_then(|s| s.as_array()) else { continue };
            let requirement = match security.first().and_then(|s| s.as_object()) {
                Some(first) if first.is_empty() => Requirement::Public,
                Some(first) => match first.get("bearer").and_then(|s| s.as_array()).and_then(|s| s.first()) {
                    None => Requirement::Authenticated,
                    Some(scope) => match scope.as_str().map(Permission::parse) {
                        Some(Ok(permission)) => Requirement::Permission(permission),
                        _ => continue,
                    },
                },
                None => continue,
            };
            table.insert(method, path.clone(), requirement);
        }
    }
    table
}

/// Who is asking, in which organisation, and what they may do there.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub subject: Arc<str>,
    pub org: Arc<str>,
    /// Reads of tenant objects see only public ones (the subject holds no read grant here).
    pub public_only: bool,
    pub permissions: Arc<[Permission]>,
    /// Permissions held through bindings in every organisation (`*`).
    pub global: Arc<[Permission]>,
    pub source: Option<IpAddr>,
}

impl RequestContext {
    pub fn may(&self, wanted: &Permission) -> bool {
        self.permissions.iter().any(|p| p.grants(wanted))
    }

    /// Whether the subject holds `wanted` in every organisation, as needed for what spans
    /// organisations (users, roles, organisations, other subjects' tokens).
    pub fn may_globally(&self, wanted: &Permission) -> bool {
        self.global.iter().any(|p| p.grants(wanted))
    }

    pub fn require_globally(&self, resource: &str, action: &str) -> Result<(), ApiError> {
        let wanted = Permission { resource: resource.into(), action: action.into() };
        if self.may_globally(&wanted) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "permission {wanted} is needed in every organisation (a binding to *): ask an administrator of all organisations"
                ),
            ))
        }
    }

    /// For handlers that check more than the route's own permission.
    pub fn require(&self, resource: &str, action: &str) -> Result<(), ApiError> {
        let wanted = Permission { resource: resource.into(), action: action.into() };
        if self.may(&wanted) { Ok(()) } else { Err(forbidden(&wanted, &self.org)) }
    }
}

pub struct Auth {
    pub store: Arc<dyn KvStore>,
    pub routes: RouteTable,
    pub limiter: Limiter,
    pub cache: Arc<cache::AuthCache>,
}

fn forbidden(wanted: &Permission, org: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        format!(
            "permission {wanted} is missing in organization {org:?}: ask an administrator for a role that grants it"
        ),
    )
}

fn unauthorized(message: &str) -> Response {
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"kiln\""));
    response
}

/// The token of an `Authorization: Bearer …` header.
fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The organisation named by the request; `default` if none. Borrowed: most requests hit
/// the cache and never need their own copy.
fn requested_org(request: &Request) -> Result<&str, ApiError> {
    let Some(value) = request.headers().get(ORG_HEADER) else { return Ok(DEFAULT_ORG) };
    let org = value.to_str().map_err(|_| ApiError::bad_request("X-Kiln-Org is not readable text"))?.trim();
    let mut errors = kiln_model::ValidationErrors::default();
    kiln_model::validation::check_name(&mut errors, "X-Kiln-Org", org);
    errors.into_result().map_err(ApiError::invalid)?;
    Ok(org)
}

/// Permissions the subject holds in `org` through its bindings (and `*` bindings).
pub async fn permissions_in(store: &dyn KvStore, subject: &str, org: &str) -> Result<Vec<Permission>, ApiError> {
    let prefix = format!("{}{subject}.", records::prefix::<RoleBinding>(GLOBAL));
    let page = store.list(&prefix, None, 1000).await?;
    let mut role_names = HashSet::new();
    for entry in &page.entries {
        let binding: RoleBinding = records::decode(entry)?;
        if binding.subject == subject && (binding.organization == org || binding.organization == ALL_ORGS) {
            role_names.insert(binding.role);
        }
    }
    let builtin = builtin_roles();
    let mut permissions = Vec::new();
    for name in role_names {
        let role = match builtin.iter().find(|r| r.name == name) {
            Some(role) => Some(role.clone()),
            None => match store.get(&records::key::<Role>(GLOBAL, &name)).await? {
                Some(entry) => Some(records::decode::<Role>(&entry)?),
                None => None,
            },
        };
        if let Some(role) = role {
            permissions.extend(role.parsed());
        }
    }
    Ok(permissions)
}

/// The middleware in front of every API route: authorizes, then records every mutation
/// (allowed or not) in the audit log before answering.
pub async fn authorize(State(auth): State<Arc<Auth>>, mut request: Request, next: Next) -> Response {
    let mutating = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !mutating {
        // Reads are not audited: nothing to remember about the request.
        return match check(&auth, &mut request, false).await {
            Ok(()) => next.run(request).await,
            Err(response) => response,
        };
    }
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let source = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
    let header_org = request.headers().get(ORG_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
    let checked = check(&auth, &mut request, true).await;
    let subject = request.extensions().get::<VerifiedSubject>().map(|s| s.0.clone());
    let org = request.extensions().get::<RequestContext>().map(|c| c.org.to_string());
    let entry = audit::entry(
        subject.as_deref().unwrap_or("anonymous"),
        org.or(header_org).unwrap_or_else(|| DEFAULT_ORG.to_string()),
        &method,
        &path,
        source,
        0,
    );
    let response = match checked {
        Ok(()) => audit::around(auth.store.as_ref(), entry, next.run(request)).await,
        Err(response) => {
            let mut entry = entry;
            entry.status = response.status().as_u16();
            audit::record(auth.store.as_ref(), &entry).await;
            response
        }
    };
    // A change to who may do what applies to the very next request.
    if ["/v1/users", "/v1/roles", "/v1/role-bindings", "/v1/tokens", "/v1/organizations"]
        .iter()
        .any(|p| path.starts_with(p))
    {
        auth.cache.clear();
    }
    response
}

async fn check(auth: &Auth, request: &mut Request, audited: bool) -> Result<(), Response> {
    let template = request.extensions().get::<MatchedPath>().cloned();
    let template = template.as_ref().map_or("", MatchedPath::as_str);
    let requirement = auth.routes.get(request.method(), template).ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{} {template} declares no permission; refusing it", request.method()),
        )
        .into_response()
    })?;
    if *requirement == Requirement::Public {
        return Ok(());
    }
    let source = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    if let Some(address) = source
        && let Some(wait) = auth.limiter.blocked(address)
    {
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many failed authentications from this address: wait {wait} s"),
        )
        .into_response();
        if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return Err(response);
    }
    let Some(secret) = bearer(request.headers()) else {
        return Err(unauthorized("a token is required: send Authorization: Bearer <token> (kiln login stores one)"));
    };
    let org = requested_org(request).map_err(IntoResponse::into_response)?;
    let cached = match resolve(auth, secret, org).await {
        Ok(cached) => cached,
        Err(Refused::Token(message)) => {
            if let Some(address) = source {
                auth.limiter.failed(address);
            }
            return Err(unauthorized(&message));
        }
        Err(Refused::Failed(e)) => return Err(e.into_response()),
    };
    let (token, permissions) = (&cached.token, cached.permissions.clone());
    if audited {
        request.extensions_mut().insert(VerifiedSubject(token.subject.clone()));
    }
    touch(auth, token);
    let mut context = RequestContext {
        subject: cached.subject.clone(),
        org: cached.org.clone(),
        public_only: false,
        permissions,
        global: cached.global.clone(),
        source,
    };
    if let Requirement::Permission(wanted) = &requirement
        && wanted.action == "write"
        && GLOBAL_RESOURCES.contains(&wanted.resource.as_str())
    {
        context.require_globally(&wanted.resource, &wanted.action).map_err(IntoResponse::into_response)?;
    }
    if let Requirement::Permission(wanted) = &requirement
        && !context.may(wanted)
    {
        if PUBLIC_CAPABLE.contains(&wanted.resource.as_str()) && wanted.action == "read" {
            context.public_only = true;
        } else {
            return Err(forbidden(wanted, &cached.org).into_response());
        }
    }
    if let Requirement::Permission(wanted) = &requirement
        && TENANT_RESOURCES.contains(&wanted.resource.as_str())
        && !context.public_only
        && !cached.org_exists
    {
        return Err(ApiError::not_found(format!("organization {:?} does not exist: create it first", cached.org))
            .into_response());
    }
    request.extensions_mut().insert(context);
    Ok(())
}

/// Why a token was not accepted.
pub enum Refused {
    /// The token is unknown, expired, revoked or its subject disabled; counts as a failure.
    Token(String),
    Failed(ApiError),
}

/// What the token `secret` may do in `org`, from the cache or the store.
pub async fn resolve(auth: &Auth, secret: &str, org: &str) -> Result<Arc<cache::Cached>, Refused> {
    let digest = tokens::digest(secret);
    if let Some(cached) = auth.cache.get(&digest, org)
        && cached.token.usable_at(Utc::now()).is_ok()
    {
        return Ok(cached);
    }
    let store = auth.store.as_ref();
    let token = match tokens::verify(store, secret).await.map_err(Refused::Failed)? {
        Ok(token) => token,
        Err(tokens::Refusal::Unknown) => {
            return Err(Refused::Token("the token is not valid: log in again with a current token".into()));
        }
        Err(tokens::Refusal::Unusable(why)) => return Err(Refused::Token(format!("{why}: create a new token"))),
    };
    let failed = |e: kiln_store::StoreError| Refused::Failed(e.into());
    let user = store
        .get(&records::key::<kiln_model::auth::User>(GLOBAL, &token.subject))
        .await
        .map_err(failed)?
        .map(|e| records::decode::<kiln_model::auth::User>(&e))
        .transpose()
        .map_err(failed)?;
    match user {
        Some(user) if !user.disabled => {}
        _ => return Err(Refused::Token("the token's subject is disabled or gone".into())),
    }
    let permissions = permissions_in(store, &token.subject, org).await.map_err(Refused::Failed)?;
    let global = permissions_in(store, &token.subject, ALL_ORGS).await.map_err(Refused::Failed)?;
    let org_exists =
        org == DEFAULT_ORG || store.get(&records::key::<Organization>(GLOBAL, org)).await.map_err(failed)?.is_some();
    let subject: Arc<str> = token.subject.as_str().into();
    let cached = Arc::new(cache::Cached {
        org_exists,
        token,
        subject,
        org: org.into(),
        permissions: permissions.into(),
        global: global.into(),
    });
    auth.cache.put(digest, org, cached.clone());
    Ok(cached)
}

/// Records when a token was last used, at most once a minute, without delaying the request.
fn touch(auth: &Auth, token: &kiln_model::auth::Token) {
    let now = Utc::now();
    if token.last_used_time.is_some_and(|t| (now - t).num_seconds() < 60) {
        return;
    }
    let (Some(revision), store) = (token.revision, auth.store.clone()) else { return };
    let mut updated = token.clone();
    updated.last_used_time = Some(now);
    tokio::spawn(async move {
        if let Ok(value) = records::encode(&updated) {
            // Losing this race to a revoke or another touch is fine: both are newer.
            let _ = store
                .put(
                    &records::key::<kiln_model::auth::Token>(GLOBAL, &updated.id),
                    value,
                    Precondition::Revision(revision),
                )
                .await;
        }
    });
}

/// The subject of an accepted token, kept even when the request is then refused (for the audit log).
#[derive(Clone)]
struct VerifiedSubject(String);

/// The caller, as established by [`authorize`].
pub struct Ctx(pub RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Ctx, ApiError> {
        parts.extensions.get::<RequestContext>().cloned().map(Ctx).ok_or_else(|| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "this route is served without authorization; refusing it")
        })
    }
}
