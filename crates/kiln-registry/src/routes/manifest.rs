//! Manifests by tag and by digest: `HEAD`, `GET`, `PUT`, `DELETE` for OCI image manifests
//! and indexes and Docker schema 2 manifests and lists. A manifest is stored only if every
//! blob and child manifest it names is present; its bytes, tag and referrer entry commit in
//! one transaction.

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use kiln_oci::manifest::MAX_MANIFEST_SIZE;
use kiln_oci::{Digest, ManifestInfo};
use kiln_store::{Op, Precondition};

use super::set;
use crate::error::{Code, RegistryError, RegistryResult};
use crate::meta::{self, BlobRecord, ManifestMeta, StoredManifest};
use crate::names::Reference;
use crate::{Registry, now};

fn unknown(reference: &str) -> RegistryError {
    RegistryError::new(Code::ManifestUnknown, format!("manifest {reference:?} is not known in this repository"))
}

/// The digest a reference names in the repository, if any.
pub async fn resolve(registry: &Registry, repository: &str, reference: &Reference) -> RegistryResult<Option<Digest>> {
    match reference {
        Reference::Digest(digest) => Ok(Some(digest.clone())),
        Reference::Tag(tag) => match registry.store.get(&meta::tag_key(repository, tag)).await? {
            Some(entry) => {
                let text = String::from_utf8_lossy(&entry.value);
                Ok(Some(text.parse().map_err(|e| RegistryError::internal(format!("stored tag {tag}: {e}")))?))
            }
            None => Ok(None),
        },
    }
}

pub async fn load(registry: &Registry, repository: &str, digest: &Digest) -> RegistryResult<Option<StoredManifest>> {
    match registry.store.get(&meta::manifest_key(repository, digest)).await? {
        Some(entry) => Ok(Some(StoredManifest::decode(&entry)?)),
        None => Ok(None),
    }
}

pub async fn get(registry: &Registry, repository: &str, reference: &str, head: bool) -> RegistryResult<Response> {
    // The distribution spec answers a pull only with the manifest or 404: a reference that
    // cannot name anything names nothing here (a push still says why it is refused).
    let parsed = Reference::parse(reference).map_err(|_| unknown(reference))?;
    let digest = resolve(registry, repository, &parsed).await?.ok_or_else(|| unknown(reference))?;
    let stored = load(registry, repository, &digest).await?.ok_or_else(|| unknown(reference))?;
    let length = stored.content.len();
    let mut response = if head { StatusCode::OK.into_response() } else { stored.content.into_response() };
    set(&mut response, "content-type", &stored.meta.media_type);
    set(&mut response, "content-length", length.to_string());
    set(&mut response, "docker-content-digest", digest.to_string());
    set(&mut response, "etag", format!("\"{digest}\""));
    Ok(response)
}

async fn read_body(request: Request) -> RegistryResult<(Option<String>, Vec<u8>)> {
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let too_large = || {
        RegistryError::new(Code::ManifestInvalid, format!("the manifest is larger than {MAX_MANIFEST_SIZE} bytes"))
            .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    };
    if let Some(length) =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        && length > MAX_MANIFEST_SIZE
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    let mut stream = request.into_body().into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| RegistryError::new(Code::ManifestInvalid, format!("reading the body failed: {e}")))?;
        if (body.len() + chunk.len()) as u64 > MAX_MANIFEST_SIZE {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok((content_type, body))
}

pub async fn put(registry: &Registry, repository: &str, reference: &str, request: Request) -> RegistryResult<Response> {
    let parsed = Reference::parse(reference)?;
    let (content_type, body) = read_body(request).await?;
    let info = ManifestInfo::parse(&body, content_type.as_deref())
        .map_err(|e| RegistryError::new(Code::ManifestInvalid, format!("the manifest is invalid: {e}")))?;
    let digest = match &parsed {
        Reference::Digest(wanted) => {
            let actual = Digest::of(wanted.algorithm(), &body);
            if &actual != wanted {
                return Err(RegistryError::new(
                    Code::DigestInvalid,
                    format!("the manifest's digest is {actual}, not {wanted} as the URL says"),
                ));
            }
            actual
        }
        Reference::Tag(_) => Digest::sha256(&body),
    };

    let tag = match &parsed {
        Reference::Tag(tag) => Some(tag.as_str()),
        Reference::Digest(_) => None,
    };
    let subject = store_manifest(registry, repository, tag, &digest, &info, body).await?;
    let mut response = StatusCode::CREATED.into_response();
    set(&mut response, "location", format!("/v2/{repository}/manifests/{digest}"));
    set(&mut response, "docker-content-digest", digest.to_string());
    set(&mut response, "content-length", "0");
    if let Some(subject) = subject {
        set(&mut response, "oci-subject", subject.to_string());
    }
    Ok(response)
}

