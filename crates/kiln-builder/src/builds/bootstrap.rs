//! Root images: a language's runtime from Debian packages plus Kiln's function server,
//! pushed to `<org>/base/<language>` and registered as the base image `<language>`, READY,
//! in the same commit that ends the task.

use std::collections::BTreeMap;

use async_trait::async_trait;
use kiln_build::plugins::{Language, plugin};
use kiln_model::{BaseImage, BaseImageInventory, Status, Tag, Task, Visibility};
use kiln_packages::deb::resolve::Request;
use kiln_store::{KvStore, Op, Precondition, StoreError, records};

use super::BuildRunner;
use super::parent::base_repository;
use super::pipeline::{self, BuildSpec};
use crate::error::BuildError;
use kiln_tasks::{Outcome, Runner, TaskContext, TaskError};

/// The tag every bootstrapped base image carries, so people (and Kiln) can tell them apart.
pub const MANAGED_TAG: &str = "kiln.managed";

pub struct BootstrapRunner(pub std::sync::Arc<BuildRunner>);

#[async_trait]
impl Runner for BootstrapRunner {
    async fn run(&self, ctx: &TaskContext) -> Result<serde_json::Value, TaskError> {
        let runner = &self.0;
        let language = Language::parse(&ctx.task.target).ok_or_else(|| {
            BuildError::refused(format!("no root image for language {:?}: use python3 or nodejs", ctx.task.target))
        })?;
        let plugin = plugin(language);
        let mut settings = plugin.settings.clone();
        let mut labels = BTreeMap::new();
        labels.insert("org.opencontainers.image.title".to_string(), format!("kiln {} root image", language.as_str()));
        labels.insert("dev.kiln.language".to_string(), language.as_str().to_string());
        settings = settings.overlay(&kiln_build::ImageSettings { labels, ..Default::default() });
        let org = ctx.task.organization.clone();
        let spec = BuildSpec {
            parent: None,
            requests: plugin.packages.iter().map(|name| Request { name: name.to_string(), version: None }).collect(),
            locked: None,
            python: None,
            python_constraints: Vec::new(),
            node: None,
            parent_runtime: Vec::new(),
            extra_files: plugin.files.clone(),
            settings,
            repository: base_repository(&org, language.as_str()),
            tag: None,
            title: format!("{org}/base/{}", language.as_str()),
        };
        let built = pipeline::run(runner, ctx, spec).await?;
        Ok(serde_json::json!({
            "language": language.as_str(),
            "digest": built.digest.to_string(),
            "reference": built.reference,
            "packages": built.lock.packages.len(),
            "sbomDigest": built.sbom_digest.to_string(),
            "inventory": built.inventory,
        }))
    }

    async fn settle(&self, store: &dyn KvStore, task: &Task, outcome: &Outcome) -> Result<Vec<Op>, StoreError> {
        let Outcome::Succeeded(result) = outcome else { return Ok(Vec::new()) };
        let text = |field: &str| result.get(field).and_then(serde_json::Value::as_str).unwrap_or_default().to_string();
        let key = records::key::<BaseImage>(&task.organization, &task.target);
        let now = chrono::Utc::now();
        let (mut base, expect) = match store.get(&key).await? {
            Some(entry) => (records::decode::<BaseImage>(&entry)?, Precondition::Revision(entry.mod_revision)),
            None => {
                let base: BaseImage = serde_json::from_value(serde_json::json!({
                    "name": task.target, "reference": text("reference"), "language": text("language"),
                }))
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
                (base, Precondition::Absent)
            }
        };
        if base.id.is_empty() {
            base.id = uuid::Uuid::new_v4().to_string();
            base.created_time = Some(now);
        }
        base.organization = task.organization.clone();
        base.reference = text("reference");
        base.language = text("language");
        base.status = Status::Ready;
        base.reason = Vec::new();
        base.digest = Some(text("digest"));
        base.platform = Some("linux/amd64".to_string());
        base.checked_time = Some(now);
        base.updated_time = Some(now);
        base.visibility = Visibility::Public;
        if !base.tags.iter().any(|t| t.key == MANAGED_TAG) {
            base.tags.push(Tag { key: MANAGED_TAG.to_string(), value: "root".to_string() });
        }
        // Kiln knows what it put in a root image: its inventory needs no scan of the layers.
        let items: Vec<kiln_model::InventoryItem> =
            serde_json::from_value(result.get("inventory").cloned().unwrap_or_default()).unwrap_or_default();
        let inventory = BaseImageInventory {
            digest: text("digest"),
            items,
            problem: None,
            scanned_time: now,
            layers_checked: true,
        };
        let inventory_key = records::key::<BaseImageInventory>(&task.organization, &task.target);
        Ok(vec![
            Op::Put { key, value: records::encode(&base)?, expect },
            Op::Put { key: inventory_key, value: records::encode(&inventory)?, expect: Precondition::Any },
        ])
    }
}
