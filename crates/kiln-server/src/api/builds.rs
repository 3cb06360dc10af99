//! What builds produced, over the REST API: an image's packages (inventory), lock,
//! Dockerfile and SBOM; which images contain a package; rebuilds (optionally exactly from
//! the lock); and bootstrap of the root images.

use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use kiln_model::{BaseImage, BaseImageInventory, BuildRecord, Ecosystem, Image, InventoryItem, Status, Task, TaskKind};
use kiln_registry::image::{Config, ImageReadError};
use kiln_store::{Op, Precondition, records};

use crate::auth::{Ctx, RequestContext};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, PathParam};
use crate::state::AppState;
use kiln_builder::builds::record::{PackageVersions, package_index_prefix};
use kiln_tasks::NewTask;

async fn image(state: &AppState, ctx: &RequestContext, name: &str) -> ApiResult<Image> {
    let entry = state.store.get(&records::key::<Image>(&ctx.org, name)).await?;
    let image: Option<Image> = entry.as_ref().map(records::decode).transpose()?;
    match image {
        Some(image) if !ctx.public_only || image.visibility == kiln_model::Visibility::Public => Ok(image),
        _ => Err(ApiError::not_found(format!("image {name:?} does not exist in organization {:?}", ctx.org))),
    }
}

async fn record(state: &AppState, ctx: &RequestContext, name: &str) -> ApiResult<BuildRecord> {
    let image = image(state, ctx, name).await?;
    let entry = state.store.get(&records::key::<BuildRecord>(&ctx.org, &image.name)).await?.ok_or_else(|| {
        ApiError::not_found(format!("image {name:?} has not been built yet (status {})", image.status.as_str()))
    })?;
    Ok(records::decode(&entry)?)
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PackageInventory {
    pub image: String,
    pub digest: String,
    pub items: Vec<InventoryItem>,
}

/// Every package in the image (its parent's included), with version, licence, purl and layer.
#[utoipa::path(get, path = "/v1/images/{name}/packages", tag = "images", operation_id = "getImagePackages", security(("bearer" = ["images:read"])),
    params(("name" = String, Path)),
    responses((status = 200, body = PackageInventory), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn packages(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParam(name): PathParam<String>,
) -> ApiResult<axum::Json<PackageInventory>> {
    let record = record(&state, &ctx, &name).await?;
    Ok(axum::Json(PackageInventory { image: name, digest: record.digest, items: record.inventory }))
}

/// What a base image built elsewhere holds, as Kiln read it from its layers when it was
/// registered (dpkg packages, Python distributions, npm packages).
#[utoipa::path(get, path = "/v1/base-images/{name}/packages", tag = "base-images", operation_id = "getBaseImagePackages", security(("bearer" = ["base-images:read"])),
    params(("name" = String, Path)),
    responses((status = 200, body = PackageInventory), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn base_image_packages(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParam(name): PathParam<String>,
) -> ApiResult<axum::Json<PackageInventory>> {
    let missing = || ApiError::not_found(format!("base image {name:?} does not exist in organization {:?}", ctx.org));
    let entry = state.store.get(&records::key::<BaseImage>(&ctx.org, &name)).await?.ok_or_else(missing)?;
    let base: BaseImage = records::decode(&entry)?;
    if ctx.public_only && base.visibility != kiln_model::Visibility::Public {
        return Err(missing());
    }
    let not_yet = || {
        ApiError::not_found(format!(
            "base image {name:?} has not been read yet (status {}): Kiln reads images from other registries when it checks them",
            base.status.as_str()
        ))
    };
    let entry =
        state.store.get(&records::key::<BaseImageInventory>(&ctx.org, &base.name)).await?.ok_or_else(not_yet)?;
    let inventory: BaseImageInventory = records::decode(&entry)?;
    if base.digest.as_deref() != Some(inventory.digest.as_str()) {
        return Err(not_yet());
    }
    if let Some(problem) = inventory.problem {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("base image {name:?}: {problem}")));
    }
    Ok(axum::Json(PackageInventory { image: name, digest: inventory.digest, items: inventory.items }))
}

/// The last successful build: digest, parent, lock (every package with version, sha256 and
/// source), SBOM digest and Dockerfile.
#[utoipa::path(get, path = "/v1/images/{name}/build", tag = "images", operation_id = "getImageBuild", security(("bearer" = ["images:read"])),
    params(("name" = String, Path)),
    responses((status = 200, body = BuildRecord), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn build(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParam(name): PathParam<String>,
) -> ApiResult<axum::Json<BuildRecord>> {
    Ok(axum::Json(record(&state, &ctx, &name).await?))
}

/// The Dockerfile that builds the same image elsewhere (`docker build`, `buildah bud`): from
/// the Debian release's image (build argument `BASE`), every Debian package of the image
/// pinned, Python and npm packages at their locked versions, the function server copied in.
/// With `context=tar`, a tar of the `Dockerfile` and the files it copies, to unpack and build.
#[utoipa::path(get, path = "/v1/images/{name}/dockerfile", tag = "images", operation_id = "getImageDockerfile", security(("bearer" = ["images:read"])),
    params(("name" = String, Path), ("context" = Option<String>, Query, description = "`tar`: the build context (Dockerfile and the files it copies) as a tar")),
    responses((status = 200, description = "the Dockerfile, or with `context=tar` the build context", content((String = "text/plain"), (String = "application/x-tar"))), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn dockerfile(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParam(name): PathParam<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let mut as_tar = false;
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match (key.as_ref(), value.as_ref()) {
            ("context", "tar") => as_tar = true,
            ("context", other) => {
                return Err(ApiError::bad_request(format!("context {other:?} is not known: use context=tar")));
            }
            (other, _) => return Err(ApiError::bad_request(format!("unknown query parameter {other:?}: use context"))),
        }
    }
    let record = record(&state, &ctx, &name).await?;
    if !as_tar {
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], record.dockerfile).into_response());
    }
    let files: Vec<kiln_build::ContextFile> = record
        .dockerfile_context
        .into_iter()
        .map(|f| kiln_build::ContextFile { path: f.path, data: f.content.into_bytes() })
        .collect();
    let tar = kiln_build::context_tar(&record.dockerfile, &files)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("writing the build context: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "application/x-tar")], tar).into_response())
}

