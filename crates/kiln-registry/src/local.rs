//! Pushing and reading from inside the process: the builder stores layers, configs and
//! manifests with the same checks and transactions as a push over `/v2`, without HTTP and
//! without access checks (the server decides who may build before it calls these).

use std::path::Path;

use kiln_oci::{Digest, ManifestInfo};
use kiln_store::{Op, Precondition};
use tokio::io::AsyncReadExt;

use crate::blobs::{BlobReader, WRITE_BUFFER};
use crate::error::{Code, RegistryError, RegistryResult};
use crate::meta::{self, BlobRecord, StoredManifest};
use crate::names::Reference;
use crate::routes::{manifest, upload};
use crate::{Registry, now};

impl Registry {
    /// Makes an already stored blob part of `repository`; `false` if the registry does not
    /// hold the blob (then it must be imported).
    pub async fn link_blob(&self, repository: &str, digest: &Digest) -> RegistryResult<bool> {
        let _guard = self.gc_lock.read().await;
        let Some(entry) = self.store.get(&meta::blob_key(digest)).await? else { return Ok(false) };
        let record: BlobRecord = meta::from_json(&entry)?;
        if self.blobs.size(digest).await?.is_none() {
            return Ok(false);
        }
        let record = meta::to_json(&BlobRecord { size: record.size, touched: now() })?;
        let mut ops = vec![
            // Present: the collector may have just taken it, then the caller imports it again.
            Op::Put {
                key: meta::blob_key(digest),
                value: record.clone(),
                expect: Precondition::Revision(entry.mod_revision),
            },
            Op::Put { key: meta::link_key(repository, digest), value: record, expect: Precondition::Any },
        ];
        upload::ensure_repository(self, repository, &mut ops).await?;
        match self.store.txn(ops).await {
            Ok(_) => Ok(true),
            Err(kiln_store::StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the registry holds the blob `digest` (its record and its bytes).
    pub async fn has_blob(&self, digest: &Digest) -> RegistryResult<bool> {
        Ok(self.store.get(&meta::blob_key(digest)).await?.is_some() && self.blobs.size(digest).await?.is_some())
    }

    /// [`Registry::link_blob`] for many blobs in one transaction (one commit instead of one
    /// per blob); `false`, with nothing linked, if the registry lacks any of them.
    pub async fn link_blobs(&self, repository: &str, digests: &[Digest]) -> RegistryResult<bool> {
        let _guard = self.gc_lock.read().await;
        let mut ops = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for digest in digests.iter().filter(|d| seen.insert(*d)) {
            let Some(entry) = self.store.get(&meta::blob_key(digest)).await? else { return Ok(false) };
            let record: BlobRecord = meta::from_json(&entry)?;
            if self.blobs.size(digest).await?.is_none() {
                return Ok(false);
            }
            let record = meta::to_json(&BlobRecord { size: record.size, touched: now() })?;
            ops.push(Op::Put {
                key: meta::blob_key(digest),
                value: record.clone(),
                expect: Precondition::Revision(entry.mod_revision),
            });
            ops.push(Op::Put { key: meta::link_key(repository, digest), value: record, expect: Precondition::Any });
        }
        if ops.is_empty() {
            return Ok(true);
        }
        upload::ensure_repository(self, repository, &mut ops).await?;
        match self.store.txn(ops).await {
            Ok(_) => Ok(true),
            Err(kiln_store::StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds a local file as the blob `digest` of `repository` (verified while copied); a
    /// blob the registry already holds is only linked. Returns whether bytes were copied.
    pub async fn import_file(&self, repository: &str, path: &Path, digest: &Digest) -> RegistryResult<bool> {
        if self.link_blob(repository, digest).await? {
            return Ok(false);
        }
        let id = uuid::Uuid::new_v4().to_string();
        self.blobs.create_upload(&id).await?;
        let copied = async {
            let mut file = tokio::fs::File::open(path)
                .await
                .map_err(|e| RegistryError::internal(format!("cannot open {}: {e}", path.display())))?;
            let mut hasher = Some(kiln_oci::digest::Hasher::new(digest.algorithm()));
            loop {
                let mut chunk = vec![0u8; WRITE_BUFFER];
                let read = file
                    .read(&mut chunk)
                    .await
                    .map_err(|e| RegistryError::internal(format!("cannot read {}: {e}", path.display())))?;
                if read == 0 {
                    break;
                }
                chunk.truncate(read);
                hasher = self.blobs.append(&id, chunk, hasher).await?;
            }
            let size = self.blobs.upload_size(&id).await?.unwrap_or(0);
            if let Some(hasher) = hasher {
                self.keep_hasher(&id, size, hasher);
            }
            upload::commit(self, repository, &id, digest, false).await
        }
        .await;
        if copied.is_err() {
            let _ = self.blobs.delete_upload(&id).await;
        }
        copied.map(|()| true)
    }

    /// Adds a small blob (a config, an SBOM) from memory; returns its digest.
    pub async fn put_blob(&self, repository: &str, bytes: &[u8]) -> RegistryResult<Digest> {
        let digest = Digest::sha256(bytes);
        if self.link_blob(repository, &digest).await? {
            return Ok(digest);
        }
        let id = uuid::Uuid::new_v4().to_string();
        self.blobs.create_upload(&id).await?;
        let stored = async {
            self.blobs.append(&id, bytes.to_vec(), None).await?;
            upload::commit(self, repository, &id, &digest, false).await
        }
        .await;
        if stored.is_err() {
            let _ = self.blobs.delete_upload(&id).await;
        }
        stored.map(|()| digest)
    }

    /// Stores a manifest under its digest (and `tag`), with the checks of a `/v2` push.
    pub async fn put_manifest(
        &self,
        repository: &str,
        tag: Option<&str>,
        body: Vec<u8>,
        media_type: &str,
    ) -> RegistryResult<Digest> {
        crate::names::check_repository(repository)?;
        let info = ManifestInfo::parse(&body, Some(media_type))
            .map_err(|e| RegistryError::new(Code::ManifestInvalid, format!("the manifest is invalid: {e}")))?;
        let digest = Digest::sha256(&body);
        manifest::store_manifest(self, repository, tag, &digest, &info, body).await?;
        Ok(digest)
    }

    /// The manifest a tag or digest names in `repository`.
    pub async fn read_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> RegistryResult<Option<(Digest, StoredManifest)>> {
        let reference = Reference::parse(reference)?;
        let Some(digest) = manifest::resolve(self, repository, &reference).await? else { return Ok(None) };
        Ok(manifest::load(self, repository, &digest).await?.map(|stored| (digest, stored)))
    }

    /// Opens a blob linked in `repository`.
    pub async fn open_blob(&self, repository: &str, digest: &Digest) -> RegistryResult<Option<BlobReader>> {
        let Some(size) = crate::routes::blob::linked_size(self, repository, digest).await? else { return Ok(None) };
        Ok(self.blobs.open(digest, 0, size).await?)
    }

    /// Reads a small linked blob whole (configs, SBOMs); refuses anything over `limit` bytes.
    pub async fn read_blob(&self, repository: &str, digest: &Digest, limit: u64) -> RegistryResult<Option<Vec<u8>>> {
        let Some(mut reader) = self.open_blob(repository, digest).await? else { return Ok(None) };
        if reader.length > limit {
            return Err(RegistryError::internal(format!(
                "blob {digest} is {} bytes, over the {limit} expected",
                reader.length
            )));
        }
        let mut bytes = Vec::with_capacity(reader.length as usize);
        reader
            .file
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| RegistryError::internal(format!("reading blob {digest}: {e}")))?;
        Ok(Some(bytes))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn registry(dir: &Path) -> Registry {
        let store = kiln_store::EmbeddedStore::open(&dir.join("kv.redb")).unwrap_or_else(|e| panic!("{e}"));
        let blobs = crate::blobs::FsBlobStore::open(&dir.join("blobs")).unwrap_or_else(|e| panic!("{e}"));
        Registry::new(Arc::new(store), Arc::new(blobs), Arc::new(crate::access::OpenAccess), Default::default())
    }

    #[tokio::test]
    async fn link_blobs_links_all_in_one_go_or_none() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let registry = registry(dir.path());
        let a = registry.put_blob("org/a", b"one").await.unwrap_or_else(|e| panic!("{}", e.message));
        let b = registry.put_blob("org/a", b"two").await.unwrap_or_else(|e| panic!("{}", e.message));
        let missing = Digest::sha256(b"three");
        assert!(registry.has_blob(&a).await.unwrap_or_else(|e| panic!("{}", e.message)));
        assert!(!registry.has_blob(&missing).await.unwrap_or_else(|e| panic!("{}", e.message)));
        let link = |digests: Vec<Digest>| {
            let registry = &registry;
            async move { registry.link_blobs("org/b", &digests).await.unwrap_or_else(|e| panic!("{}", e.message)) }
        };
        assert!(!link(vec![a.clone(), missing]).await, "one missing blob links none");
        assert_eq!(registry.read_blob("org/b", &a, 16).await.ok().flatten(), None);
        assert!(link(vec![a.clone(), b.clone(), a.clone()]).await);
        assert_eq!(registry.read_blob("org/b", &b, 16).await.ok().flatten().as_deref(), Some(&b"two"[..]));
        assert!(link(Vec::new()).await);
    }
}
