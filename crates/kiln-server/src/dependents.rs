//! Deleting objects others are built on. A delete first marks the object `DELETING` (so no
//! new image can be built on it), then looks for dependents: without `force` it refuses
//! and restores the object; with `force` it deletes and marks every dependent `ERROR`
//! with the reason. A restart finishes any delete that a crash interrupted.

use chrono::Utc;
use kiln_model::{BaseImage, FieldError, Image, Status};
use kiln_store::records::{encode, key};
use kiln_store::{Op, Precondition, StoreError};

use crate::error::{ApiError, ApiResult};
use crate::resource::Resource;
use crate::view::View;

/// How often a forced delete retries when a dependent changes under it.
const ATTEMPTS: usize = 5;

/// The `409` answer naming the images that stand in the way.
pub fn in_use(message: &str, dependents: &[Image]) -> ApiError {
    let names: Vec<&str> = dependents.iter().map(|i| i.name.as_str()).collect();
    ApiError::conflict(format!("{message}: used by {}", names.join(", ")))
        .with_details(dependents.iter().map(|i| FieldError::new("images", i.name.clone())).collect())
}

/// Objects that images can be built on.
pub trait Parent: Resource {
    fn set_status(&mut self, status: Status);
    fn set_reason(&mut self, reason: &str);
    fn dependents(
        view: &View,
        org: &str,
        name: &str,
    ) -> impl std::future::Future<Output = ApiResult<Vec<Image>>> + Send;
}

impl Parent for BaseImage {
    fn set_status(&mut self, status: Status) {
        self.status = status;
    }
    fn set_reason(&mut self, reason: &str) {
        self.reason = vec![reason.to_string()];
    }
    async fn dependents(view: &View, org: &str, name: &str) -> ApiResult<Vec<Image>> {
        view.dependents_of_base(org, name).await
    }
}

impl Parent for Image {
    fn set_status(&mut self, status: Status) {
        self.status = status;
    }
    fn set_reason(&mut self, reason: &str) {
        self.reason = vec![reason.to_string()];
    }
    async fn dependents(view: &View, org: &str, name: &str) -> ApiResult<Vec<Image>> {
        view.children_of_image(org, name).await
    }
}

/// Deletes `name`, honouring `expected` (a revision the caller read) and `force`.
pub async fn delete<P: Parent>(view: &View, org: &str, name: &str, expected: Option<u64>, force: bool) -> ApiResult<P> {
    let store = view.store();
    let object_key = key::<P>(org, name);
    let current: P = view.get(org, name).await?.ok_or_else(|| not_found::<P>(name))?;
    let revision = current.revision().unwrap_or(0);
    if let Some(expected) = expected
        && expected != revision
    {
        return Err(stale::<P>(name, expected, revision));
    }
    let previous_status = current.status().unwrap_or_default();
    let mut marked = current.clone();
    marked.set_status(Status::Deleting);
    let marked_revision = if previous_status == Status::Deleting {
        revision
    } else {
        store.put(&object_key, encode(&marked)?, Precondition::Revision(revision)).await?
    };
    for _ in 0..ATTEMPTS {
        let dependents = P::dependents(view, org, name).await?;
        if !dependents.is_empty() && !force {
            let mut restored = current.clone();
            restored.set_status(if previous_status == Status::Deleting { Status::Error } else { previous_status });
            store.put(&object_key, encode(&restored)?, Precondition::Revision(marked_revision)).await?;
            return Err(in_use(
                &format!("{} {name:?} cannot be deleted: delete its images first or pass force=true", P::NOUN),
                &dependents,
            ));
        }
        let mut ops = vec![Op::Delete { key: object_key.clone(), expect: Precondition::Revision(marked_revision) }];
        for mut dependent in dependents {
            let Some(dep_revision) = dependent.revision else { continue };
            dependent.status = Status::Error;
            dependent.reason.push(format!("{} {name:?} it was built on was deleted", P::NOUN));
            dependent.updated_time = Some(Utc::now());
            ops.push(Op::Put {
                key: key::<Image>(org, &dependent.name),
                value: encode(&dependent)?,
                expect: Precondition::Revision(dep_revision),
            });
        }
        match store.txn(ops).await {
            Ok(_) => return Ok(current),
            Err(StoreError::Conflict { key, .. }) if key != object_key => continue,
            Err(e) => return Err(e.into()),
        }
    }
    // Left marked DELETING: the next delete, or a restart, finishes the job.
    Err(ApiError::conflict(format!("{} {name:?} kept gaining dependents while being deleted: retry", P::NOUN)))
}

/// Finishes deletes a crash interrupted: objects still `DELETING` are deleted if nothing
/// depends on them, else put in `ERROR` with the reason.
pub async fn recover(view: &View, org: &str) -> ApiResult<usize> {
    let mut finished = 0;
    for base in view.all::<BaseImage>(org).await? {
        if base.status == Status::Deleting {
            finish::<BaseImage>(view, org, base).await?;
            finished += 1;
        }
    }
    for image in view.all::<Image>(org).await? {
        if image.status == Status::Deleting {
            finish::<Image>(view, org, image).await?;
            finished += 1;
        }
    }
    Ok(finished)
}

async fn finish<P: Parent>(view: &View, org: &str, mut object: P) -> ApiResult<()> {
    let name = object.key_name();
    let object_key = key::<P>(org, &name);
    let revision = object.revision().unwrap_or(0);
    let dependents = P::dependents(view, org, &name).await?;
    if dependents.is_empty() {
        view.store().delete(&object_key, Precondition::Revision(revision)).await?;
        tracing::info!(kind = P::NOUN, name, "finished an interrupted delete");
    } else {
        object.set_status(Status::Error);
        object.set_reason("a delete was interrupted and images still depend on this object: delete them, or delete again with force=true");
        view.store().put(&object_key, encode(&object)?, Precondition::Revision(revision)).await?;
        tracing::warn!(kind = P::NOUN, name, "an interrupted delete left dependents; marked ERROR");
    }
    Ok(())
}

pub fn not_found<R: Resource>(name: &str) -> ApiError {
    ApiError::not_found(format!("{} {name:?} not found", R::NOUN))
}

pub fn stale<R: Resource>(name: &str, expected: u64, current: u64) -> ApiError {
    ApiError::conflict(format!(
        "{} {name:?} is at revision {current}, not {expected}: somebody changed it; fetch it again and reapply your change",
        R::NOUN
    ))
}
