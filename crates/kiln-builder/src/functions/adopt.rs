//! Function images pushed before functions were objects have a `fn-<name>` tag and no
//! record. Their configs say what they are (`dev.kiln.function`, `dev.kiln.runtime`), so each
//! becomes a record as it stands: listed, deletable, and composed again when its image is
//! rebuilt like any function pushed today.

use chrono::Utc;
use kiln_model::function::{check_function_name, function_tag};
use kiln_model::{Function, Image, Status};
use kiln_registry::{Registry, meta};
use kiln_store::{KvStore, Op, Precondition, StoreError, records};
use serde_json::Value;

use super::compose::load_runtime;
use crate::builds::parent::image_repository;

/// Makes a record for every function tag of `image` that has none. A tag whose image does not
/// read as a function image is left as it is, and logged.
pub async fn adopt(store: &dyn KvStore, registry: &Registry, image: &Image) -> Result<(), StoreError> {
    let repository = image_repository(&image.organization, &image.name);
    let prefix = meta::tag_key(&repository, "fn-");
    for tag in meta::scan(store, &prefix).await? {
        let Some(name) = tag.key.strip_prefix(&prefix) else { continue };
        if check_function_name(name).is_err() {
            continue;
        }
        let key = records::key::<Function>(&image.organization, name);
        if store.get(&key).await?.is_some() {
            continue;
        }
        let digest = String::from_utf8_lossy(&tag.value).into_owned();
        let function = match read(registry, image, &repository, name, &digest).await {
            Ok(function) => function,
            Err(why) => {
                tracing::debug!(
                    repository,
                    tag = function_tag(name),
                    why,
                    "a function tag without a record stays as it is"
                );
                continue;
            }
        };
        let ops = vec![
            Op::Check { key: tag.key.clone(), expect: Precondition::Revision(tag.mod_revision) },
            Op::Put { key, value: records::encode(&function)?, expect: Precondition::Absent },
        ];
        match store.txn(ops).await {
            Ok(_) => tracing::info!(repository, function = name, "a function pushed before records existed is now one"),
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The record a function image implies, or why it does not read as one.
async fn read(
    registry: &Registry,
    image: &Image,
    repository: &str,
    name: &str,
    digest: &str,
) -> Result<Function, String> {
    let loaded = load_runtime(registry, repository, &image.name, digest).await.map_err(|e| e.to_string())?;
    let (info, config, runtime) = (loaded.info, loaded.config, loaded.runtime);
    let parsed: Value = serde_json::from_slice(&config).map_err(|e| format!("its config is not JSON: {e}"))?;
    let label = |key: &str| parsed.pointer(&format!("/config/Labels/{key}")).and_then(Value::as_str);
    if label("dev.kiln.function") != Some(name) {
        return Err(format!("its config does not name function {name:?}"));
    }
    let runtime_digest = label("dev.kiln.runtime").ok_or("its config names no runtime image")?.to_string();
    let layer = info.layers.last().ok_or("it has no layers")?;
    let diff_ids = parsed.pointer("/rootfs/diff_ids").and_then(Value::as_array).ok_or("its config has no diff_ids")?;
    let diff_id = diff_ids.last().and_then(Value::as_str).ok_or("its config has no diff_ids")?;
    // The function's reference is its image's, with the function's tag.
    let host = image.reference.as_deref().and_then(|r| r.split_once('/')).map(|(host, _)| host);
    let host = host.ok_or("its image has no reference to take the registry host from")?;
    let now = Utc::now();
    Ok(Function {
        name: name.to_string(),
        organization: image.organization.clone(),
        image: image.name.clone(),
        status: Status::Ready,
        reason: Vec::new(),
        reference: format!("{host}/{repository}:{}", function_tag(name)),
        digest: digest.to_string(),
        runtime_digest,
        layer: layer.digest.to_string(),
        layer_size: layer.size,
        layer_diff_id: diff_id.to_string(),
        language: runtime.language.map(str::to_string),
        module: runtime.module_file(),
        handler: runtime.language.map(|_| runtime.handler.clone()),
        compose_task: None,
        failed_runtime_digest: None,
        created_time: Some(now),
        updated_time: Some(now),
        revision: None,
    })
}