/// The image's SPDX 2.3 SBOM, as pushed to the registry as a referrer of the image.
#[utoipa::path(get, path = "/v1/images/{name}/sbom", tag = "images", operation_id = "getImageSbom", security(("bearer" = ["images:read"])),
    params(("name" = String, Path)),
    responses((status = 200, content_type = "application/spdx+json", body = String), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn sbom(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParam(name): PathParam<String>,
) -> ApiResult<Response> {
    let record = record(&state, &ctx, &name).await?;
    let registry = state.registry_server.clone().ok_or_else(|| ApiError::not_found("this server runs no registry"))?;
    let repository = kiln_builder::builds::parent::image_repository(&ctx.org, &name);
    let missing =
        || ApiError::not_found(format!("the SBOM of image {name:?} is no longer in the registry: rebuild the image"));
    let digest = record.sbom_digest.as_deref().ok_or_else(missing)?;
    let internal = |e: kiln_registry::error::RegistryError| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.message);
    let info = match registry.read_image(&repository, digest, Config::Skip).await {
        Ok(image) => image.info,
        Err(ImageReadError::NoManifest { .. }) => return Err(missing()),
        Err(ImageReadError::Registry(e)) => return Err(internal(e)),
        Err(e) => return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("the SBOM manifest: {e}"))),
    };
    let layer = info.layers.first().ok_or_else(missing)?;
    let document =
        registry.read_blob(&repository, &layer.digest, 64 << 20).await.map_err(internal)?.ok_or_else(missing)?;
    Ok(([(header::CONTENT_TYPE, kiln_build::SPDX_JSON)], document).into_response())
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PackageUse {
    pub image: String,
    pub versions: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PackageUses {
    pub items: Vec<PackageUse>,
}

/// Which of the organisation's built images contain a package (optionally one version).
#[utoipa::path(get, path = "/v1/packages/{ecosystem}/{name}/images", tag = "packages", operation_id = "getPackageImages", security(("bearer" = ["images:read"])),
    params(("ecosystem" = String, Path), ("name" = String, Path), ("version" = Option<String>, Query)),
    responses((status = 200, body = PackageUses), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn package_images(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParam((ecosystem, name)): PathParam<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult<axum::Json<PackageUses>> {
    let ecosystem = Ecosystem::parse(&ecosystem).ok_or_else(|| {
        ApiError::bad_request(format!("ecosystem {ecosystem:?} is not known: use deb, rpm, apk, pypi or npm"))
    })?;
    let mut version = None;
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "version" => version = Some(value.into_owned()),
            other => return Err(ApiError::bad_request(format!("unknown query parameter {other:?}: use version"))),
        }
    }
    let name = ecosystem.normalize_name(&name);
    let prefix = package_index_prefix(&ctx.org, ecosystem.as_str(), &name);
    let mut items = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = state.store.list(&prefix, after.as_deref(), 1000).await?;
        for entry in &page.entries {
            let PackageVersions(versions) = kiln_store::records::decode_value(&entry.key, &entry.value)?;
            if version.as_ref().is_some_and(|v| !versions.contains(v)) {
                continue;
            }
            let image = entry.key.trim_start_matches(&prefix).to_string();
            items.push(PackageUse { image, versions });
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    if ctx.public_only {
        let mut visible = Vec::new();
        for item in items {
            if let Some(entry) = state.store.get(&records::key::<Image>(&ctx.org, &item.image)).await?
                && records::decode::<Image>(&entry)?.visibility == kiln_model::Visibility::Public
            {
                visible.push(item);
            }
        }
        items = visible;
    }
    Ok(axum::Json(PackageUses { items }))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RebuildRequest {
    /// Fetch exactly the packages of the last build's lock instead of resolving again.
    #[serde(default)]
    pub locked: bool,
}

/// Build the image again from its definition (new package versions are picked up), or
/// exactly from its lock (`locked: true`).
#[utoipa::path(post, path = "/v1/images/{name}/rebuild", tag = "images", operation_id = "rebuildImage", security(("bearer" = ["images:write"])),
    params(("name" = String, Path)), request_body = RebuildRequest,
    responses((status = 202, body = Task), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the image is being deleted or changed meanwhile")))]
pub async fn rebuild(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParam(name): PathParam<String>,
    JsonBody(request): JsonBody<RebuildRequest>,
) -> ApiResult<(StatusCode, axum::Json<Task>)> {
    let engine = state.tasks.clone().ok_or_else(|| ApiError::not_found("this server runs no task engine"))?;
    let mut image = image(&state, &ctx, &name).await?;
    if image.status == Status::Deleting {
        return Err(ApiError::conflict(format!("image {name:?} is being deleted")));
    }
    if request.locked {
        record(&state, &ctx, &name).await?;
    }
    let definition = image.definition_digest();
    let (task, mut ops) = engine
        .plan(NewTask {
            org: ctx.org.to_string(),
            kind: TaskKind::BuildImage,
            target: image.name.clone(),
            params: serde_json::json!({"definition": definition, "locked": request.locked}),
            timeout: None,
        })
        .map_err(ApiError::from)?;
    let revision =
        image.revision.ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "image has no revision"))?;
    let superseded = image.build_task.replace(task.id.clone());
    image.build_definition = Some(definition);
    image.build_parent_digest = kiln_builder::controllers::images::current_parent_digest(state.store.as_ref(), &image)
        .await
        .map_err(ApiError::from)?;
    image.status = if image.digest.is_some() { Status::Updating } else { Status::Creating };
    image.reason = Vec::new();
    image.updated_time = Some(chrono::Utc::now());
    ops.push(Op::Put {
        key: records::key::<Image>(&ctx.org, &image.name),
        value: records::encode(&image)?,
        expect: Precondition::Revision(revision),
    });
    state.store.txn(ops).await.map_err(|e| match e {
        kiln_store::StoreError::Conflict { .. } => {
            ApiError::conflict(format!("image {name:?} changed meanwhile: try again"))
        }
        other => other.into(),
    })?;
    engine.wake();
    if let Some(old) = superseded {
        let _ = engine.cancel(&ctx.org, &old).await;
    }
    Ok((StatusCode::ACCEPTED, axum::Json(task)))
}

/// Make the image's debug variant: its layers plus Debian's `busybox-static` from the sources
/// it was built from, pushed beside it as `<tag>-debug` (the task's result names it). The
/// image itself is not changed; run a shell with `--entrypoint busybox REF sh`.
#[utoipa::path(post, path = "/v1/images/{name}/debug", tag = "images", operation_id = "debugImage", security(("bearer" = ["images:write"])),
    params(("name" = String, Path)),
    responses((status = 202, body = Task), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the image is not built")))]
pub async fn debug(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParam(name): PathParam<String>,
) -> ApiResult<(StatusCode, axum::Json<Task>)> {
    let engine = state.tasks.clone().ok_or_else(|| ApiError::not_found("this server runs no task engine"))?;
    let image = image(&state, &ctx, &name).await?;
    if image.digest.is_none() || !matches!(image.status, Status::Ready | Status::Updating) {
        return Err(ApiError::conflict(format!(
            "image {name:?} is not built (status {}): make its debug variant once it is READY",
            image.status.as_str()
        )));
    }
    let (task, ops) = engine
        .plan(NewTask {
            org: ctx.org.to_string(),
            kind: TaskKind::DebugImage,
            target: image.name.clone(),
            params: serde_json::json!({"imageDigest": image.digest}),
            timeout: None,
        })
        .map_err(ApiError::from)?;
    state.store.txn(ops).await?;
    engine.wake();
    Ok((StatusCode::ACCEPTED, axum::Json(task)))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BootstrapRequest {
    /// Root images to assemble; both when left out.
    #[serde(default)]
    #[schema(example = json!(["python3", "nodejs"]))]
    pub languages: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BootstrapTasks {
    pub items: Vec<Task>,
}

/// Assemble the root images (`python3`, `nodejs`) from Debian packages with Kiln's function
/// server, push them to Kiln's registry and register them as public base images.
#[utoipa::path(post, path = "/v1/bootstrap", tag = "base-images", operation_id = "bootstrapRootImages", security(("bearer" = ["base-images:write"])),
    request_body = BootstrapRequest,
    responses((status = 202, body = BootstrapTasks), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn bootstrap(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    JsonBody(request): JsonBody<BootstrapRequest>,
) -> ApiResult<(StatusCode, axum::Json<BootstrapTasks>)> {
    let engine = state.tasks.clone().ok_or_else(|| ApiError::not_found("this server runs no task engine"))?;
    let mut languages = request.languages;
    if languages.is_empty() {
        languages = kiln_build::Language::ALL.iter().map(|l| l.as_str().to_string()).collect();
    }
    let mut ops = Vec::new();
    let mut items = Vec::new();
    for (i, language) in languages.iter().enumerate() {
        if kiln_build::Language::parse(language).is_none() {
            return Err(ApiError::field(
                &format!("languages[{i}]"),
                format!("{language:?} has no root image: use python3 or nodejs"),
            ));
        }
        let (task, task_ops) = engine
            .plan(NewTask {
                org: ctx.org.to_string(),
                kind: TaskKind::Bootstrap,
                target: language.clone(),
                params: serde_json::json!({}),
                timeout: None,
            })
            .map_err(ApiError::from)?;
        ops.extend(task_ops);
        items.push(task);
    }
    state.store.txn(ops).await?;
    engine.wake();
    Ok((StatusCode::ACCEPTED, axum::Json(BootstrapTasks { items })))
}
