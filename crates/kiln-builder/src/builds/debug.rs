//! An image's debug variant, for people who need a shell in an image that has none: the
//! image's own layers plus one layer of Debian's `busybox-static` from the sources the image
//! was built from, pushed as `<tag>-debug` beside it. The image and its record are not
//! touched; the variant is made on request and is the image as it was then.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use kiln_model::{Image, Status, Task};
use kiln_packages::deb::resolve::Request;
use kiln_store::{KvStore, Op, Precondition, StoreError, records};
use serde_json::json;

use super::BuildRunner;
use super::parent::{self, image_repository};
use super::pipeline::{self, BuildSpec};
use crate::error::BuildError;
use kiln_tasks::{Outcome, Runner, TaskContext, TaskError};

/// The one package the variant adds: a static busybox, which depends on nothing.
pub const DEBUG_PACKAGE: &str = "busybox-static";

/// The tag of `tag`'s debug variant.
pub fn debug_tag(tag: &str) -> String {
    format!("{tag}-debug")
}

pub struct DebugRunner(pub Arc<BuildRunner>);

#[async_trait]
impl Runner for DebugRunner {
    async fn run(&self, ctx: &TaskContext) -> Result<serde_json::Value, TaskError> {
        let runner = &self.0;
        let org = ctx.task.organization.clone();
        let name = ctx.task.target.clone();
        let failed = |e: StoreError| BuildError::store(format!("reading image {name:?}"), e);
        let entry = ctx
            .store()
            .get(&records::key::<Image>(&org, &name))
            .await
            .map_err(failed)?
            .ok_or_else(|| BuildError::refused(format!("image {name:?} was deleted")))?;
        let image: Image = records::decode(&entry).map_err(failed)?;
        let (Some(digest), Some(reference), Status::Ready | Status::Updating) =
            (&image.digest, &image.reference, image.status)
        else {
            return Err(BuildError::refused(format!("image {name:?} is not built: build it first")).into());
        };
        let tag = reference.rsplit_once(':').map(|(_, tag)| tag).unwrap_or("latest");
        ctx.log(format!("debug variant of {reference} ({digest}) with {DEBUG_PACKAGE}"));
        // The image itself is the parent: its layers stay byte for byte, one layer goes on top.
        let as_child = Image {
            organization: org.clone(),
            parent_image_name: Some(name.clone()),
            base_image_name: None,
            ..image.clone()
        };
        let loaded = parent::load(
            ctx.store().as_ref(),
            &runner.registry,
            &runner.settings.registry_host,
            &runner.memo,
            &as_child,
        )
        .await?;
        if loaded.digest.to_string() != *digest {
            return Err(
                BuildError::unavailable(format!("image {name:?} changed while its debug variant was planned")).into()
            );
        }
        let runtime = pipeline::built_runtime(ctx.store().as_ref(), &org, &name, &loaded.runtime).await?;
        let mut labels = BTreeMap::new();
        labels.insert("dev.kiln.debug".to_string(), digest.clone());
        let spec = BuildSpec {
            parent: Some(loaded),
            requests: vec![Request { name: DEBUG_PACKAGE.to_string(), version: None }],
            locked: None,
            python: None,
            python_constraints: Vec::new(),
            node: None,
            parent_runtime: runtime,
            extra_files: Vec::new(),
            settings: kiln_build::ImageSettings { labels, ..Default::default() },
            repository: image_repository(&org, &name),
            tag: Some(debug_tag(tag)),
            title: format!("{org}/{name} (debug)"),
        };
        let built = pipeline::run(runner, ctx, spec).await?;
        Ok(json!({
            "image": name,
            "imageDigest": digest,
            "digest": built.digest.to_string(),
            "reference": built.reference,
            "shell": ["busybox", "sh"],
        }))
    }

    /// The variant lives in the registry only: nothing to record beside the task, unless
    /// the image was deleted while it was made, when what was pushed goes with it.
    async fn settle(&self, store: &dyn KvStore, task: &Task, outcome: &Outcome) -> Result<Vec<Op>, StoreError> {
        if !matches!(outcome, Outcome::Succeeded(_))
            || store.get(&records::key::<Image>(&task.organization, &task.target)).await?.is_some()
        {
            return Ok(Vec::new());
        }
        let repository = image_repository(&task.organization, &task.target);
        let keys = kiln_registry::meta::repository_keys(store, &repository).await?;
        Ok(keys.into_iter().map(|key| Op::Delete { key, expect: Precondition::Any }).collect())
    }
}
