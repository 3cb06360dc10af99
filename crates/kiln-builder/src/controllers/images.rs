//! Notices images whose definition has no build yet and starts one: the task and the
//! image's move to `CREATING` (or `UPDATING`) commit together, so a crash never leaves an
//! image waiting for a task that does not exist. Builds wait for their parent to be READY;
//! a parent in ERROR puts the image in ERROR with the parent's reason. A settled image
//! whose parent's digest moved on since its build started is rebuilt on the new parent
//! (Dispatch left images on the base they were first built on). Functions on an image
//! follow its new builds (`crate::functions::follow`).

use std::sync::Arc;
use std::time::Duration;

use kiln_model::image::resolve_parent_reference;
use kiln_model::{BaseImage, Image, Status, TaskKind};
use kiln_store::{KvStore, Op, Precondition, StoreError, records};

use kiln_tasks::{Engine, NewTask};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often every image is looked at even without a change.
const RESYNC: Duration = Duration::from_secs(20);

/// Starts the image controller; it stops when `shutdown` is cancelled.
pub fn spawn(
    store: Arc<dyn KvStore>,
    engine: Arc<Engine>,
    registry: Option<Arc<kiln_registry::Registry>>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let controller = ImageController { store: store.clone(), engine, registry };
    tokio::spawn(super::watch::run(store, controller, shutdown))
}

struct ImageController {
    store: Arc<dyn KvStore>,
    engine: Arc<Engine>,
    registry: Option<Arc<kiln_registry::Registry>>,
}

impl super::watch::Reconciler for ImageController {
    const NAME: &'static str = "image controller";

    async fn pass(&mut self) -> Result<Duration, StoreError> {
        pass(&self.store, &self.engine, self.registry.as_ref()).await.map(|()| RESYNC)
    }

    fn after_failure(&self) -> Duration {
        RESYNC
    }

    fn wakes_on(&mut self, key: &str) -> bool {
        ["images/", "base-images/", "functions/"].iter().any(|p| key.starts_with(p))
    }
}

