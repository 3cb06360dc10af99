//! Functions as objects: a record per function (`functions/<org>/<name>`) that names the
//! image it runs on, the image digest its function image was composed over and its code
//! layer. A function image's tag moves only in the same transaction as its record, so the
//! two never disagree; when the runtime image is rebuilt the controller composes the
//! function again as a stored task, and tags no record owns are cleaned up (or, pushed before
//! records existed, adopted).

pub mod adopt;
pub mod compose;
pub mod follow;
pub mod push;
pub mod runner;
pub mod validate;

use kiln_model::Function;
use kiln_model::function::function_tag;
use kiln_registry::meta;
use kiln_store::{KvStore, Op, Precondition, StoreError, records};

use crate::builds::parent::image_repository;

/// The repository holding `function`'s image: its runtime image's.
pub fn repository(function: &Function) -> String {
    image_repository(&function.organization, &function.image)
}

/// Whether any tag of `repository` other than `except` points at `digest`.
async fn tagged_elsewhere(
    store: &dyn KvStore,
    repository: &str,
    digest: &str,
    except: &str,
) -> Result<bool, StoreError> {
    let except = meta::tag_key(repository, except);
    let tags = meta::scan(store, &meta::tag_prefix(repository)).await?;
    Ok(tags.iter().any(|t| t.key != except && t.value == digest.as_bytes()))
}

/// Deletes the manifest `digest` of `repository` unless another tag still names it, so the
/// registry's collector can take the blobs only it referenced.
pub(crate) async fn drop_manifest_ops(
    store: &dyn KvStore,
    repository: &str,
    digest: &str,
    tag: &str,
) -> Result<Vec<Op>, StoreError> {
    let Ok(parsed) = digest.parse::<kiln_oci::Digest>() else { return Ok(Vec::new()) };
    if tagged_elsewhere(store, repository, digest, tag).await? {
        return Ok(Vec::new());
    }
    Ok(vec![Op::Delete { key: meta::manifest_key(repository, &parsed), expect: Precondition::Any }])
}

/// The writes that store `function` and point its tag at its digest, removing what the
/// version it replaces (`previous`, possibly on another image) left behind.
pub async fn publish_ops(
    store: &dyn KvStore,
    function: &Function,
    expect: Precondition,
    previous: Option<&Function>,
) -> Result<Vec<Op>, StoreError> {
    let repository = repository(function);
    let tag = function_tag(&function.name);
    let digest: kiln_oci::Digest =
        function.digest.parse().map_err(|e| StoreError::Invalid(format!("function digest: {e}")))?;
    let mut ops = vec![
        Op::Put {
            key: records::key::<Function>(&function.organization, &function.name),
            value: records::encode(function)?,
            expect,
        },
        Op::Check { key: meta::manifest_key(&repository, &digest), expect: Precondition::Present },
        Op::Put {
            key: meta::tag_key(&repository, &tag),
            value: function.digest.clone().into_bytes(),
            expect: Precondition::Any,
        },
    ];
    if let Some(previous) = previous {
        let old_repository = self::repository(previous);
        if old_repository != repository {
            ops.push(Op::Delete { key: meta::tag_key(&old_repository, &tag), expect: Precondition::Any });
            ops.extend(drop_manifest_ops(store, &old_repository, &previous.digest, &tag).await?);
        } else if previous.digest != function.digest {
            ops.extend(drop_manifest_ops(store, &repository, &previous.digest, &tag).await?);
        }
    }
    Ok(ops)
}

/// The writes that delete `function` (read at `revision`) with its tag and manifest.
pub async fn remove_ops(store: &dyn KvStore, function: &Function, revision: u64) -> Result<Vec<Op>, StoreError> {
    let repository = repository(function);
    let tag = function_tag(&function.name);
    let mut ops = vec![
        Op::Delete {
            key: records::key::<Function>(&function.organization, &function.name),
            expect: Precondition::Revision(revision),
        },
        Op::Delete { key: meta::tag_key(&repository, &tag), expect: Precondition::Any },
    ];
    ops.extend(drop_manifest_ops(store, &repository, &function.digest, &tag).await?);
    Ok(ops)
}
