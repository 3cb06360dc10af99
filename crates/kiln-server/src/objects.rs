//! The generic life cycle every kind shares: plan a create or an update (validate, check
//! against other objects, settle server fields), commit it in one transaction, read and list.

use std::sync::Arc;

use chrono::Utc;
use kiln_store::records::{self, encode, key};
use kiln_store::{KvStore, Op, Precondition, StoreError};

use crate::dependents::{not_found, stale};
use crate::error::{ApiError, ApiResult};
use crate::resource::{ListFilter, Resource};
use crate::view::View;

/// A write that is ready to commit: the object as it will be stored, and its operations.
pub struct Planned<R> {
    pub object: R,
    pub ops: Vec<Op>,
}

pub async fn plan_create<R: Resource>(view: &mut View, org: &str, mut object: R) -> ApiResult<Planned<R>> {
    object.validate().map_err(ApiError::invalid)?;
    let name = object.key_name();
    let object_key = key::<R>(org, &name);
    if view.is_staged(&object_key) || view.get::<R>(org, &name).await?.is_some() {
        return Err(ApiError::conflict(format!("{} {name:?} already exists", R::NOUN)));
    }
    let claim = crate::names::claim_for_create::<R>(view, org, &name).await?;
    let mut ops = object.prepare(view, org, None).await?;
    ops.push(claim);
    // Again: prepare fills derived fields (an image's language) that some rules depend on.
    object.validate().map_err(ApiError::invalid)?;
    object.settle(org, Utc::now(), None);
    ops.push(Op::Put { key: object_key.clone(), value: encode(&object)?, expect: Precondition::Absent });
    view.stage(object_key, &object)?;
    Ok(Planned { object, ops })
}

/// `expected` is the revision the caller says it read (`If-Match` or the body's `revision`).
pub async fn plan_update<R: Resource>(
    view: &mut View,
    org: &str,
    name: &str,
    mut object: R,
    expected: Option<u64>,
) -> ApiResult<Planned<R>> {
    let object_key = key::<R>(org, name);
    if view.is_staged(&object_key) {
        return Err(ApiError::conflict(format!("{} {name:?} appears twice in one request", R::NOUN)));
    }
    let current: R = view.get(org, name).await?.ok_or_else(|| not_found::<R>(org, name))?;
    let revision = current.revision().unwrap_or(0);
    if object.key_name() != current.key_name() {
        return Err(ApiError::field(
            "name",
            format!("{:?} does not match the object being updated, {name:?}; names cannot change", object.key_name()),
        ));
    }
    if let Some(expected) = expected.or(object.revision())
        && expected != revision
    {
        return Err(stale::<R>(name, expected, revision));
    }
    object.validate().map_err(ApiError::invalid)?;
    let claim = crate::names::claim_for_update::<R>(view, org, name).await?;
    let mut ops = object.prepare(view, org, Some(&current)).await?;
    ops.extend(claim);
    object.validate().map_err(ApiError::invalid)?;
    object.settle(org, Utc::now(), Some(&current));
    // Always guarded by the revision read here, so a concurrent writer is never overwritten.
    ops.push(Op::Put { key: object_key.clone(), value: encode(&object)?, expect: Precondition::Revision(revision) });
    view.stage(object_key, &object)?;
    Ok(Planned { object, ops })
}

