//! Function code on top of a runtime image: the code becomes one small layer and a new
//! manifest that reuses every layer of the image, so changing code never rebuilds, re-pushes
//! or even reads the dependencies (the CNAB seed's separation of code and runtime).

use std::io::Read;

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use kiln_build::{ImageSettings, NewLayer, ParentConfig, build_image, write_layer};
use kiln_model::{Image, Status};
use kiln_oci::ManifestInfo;
use kiln_packages::archive::{Entry, EntryKind};
use kiln_store::records;

use crate::auth::Ctx;
use crate::builds::parent::image_repository;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::PathParam;
use crate::state::AppState;

/// Largest upload of function code (compressed or not) and largest unpacked tar.
const MAX_CODE: usize = 64 << 20;
const MAX_CONFIG: u64 = 4 << 20;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FunctionImage {
    pub image: String,
    pub function: String,
    /// Pull this to run the function: the runtime image plus the code layer.
    pub reference: String,
    pub digest: String,
    /// The code layer, the only blob written.
    pub layer: String,
    pub layer_size: u64,
    /// The runtime image the code sits on.
    pub runtime_digest: String,
}

fn unprocessable(message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
}

/// The uploaded tar (gzip-compressed or not) as entries below `function/`.
fn code_entries(body: &[u8]) -> ApiResult<Vec<Entry>> {
    let tar = if body.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .take(MAX_CODE as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| unprocessable(format!("function code: not a valid gzip stream: {e}")))?;
        if out.len() > MAX_CODE {
            return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "function code unpacks to more than 64 MiB"));
        }
        out
    } else {
        body.to_vec()
    };
    let entries = kiln_packages::deb::unpack::safe_entries("function code", &tar)
        .map_err(|e| unprocessable(format!("function code: {e}")))?;
    let mut out = vec![Entry { path: "function".into(), kind: EntryKind::Directory, mode: 0o755, uid: 0, gid: 0 }];
    for entry in entries {
        // Readable by the function server's non-root user, owned by nobody in particular.
        let mode = match &entry.kind {
            EntryKind::Directory => 0o755,
            EntryKind::File { .. } if entry.mode & 0o111 != 0 => 0o755,
            _ => 0o644,
        };
        let kind = match entry.kind {
            EntryKind::Hardlink { target } => EntryKind::Hardlink { target: format!("function/{target}") },
            other => other,
        };
        out.push(Entry { path: format!("function/{}", entry.path), kind, mode, uid: 0, gid: 0 });
    }
    Ok(out)
}

/// Put a function's code on an image: one layer (under `/function`) on top of the image's
/// own, written as the manifest `<org>/<image>:fn-<function>`. Nothing is rebuilt.
#[utoipa::path(put, path = "/v1/images/{name}/functions/{function}", tag = "images", operation_id = "putFunctionCode", security(("bearer" = ["images:write"])),
    params(("name" = String, Path), ("function" = String, Path, description = "Lower-case letters, digits, `-`, `_` and `.`")),
    request_body(content = Vec<u8>, content_type = "application/x-tar", description = "The function's directory as a tar, gzip-compressed or not"),
    responses((status = 201, body = FunctionImage), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The image is not READY", body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_code(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParam((name, function)): PathParam<(String, String)>,
    body: Body,
) -> ApiResult<(StatusCode, axum::Json<FunctionImage>)> {
    let valid = !function.is_empty()
        && function.len() <= 63
        && function.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        && function.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
    if !valid {
        return Err(unprocessable(format!(
            "function name {function:?}: use 1 to 63 lower-case letters, digits, `-`, `_` or `.`, starting with a letter or digit"
        )));
    }
    let (Some(registry), Some(settings)) = (state.registry_server.clone(), state.builds.clone()) else {
        return Err(ApiError::not_found("this server runs no builder"));
    };
    let entry = state.store.get(&records::key::<Image>(&ctx.org, &name)).await?;
    let image: Image =
        entry.as_ref().map(records::decode).transpose()?.ok_or_else(|| {
            ApiError::not_found(format!("image {name:?} does not exist in organization {:?}", ctx.org))
        })?;
    let runtime_digest = match (&image.digest, image.status) {
        (Some(digest), Status::Ready | Status::Updating) => digest.clone(),
        _ => {
            return Err(ApiError::conflict(format!(
                "image {name:?} is {}: wait until it is READY",
                image.status.as_str()
            )));
        }
    };
    let body = axum::body::to_bytes(body, MAX_CODE)
        .await
        .map_err(|_| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "function code is larger than 64 MiB"))?;
    let entries = code_entries(&body)?;

    let repository = image_repository(&ctx.org, &image.name);
    let failed = |e: kiln_registry::error::RegistryError| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.message);
    let (_, stored) =
        registry.read_manifest(&repository, &runtime_digest).await.map_err(failed)?.ok_or_else(|| {
            ApiError::conflict(format!("image {name:?} has no manifest in Kiln's registry: rebuild it"))
        })?;
    let info = ManifestInfo::parse(&stored.content, Some(&stored.meta.media_type))
        .map_err(|e| ApiError::conflict(format!("image {name:?} has an unreadable manifest: {e}")))?;
    let config_descriptor =
        info.config.clone().ok_or_else(|| ApiError::conflict(format!("image {name:?} is not an image manifest")))?;
    let config = registry
        .read_blob(&repository, &config_descriptor.digest, MAX_CONFIG)
        .await
        .map_err(failed)?
        .ok_or_else(|| ApiError::conflict(format!("image {name:?} has no config blob: rebuild it")))?;

    let scratch = settings.cache_dir.join("function-scratch");
    let epoch = settings.source_date_epoch;
    let layer = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
        write_layer(&entries, epoch, &scratch).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("writing the code layer stopped: {e}")))?
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("writing the code layer: {e}")))?;
    let imported = registry.import_file(&repository, &layer.path, &layer.digest).await;
    let _ = tokio::fs::remove_file(&layer.path).await;
    imported.map_err(failed)?;

    let mut labels = std::collections::BTreeMap::new();
    labels.insert("dev.kiln.function".to_string(), function.clone());
    labels.insert("dev.kiln.runtime".to_string(), runtime_digest.clone());
    let built = build_image(
        Some(ParentConfig { config: &config, layers: &info.layers }),
        &[NewLayer {
            descriptor: layer.descriptor(),
            diff_id: layer.diff_id.clone(),
            created_by: format!("kiln: function {function} code"),
        }],
        &ImageSettings { labels, ..Default::default() },
        epoch,
    )
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("writing the function's config: {e}")))?;
    registry.put_blob(&repository, &built.config).await.map_err(failed)?;
    let tag = format!("fn-{function}");
    let digest = registry
        .put_manifest(&repository, Some(&tag), built.manifest.clone(), kiln_oci::media_types::OCI_IMAGE_MANIFEST)
        .await
        .map_err(failed)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(FunctionImage {
            image: image.name.clone(),
            function,
            reference: format!("{}/{repository}:{tag}", settings.registry_host),
            digest: digest.to_string(),
            layer: layer.digest.to_string(),
            layer_size: layer.size,
            runtime_digest,
        }),
    ))
}
