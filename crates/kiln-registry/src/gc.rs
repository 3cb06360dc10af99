//! Online garbage collection: removes blobs no manifest references once they have been
//! untouched for the grace period, and uploads abandoned for longer than their lifetime.
//! Every path that makes a blob referenced (upload, mount, manifest push) touches the
//! blob's record under the collector's read lock, and the collector deletes a record only
//! at the revision it judged, so a blob that gains a reference meanwhile stays.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use kiln_oci::Digest;
use kiln_store::{Op, Precondition, StoreError};

use crate::error::RegistryResult;
use crate::meta::{self, BlobRecord, StoredManifest};
use crate::{Registry, now};

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub blobs_removed: u64,
    pub bytes_freed: u64,
    pub links_removed: u64,
    pub uploads_removed: u64,
}

fn older_than(time: SystemTime, age: Duration) -> bool {
    time.elapsed().is_ok_and(|elapsed| elapsed >= age)
}

pub async fn collect(registry: &Registry) -> RegistryResult<Report> {
    let mut report = Report::default();
    expire_uploads(registry, &mut report).await?;

    let mut referenced = HashSet::new();
    for entry in meta::scan(registry.store.as_ref(), meta::MANIFEST_PREFIX).await? {
        referenced.extend(StoredManifest::decode(&entry)?.meta.blobs);
    }
    let mut links: HashMap<Digest, Vec<String>> = HashMap::new();
    for entry in meta::scan(registry.store.as_ref(), meta::LINK_PREFIX).await? {
        if let Some((_, digest)) = meta::split_at_digest(&entry.key, meta::LINK_PREFIX) {
            links.entry(digest).or_default().push(entry.key);
        }
    }
    let grace = registry.settings.gc_grace.as_secs() as i64;
    let _guard = registry.gc_lock.write().await;
    let mut recorded = HashSet::new();
    for entry in meta::scan(registry.store.as_ref(), meta::BLOB_PREFIX).await? {
        let Ok(digest) = entry.key[meta::BLOB_PREFIX.len()..].parse::<Digest>() else { continue };
        recorded.insert(digest.clone());
        let record: BlobRecord = meta::from_json(&entry)?;
        if referenced.contains(&digest) || now() - record.touched < grace {
            continue;
        }
        let stale_links = links.remove(&digest).unwrap_or_default();
        let mut ops = vec![Op::Delete { key: entry.key.clone(), expect: Precondition::Revision(entry.mod_revision) }];
        ops.extend(stale_links.iter().map(|key| Op::Delete { key: key.clone(), expect: Precondition::Any }));
        match registry.store.txn(ops).await {
            Ok(_) => {}
            // Touched since it was read: referenced again, keep it.
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
        registry.blobs.delete(&digest).await?;
        report.blobs_removed += 1;
        report.bytes_freed += record.size;
        report.links_removed += stale_links.len() as u64;
    }
    // Files no record announces: left by a crash between the rename and the commit.
    for (digest, modified) in registry.blobs.list().await? {
        if !recorded.contains(&digest) && older_than(modified, registry.settings.gc_grace) {
            registry.blobs.delete(&digest).await?;
            report.blobs_removed += 1;
        }
    }
    Ok(report)
}

async fn expire_uploads(registry: &Registry, report: &mut Report) -> RegistryResult<()> {
    let ttl = registry.settings.upload_ttl;
    let mut known = HashSet::new();
    for entry in meta::scan(registry.store.as_ref(), meta::UPLOAD_PREFIX).await? {
        known.insert(entry.key[meta::UPLOAD_PREFIX.len()..].to_string());
    }
    for (id, modified) in registry.blobs.list_uploads().await? {
        if !older_than(modified, ttl) {
            continue;
        }
        registry.take_hasher(&id);
        registry.blobs.delete_upload(&id).await?;
        if known.remove(&id) {
            registry.store.delete(&meta::upload_key(&id), Precondition::Any).await?;
        }
        report.uploads_removed += 1;
    }
    // Records whose file is gone (removed above, or never written after a crash).
    for id in known {
        if registry.blobs.upload_size(&id).await?.is_none() {
            registry.store.delete(&meta::upload_key(&id), Precondition::Any).await?;
        }
    }
    Ok(())
}

/// Runs the collector every `gc_interval` until the registry is dropped elsewhere.
pub fn spawn(registry: Arc<Registry>, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(registry.settings.gc_interval) => {}
                _ = shutdown.cancelled() => return,
            }
            // A collection is not cut short: it deletes records and files one by one.
            match collect(&registry).await {
                Ok(report) if report != Report::default() => tracing::info!(?report, "registry garbage collected"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "registry garbage collection failed"),
            }
        }
    })
}
