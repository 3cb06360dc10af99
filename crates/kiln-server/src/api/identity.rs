//! Endpoints for users and service accounts, roles, organisations and role bindings: the
//! objects authorization is made of. They belong to no organisation.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

use kiln_model::auth::{Organization, Permission, Role, RoleBinding, User, builtin_roles};
use kiln_model::{BaseImage, DEFAULT_ORG, FieldError, Image, Package, PackageSource};
use kiln_store::records::{self, GLOBAL, key};
use kiln_store::{KvStore, Op, Precondition};

use super::{encode_segment, if_match, with_etag};
use crate::auth::{Ctx, RequestContext};
use crate::dependents::{not_found, stale};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, PathParam};
use crate::objects;
use crate::resource::{ListFilter, Resource};
use crate::state::AppState;
use crate::view::View;

/// Everything in the global scope of one kind, in name order.
async fn all<R: Resource>(view: &View) -> ApiResult<Vec<R>> {
    let (items, _) = objects::list::<R>(view, GLOBAL, &ListFilter::default(), usize::MAX, None).await?;
    Ok(items)
}

async fn bindings_where(view: &View, keep: impl Fn(&RoleBinding) -> bool) -> ApiResult<Vec<RoleBinding>> {
    Ok(all::<RoleBinding>(view).await?.into_iter().filter(|b| keep(b)).collect())
}

fn in_use_by_bindings(message: String, bindings: &[RoleBinding]) -> ApiError {
    ApiError::conflict(format!("{message}: {}", bindings.iter().map(RoleBinding::name).collect::<Vec<_>>().join(", ")))
        .with_details(bindings.iter().map(|b| FieldError::new("roleBindings", b.name())).collect())
}

async fn delete_ops<R: Resource>(view: &View, name: &str, expected: Option<u64>) -> ApiResult<(R, Vec<Op>)> {
    let current: R = view.get(GLOBAL, name).await?.ok_or_else(|| not_found::<R>(GLOBAL, name))?;
    let revision = current.revision().unwrap_or(0);
    if let Some(expected) = expected
        && expected != revision
    {
        return Err(stale::<R>(name, expected, revision));
    }
    let mut ops = vec![Op::Delete { key: key::<R>(GLOBAL, name), expect: Precondition::Revision(revision) }];
    ops.extend(crate::names::release::<R>(view.store().as_ref(), GLOBAL, name).await?.ops);
    Ok((current, ops))
}

fn binding_deletes(bindings: &[RoleBinding]) -> Vec<Op> {
    bindings
        .iter()
        .flat_map(|b| {
            [
                Op::Delete {
                    key: key::<RoleBinding>(GLOBAL, &b.name()),
                    expect: b.revision.map_or(Precondition::Any, Precondition::Revision),
                },
                // A binding's name is made of other names; no other spelling can hold it.
                Op::Delete {
                    key: kiln_store::records::name_key::<RoleBinding>(GLOBAL, &b.name()),
                    expect: Precondition::Any,
                },
            ]
        })
        .collect()
}

async fn delete_user(view: &View, caller: &str, name: &str, expected: Option<u64>) -> ApiResult<User> {
    if caller == name {
        return Err(ApiError::conflict("you cannot delete yourself: ask another administrator"));
    }
    let (user, mut ops) = delete_ops::<User>(view, name, expected).await?;
    // Its bindings go with it; its tokens stop working because their subject is gone.
    ops.extend(binding_deletes(&bindings_where(view, |b| b.subject == name).await?));
    objects::commit(view, ops, User::NOUN, name).await?;
    Ok(user)
}

async fn delete_role(view: &View, _caller: &str, name: &str, expected: Option<u64>) -> ApiResult<Role> {
    if builtin_roles().iter().any(|r| r.name == name) {
        return Err(ApiError::conflict(format!("role {name:?} is built in and cannot be deleted")));
    }
    let (role, ops) = delete_ops::<Role>(view, name, expected).await?;
    let bound = bindings_where(view, |b| b.role == name).await?;
    if !bound.is_empty() {
        return Err(in_use_by_bindings(format!("role {name:?} is still bound: delete these bindings first"), &bound));
    }
    objects::commit(view, ops, Role::NOUN, name).await?;
    Ok(role)
}