/// Commits the planned operations; returns the revision they were written at.
pub async fn commit(view: &View, ops: Vec<Op>, noun: &str, name: &str) -> ApiResult<u64> {
    match view.store().txn(ops).await {
        Ok(revision) => Ok(revision),
        Err(StoreError::Conflict { key, expected: Precondition::Absent, .. }) if created_meanwhile(&key, name) => {
            Err(ApiError::conflict(format!(
                "{noun} {name:?} already exists, or another spelling of it (names ignore case)"
            )))
        }
        Err(StoreError::Conflict { .. }) => Err(ApiError::conflict(format!(
            "{noun} {name:?} or an object it depends on was changed by another request meanwhile: fetch it again and retry"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// A create's own key, or its name claim, appeared between planning and committing.
fn created_meanwhile(key: &str, name: &str) -> bool {
    key.ends_with(&format!("/{name}"))
        || (key.starts_with("names/") && key.ends_with(&format!("/{}", name.to_lowercase())))
}

pub async fn create<R: Resource>(view: &mut View, org: &str, object: R) -> ApiResult<R> {
    let name = object.key_name();
    let Planned { mut object, ops } = plan_create(view, org, object).await?;
    object.set_revision(Some(commit(view, ops, R::NOUN, &name).await?));
    Ok(object)
}

/// `create` in a view of its own, planned again when an object it depends on changed between
/// planning and committing (a controller writing a parent's status): a create expects no
/// revision of its own, so planning afresh against the new state is what the caller would do.
pub async fn create_retrying<R: Resource>(store: &Arc<dyn KvStore>, org: &str, object: R) -> ApiResult<R> {
    const ATTEMPTS: usize = 5;
    let name = object.key_name();
    for attempt in 1..=ATTEMPTS {
        let mut view = View::new(store.clone());
        let Planned { object: mut planned, ops } = plan_create(&mut view, org, object.clone()).await?;
        match view.store().txn(ops).await {
            Ok(revision) => {
                planned.set_revision(Some(revision));
                return Ok(planned);
            }
            Err(StoreError::Conflict { key, expected: Precondition::Absent, .. }) if created_meanwhile(&key, &name) => {
                return Err(ApiError::conflict(format!(
                    "{} {name:?} already exists, or another spelling of it (names ignore case)",
                    R::NOUN
                )));
            }
            Err(StoreError::Conflict { .. }) if attempt < ATTEMPTS => continue,
            Err(StoreError::Conflict { .. }) => {
                return Err(ApiError::conflict(format!(
                    "{} {name:?} or an object it depends on was changed by another request meanwhile: fetch it again and retry",
                    R::NOUN
                )));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(format!("{} {name:?} could not be created: retry", R::NOUN)))
}

pub async fn update<R: Resource>(
    view: &mut View,
    org: &str,
    name: &str,
    object: R,
    expected: Option<u64>,
) -> ApiResult<R> {
    let Planned { mut object, ops } = plan_update(view, org, name, object, expected).await?;
    object.set_revision(Some(commit(view, ops, R::NOUN, name).await?));
    Ok(object)
}

/// Applies an RFC 7396 merge patch to the stored object, then updates as with PUT.
pub async fn patch<R: Resource>(
    view: &mut View,
    org: &str,
    name: &str,
    patch: serde_json::Value,
    expected: Option<u64>,
) -> ApiResult<R> {
    let current: R = view.get(org, name).await?.ok_or_else(|| not_found::<R>(org, name))?;
    let mut document = serde_json::to_value(&current).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let patch_revision = patch.get("revision").and_then(serde_json::Value::as_u64);
    json_patch::merge(&mut document, &patch);
    // A merge patch drops members set to null; write-only credentials need the explicit
    // null to mean "remove them" rather than "keep what is stored".
    if patch.get("credentials").is_some_and(serde_json::Value::is_null)
        && let Some(object) = document.as_object_mut()
    {
        object.insert("credentials".into(), serde_json::Value::Null);
    }
    let object: R = crate::extract::decode_json(document.to_string().as_bytes())?;
    let expected = expected.or(patch_revision).or(current.revision());
    update(view, org, name, object, expected).await
}

pub async fn get<R: Resource>(view: &View, org: &str, name: &str) -> ApiResult<R> {
    view.get::<R>(org, name).await?.ok_or_else(|| not_found::<R>(org, name))
}

/// Largest page a list returns.
pub const MAX_PAGE: usize = 1000;
pub const DEFAULT_PAGE: usize = 100;

/// One page of matching objects, in name order, and the token for the next page.
pub async fn list<R: Resource>(
    view: &View,
    org: &str,
    filter: &ListFilter,
    limit: usize,
    page_token: Option<&str>,
) -> ApiResult<(Vec<R>, Option<String>)> {
    let prefix = records::prefix::<R>(org);
    let mut after = page_token.map(|t| format!("{prefix}{t}"));
    let mut items = Vec::new();
    loop {
        let page = view.store().list(&prefix, after.as_deref(), 512).await?;
        for entry in &page.entries {
            let object: R = records::decode(entry)?;
            if object.matches(filter) && (!filter.public_only || object.is_public()) {
                items.push(object);
                if items.len() == limit {
                    let next = entry.key.strip_prefix(&prefix).map(str::to_string);
                    return Ok((items, next));
                }
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok((items, None)),
        }
    }
}
