//! Pushing blobs: monolithic (`POST ?digest=`), chunked (`POST`, `PATCH` with
//! `Content-Range`, `PUT ?digest=`), status, cancel and cross-repository mounts. Bytes are
//! verified against the digest before they become a blob; a refused chunk or a wrong digest
//! leaves nothing stored.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use kiln_oci::{Algorithm, Digest, Hasher};
use kiln_store::{Op, Precondition};

use super::{query, set};
use crate::access::Action;
use crate::blobs::WRITE_BUFFER;
use crate::error::{Code, RegistryError, RegistryResult};
use crate::meta::{self, BlobRecord, UploadRecord};
use crate::{Ctx, Registry, names, now};

fn unknown_upload(id: &str) -> RegistryError {
    RegistryError::new(Code::BlobUploadUnknown, format!("upload {id:?} is not known: start a new one"))
}

fn range_header(offset: u64) -> String {
    format!("0-{}", offset.saturating_sub(1))
}

fn accepted(repository: &str, id: &str, offset: u64) -> Response {
    let mut response = StatusCode::ACCEPTED.into_response();
    set(&mut response, "location", format!("/v2/{repository}/blobs/uploads/{id}"));
    set(&mut response, "range", range_header(offset));
    set(&mut response, "docker-upload-uuid", id);
    set(&mut response, "content-length", "0");
    response
}

fn created(repository: &str, digest: &Digest) -> Response {
    let mut response = StatusCode::CREATED.into_response();
    set(&mut response, "location", format!("/v2/{repository}/blobs/{digest}"));
    set(&mut response, "docker-content-digest", digest.to_string());
    set(&mut response, "content-length", "0");
    response
}

pub async fn start(registry: &Registry, ctx: &Ctx, repository: &str, request: Request) -> RegistryResult<Response> {
    let params = query(&request);
    if let (Some(mount), Some(from)) = (params.get("mount"), params.get("from"))
        && let Some(response) = mount_from(registry, ctx, repository, mount, from).await?
    {
        return Ok(response);
    }
    let id = uuid::Uuid::new_v4().to_string();
    registry.blobs.create_upload(&id).await?;
    if let Some(digest) = params.get("digest") {
        let digest = names::parse_digest(digest)?;
        registry.keep_hasher(&id, 0, Hasher::new(digest.algorithm()));
        let result = async {
            receive(registry, &id, 0, None, request.into_body()).await?;
            commit(registry, repository, &id, &digest, false).await
        }
        .await;
        if result.is_err() {
            let _ = registry.blobs.delete_upload(&id).await;
            registry.take_hasher(&id);
        }
        return result.map(|()| created(repository, &digest));
    }
    let record = UploadRecord { repository: repository.to_string(), started: now() };
    registry.store.put(&meta::upload_key(&id), meta::to_json(&record)?, Precondition::Absent).await?;
    registry.keep_hasher(&id, 0, Hasher::new(Algorithm::Sha256));
    Ok(accepted(repository, &id, 0))
}

