//! CRUD endpoints for base images, images, packages, package sources and registry credentials. One macro writes
//! the handlers of the kinds addressed by a single name, so every kind behaves the same.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

use kiln_model::{BaseImage, Ecosystem, Image, Package, PackageSource, RegistryCredential};
use kiln_store::Precondition;
use kiln_store::records::{key, secret_key};

use super::{
    ImageListParams, PackageListParams, PageParams, SourceListParams, encode_segment, force_flag, if_match,
    parse_list_query, with_etag,
};
use crate::auth::{Ctx, RequestContext};
use crate::dependents::{self, not_found, stale};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, PathParam};
use crate::objects;
use crate::resource::Resource;
use crate::state::AppState;
use crate::view::View;

/// A caller that may only see public objects gets 404 for a private one, as if it did not exist.
fn visible<R: Resource>(ctx: &RequestContext, object: R, name: &str) -> ApiResult<R> {
    if ctx.public_only && !object.is_public() { Err(not_found::<R>(&ctx.org, name)) } else { Ok(object) }
}

async fn delete_base_image(
    _state: &AppState,
    view: &View,
    org: &str,
    name: &str,
    expected: Option<u64>,
    force: bool,
) -> ApiResult<BaseImage> {
    dependents::delete::<BaseImage>(view, org, name, expected, force).await
}

async fn delete_image(
    state: &AppState,
    view: &View,
    org: &str,
    name: &str,
    expected: Option<u64>,
    force: bool,
) -> ApiResult<Image> {
    let deleted = dependents::delete::<Image>(view, org, name, expected, force).await?;
    // A build still running would push into the repository just removed; its own settle
    // removes anything it pushed, and cancelling stops it spending time first.
    if let (Some(engine), Some(task)) = (&state.tasks, &deleted.build_task) {
        let _ = engine.cancel(org, task).await;
    }
    Ok(deleted)
}

/// Deletes an object nothing is built on, with its secrets, guarded by its revision.
async fn delete_plain<R: Resource>(view: &View, org: &str, name: &str, expected: Option<u64>) -> ApiResult<R> {
    let current: R = view.get(org, name).await?.ok_or_else(|| not_found::<R>(org, name))?;
    let revision = current.revision().unwrap_or(0);
    if let Some(expected) = expected
        && expected != revision
    {
        return Err(stale::<R>(name, expected, revision));
    }
    let mut ops = vec![
        kiln_store::Op::Delete { key: key::<R>(org, name), expect: Precondition::Revision(revision) },
        kiln_store::Op::Delete { key: secret_key::<R>(org, name), expect: Precondition::Any },
    ];
    ops.extend(crate::names::release::<R>(view.store().as_ref(), org, name).await?.ops);
    objects::commit(view, ops, R::NOUN, name).await?;
    Ok(current)
}

async fn delete_package_source(
    _state: &AppState,
    view: &View,
    org: &str,
    name: &str,
    expected: Option<u64>,
    force: bool,
) -> ApiResult<PackageSource> {
    let _ = force;
    delete_plain::<PackageSource>(view, org, name, expected).await
}

async fn delete_registry_credential(
    _state: &AppState,
    view: &View,
    org: &str,
    name: &str,
    expected: Option<u64>,
    force: bool,
) -> ApiResult<RegistryCredential> {
    let _ = force;
    delete_plain::<RegistryCredential>(view, org, name, expected).await
}

/// The bodies every named resource's handlers share; the handlers differ only in how the
/// path names the object and in their OpenAPI annotations.
mod shared {
    use super::*;

    pub async fn list<R: Resource>(
        state: &AppState,
        ctx: &RequestContext,
        raw: Option<&str>,
        filters: &[&str],
    ) -> ApiResult<(Vec<R>, Option<String>)> {
        let mut query = parse_list_query(raw, filters)?;
        query.filter.public_only = ctx.public_only;
        let view = View::new(state.store.clone());
        objects::list::<R>(&view, &ctx.org, &query.filter, query.limit, query.page_token.as_deref()).await
    }