async fn pass(
    store: &Arc<dyn KvStore>,
    engine: &Arc<Engine>,
    registry: Option<&Arc<kiln_registry::Registry>>,
) -> Result<(), StoreError> {
    let mut after: Option<String> = None;
    loop {
        let page = store.list("images/", after.as_deref(), 500).await?;
        for entry in &page.entries {
            let Ok(image) = records::decode::<Image>(entry) else { continue };
            if let Err(e) = reconcile(store, engine, image, entry.mod_revision).await {
                tracing::warn!(error = %e, key = entry.key, "could not start an image build");
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    // After the images: a build that just settled gives its functions a new runtime.
    crate::functions::follow::pass(store, engine, registry).await
}

/// The parent's state as far as building on it goes.
enum Parent {
    /// Ready to build on, with its current digest.
    Ready(Option<String>),
    Waiting,
    Failed(String),
}

/// The digest of `image`'s parent as it stands now, for [`Image::build_parent_digest`].
pub async fn current_parent_digest(store: &dyn KvStore, image: &Image) -> Result<Option<String>, StoreError> {
    Ok(match parent_state(store, image).await? {
        Parent::Ready(digest) => digest,
        _ => None,
    })
}

async fn parent_state(store: &dyn KvStore, image: &Image) -> Result<Parent, StoreError> {
    let org = image.organization.as_str();
    let (status, reason, noun, reference, digest) = match (&image.parent_image_name, &image.base_image_name) {
        (Some(parent), _) => {
            let (parent_org, name) = resolve_parent_reference(org, parent);
            match store.get(&records::key::<Image>(parent_org, name)).await? {
                Some(entry) => {
                    let parent: Image = records::decode(&entry)?;
                    // A parent being rebuilt still has a READY digest to build on.
                    let status = if parent.digest.is_some() && parent.status == Status::Updating {
                        Status::Ready
                    } else {
                        parent.status
                    };
                    (status, parent.reason, "parent image", parent.name, parent.digest)
                }
                None => return Ok(Parent::Failed(format!("parent image {parent:?} no longer exists"))),
            }
        }
        (None, Some(base)) => {
            let (base_org, name) = resolve_parent_reference(org, base);
            match store.get(&records::key::<BaseImage>(base_org, name)).await? {
                Some(entry) => {
                    let base: BaseImage = records::decode(&entry)?;
                    (base.status, base.reason, "base image", base.name, base.digest)
                }
                None => return Ok(Parent::Failed(format!("base image {base:?} no longer exists"))),
            }
        }
        (None, None) => return Ok(Parent::Failed("the image names no parent".to_string())),
    };
    Ok(match status {
        Status::Ready => Parent::Ready(digest),
        Status::Error => Parent::Failed(format!(
            "{noun} {reference:?} is in ERROR: {}; fix it and the build starts",
            reason.join("; ")
        )),
        _ => Parent::Waiting,
    })
}

async fn reconcile(
    store: &Arc<dyn KvStore>,
    engine: &Arc<Engine>,
    mut image: Image,
    revision: u64,
) -> Result<(), StoreError> {
    if image.status == Status::Deleting {
        return Ok(());
    }
    let definition = image.definition_digest();
    let built_on = image.build_parent_digest.clone();
    let current = image.build_definition.as_deref() == Some(definition.as_str());
    // Only a settled image follows its parent: a running build is left to finish, and an
    // image whose build has not started yet builds on whatever parent it finds.
    if current && (built_on.is_none() || !matches!(image.status, Status::Ready | Status::Error)) {
        return Ok(());
    }
    let key = records::key::<Image>(&image.organization, &image.name);
    // An image whose name another spelling holds (stored before names ignored case) would
    // push into that image's repository: it never builds.
    if let kiln_store::records::Claim::Held { name: holder, .. } =
        kiln_store::records::claim_of::<Image>(store.as_ref(), &image.organization, &image.name).await?
        && holder != image.name
    {
        let reason = kiln_model::name_clash_reason(&holder);
        if image.status != Status::Error || image.reason != [reason.clone()] {
            image.status = Status::Error;
            image.reason = vec![reason];
            image.updated_time = Some(chrono::Utc::now());
            store.put(&key, records::encode(&image)?, Precondition::Revision(revision)).await?;
        }
        return Ok(());
    }
    let parent_digest = match parent_state(store.as_ref(), &image).await? {
        Parent::Ready(digest) => digest,
        // A built image stays as it is while its parent is away or broken.
        Parent::Waiting | Parent::Failed(_) if current => return Ok(()),
        Parent::Waiting => return Ok(()),
        Parent::Failed(reason) => {
            if image.status == Status::Error && image.reason == [reason.clone()] {
                return Ok(());
            }
            image.status = Status::Error;
            image.reason = vec![reason];
            image.updated_time = Some(chrono::Utc::now());
            store.put(&key, records::encode(&image)?, Precondition::Revision(revision)).await?;
            return Ok(());
        }
    };
    let mut params = serde_json::json!({ "definition": definition });
    if current {
        if parent_digest.is_none() || parent_digest == built_on {
            return Ok(());
        }
        params["trigger"] = serde_json::json!(format!(
            "the parent changed from {} to {}",
            built_on.as_deref().unwrap_or("nothing"),
            parent_digest.as_deref().unwrap_or("nothing")
        ));
    }
    let superseded = image.build_task.clone();
    let (task, mut ops) = engine.plan(NewTask {
        org: image.organization.clone(),
        kind: TaskKind::BuildImage,
        target: image.name.clone(),
        params,
        timeout: None,
    })?;
    image.status = if image.digest.is_some() { Status::Updating } else { Status::Creating };
    image.reason = Vec::new();
    image.build_task = Some(task.id.clone());
    image.build_definition = Some(definition);
    image.build_parent_digest = parent_digest;
    image.updated_time = Some(chrono::Utc::now());
    ops.push(Op::Put { key, value: records::encode(&image)?, expect: Precondition::Revision(revision) });
    match store.txn(ops).await {
        Ok(_) => {}
        // The image changed meanwhile; the next pass sees the new definition.
        Err(StoreError::Conflict { .. }) => return Ok(()),
        Err(e) => return Err(e),
    }
    engine.wake();
    if let Some(old) = superseded {
        // Its result would be thrown away; stop spending time on it.
        let _ = engine.cancel(&image.organization, &old).await;
    }
    Ok(())
}
