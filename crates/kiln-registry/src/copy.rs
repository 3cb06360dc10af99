//! Copies an image (or index, with its children) from this registry to another one
//! through the client: blobs the destination lacks are streamed from the blob store,
//! children before their index, the named manifest last, so the destination never holds a
//! manifest whose content is missing.

use kiln_oci::Digest;

use crate::error::RegistryError;
use crate::names::Reference;
use crate::routes::manifest::{load, resolve};
use crate::{Registry, blobs::BlobStore};
use kiln_registry_client::{Client, ClientError};

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{0}")]
    Source(String),
    #[error("{0}")]
    Destination(#[from] ClientError),
}

impl From<RegistryError> for CopyError {
    fn from(e: RegistryError) -> CopyError {
        CopyError::Source(e.message)
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CopyReport {
    pub digest: Option<Digest>,
    pub blobs_copied: u64,
    pub blobs_present: u64,
    pub bytes_copied: u64,
    pub manifests: u64,
}

/// Copies `repository:reference` of this registry to `to_repository:to_reference` through `client`.
pub async fn copy_out(
    registry: &Registry,
    repository: &str,
    reference: &str,
    client: &Client,
    to_repository: &str,
    to_reference: &str,
) -> Result<CopyReport, CopyError> {
    let parsed = Reference::parse(reference)?;
    let digest = resolve(registry, repository, &parsed)
        .await?
        .ok_or_else(|| CopyError::Source(format!("{repository}:{reference} is not in the registry")))?;
    let mut report = CopyReport::default();
    copy_manifest(registry, repository, &digest, client, to_repository, to_reference, &mut report, 0).await?;
    report.digest = Some(digest);
    Ok(report)
}

/// How deep indexes may nest.
const MAX_DEPTH: usize = 4;

#[allow(clippy::too_many_arguments)]
async fn copy_manifest(
    registry: &Registry,
    repository: &str,
    digest: &Digest,
    client: &Client,
    to_repository: &str,
    to_reference: &str,
    report: &mut CopyReport,
    depth: usize,
) -> Result<(), CopyError> {
    if depth > MAX_DEPTH {
        return Err(CopyError::Source(format!("indexes nest deeper than {MAX_DEPTH} levels")));
    }
    let stored = load(registry, repository, digest)
        .await?
        .ok_or_else(|| CopyError::Source(format!("manifest {digest} is missing from {repository}")))?;
    for child in &stored.meta.children {
        let child_reference = child.to_string();
        Box::pin(copy_manifest(
            registry,
            repository,
            child,
            client,
            to_repository,
            &child_reference,
            report,
            depth + 1,
        ))
        .await?;
    }
    for blob in &stored.meta.blobs {
        if client.has_blob(to_repository, blob).await? {
            report.blobs_present += 1;
            continue;
        }
        copy_blob(registry.blobs.as_ref(), blob, client, to_repository, report).await?;
    }
    client.push_manifest(to_repository, to_reference, &stored.meta.media_type, &stored.content).await?;
    report.manifests += 1;
    Ok(())
}

async fn copy_blob(
    blobs: &dyn BlobStore,
    digest: &Digest,
    client: &Client,
    to_repository: &str,
    report: &mut CopyReport,
) -> Result<(), CopyError> {
    let missing = || CopyError::Source(format!("blob {digest} is missing from the blob store"));
    let size = blobs.size(digest).await.map_err(|e| CopyError::Source(e.to_string()))?.ok_or_else(missing)?;
    let reader =
        blobs.open(digest, 0, size).await.map_err(|e| CopyError::Source(e.to_string()))?.ok_or_else(missing)?;
    let limited = tokio::io::AsyncReadExt::take(reader.file, size);
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(limited, 256 * 1024));
    client.push_blob(to_repository, digest, size, body).await?;
    report.blobs_copied += 1;
    report.bytes_copied += size;
    Ok(())
}