    pub async fn get<R: Resource + Serialize>(
        state: &AppState,
        ctx: &RequestContext,
        key_name: &str,
        shown: &str,
    ) -> ApiResult<Response> {
        let view = View::new(state.store.clone());
        let object = visible(ctx, objects::get::<R>(&view, &ctx.org, key_name).await?, shown)?;
        Ok(with_etag(StatusCode::OK, object.revision(), None, &object))
    }

    pub async fn replace<R: Resource + Serialize>(
        state: &AppState,
        ctx: &RequestContext,
        key_name: &str,
        headers: &HeaderMap,
        object: R,
    ) -> ApiResult<Response> {
        let mut view = View::new(state.store.clone());
        let updated = objects::update(&mut view, &ctx.org, key_name, object, if_match(headers)?).await?;
        Ok(with_etag(StatusCode::OK, updated.revision(), None, &updated))
    }

    pub async fn patch<R: Resource + Serialize>(
        state: &AppState,
        ctx: &RequestContext,
        key_name: &str,
        headers: &HeaderMap,
        patch: serde_json::Value,
    ) -> ApiResult<Response> {
        if !patch.is_object() {
            return Err(ApiError::bad_request("a merge patch must be a JSON object"));
        }
        let mut view = View::new(state.store.clone());
        let updated = objects::patch::<R>(&mut view, &ctx.org, key_name, patch, if_match(headers)?).await?;
        Ok(with_etag(StatusCode::OK, updated.revision(), None, &updated))
    }
}

