//! The task that composes a function again over its runtime image's new build. It writes
//! an untagged manifest; the function's record and tag move to it when the task ends, in
//! the task's own commit, so a crash or a concurrent push never leaves them apart.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use kiln_model::{Function, Status, Task};
use kiln_registry::Registry;
use kiln_store::{KvStore, Op, Precondition, StoreError, records};
use serde_json::{Value, json};

use super::compose::{code_layer, compose, load_runtime};
use crate::error::BuildError;
use kiln_tasks::{Outcome, Runner, TaskContext, TaskError};

pub struct ComposeRunner {
    pub registry: Arc<Registry>,
    pub source_date_epoch: i64,
}

fn runtime_digest(task: &Task) -> String {
    task.params.get("runtimeDigest").and_then(Value::as_str).unwrap_or_default().to_string()
}

#[async_trait]
impl Runner for ComposeRunner {
    async fn run(&self, ctx: &TaskContext) -> Result<Value, TaskError> {
        let task = &ctx.task;
        let key = records::key::<Function>(&task.organization, &task.target);
        let store_failed = |e: StoreError| BuildError::store(format!("reading function {:?}", task.target), e);
        let Some(entry) = ctx.store().get(&key).await.map_err(store_failed)? else {
            return Ok(json!({"superseded": true}));
        };
        let function: Function = records::decode(&entry).map_err(store_failed)?;
        if function.compose_task.as_deref() != Some(task.id.as_str()) {
            return Ok(json!({"superseded": true}));
        }
        let digest = runtime_digest(task);
        ctx.step("composing", 10);
        ctx.log(format!("composing function {} over image {} {digest}", function.name, function.image));
        let repository = super::repository(&function);
        let runtime =
            load_runtime(&self.registry, &repository, &function.image, &digest).await.map_err(BuildError::from)?;
        let layer = code_layer(&function).map_err(BuildError::Refused)?;
        // The image's repository may have been deleted and made again since the push.
        let linked = self
            .registry
            .link_blob(&repository, &layer.descriptor.digest)
            .await
            .map_err(|e| BuildError::registry("linking the code layer", e))?;
        if !linked {
            return Err(BuildError::refused(format!(
                "the code layer {} is no longer in Kiln's registry",
                layer.descriptor.digest
            ))
            .into());
        }
        let composed = compose(&self.registry, &repository, &runtime, &function.name, layer, self.source_date_epoch)
            .await
            .map_err(BuildError::from)?;
        ctx.log(format!("function image {composed}"));
        Ok(json!({"digest": composed.to_string(), "runtimeDigest": digest}))
    }

    async fn settle(&self, store: &dyn KvStore, task: &Task, outcome: &Outcome) -> Result<Vec<Op>, StoreError> {
        settle(store, task, outcome).await
    }
}

/// Moves the function to what its task composed, or records why it could not.
pub async fn settle(store: &dyn KvStore, task: &Task, outcome: &Outcome) -> Result<Vec<Op>, StoreError> {
    let key = records::key::<Function>(&task.organization, &task.target);
    let composed = match outcome {
        Outcome::Succeeded(result) => result.get("digest").and_then(Value::as_str).map(str::to_string),
        _ => None,
    };
    let entry = store.get(&key).await?;
    let current: Option<Function> = entry.as_ref().map(records::decode).transpose()?;
    let Some((entry, mut function)) = entry.zip(current) else {
        // Deleted meanwhile: drop what the task wrote for it.
        let image = task.params.get("image").and_then(Value::as_str);
        return match (composed, image) {
            (Some(digest), Some(image)) => {
                let repository = crate::builds::parent::image_repository(&task.organization, image);
                super::drop_manifest_ops(store, &repository, &digest, "").await
            }
            _ => Ok(Vec::new()),
        };
    };
    if function.compose_task.as_deref() != Some(task.id.as_str()) {
        // Pushed again or moved meanwhile: what this task wrote belongs to nobody.
        return match composed {
            Some(digest) if digest != function.digest => {
                let repository = super::repository(&function);
                super::drop_manifest_ops(store, &repository, &digest, "").await
            }
            _ => Ok(Vec::new()),
        };
    }
    let previous = function.clone();
    let runtime = runtime_digest(task);
    function.compose_task = None;
    function.updated_time = Some(Utc::now());
    match (outcome, composed) {
        (Outcome::Succeeded(_), Some(digest)) => {
            function.status = Status::Ready;
            function.reason = Vec::new();
            function.failed_runtime_digest = None;
            function.digest = digest;
            function.runtime_digest = runtime;
            super::publish_ops(store, &function, Precondition::Revision(entry.mod_revision), Some(&previous)).await
        }
        (Outcome::Succeeded(_), None) => Ok(Vec::new()),
        (Outcome::Failed(_) | Outcome::Cancelled, _) => {
            let ended = match outcome {
                Outcome::Failed(reason) => format!("failed: {reason}"),
                _ => "was cancelled".to_string(),
            };
            function.status = Status::Error;
            function.reason = vec![format!(
                "composing over image {:?} {runtime} {ended}; the function still runs on {}; push it again",
                function.image, function.runtime_digest
            )];
            function.failed_runtime_digest = Some(runtime);
            Ok(vec![Op::Put {
                key,
                value: records::encode(&function)?,
                expect: Precondition::Revision(entry.mod_revision),
            }])
        }
    }
}
