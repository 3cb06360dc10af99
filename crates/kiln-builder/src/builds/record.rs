//! What a finished build writes, in the same commit as its task's end: the image's new
//! status, its build record (lock, inventory, SBOM digest, Dockerfile) and the reverse
//! index from packages to the images that contain them.

use kiln_model::{BuildRecord, Image, Status, Task};
use kiln_store::{KvStore, Op, Precondition, StoreError, records};

use super::parent::image_repository;
use kiln_tasks::Outcome;

/// `package-images/<org>/<ecosystem>/<name>/<image>` → the versions the image holds.
pub fn package_index_key(org: &str, ecosystem: &str, name: &str, image: &str) -> String {
    format!("package-images/{org}/{ecosystem}/{name}/{image}")
}

/// The versions of one package an image holds: the value of a package index entry.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct PackageVersions(pub Vec<String>);

impl records::Versioned for PackageVersions {}

pub fn package_index_prefix(org: &str, ecosystem: &str, name: &str) -> String {
    format!("package-images/{org}/{ecosystem}/{name}/")
}

/// The writes that record how the build task of an image ended. Nothing is written if the
/// image has moved on to another build (its definition changed meanwhile) or is gone.
pub async fn settle(store: &dyn KvStore, task: &Task, outcome: &Outcome) -> Result<Vec<Op>, StoreError> {
    let key = records::key::<Image>(&task.organization, &task.target);
    let Some(entry) = store.get(&key).await? else {
        // Deleted while building: what the build pushed has no owner, so it goes.
        return match outcome {
            Outcome::Succeeded(_) => {
                let repository = image_repository(&task.organization, &task.target);
                let keys = kiln_registry::meta::repository_keys(store, &repository).await?;
                Ok(keys.into_iter().map(|key| Op::Delete { key, expect: Precondition::Any }).collect())
            }
            _ => Ok(Vec::new()),
        };
    };
    let mut image: Image = records::decode(&entry)?;
    if image.build_task.as_deref() != Some(task.id.as_str()) || image.status == Status::Deleting {
        return Ok(Vec::new());
    }
    let mut ops = Vec::new();
    match outcome {
        Outcome::Succeeded(result) => {
            let record: BuildRecord = serde_json::from_value(result.clone())
                .map_err(|e| StoreError::Invalid(format!("build result of task {}: {e}", task.id)))?;
            image.status = Status::Ready;
            image.reason = Vec::new();
            image.digest = Some(record.digest.clone());
            image.reference = Some(record.reference.clone());
            ops.extend(index_ops(store, &image, &record).await?);
            ops.push(Op::Put {
                key: records::key::<BuildRecord>(&image.organization, &image.name),
                value: records::encode(&record)?,
                expect: Precondition::Any,
            });
        }
        Outcome::Failed(reason) => {
            image.status = Status::Error;
            image.reason = vec![reason.clone()];
        }
        Outcome::Cancelled => match earlier_build_stands(store, &image).await? {
            // A cancelled rebuild of what is already built leaves the image as it was.
            Some(earlier) => {
                image.status = Status::Ready;
                image.reason = vec![format!(
                    "rebuild task {} was cancelled; the image is still the build of task {earlier}",
                    task.id
                )];
            }
            None => {
                image.status = Status::Error;
                image.reason =
                    vec![format!("build task {} was cancelled: update the image to build it again", task.id)];
            }
        },
    }
    image.updated_time = Some(chrono::Utc::now());
    ops.push(Op::Put { key, value: records::encode(&image)?, expect: Precondition::Revision(entry.mod_revision) });
    Ok(ops)
}

/// The task of the image's last finished build, when that build is of the image's current
/// definition and is the digest the image points at.
async fn earlier_build_stands(store: &dyn KvStore, image: &Image) -> Result<Option<String>, StoreError> {
    let Some(entry) = store.get(&records::key::<BuildRecord>(&image.organization, &image.name)).await? else {
        return Ok(None);
    };
    let record: BuildRecord = records::decode(&entry)?;
    let current = record.definition == image.definition_digest() && image.digest.as_deref() == Some(&record.digest);
    Ok(current.then_some(record.task))
}

/// Index entries for the new inventory, and deletions for packages the last build had and
/// this one has not.
async fn index_ops(store: &dyn KvStore, image: &Image, record: &BuildRecord) -> Result<Vec<Op>, StoreError> {
    let org = &image.organization;
    let mut versions: std::collections::BTreeMap<(String, String), Vec<String>> = Default::default();
    for item in &record.inventory {
        versions
            .entry((item.ecosystem.as_str().to_string(), item.name.clone()))
            .or_default()
            .push(item.version.clone());
    }
    let mut ops = Vec::new();
    if let Some(previous) = store.get(&records::key::<BuildRecord>(org, &image.name)).await? {
        let previous: BuildRecord = records::decode(&previous)?;
        for item in previous.inventory {
            let id = (item.ecosystem.as_str().to_string(), item.name.clone());
            if !versions.contains_key(&id) {
                ops.push(Op::Delete {
                    key: package_index_key(org, &id.0, &id.1, &image.name),
                    expect: Precondition::Any,
                });
            }
        }
    }
    ops.sort_by(|a, b| a.key().cmp(b.key()));
    ops.dedup_by(|a, b| a.key() == b.key());
    for ((ecosystem, name), mut list) in versions {
        list.sort();
        list.dedup();
        let value = records::encode_value(&PackageVersions(list))?;
        ops.push(Op::Put {
            key: package_index_key(org, &ecosystem, &name, &image.name),
            value,
            expect: Precondition::Any,
        });
    }
    Ok(ops)
}

/// Deletes for an image's build record and its entries in the package index.
pub async fn forget_ops(store: &dyn KvStore, org: &str, image: &str) -> Result<Vec<Op>, StoreError> {
    let key = records::key::<BuildRecord>(org, image);
    let Some(entry) = store.get(&key).await? else { return Ok(Vec::new()) };
    let record: BuildRecord = records::decode(&entry)?;
    let mut keys: Vec<String> = record
        .inventory
        .iter()
        .map(|item| package_index_key(org, item.ecosystem.as_str(), &item.name, image))
        .collect();
    keys.sort();
    keys.dedup();
    let mut ops: Vec<Op> = keys.into_iter().map(|key| Op::Delete { key, expect: Precondition::Any }).collect();
    ops.push(Op::Delete { key, expect: Precondition::Any });
    Ok(ops)
}