macro_rules! named_resource {
    (
        module: $module:ident,
        object: $ty:ident,
        list: $list:ident,
        collection: $collection:tt,
        item: $item:tt,
        tag: $tag:tt,
        filters: [$($filter:tt),*],
        delete: $delete:ident,
        params: $params:ident,
        force_doc: $force_doc:tt,
        one: $one:tt,
        many: $many:tt,
        read: $read:tt,
        write: $write:tt
    ) => {
        pub mod $module {
            use super::*;

            /// One page of a list.
            #[derive(Serialize, ToSchema)]
            #[serde(rename_all = "camelCase")]
            pub struct $list {
                pub items: Vec<$ty>,
                /// Pass as `pageToken` to get the next page; absent on the last page.
                #[serde(skip_serializing_if = "Option::is_none")]
                pub next_page_token: Option<String>,
            }

            /// Create. Read-only fields in the body are ignored.
            #[utoipa::path(post, path = $collection, tag = $tag, operation_id = concat!("create", $one), security(("bearer" = [$write])), request_body = $ty, responses(
                (status = 201, description = "Created; the object rests in INITIALIZED until the controller acts on it", body = $ty),
                (status = 400, description = "Malformed body or unknown field", body = ErrorBody),
                (status = 409, description = "An object of that name exists", body = ErrorBody),
                (status = 413, description = "Body too large", body = ErrorBody),
                (status = 422, description = "Invalid value; `details` names each field", body = ErrorBody),
            ))]
            pub async fn create(State(state): State<AppState>, Ctx(ctx): Ctx, JsonBody(object): JsonBody<$ty>) -> ApiResult<Response> {
                let created = objects::create_retrying(&state.store, &ctx.org, object).await?;
                let location = format!("{}/{}", $collection, encode_segment(&created.key_name()));
                Ok(with_etag(StatusCode::CREATED, created.revision, Some(location), &created))
            }

            /// List, filtered and paginated in name order.
            #[utoipa::path(get, path = $collection, tag = $tag, operation_id = concat!("list", $many), security(("bearer" = [$read])), params($params), responses(
                (status = 200, body = $list),
                (status = 400, description = "Unknown or invalid query parameter", body = ErrorBody),
            ))]
            pub async fn list(State(state): State<AppState>, Ctx(ctx): Ctx, RawQuery(raw): RawQuery) -> ApiResult<axum::Json<$list>> {
                let (items, next_page_token) = shared::list::<$ty>(&state, &ctx, raw.as_deref(), &[$($filter),*]).await?;
                Ok(axum::Json($list { items, next_page_token }))
            }

            /// Read one; the `ETag` is its revision.
            #[utoipa::path(get, path = $item, tag = $tag, operation_id = concat!("get", $one), security(("bearer" = [$read])), params(("name" = String, Path)), responses(
                (status = 200, body = $ty),
                (status = 404, body = ErrorBody),
            ))]
            pub async fn get(State(state): State<AppState>, Ctx(ctx): Ctx, PathParam(name): PathParam<String>) -> ApiResult<Response> {
                shared::get::<$ty>(&state, &ctx, &name, &name).await
            }

            /// Replace. Send the object as GET returned it; its `revision` (or `If-Match`)
            /// makes a stale update fail with 409 instead of overwriting.
            #[utoipa::path(put, path = $item, tag = $tag, operation_id = concat!("replace", $one), security(("bearer" = [$write])), request_body = $ty,
                params(("name" = String, Path), ("If-Match" = Option<String>, Header, description = "Revision (ETag) the change is based on")),
                responses(
                    (status = 200, body = $ty),
                    (status = 400, body = ErrorBody),
                    (status = 404, body = ErrorBody),
                    (status = 409, description = "Stale revision, or a conflicting change", body = ErrorBody),
                    (status = 422, body = ErrorBody),
                ))]
            pub async fn replace(
                State(state): State<AppState>,
                Ctx(ctx): Ctx,
                PathParam(name): PathParam<String>,
                headers: HeaderMap,
                JsonBody(object): JsonBody<$ty>,
            ) -> ApiResult<Response> {
                shared::replace(&state, &ctx, &name, &headers, object).await
            }

            /// Change some fields with a JSON merge patch (RFC 7396).
            #[utoipa::path(patch, path = $item, tag = $tag, operation_id = concat!("patch", $one), security(("bearer" = [$write])),
                request_body(content = Object, content_type = "application/merge-patch+json"),
                params(("name" = String, Path), ("If-Match" = Option<String>, Header, description = "Revision (ETag) the change is based on")),
                responses(
                    (status = 200, body = $ty),
                    (status = 400, body = ErrorBody),
                    (status = 404, body = ErrorBody),
                    (status = 409, body = ErrorBody),
                    (status = 422, body = ErrorBody),
                ))]
            pub async fn patch(
                State(state): State<AppState>,
                Ctx(ctx): Ctx,
                PathParam(name): PathParam<String>,
                headers: HeaderMap,
                JsonBody(patch): JsonBody<serde_json::Value>,
            ) -> ApiResult<Response> {
                shared::patch::<$ty>(&state, &ctx, &name, &headers, patch).await
            }

            /// Delete; answers with the object as it was.
            #[utoipa::path(delete, path = $item, tag = $tag, operation_id = concat!("delete", $one), security(("bearer" = [$write])),
                params(
                    ("name" = String, Path),
                    ("force" = Option<bool>, Query, description = $force_doc),
                    ("If-Match" = Option<String>, Header, description = "Revision (ETag) the delete is based on"),
                ),
                responses(
                    (status = 200, body = $ty),
                    (status = 404, body = ErrorBody),
                    (status = 409, description = "Stale revision, or images are built on it (listed in details)", body = ErrorBody),
                ))]
            pub async fn delete(
                State(state): State<AppState>,
                Ctx(ctx): Ctx,
                PathParam(name): PathParam<String>,
                headers: HeaderMap,
                RawQuery(raw): RawQuery,
            ) -> ApiResult<axum::Json<$ty>> {
                let force = force_flag(raw.as_deref())?;
                let view = View::new(state.store.clone());
                Ok(axum::Json($delete(&state, &view, &ctx.org, &name, if_match(&headers)?, force).await?))
            }
        }
    };
}

