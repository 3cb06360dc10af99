//! The registry's records in the metadata store: which repositories exist, which blobs each
//! may serve, manifests (their bytes and what they reference), tags, referrers and uploads.
//! Blob bytes stay in the blob store; everything that must change together lives here, so a
//! manifest, its tag and its referrer entry commit in one transaction.

use kiln_oci::{Descriptor, Digest};
use kiln_store::{Entry, StoreError};
use serde::{Deserialize, Serialize};

pub const PREFIX: &str = "registry/";

pub fn repository_key(repository: &str) -> String {
    format!("registry/repository/{repository}")
}
pub const REPOSITORY_PREFIX: &str = "registry/repository/";

/// A blob's own record: present while the blob file may be served.
pub fn blob_key(digest: &Digest) -> String {
    format!("registry/blob/{digest}")
}
pub const BLOB_PREFIX: &str = "registry/blob/";

/// A blob made visible in a repository (by an upload or a mount).
pub fn link_key(repository: &str, digest: &Digest) -> String {
    format!("registry/link/{repository}@{digest}")
}
pub const LINK_PREFIX: &str = "registry/link/";

pub fn manifest_key(repository: &str, digest: &Digest) -> String {
    format!("registry/manifest/{repository}@{digest}")
}
pub fn manifest_prefix(repository: &str) -> String {
    format!("registry/manifest/{repository}@")
}
pub const MANIFEST_PREFIX: &str = "registry/manifest/";

pub fn tag_key(repository: &str, tag: &str) -> String {
    format!("registry/tag/{repository}:{tag}")
}
pub fn tag_prefix(repository: &str) -> String {
    format!("registry/tag/{repository}:")
}

pub fn referrer_key(repository: &str, subject: &Digest, referrer: &Digest) -> String {
    format!("registry/referrer/{repository}@{subject}/{referrer}")
}
pub fn referrer_prefix(repository: &str, subject: &Digest) -> String {
    format!("registry/referrer/{repository}@{subject}/")
}

pub fn upload_key(id: &str) -> String {
    format!("registry/upload/{id}")
}
pub const UPLOAD_PREFIX: &str = "registry/upload/";

fn corrupt(entry: &Entry, message: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { key: entry.key.clone(), message: message.to_string() }
}

/// The format of the registry's JSON records (blobs, uploads, manifest metadata,
/// referrers), in the store's versioned envelope like every stored value.
const FORMAT_VERSION: u32 = 1;

pub fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    kiln_store::records::encode_at(FORMAT_VERSION, value)
}

pub fn from_json<T: for<'de> Deserialize<'de>>(entry: &Entry) -> Result<T, StoreError> {
    kiln_store::records::decode_at(&entry.key, &entry.value, FORMAT_VERSION, kiln_store::records::first_format)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobRecord {
    pub size: u64,
    /// Unix seconds of the last upload or reference; garbage collection waits a grace
    /// period after it.
    pub touched: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadRecord {
    pub repository: String,
    pub started: i64,
}

/// What is known of a stored manifest besides its bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestMeta {
    pub media_type: String,
    /// Blobs it references (config and layers).
    #[serde(default)]
    pub blobs: Vec<Digest>,
    /// Manifests it references (index entries).
    #[serde(default)]
    pub children: Vec<Digest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Digest>,
    pub pushed: i64,
}

/// A manifest as stored: its metadata, then its exact bytes, in one value so a read is one
/// lookup. Layout: 4-byte big-endian length of the metadata JSON, the JSON, the bytes.
pub struct StoredManifest {
    pub meta: ManifestMeta,
    pub content: Vec<u8>,
}

impl StoredManifest {
    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        let meta = to_json(&self.meta)?;
        let length =
            u32::try_from(meta.len()).map_err(|_| StoreError::Invalid("manifest metadata too large".into()))?;
        let mut out = Vec::with_capacity(4 + meta.len() + self.content.len());
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&meta);
        out.extend_from_slice(&self.content);
        Ok(out)
    }

    pub fn decode(entry: &Entry) -> Result<StoredManifest, StoreError> {
        let value = &entry.value;
        let length =
            value.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()).ok_or_else(|| corrupt(entry, "truncated"))?;
        let end = 4usize.saturating_add(u32::from_be_bytes(length) as usize);
        let meta = value.get(4..end).ok_or_else(|| corrupt(entry, "truncated metadata"))?;
        let meta = kiln_store::records::decode_at(&entry.key, meta, FORMAT_VERSION, kiln_store::records::first_format)?;
        Ok(StoredManifest { meta, content: value[end..].to_vec() })
    }
}

/// A referrer as listed by the referrers API.
pub type ReferrerRecord = Descriptor;

/// Every entry under `prefix`, page by page.
pub async fn scan(store: &dyn kiln_store::KvStore, prefix: &str) -> Result<Vec<Entry>, StoreError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list(prefix, after.as_deref(), 1000).await?;
        out.extend(page.entries);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(out),
        }
    }
}

/// Every key that makes up `repository`: its record, manifests, tags, referrers and blob
/// links. Deleting them makes its blobs garbage unless another repository needs them.
pub async fn repository_keys(store: &dyn kiln_store::KvStore, repository: &str) -> Result<Vec<String>, StoreError> {
    let mut keys = Vec::new();
    let prefixes = [
        manifest_prefix(repository),
        tag_prefix(repository),
        format!("registry/referrer/{repository}@"),
        format!("{LINK_PREFIX}{repository}@"),
    ];
    for prefix in prefixes {
        keys.extend(scan(store, &prefix).await?.into_iter().map(|e| e.key));
    }
    if store.get(&repository_key(repository)).await?.is_some() {
        keys.push(repository_key(repository));
    }
    Ok(keys)
}

/// The repository and digest in a `…/<repository>@<digest>` key.
pub fn split_at_digest<'a>(key: &'a str, prefix: &str) -> Option<(&'a str, Digest)> {
    let rest = key.strip_prefix(prefix)?;
    let (repository, digest) = rest.rsplit_once('@')?;
    Some((repository, digest.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_manifests_keep_their_exact_bytes() {
        let stored = StoredManifest {
            meta: ManifestMeta {
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                blobs: vec![Digest::sha256(b"a")],
                children: Vec::new(),
                subject: None,
                pushed: 1,
            },
            content: b"{ \"schemaVersion\" : 2 }\n".to_vec(),
        };
        let entry =
            Entry { key: "k".into(), value: stored.encode().unwrap(), create_revision: 1, mod_revision: 1, version: 1 };
        let back = StoredManifest::decode(&entry).unwrap();
        assert_eq!(back.content, stored.content);
        assert_eq!(back.meta.blobs, stored.meta.blobs);
        let short = Entry { value: vec![0, 0, 1, 0, b'{'], ..entry };
        assert!(StoredManifest::decode(&short).is_err());
    }

    #[test]
    fn keys_split_back_into_repository_and_digest() {
        let digest = Digest::sha256(b"x");
        let key = link_key("acme/app", &digest);
        assert_eq!(split_at_digest(&key, LINK_PREFIX), Some(("acme/app", digest)));
    }
}