/// Links a blob another repository holds, if the caller may read it there; `None` means
/// fall back to an ordinary upload, as the spec asks.
async fn mount_from(
    registry: &Registry,
    ctx: &Ctx,
    repository: &str,
    mount: &str,
    from: &str,
) -> RegistryResult<Option<Response>> {
    let (Ok(digest), Ok(())) = (names::parse_digest(mount), names::check_repository(from)) else { return Ok(None) };
    if ctx.require(from, Action::Pull).await.is_err() {
        return Ok(None);
    }
    let Some(size) = super::blob::linked_size(registry, from, &digest).await? else { return Ok(None) };
    let _guard = registry.gc_lock.read().await;
    let record = meta::to_json(&BlobRecord { size, touched: now() })?;
    let mut ops = vec![
        // The blob record must still exist: the collector may have just taken it.
        Op::Put { key: meta::blob_key(&digest), value: record.clone(), expect: Precondition::Present },
        Op::Put { key: meta::link_key(repository, &digest), value: record, expect: Precondition::Any },
    ];
    ensure_repository(registry, repository, &mut ops).await?;
    match registry.store.txn(ops).await {
        Ok(_) => Ok(Some(created(repository, &digest))),
        Err(kiln_store::StoreError::Conflict { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Adds the repository's record to `ops` if it does not exist yet.
pub async fn ensure_repository(registry: &Registry, repository: &str, ops: &mut Vec<Op>) -> RegistryResult<()> {
    let key = meta::repository_key(repository);
    if registry.store.get(&key).await?.is_none() {
        ops.push(Op::Put {
            key,
            value: meta::to_json(&serde_json::json!({"created": now()}))?,
            expect: Precondition::Any,
        });
    }
    Ok(())
}

async fn session(registry: &Registry, repository: &str, id: &str) -> RegistryResult<u64> {
    let record = registry.store.get(&meta::upload_key(id)).await?.ok_or_else(|| unknown_upload(id))?;
    let record: UploadRecord = meta::from_json(&record)?;
    if record.repository != repository {
        return Err(unknown_upload(id));
    }
    registry.blobs.upload_size(id).await?.ok_or_else(|| unknown_upload(id))
}

pub async fn status(registry: &Registry, repository: &str, id: &str) -> RegistryResult<Response> {
    let offset = session(registry, repository, id).await?;
    let mut response = accepted(repository, id, offset);
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

/// `Content-Range: <start>-<end>` (inclusive), also with a `bytes ` prefix or `/total`, as
/// its start and its length in bytes.
fn content_range(request: &Request) -> RegistryResult<Option<(u64, u64)>> {
    let Some(value) = request.headers().get(header::CONTENT_RANGE) else { return Ok(None) };
    let text = value.to_str().unwrap_or_default();
    let spec = text.trim().trim_start_matches("bytes").trim().split('/').next().unwrap_or_default();
    let parsed = spec.split_once('-').and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
    // The range names its last byte, so its length is one more than the difference: a range
    // ending at u64::MAX has no length a u64 can hold, and no upload could reach it anyway.
    let length = parsed.and_then(|(start, end): (u64, u64)| end.checked_sub(start)?.checked_add(1));
    match (parsed, length) {
        (Some((start, _)), Some(length)) => Ok(Some((start, length))),
        _ => Err(RegistryError::new(Code::RangeInvalid, format!("Content-Range {text:?} is not <start>-<end>"))),
    }
}

/// The declared range of a chunk (start, length), refused unless it starts where the upload
/// ends.
fn declared_range(request: &Request, offset: u64) -> RegistryResult<Option<(u64, u64)>> {
    let declared = content_range(request)?;
    if let Some((start, _)) = declared
        && start != offset
    {
        return Err(out_of_order(offset, start));
    }
    Ok(declared)
}

fn out_of_order(offset: u64, start: u64) -> RegistryError {
    RegistryError::new(
        Code::RangeInvalid,
        format!("the chunk starts at {start} but the upload holds {offset} bytes: send from {offset}"),
    )
}

pub async fn patch(registry: &Registry, repository: &str, id: &str, request: Request) -> RegistryResult<Response> {
    let offset = session(registry, repository, id).await?;
    let declared = declared_range(&request, offset)?;
    let offset = receive(registry, id, offset, declared.map(|(_, length)| length), request.into_body()).await?;
    Ok(accepted(repository, id, offset))
}

pub async fn finish(registry: &Registry, repository: &str, id: &str, request: Request) -> RegistryResult<Response> {
    let offset = session(registry, repository, id).await?;
    let digest = query(&request).get("digest").cloned().ok_or_else(|| {
        RegistryError::new(Code::DigestInvalid, "the digest query parameter is required to complete an upload")
    })?;
    let digest = names::parse_digest(&digest)?;
    declared_range(&request, offset)?;
    let received = receive(registry, id, offset, None, request.into_body()).await;
    let result = match received {
        Ok(_) => commit(registry, repository, id, &digest, true).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        // A wrong digest ends the upload: nothing of it is kept.
        if e.code == Code::DigestInvalid || e.code == Code::SizeInvalid {
            discard(registry, id).await?;
        }
        return Err(e);
    }
    Ok(created(repository, &digest))
}

pub async fn cancel(registry: &Registry, repository: &str, id: &str) -> RegistryResult<Response> {
    session(registry, repository, id).await?;
    discard(registry, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn discard(registry: &Registry, id: &str) -> RegistryResult<()> {
    registry.take_hasher(id);
    registry.blobs.delete_upload(id).await?;
    registry.store.delete(&meta::upload_key(id), Precondition::Any).await?;
    Ok(())
}

/// Appends the body to the upload, at most `limit` bytes if a range was declared (and then
/// exactly that many). On any failure the upload is cut back to where it was.
async fn receive(registry: &Registry, id: &str, offset: u64, limit: Option<u64>, body: Body) -> RegistryResult<u64> {
    let mut hasher = match registry.take_hasher(id) {
        Some((at, hasher)) if at == offset => Some(hasher),
        _ => None,
    };
    let mut stream = body.into_data_stream();
    let mut buffer = Vec::with_capacity(WRITE_BUFFER);
    let mut written = 0u64;
    let outcome: RegistryResult<()> = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk
                .map_err(|e| RegistryError::new(Code::BlobUploadInvalid, format!("reading the body failed: {e}")))?;
            written += chunk.len() as u64;
            if let Some(limit) = limit
                && written > limit
            {
                return Err(RegistryError::new(
                    Code::RangeInvalid,
                    format!("the chunk is longer than its Content-Range ({limit} bytes)"),
                ));
            }
            buffer.extend_from_slice(&chunk);
            if buffer.len() >= WRITE_BUFFER {
                let full = std::mem::replace(&mut buffer, Vec::with_capacity(WRITE_BUFFER));
                hasher = registry.blobs.append(id, full, hasher.take()).await?;
            }
        }
        if let Some(limit) = limit
            && written != limit
        {
            return Err(RegistryError::new(
                Code::RangeInvalid,
                format!("the chunk holds {written} bytes but its Content-Range says {limit}"),
            ));
        }
        if !buffer.is_empty() {
            hasher = registry.blobs.append(id, std::mem::take(&mut buffer), hasher.take()).await?;
        }
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => {
            if let Some(hasher) = hasher {
                registry.keep_hasher(id, offset + written, hasher);
            }
            Ok(offset + written)
        }
        Err(e) => {
            registry.blobs.truncate_upload(id, offset).await?;
            Err(e)
        }
    }
}

/// Verifies the upload against `digest` and makes it a blob of the repository; the upload's
/// session record (if `recorded`) goes in the same transaction.
pub(crate) async fn commit(
    registry: &Registry,
    repository: &str,
    id: &str,
    digest: &Digest,
    recorded: bool,
) -> RegistryResult<()> {
    let size = registry.blobs.upload_size(id).await?.ok_or_else(|| unknown_upload(id))?;
    let actual = match registry.take_hasher(id) {
        Some((at, hasher)) if at == size && hasher.algorithm() == digest.algorithm() => hasher.finish(),
        _ => registry.blobs.hash_upload(id, digest.algorithm()).await?,
    };
    if &actual != digest {
        return Err(RegistryError::new(
            Code::DigestInvalid,
            format!("the uploaded bytes have digest {actual}, not {digest}: nothing was stored"),
        ));
    }
    let _guard = registry.gc_lock.read().await;
    registry.blobs.commit_upload(id, digest).await?;
    let record = meta::to_json(&BlobRecord { size, touched: now() })?;
    let mut ops = vec![
        Op::Put { key: meta::blob_key(digest), value: record.clone(), expect: Precondition::Any },
        Op::Put { key: meta::link_key(repository, digest), value: record, expect: Precondition::Any },
    ];
    if recorded {
        ops.push(Op::Delete { key: meta::upload_key(id), expect: Precondition::Any });
    }
    ensure_repository(registry, repository, &mut ops).await?;
    registry.store.txn(ops).await?;
    Ok(())
}