named_resource! {
    module: base_images, object: BaseImage, list: BaseImageList,
    collection: "/v1/base-images", item: "/v1/base-images/{name}", tag: "base-images",
    filters: ["tag", "language", "status"], delete: delete_base_image, params: ImageListParams,
    force_doc: "Delete even if images are built on it; they move to ERROR with the reason",
    one: "BaseImage", many: "BaseImages",
    read: "base-images:read", write: "base-images:write"
}

named_resource! {
    module: images, object: Image, list: ImageList,
    collection: "/v1/images", item: "/v1/images/{name}", tag: "images",
    filters: ["tag", "language", "status"], delete: delete_image, params: ImageListParams,
    force_doc: "Delete even if images are built on it; they move to ERROR with the reason",
    one: "Image", many: "Images",
    read: "images:read", write: "images:write"
}

named_resource! {
    module: package_sources, object: PackageSource, list: PackageSourceList,
    collection: "/v1/package-sources", item: "/v1/package-sources/{name}", tag: "package-sources",
    filters: ["tag", "ecosystem"], delete: delete_package_source, params: SourceListParams,
    force_doc: "Accepted for symmetry; nothing is built on a package source directly",
    one: "PackageSource", many: "PackageSources",
    read: "package-sources:read", write: "package-sources:write"
}

named_resource! {
    module: registry_credentials, object: RegistryCredential, list: RegistryCredentialList,
    collection: "/v1/registry-credentials", item: "/v1/registry-credentials/{name}", tag: "registry-credentials",
    filters: [], delete: delete_registry_credential, params: PageParams,
    force_doc: "Accepted for symmetry; nothing is built on registry credentials",
    one: "RegistryCredential", many: "RegistryCredentials",
    read: "registry-credentials:read", write: "registry-credentials:write"
}

/// The package catalog, addressed by ecosystem and name (`/v1/packages/npm/%40types%2Fnode`).
pub mod packages {
    use super::*;

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct PackageList {
        pub items: Vec<Package>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub next_page_token: Option<String>,
    }

    fn key_name(ecosystem: &str, name: &str) -> ApiResult<String> {
        let ecosystem = Ecosystem::parse(ecosystem).ok_or_else(|| {
            ApiError::not_found(format!("ecosystem {ecosystem:?} is not known: use deb, rpm, apk, pypi or npm"))
        })?;
        Ok(format!("{}/{}", ecosystem.as_str(), ecosystem.normalize_name(name)))
    }

