//! Objects images are built on. Every write that gives a parent a new dependent also
//! touches the parent's dependents key (`records::dependents_key`); a delete or a change
//! that would break dependents lists them and commits only if that key is unchanged, so a
//! dependent created meanwhile makes one of the two writes fail with `409` instead of
//! leaving an image on a base image that is gone or changed.

use chrono::Utc;
use kiln_model::{BaseImage, FieldError, Image, Status};
use kiln_store::records::{Record, dependents_key, encode, key};
use kiln_store::{Op, Precondition, StoreError};

use crate::error::{ApiError, ApiResult};
use crate::resource::Resource;
use crate::view::View;

/// How often a forced delete retries when a dependent changes under it.
const ATTEMPTS: usize = 5;

/// The `409` answer naming the images that stand in the way. Images of other
/// organisations (built on a public parent) are counted, never named.
pub fn in_use(message: &str, org: &str, dependents: &[Image]) -> ApiError {
    let (own, foreign): (Vec<&Image>, Vec<&Image>) = dependents.iter().partition(|i| i.organization == org);
    let mut names: Vec<String> = own.iter().map(|i| i.name.clone()).collect();
    if !foreign.is_empty() {
        names.push(format!("{} image(s) of other organisations", foreign.len()));
    }
    ApiError::conflict(format!("{message}: used by {}", names.join(", ")))
        .with_details(own.iter().map(|i| FieldError::new("images", i.name.clone())).collect())
}

/// Objects that images can be built on.
pub trait Parent: Resource {
    /// What else goes in the same transaction as deleting the object.
    fn cleanup(view: &View, org: &str, name: &str) -> impl std::future::Future<Output = ApiResult<Vec<Op>>> + Send {
        let _ = (view, org, name);
        async { Ok(Vec::new()) }
    }

    fn dependents(
        view: &View,
        org: &str,
        name: &str,
    ) -> impl std::future::Future<Output = ApiResult<Vec<Image>>> + Send;
}

impl Parent for BaseImage {
    async fn dependents(view: &View, org: &str, name: &str) -> ApiResult<Vec<Image>> {
        view.dependents_of_base(org, name).await
    }
}

impl Parent for Image {
    /// An image owns the registry repository `<org>/<name>`; its content goes with it, and
    /// the collector then frees the blobs nothing else references. Its build record and its
    /// entries in the package → images index go too.
    async fn cleanup(view: &View, org: &str, name: &str) -> ApiResult<Vec<Op>> {
        let store = view.store();
        let mut ops = kiln_builder::builds::record::forget_ops(store.as_ref(), org, name).await?;
        let repository = kiln_builder::builds::parent::image_repository(org, name);
        if kiln_registry::names::check_repository(&repository).is_ok() {
            let keys = kiln_registry::meta::repository_keys(store.as_ref(), &repository).await?;
            ops.extend(keys.into_iter().map(|key| Op::Delete { key, expect: Precondition::Any }));
        }
        Ok(ops)
    }

    async fn dependents(view: &View, org: &str, name: &str) -> ApiResult<Vec<Image>> {
        view.children_of_image(org, name).await
    }
}

/// The operation a new or moved dependent adds to its write.
pub fn touch<P: Record>(org: &str, parent: &str) -> Op {
    Op::Put { key: dependents_key::<P>(org, parent), value: Vec::new(), expect: Precondition::Any }
}

/// Lists the dependents of `name` and returns a check that they stay the same until commit.
pub async fn guard<P: Parent>(view: &View, org: &str, name: &str) -> ApiResult<(Vec<Image>, Op)> {
    let guard_key = dependents_key::<P>(org, name);
    let expect = match view.store().get(&guard_key).await? {
        Some(entry) => Precondition::Revision(entry.mod_revision),
        None => Precondition::Absent,
    };
    let dependents = P::dependents(view, org, name).await?;
    Ok((dependents, Op::Check { key: guard_key, expect }))
}

/// Deletes `name`, honouring `expected` (a revision the caller read) and `force`: without
/// force, dependents make it a `409` that lists them; with force, they move to `ERROR`.
pub async fn delete<P: Parent>(view: &View, org: &str, name: &str, expected: Option<u64>, force: bool) -> ApiResult<P> {
    let object_key = key::<P>(org, name);
    for _ in 0..ATTEMPTS {
        let current: P = view.get(org, name).await?.ok_or_else(|| not_found::<P>(org, name))?;
        let revision = current.revision().unwrap_or(0);
        if let Some(expected) = expected
            && expected != revision
        {
            return Err(stale::<P>(name, expected, revision));
        }
        let (dependents, check) = guard::<P>(view, org, name).await?;
        if !dependents.is_empty() && !force {
            return Err(in_use(
                &format!("{} {name:?} cannot be deleted: delete its images first or pass force=true", P::NOUN),
                org,
                &dependents,
            ));
        }
        let mut ops =
            vec![Op::Delete { key: object_key.clone(), expect: Precondition::Revision(revision) }, check.clone()];
        // The repository belongs to whichever spelling holds the name (records from before
        // names ignored case may share one); the other only loses its record.
        let release = crate::names::release::<P>(view.store().as_ref(), org, name).await?;
        if release.owns {
            ops.extend(P::cleanup(view, org, name).await?);
        }
        ops.extend(release.ops);
        for mut dependent in dependents {
            let Some(dep_revision) = dependent.revision else { continue };
            dependent.status = Status::Error;
            dependent.reason.push(format!("{} {name:?} it was built on was deleted", P::NOUN));
            dependent.updated_time = Some(Utc::now());
            ops.push(Op::Put {
                key: key::<Image>(&dependent.organization, &dependent.name),
                value: encode(&dependent)?,
                expect: Precondition::Revision(dep_revision),
            });
        }
        match view.store().txn(ops).await {
            Ok(_) => return Ok(current),
            // New or changed dependents, or the object changed: look again.
            Err(StoreError::Conflict { key, .. }) if key != object_key || expected.is_none() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(format!("{} {name:?} kept changing while being deleted: retry", P::NOUN)))
}

/// The one wording of "not found" for objects: what, which, and where it was looked for.
pub fn not_found<R: Resource>(org: &str, name: &str) -> ApiError {
    if org == kiln_store::records::GLOBAL {
        ApiError::not_found(format!("{} {name:?} does not exist", R::NOUN))
    } else {
        ApiError::not_found(format!("{} {name:?} does not exist in organization {org:?}", R::NOUN))
    }
}

pub fn stale<R: Resource>(name: &str, expected: u64, current: u64) -> ApiError {
    ApiError::conflict(format!(
        "{} {name:?} is at revision {current}, not {expected}: somebody changed it; fetch it again and reapply your change",
        R::NOUN
    ))
}