/// Stores a parsed manifest (and its tag) in one transaction that checks every blob and child
/// it names is in the repository; returns its subject, if it has one.
pub async fn store_manifest(
    registry: &Registry,
    repository: &str,
    tag: Option<&str>,
    digest: &Digest,
    info: &ManifestInfo,
    body: Vec<u8>,
) -> RegistryResult<Option<Digest>> {
    let _guard = registry.gc_lock.read().await;
    let mut ops = Vec::new();
    let mut blobs = Vec::new();
    for descriptor in info.blobs() {
        // Artifacts often use the empty blob as config and layer; check and touch it once.
        if blobs.contains(&descriptor.digest) {
            continue;
        }
        let link = registry.store.get(&meta::link_key(repository, &descriptor.digest)).await?;
        let record: Option<BlobRecord> = link.as_ref().map(meta::from_json).transpose()?;
        match record {
            Some(record) if record.size == descriptor.size => {}
            Some(record) => {
                return Err(RegistryError::new(
                    Code::ManifestInvalid,
                    format!(
                        "blob {} is {} bytes, not {} as the manifest says",
                        descriptor.digest, record.size, descriptor.size
                    ),
                ));
            }
            None => {
                return Err(RegistryError::new(
                    Code::ManifestBlobUnknown,
                    format!("blob {} is not in this repository: push it first", descriptor.digest),
                ));
            }
        }
        // Touching the blob's record makes a collector that decided to delete it fail.
        let record = meta::to_json(&BlobRecord { size: descriptor.size, touched: now() })?;
        ops.push(Op::Put { key: meta::blob_key(&descriptor.digest), value: record, expect: Precondition::Present });
        ops.push(Op::Check { key: meta::link_key(repository, &descriptor.digest), expect: Precondition::Present });
        blobs.push(descriptor.digest.clone());
    }
    let mut children = Vec::new();
    for child in &info.manifests {
        if children.contains(&child.digest) {
            continue;
        }
        let key = meta::manifest_key(repository, &child.digest);
        if registry.store.get(&key).await?.is_none() {
            return Err(RegistryError::new(
                Code::ManifestBlobUnknown,
                format!("manifest {} named by the index is not in this repository: push it first", child.digest),
            ));
        }
        ops.push(Op::Check { key, expect: Precondition::Present });
        children.push(child.digest.clone());
    }
    let subject = info.subject.as_ref().map(|s| s.digest.clone());
    if let Some(subject) = &subject {
        let descriptor = info.referrer_descriptor(digest.clone(), body.len() as u64);
        ops.push(Op::Put {
            key: meta::referrer_key(repository, subject, digest),
            value: meta::to_json(&descriptor)?,
            expect: Precondition::Any,
        });
    }
    let stored = StoredManifest {
        meta: ManifestMeta {
            media_type: info.media_type.to_string(),
            blobs,
            children,
            subject: subject.clone(),
            pushed: now(),
        },
        content: body,
    };
    ops.push(Op::Put {
        key: meta::manifest_key(repository, digest),
        value: stored.encode()?,
        expect: Precondition::Any,
    });
    if let Some(tag) = tag {
        ops.push(Op::Put {
            key: meta::tag_key(repository, tag),
            value: digest.to_string().into_bytes(),
            expect: Precondition::Any,
        });
    }
    super::upload::ensure_repository(registry, repository, &mut ops).await?;
    match registry.store.txn(ops).await {
        Ok(_) => {}
        Err(kiln_store::StoreError::Conflict { key, .. }) => {
            return Err(RegistryError::new(
                Code::ManifestBlobUnknown,
                format!("{key} went away while the manifest was stored: push it again"),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(subject)
}

pub async fn delete(registry: &Registry, repository: &str, reference: &str) -> RegistryResult<Response> {
    let parsed = Reference::parse(reference)?;
    let digest = match &parsed {
        Reference::Tag(tag) => {
            // Deleting by tag removes the tag only (distribution spec 1.1).
            return match registry.store.delete(&meta::tag_key(repository, tag), Precondition::Present).await {
                Ok(_) => Ok(StatusCode::ACCEPTED.into_response()),
                Err(kiln_store::StoreError::Conflict { .. }) => Err(unknown(reference)),
                Err(e) => Err(e.into()),
            };
        }
        Reference::Digest(digest) => digest.clone(),
    };
    let key = meta::manifest_key(repository, &digest);
    let entry = registry.store.get(&key).await?.ok_or_else(|| unknown(reference))?;
    let stored = StoredManifest::decode(&entry)?;
    let mut ops = vec![Op::Delete { key, expect: Precondition::Revision(entry.mod_revision) }];
    let tags = crate::routes::listing::all_tags(registry, repository).await?;
    for (tag, target) in tags {
        if target == digest {
            ops.push(Op::Delete { key: meta::tag_key(repository, &tag), expect: Precondition::Any });
        }
    }
    if let Some(subject) = &stored.meta.subject {
        ops.push(Op::Delete { key: meta::referrer_key(repository, subject, &digest), expect: Precondition::Any });
    }
    match registry.store.txn(ops).await {
        Ok(_) => Ok(StatusCode::ACCEPTED.into_response()),
        Err(kiln_store::StoreError::Conflict { .. }) => Err(unknown(reference)),
        Err(e) => Err(e.into()),
    }
}
