//! Object names are unique ignoring case. `CaseTest` and `casetest` both named the registry
//! repository `default/casetest`, so two images overwrote one tag and deleting either
//! deleted both; a claim key per lower-cased name, written in the same transaction as the
//! create, makes the second create a `409` instead.

use kiln_store::records::{self, Claim, Record, claim_of, name_key};
use kiln_store::{KvStore, Op, Precondition, StoreError};

use crate::error::{ApiError, ApiResult};
use crate::resource::Resource;
use crate::view::View;

/// The refusal when `name` is taken by `holder`, a different spelling of it.
pub fn clash<R: Resource>(name: &str, holder: &str) -> ApiError {
    ApiError::conflict(format!(
        "{} {name:?} clashes with {holder:?}: names are compared ignoring case, so pick another name",
        R::NOUN
    ))
}

/// The operation that claims `name` for a new object, or the `409` when a different spelling
/// of it exists (stored, or earlier in the same batch).
pub async fn claim_for_create<R: Resource>(view: &mut View, org: &str, name: &str) -> ApiResult<Op> {
    let key = name_key::<R>(org, name);
    if let Some(holder) = view.staged_claim(&key) {
        return Err(clash::<R>(name, holder));
    }
    let op = match claim_of::<R>(view.store().as_ref(), org, name).await? {
        Claim::Held { name: holder, .. } if holder != name => return Err(clash::<R>(name, &holder)),
        // A claim left by an object of this exact name is taken over at its revision.
        Claim::Held { revision, .. } => {
            Op::Put { key: key.clone(), value: name.as_bytes().to_vec(), expect: Precondition::Revision(revision) }
        }
        Claim::Free => Op::Put { key: key.clone(), value: name.as_bytes().to_vec(), expect: Precondition::Absent },
    };
    view.stage_claim(key, name);
    Ok(op)
}

/// An update is refused for an object whose name another spelling holds (records from
/// before names ignored case): only deleting one of them is allowed. A missing claim is
/// written with the update.
pub async fn claim_for_update<R: Resource>(view: &View, org: &str, name: &str) -> ApiResult<Option<Op>> {
    match claim_of::<R>(view.store().as_ref(), org, name).await? {
        Claim::Held { name: holder, .. } if holder != name => Err(ApiError::conflict(format!(
            "{} {name:?} shares its name with {holder:?} ignoring case and cannot change: delete one of them",
            R::NOUN
        ))),
        Claim::Held { .. } => Ok(None),
        Claim::Free => Ok(Some(Op::Put {
            key: name_key::<R>(org, name),
            value: name.as_bytes().to_vec(),
            expect: Precondition::Absent,
        })),
    }
}

/// What deleting `name` does to its claim: released when it holds it. `owns` says whether
/// what the name owns (an image's repository) is this object's to remove.
pub struct Release {
    pub owns: bool,
    pub ops: Vec<Op>,
}

pub async fn release<R: Record>(store: &dyn KvStore, org: &str, name: &str) -> Result<Release, StoreError> {
    Ok(match claim_of::<R>(store, org, name).await? {
        Claim::Held { name: holder, revision } if holder == name => Release {
            owns: true,
            ops: vec![Op::Delete { key: name_key::<R>(org, name), expect: Precondition::Revision(revision) }],
        },
        Claim::Held { .. } => Release { owns: false, ops: Vec::new() },
        Claim::Free => Release { owns: true, ops: Vec::new() },
    })
}

/// What the start-up migration did for one kind.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Migrated {
    pub claimed: usize,
    /// Objects whose name another, older object holds ignoring case.
    pub clashes: Vec<(String, String)>,
}