    /// Add a catalog entry.
    #[utoipa::path(post, path = "/v1/packages", tag = "packages", operation_id = "createPackage", security(("bearer" = ["packages:write"])), request_body = Package, responses(
        (status = 201, body = Package),
        (status = 400, body = ErrorBody),
        (status = 409, description = "The ecosystem already has an entry of that name", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
    pub async fn create(
        State(state): State<AppState>,
        Ctx(ctx): Ctx,
        JsonBody(object): JsonBody<Package>,
    ) -> ApiResult<Response> {
        let mut view = View::new(state.store.clone());
        let created = objects::create(&mut view, &ctx.org, object).await?;
        let location = format!("/v1/packages/{}/{}", created.ecosystem.as_str(), encode_segment(&created.name));
        Ok(with_etag(StatusCode::CREATED, created.revision, Some(location), &created))
    }

    /// List catalog entries, by ecosystem and name.
    #[utoipa::path(get, path = "/v1/packages", tag = "packages", operation_id = "listPackages", security(("bearer" = ["packages:read"])), params(PackageListParams), responses(
        (status = 200, body = PackageList),
        (status = 400, body = ErrorBody),
    ))]
    pub async fn list(
        State(state): State<AppState>,
        Ctx(ctx): Ctx,
        RawQuery(raw): RawQuery,
    ) -> ApiResult<axum::Json<PackageList>> {
        let (items, next_page_token) =
            shared::list::<Package>(&state, &ctx, raw.as_deref(), &["ecosystem", "decision"]).await?;
        Ok(axum::Json(PackageList { items, next_page_token }))
    }

    /// Read one catalog entry.
    #[utoipa::path(get, path = "/v1/packages/{ecosystem}/{name}", tag = "packages", operation_id = "getPackage", security(("bearer" = ["packages:read"])),
        params(("ecosystem" = String, Path), ("name" = String, Path, description = "Percent-encode `/` in scoped npm names")),
        responses((status = 200, body = Package), (status = 404, body = ErrorBody)))]
    pub async fn get(
        State(state): State<AppState>,
        Ctx(ctx): Ctx,
        PathParam((ecosystem, name)): PathParam<(String, String)>,
    ) -> ApiResult<Response> {
        shared::get::<Package>(&state, &ctx, &key_name(&ecosystem, &name)?, &name).await
    }

    /// Replace a catalog entry.
    #[utoipa::path(put, path = "/v1/packages/{ecosystem}/{name}", tag = "packages", operation_id = "replacePackage", security(("bearer" = ["packages:write"])), request_body = Package,
        params(("ecosystem" = String, Path), ("name" = String, Path), ("If-Match" = Option<String>, Header)),
        responses(
            (status = 200, body = Package),
            (status = 400, body = ErrorBody),
            (status = 404, body = ErrorBody),
            (status = 409, body = ErrorBody),
            (status = 422, body = ErrorBody),
        ))]
    pub async fn replace(
        State(state): State<AppState>,
        Ctx(ctx): Ctx,
        PathParam((ecosystem, name)): PathParam<(String, String)>,
        headers: HeaderMap,
        JsonBody(object): JsonBody<Package>,
    ) -> ApiResult<Response> {
        shared::replace(&state, &ctx, &key_name(&ecosystem, &name)?, &headers, object).await
    }

    /// Change some fields of a catalog entry with a JSON merge patch.
    #[utoipa::path(patch, path = "/v1/packages/{ecosystem}/{name}", tag = "packages", operation_id = "patchPackage", security(("bearer" = ["packages:write"])),
        request_body(content = Object, content_type = "application/merge-patch+json"),
        params(("ecosystem" = String, Path), ("name" = String, Path), ("If-Match" = Option<String>, Header)),
        responses(
            (status = 200, body = Package),
            (status = 400, body = ErrorBody),
            (status = 404, body = ErrorBody),
            (status = 409, body = ErrorBody),
            (status = 422, body = ErrorBody),
        ))]
    pub async fn patch(
        State(state): State<AppState>,
        Ctx(ctx): Ctx,
        PathParam((ecosystem, name)): PathParam<(String, String)>,
        headers: HeaderMap,
        JsonBody(patch): JsonBody<serde_json::Value>,
    ) -> ApiResult<Response> {
        shared::patch::<Package>(&state, &ctx, &key_name(&ecosystem, &name)?, &headers, patch).await
    }

    /// Remove a catalog entry.
    #[utoipa::path(delete, path = "/v1/packages/{ecosystem}/{name}", tag = "packages", operation_id = "deletePackage", security(("bearer" = ["packages:write"])),
        params(("ecosystem" = String, Path), ("name" = String, Path), ("If-Match" = Option<String>, Header)),
        responses((status = 200, body = Package), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
    pub async fn delete(
        State(state): State<AppState>,
        Ctx(ctx): Ctx,
        PathParam((ecosystem, name)): PathParam<(String, String)>,
        headers: HeaderMap,
    ) -> ApiResult<axum::Json<Package>> {
        let view = View::new(state.store.clone());
        Ok(axum::Json(
            delete_plain::<Package>(&view, &ctx.org, &key_name(&ecosystem, &name)?, if_match(&headers)?).await?,
        ))
    }
}
