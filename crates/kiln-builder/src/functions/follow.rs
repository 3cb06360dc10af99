//! Keeps function images on their runtime image's current build: a function whose image has
//! a new digest gets a compose task, created in the same transaction that marks the function
//! `UPDATING`, so a crash between noticing and doing loses nothing (the next pass sees the
//! same difference). Also removes function tags no record owns any more.

use std::sync::Arc;

use chrono::Utc;
use kiln_model::function::function_tag;
use kiln_model::{Function, Image, Status, TaskKind};
use kiln_registry::{Registry, meta};
use kiln_store::{KvStore, Op, Precondition, StoreError, records};

use crate::builds::parent::image_repository;
use kiln_tasks::{Engine, NewTask};

/// One pass over every function, then over every image's function tags.
pub async fn pass(
    store: &Arc<dyn KvStore>,
    engine: &Arc<Engine>,
    registry: Option<&Arc<Registry>>,
) -> Result<(), StoreError> {
    for entry in meta::scan(store.as_ref(), "functions/").await? {
        let Ok(function) = records::decode::<Function>(&entry) else { continue };
        if let Err(e) = reconcile(store, engine, function, entry.mod_revision).await {
            tracing::warn!(error = %e, key = entry.key, "could not bring a function up to date");
        }
    }
    for entry in meta::scan(store.as_ref(), "images/").await? {
        let Ok(image) = records::decode::<Image>(&entry) else { continue };
        if let Some(registry) = registry
            && let Err(e) = super::adopt::adopt(store.as_ref(), registry, &image).await
        {
            tracing::warn!(error = %e, key = entry.key, "could not adopt function tags");
        }
        if let Err(e) = sweep(store.as_ref(), &image).await {
            tracing::warn!(error = %e, key = entry.key, "could not clean up function tags");
        }
    }
    Ok(())
}

async fn reconcile(
    store: &Arc<dyn KvStore>,
    engine: &Arc<Engine>,
    mut function: Function,
    revision: u64,
) -> Result<(), StoreError> {
    if function.compose_task.is_some() {
        return Ok(());
    }
    let key = records::key::<Function>(&function.organization, &function.name);
    let image = store.get(&records::key::<Image>(&function.organization, &function.image)).await?;
    let image: Option<Image> = image.as_ref().map(records::decode).transpose()?;
    let digest = match image {
        Some(image) if image.status != Status::Deleting => image.digest,
        _ => {
            let reason = format!(
                "image {:?} no longer exists: push the function onto another image (kiln function push IMAGE --code DIR --name {}) or delete it",
                function.image, function.name
            );
            if function.status == Status::Error && function.reason == [reason.clone()] {
                return Ok(());
            }
            function.status = Status::Error;
            function.reason = vec![reason];
            function.updated_time = Some(Utc::now());
            return put(store.as_ref(), &key, &function, revision).await;
        }
    };
    let Some(digest) = digest else { return Ok(()) };
    if digest == function.runtime_digest || function.failed_runtime_digest.as_deref() == Some(digest.as_str()) {
        return Ok(());
    }
    let (task, mut ops) = engine.plan(NewTask {
        org: function.organization.clone(),
        kind: TaskKind::ComposeFunction,
        target: function.name.clone(),
        params: serde_json::json!({"image": function.image, "runtimeDigest": digest}),
        timeout: None,
    })?;
    function.status = Status::Updating;
    function.compose_task = Some(task.id.clone());
    function.updated_time = Some(Utc::now());
    ops.push(Op::Put { key, value: records::encode(&function)?, expect: Precondition::Revision(revision) });
    match store.txn(ops).await {
        Ok(_) => engine.wake(),
        // Pushed or deleted meanwhile; the next pass looks again.
        Err(StoreError::Conflict { .. }) => {}
        Err(e) => return Err(e),
    }
    Ok(())
}

async fn put(store: &dyn KvStore, key: &str, function: &Function, revision: u64) -> Result<(), StoreError> {
    match store.put(key, records::encode(function)?, Precondition::Revision(revision)).await {
        Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Deletes `fn-<name>` tags of `image`'s repository whose function now lives on another
/// image (a crash cannot leave one, but a move made by an older Kiln could). Tags with no
/// record at all were adopted as records just before (`super::adopt`), or do not read as
/// function images and are left alone.
async fn sweep(store: &dyn KvStore, image: &Image) -> Result<(), StoreError> {
    let repository = image_repository(&image.organization, &image.name);
    let prefix = meta::tag_key(&repository, "fn-");
    for tag in meta::scan(store, &prefix).await? {
        let Some(name) = tag.key.strip_prefix(&prefix) else { continue };
        let Some(entry) = store.get(&records::key::<Function>(&image.organization, name)).await? else { continue };
        let function: Function = records::decode(&entry)?;
        if image_repository(&function.organization, &function.image) == repository {
            continue;
        }
        let digest = String::from_utf8_lossy(&tag.value).into_owned();
        let tag_name = function_tag(name);
        let mut ops = vec![
            Op::Check { key: entry.key.clone(), expect: Precondition::Revision(entry.mod_revision) },
            Op::Delete { key: tag.key.clone(), expect: Precondition::Revision(tag.mod_revision) },
        ];
        ops.extend(super::drop_manifest_ops(store, &repository, &digest, &tag_name).await?);
        match store.txn(ops).await {
            Ok(_) => tracing::info!(repository, tag = tag_name, "removed a stale function tag"),
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