/// Claims the name of every stored object of the kind that has none, oldest first (by
/// `created`), so a pair stored before names ignored case keeps the first one's claim.
/// Returns the later ones, which `on_clash` may mark (an image goes to `ERROR`).
pub async fn migrate<R: Resource>(
    store: &dyn KvStore,
    created: impl Fn(&R) -> Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Migrated, StoreError> {
    let mut objects: Vec<(String, R)> = Vec::new();
    let prefix = format!("{}/", R::COLLECTION);
    let mut after: Option<String> = None;
    loop {
        let page = store.list(&prefix, after.as_deref(), 512).await?;
        for entry in &page.entries {
            let Some(org) = entry.key.strip_prefix(&prefix).and_then(|rest| rest.split('/').next()) else { continue };
            objects.push((org.to_string(), records::decode::<R>(entry)?));
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    objects.sort_by_key(|(org, object)| (org.clone(), created(object), object.key_name()));
    let mut report = Migrated::default();
    for (org, object) in objects {
        let name = object.key_name();
        let key = name_key::<R>(&org, &name);
        match claim_of::<R>(store, &org, &name).await? {
            Claim::Held { name: holder, .. } if holder == name => {}
            Claim::Held { name: holder, .. } => report.clashes.push((format!("{org}/{name}"), holder)),
            Claim::Free => match store.put(&key, name.as_bytes().to_vec(), Precondition::Absent).await {
                Ok(_) => report.claimed += 1,
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            },
        }
    }
    Ok(report)
}

/// Start-up: every stored object holds its name's claim, and images and base images stored
/// before names ignored case that clash with an older spelling go to `ERROR` saying so (they
/// shared a registry repository; only deleting one is allowed, and the older one keeps it).
/// Returns one line per clash for the log.
pub async fn migrate_all(store: &dyn KvStore) -> Result<Vec<String>, StoreError> {
    use kiln_model::auth::{Organization, Role, RoleBinding, User};
    use kiln_model::{BaseImage, Image, Package, PackageSource, RegistryCredential};

    let mut lines = Vec::new();
    let images = migrate::<Image>(store, |o| o.created_time).await?;
    mark_clashes::<Image>(store, &images.clashes, |image, reason| {
        set_error(&mut image.status, &mut image.reason, reason)
    })
    .await?;
    let bases = migrate::<BaseImage>(store, |o| o.created_time).await?;
    mark_clashes::<BaseImage>(store, &bases.clashes, |base, reason| {
        set_error(&mut base.status, &mut base.reason, reason)
    })
    .await?;
    let others = [
        migrate::<PackageSource>(store, |o| o.created_time).await?,
        migrate::<RegistryCredential>(store, |o| o.created_time).await?,
        migrate::<Package>(store, |o| o.created_time).await?,
        migrate::<User>(store, |o| o.created_time).await?,
        migrate::<Role>(store, |o| o.created_time).await?,
        migrate::<Organization>(store, |o| o.created_time).await?,
        migrate::<RoleBinding>(store, |o| o.created_time).await?,
    ];
    for report in [images, bases].iter().chain(others.iter()) {
        for (name, holder) in &report.clashes {
            lines.push(format!("{name} shares its name with {holder:?} ignoring case: delete one of them"));
        }
    }
    Ok(lines)
}

fn set_error(status: &mut kiln_model::Status, reason: &mut Vec<String>, text: String) -> bool {
    if *status == kiln_model::Status::Error && reason.contains(&text) {
        return false;
    }
    *status = kiln_model::Status::Error;
    *reason = vec![text];
    true
}

async fn mark_clashes<R: Resource>(
    store: &dyn KvStore,
    clashes: &[(String, String)],
    mark: impl Fn(&mut R, String) -> bool,
) -> Result<(), StoreError> {
    for (org_and_name, holder) in clashes {
        let key = format!("{}/{org_and_name}", R::COLLECTION);
        let Some(entry) = store.get(&key).await? else { continue };
        let mut object: R = records::decode(&entry)?;
        if mark(&mut object, kiln_model::name_clash_reason(holder)) {
            // A concurrent writer wins; the next start marks it again if it still clashes.
            match store.put(&key, records::encode(&object)?, Precondition::Revision(entry.mod_revision)).await {
                Ok(_) | Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use kiln_model::{Image, Status};
    use kiln_store::EmbeddedStore;

    use super::*;

    fn image(name: &str, created: &str) -> Image {
        serde_json::from_value(serde_json::json!({
            "name": name, "baseImageName": "b", "status": "READY", "createdTime": created,
        }))
        .expect("image")
    }

    async fn stored(store: &EmbeddedStore, name: &str) -> Image {
        let entry = store.get(&records::key::<Image>("default", name)).await.expect("get").expect("present");
        records::decode(&entry).expect("decode")
    }

    #[tokio::test]
    async fn records_from_before_names_ignored_case_are_claimed_oldest_first() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = EmbeddedStore::open(&dir.path().join("kiln.redb")).expect("store");
        // Stored the way an older Kiln did: no claims, the lower-case one created later.
        for (name, created) in [("casetest", "2026-02-01T00:00:00Z"), ("CaseTest", "2026-01-01T00:00:00Z")] {
            let key = records::key::<Image>("default", name);
            store
                .put(&key, records::encode(&image(name, created)).expect("encode"), Precondition::Absent)
                .await
                .expect("put");
        }

        let lines = migrate_all(&store).await.expect("migrate");
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("default/casetest") && lines[0].contains("CaseTest"), "{lines:?}");
        assert_eq!(stored(&store, "CaseTest").await.status, Status::Ready, "the older one keeps its name");
        let loser = stored(&store, "casetest").await;
        assert_eq!(loser.status, Status::Error);
        assert!(loser.reason[0].contains("only in case"), "{:?}", loser.reason);

        // Deleting the later one must leave the repository to the holder.
        assert!(!release::<Image>(&store, "default", "casetest").await.expect("release").owns);
        assert!(release::<Image>(&store, "default", "CaseTest").await.expect("release").owns);

        // A second start changes nothing.
        let revision = store.revision().await.expect("revision");
        assert_eq!(migrate_all(&store).await.expect("migrate").len(), 1);
        assert_eq!(store.revision().await.expect("revision"), revision);
    }
}