async fn holds_objects(store: &dyn KvStore, org: &str) -> ApiResult<bool> {
    for prefix in [
        records::prefix::<BaseImage>(org),
        records::prefix::<Image>(org),
        records::prefix::<Package>(org),
        records::prefix::<PackageSource>(org),
    ] {
        if !store.list(&prefix, None, 1).await?.entries.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

async fn delete_organization(view: &View, _caller: &str, name: &str, expected: Option<u64>) -> ApiResult<Organization> {
    if name == DEFAULT_ORG {
        return Err(ApiError::conflict("the default organization cannot be deleted"));
    }
    let (org, ops) = delete_ops::<Organization>(view, name, expected).await?;
    if holds_objects(view.store().as_ref(), name).await? {
        return Err(ApiError::conflict(format!("organization {name:?} still holds objects: delete them first")));
    }
    let bound = bindings_where(view, |b| b.organization == name).await?;
    if !bound.is_empty() {
        return Err(in_use_by_bindings(
            format!("organization {name:?} still has role bindings: delete them first"),
            &bound,
        ));
    }
    objects::commit(view, ops, Organization::NOUN, name).await?;
    Ok(org)
}

macro_rules! global_resource {
    (
        module: $module:ident, object: $ty:ident, list: $list:ident,
        collection: $collection:tt, item: $item:tt, tag: $tag:tt,
        one: $one:tt, many: $many:tt, read: $read:tt, write: $write:tt,
        delete: $delete:ident
    ) => {
        pub mod $module {
            use super::*;

            #[derive(Serialize, ToSchema)]
            pub struct $list {
                pub items: Vec<$ty>,
            }

            /// Create.
            #[utoipa::path(post, path = $collection, tag = $tag, operation_id = concat!("create", $one), security(("bearer" = [$write])),
                request_body = $ty, responses(
                    (status = 201, body = $ty), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
                    (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
                ))]
            pub async fn create(State(state): State<AppState>, Ctx(_ctx): Ctx, JsonBody(object): JsonBody<$ty>) -> ApiResult<Response> {
                let mut view = View::new(state.store.clone());
                let created = objects::create(&mut view, GLOBAL, object).await?;
                let location = format!("{}/{}", $collection, encode_segment(&created.key_name()));
                Ok(with_etag(StatusCode::CREATED, created.revision, Some(location), &created))
            }

            /// List all.
            #[utoipa::path(get, path = $collection, tag = $tag, operation_id = concat!("list", $many), security(("bearer" = [$read])),
                responses((status = 200, body = $list), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
            pub async fn list(State(state): State<AppState>, Ctx(ctx): Ctx) -> ApiResult<axum::Json<$list>> {
                let view = View::new(state.store.clone());
                let mut items = Vec::new();
                for item in listed::<$ty>(&view).await? {
                    if item.visible(&ctx, &view).await? {
                        items.push(item);
                    }
                }
                Ok(axum::Json($list { items }))
            }

            /// Read one.
            #[utoipa::path(get, path = $item, tag = $tag, operation_id = concat!("get", $one), security(("bearer" = [$read])),
                params(("name" = String, Path)),
                responses((status = 200, body = $ty), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
            pub async fn get(State(state): State<AppState>, Ctx(ctx): Ctx, PathParam(name): PathParam<String>) -> ApiResult<Response> {
                let view = View::new(state.store.clone());
                let object = fetch::<$ty>(&view, &name).await?;
                if !object.visible(&ctx, &view).await? {
                    return Err(not_found::<$ty>(GLOBAL, &name));
                }
                Ok(with_etag(StatusCode::OK, object.revision, None, &object))
            }

            /// Replace; send the object as GET returned it.
            #[utoipa::path(put, path = $item, tag = $tag, operation_id = concat!("replace", $one), security(("bearer" = [$write])),
                request_body = $ty, params(("name" = String, Path), ("If-Match" = Option<String>, Header)),
                responses((status = 200, body = $ty), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
                    (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
                    (status = 422, body = ErrorBody)))]
            pub async fn replace(
                State(state): State<AppState>,
                Ctx(_ctx): Ctx,
                PathParam(name): PathParam<String>,
                headers: HeaderMap,
                JsonBody(object): JsonBody<$ty>,
            ) -> ApiResult<Response> {
                let mut view = View::new(state.store.clone());
                let updated = objects::update(&mut view, GLOBAL, &name, object, if_match(&headers)?).await?;
                Ok(with_etag(StatusCode::OK, updated.revision, None, &updated))
            }

            /// Delete.
            #[utoipa::path(delete, path = $item, tag = $tag, operation_id = concat!("delete", $one), security(("bearer" = [$write])),
                params(("name" = String, Path), ("If-Match" = Option<String>, Header)),
                responses((status = 200, body = $ty), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
                    (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
            pub async fn delete(
                State(state): State<AppState>,
                Ctx(ctx): Ctx,
                PathParam(name): PathParam<String>,
                headers: HeaderMap,
            ) -> ApiResult<axum::Json<$ty>> {
                let view = View::new(state.store.clone());
                Ok(axum::Json($delete(&view, &ctx.subject, &name, if_match(&headers)?).await?))
            }
        }
    };
}

/// What differs between the kinds served by `global_resource!`.
trait GlobalKind: Resource {
    /// Objects that exist without being stored (the built-in roles).
    fn builtin() -> Vec<Self> {
        Vec::new()
    }

    /// Whether the caller may see this object at all; users and roles are identities and
    /// vocabulary shared by every organisation.
    fn visible(&self, ctx: &RequestContext, view: &View) -> impl std::future::Future<Output = ApiResult<bool>> + Send {
        let _ = (ctx, view);
        async { Ok(true) }
    }
}

impl GlobalKind for User {}

impl GlobalKind for Role {
    fn builtin() -> Vec<Role> {
        builtin_roles()
    }
}

/// Organisations are visible only to subjects bound in them (or in all).
impl GlobalKind for Organization {
    async fn visible(&self, ctx: &RequestContext, view: &View) -> ApiResult<bool> {
        if ctx.may_globally(&Permission { resource: "organizations".into(), action: "read".into() }) {
            return Ok(true);
        }
        Ok(!bindings_where(view, |b| *b.subject == *ctx.subject && b.organization == self.name).await?.is_empty())
    }
}

/// Whether the caller administers bindings of `org`: in that organisation, or in all.
fn manages_bindings_of(ctx: &RequestContext, org: &str, action: &str) -> bool {
    let wanted = Permission { resource: "role-bindings".into(), action: action.into() };
    ctx.may_globally(&wanted) || (org == &*ctx.org && ctx.may(&wanted))
}

/// Objects of a kind as clients see them, built-in ones first.
async fn listed<R: GlobalKind>(view: &View) -> ApiResult<Vec<R>> {
    let mut items = R::builtin();
    items.append(&mut all::<R>(view).await?);
    Ok(items)
}

async fn fetch<R: GlobalKind>(view: &View, name: &str) -> ApiResult<R> {
    if let Some(object) = R::builtin().into_iter().find(|o| o.key_name() == name) {
        return Ok(object);
    }
    objects::get::<R>(view, GLOBAL, name).await
}

global_resource! {
    module: users, object: User, list: UserList, collection: "/v1/users", item: "/v1/users/{name}", tag: "access",
    one: "User", many: "Users", read: "users:read", write: "users:write", delete: delete_user
}

global_resource! {
    module: roles, object: Role, list: RoleList, collection: "/v1/roles", item: "/v1/roles/{name}", tag: "access",
    one: "Role", many: "Roles", read: "roles:read", write: "roles:write", delete: delete_role
}

global_resource! {
    module: organizations, object: Organization, list: OrganizationList, collection: "/v1/organizations",
    item: "/v1/organizations/{name}", tag: "access",
    one: "Organization", many: "Organizations", read: "organizations:read", write: "organizations:write", delete: delete_organization
}

/// Role bindings are created and deleted, never changed: bind again instead.
pub mod role_bindings {
    use super::*;

    #[derive(Serialize, ToSchema)]
    pub struct RoleBindingList {
        pub items: Vec<RoleBinding>,
    }

    /// Bind a role to a subject in an organisation (`*`: every organisation). Takes effect
    /// with the next request.
    #[utoipa::path(post, path = "/v1/role-bindings", tag = "access", operation_id = "createRoleBinding",
        security(("bearer" = ["role-bindings:write"])), request_body = RoleBinding,
        responses((status = 201, body = RoleBinding), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
            (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
    pub async fn create(
        State(state): State<AppState>,
        Ctx(ctx): Ctx,
        JsonBody(object): JsonBody<RoleBinding>,
    ) -> ApiResult<Response> {
        if !manages_bindings_of(&ctx, &object.organization, "write") {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "binding in organization {:?} needs permission role-bindings:write there (or in every organisation); you act in {:?}",
                    object.organization, &*ctx.org
                ),
            ));
        }
        let mut view = View::new(state.store.clone());
        let created = objects::create(&mut view, GLOBAL, object).await?;
        let location = format!("/v1/role-bindings/{}", encode_segment(&created.name()));
        Ok(with_etag(StatusCode::CREATED, created.revision, Some(location), &created))
    }

    /// List bindings, optionally of one `subject` or one `organization`.
    #[utoipa::path(get, path = "/v1/role-bindings", tag = "access", operation_id = "listRoleBindings",
        security(("bearer" = ["role-bindings:read"])),
        params(("subject" = Option<String>, Query), ("organization" = Option<String>, Query)),
        responses((status = 200, body = RoleBindingList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
    pub async fn list(
        State(state): State<AppState>,
        Ctx(ctx): Ctx,
        RawQuery(raw): RawQuery,
    ) -> ApiResult<axum::Json<RoleBindingList>> {
        let (mut subject, mut organization) = (None, None);
        for (name, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            match name.as_ref() {
                "subject" => subject = Some(value.into_owned()),
                "organization" => organization = Some(value.into_owned()),
                other => {
                    return Err(ApiError::bad_request(format!(
                        "unknown query parameter {other:?}: use subject or organization"
                    )));
                }
            }
        }
        let view = View::new(state.store.clone());
        let items = bindings_where(&view, |b| {
            subject.as_ref().is_none_or(|s| *s == b.subject)
                && organization.as_ref().is_none_or(|o| *o == b.organization)
                && manages_bindings_of(&ctx, &b.organization, "read")
        })
        .await?;
        Ok(axum::Json(RoleBindingList { items }))
    }

    /// Remove a binding (named `subject.organization.role`); takes effect with the next request.
    #[utoipa::path(delete, path = "/v1/role-bindings/{name}", tag = "access", operation_id = "deleteRoleBinding",
        security(("bearer" = ["role-bindings:write"])), params(("name" = String, Path)),
        responses((status = 200, body = RoleBinding), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
    pub async fn delete(
        State(state): State<AppState>,
        Ctx(ctx): Ctx,
        PathParam(name): PathParam<String>,
    ) -> ApiResult<axum::Json<RoleBinding>> {
        let view = View::new(state.store.clone());
        let (binding, ops) = delete_ops::<RoleBinding>(&view, &name, None).await?;
        // A binding in an organisation the caller does not manage is invisible to it.
        if !manages_bindings_of(&ctx, &binding.organization, "write") {
            return Err(not_found::<RoleBinding>(GLOBAL, &name));
        }
        objects::commit(&view, ops, RoleBinding::NOUN, &name).await?;
        Ok(axum::Json(binding))
    }
}
