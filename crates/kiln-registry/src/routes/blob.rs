//! Reading and deleting blobs: `HEAD`/`GET` (with `Range`) and `DELETE` of
//! `/v2/<name>/blobs/<digest>`. A blob is served only in repositories it was pushed or
//! mounted into.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use kiln_oci::Digest;
use kiln_store::Precondition;

use super::set;
use crate::Registry;
use crate::error::{Code, RegistryError, RegistryResult};
use crate::meta::{self, BlobRecord};

/// Bytes read from disk per chunk of a response body.
const READ_CHUNK: usize = 256 * 1024;

fn unknown(digest: &Digest) -> RegistryError {
    RegistryError::new(Code::BlobUnknown, format!("blob {digest} is not known in this repository"))
}

/// The blob's size if the repository may serve it.
pub async fn linked_size(registry: &Registry, repository: &str, digest: &Digest) -> RegistryResult<Option<u64>> {
    let Some(link) = registry.store.get(&meta::link_key(repository, digest)).await? else { return Ok(None) };
    let record: BlobRecord = meta::from_json(&link)?;
    Ok(Some(record.size))
}

pub async fn get(registry: &Registry, repository: &str, digest: &Digest, request: Request) -> RegistryResult<Response> {
    let size = linked_size(registry, repository, digest).await?.ok_or_else(|| unknown(digest))?;
    let range = match request.headers().get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(value) => match parse_range(value, size) {
            Some(range) => Some(range),
            None => {
                let error = RegistryError::new(
                    Code::RangeInvalid,
                    format!("range {value:?} cannot be served from {size} bytes"),
                );
                let mut response = error.into_response();
                set(&mut response, "content-range", format!("bytes */{size}"));
                return Ok(response);
            }
        },
        None => None,
    };
    let (offset, length) = range.unwrap_or((0, size));
    let head = request.method() == axum::http::Method::HEAD;
    let mut response = if head {
        StatusCode::OK.into_response()
    } else {
        let reader = registry.blobs.open(digest, offset, length).await?.ok_or_else(|| unknown(digest))?;
        let mut limited = tokio::io::AsyncReadExt::take(reader.file, reader.length);
        if length <= READ_CHUNK as u64 {
            // Small blobs go out with their headers in one write.
            let mut bytes = Vec::with_capacity(length as usize);
            tokio::io::AsyncReadExt::read_to_end(&mut limited, &mut bytes).await?;
            Response::new(Body::from(bytes))
        } else {
            Response::new(Body::from_stream(tokio_util::io::ReaderStream::with_capacity(limited, READ_CHUNK)))
        }
    };
    if range.is_some() && !head {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        set(&mut response, "content-range", format!("bytes {}-{}/{size}", offset, offset + length.saturating_sub(1)));
    }
    set(&mut response, "content-length", length.to_string());
    set(&mut response, "content-type", "application/octet-stream");
    set(&mut response, "docker-content-digest", digest.to_string());
    set(&mut response, "accept-ranges", "bytes");
    set(&mut response, "etag", format!("\"{digest}\""));
    Ok(response)
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` within `size`, as (offset, length).
fn parse_range(value: &str, size: u64) -> Option<(u64, u64)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            if n == 0 {
                return None;
            }
            (size.saturating_sub(n), size.checked_sub(1)?)
        }
        (start, "") => (start.parse().ok()?, size.checked_sub(1)?),
        (start, end) => (start.parse().ok()?, end.parse::<u64>().ok()?.min(size.checked_sub(1)?)),
    };
    (start <= end && start < size).then(|| (start, end - start + 1))
}

pub async fn delete(registry: &Registry, repository: &str, digest: &Digest) -> RegistryResult<Response> {
    // Only the repository's link goes; the bytes wait for the collector, which knows
    // whether another repository or a manifest still needs them.
    match registry.store.delete(&meta::link_key(repository, digest), Precondition::Present).await {
        Ok(_) => Ok(StatusCode::ACCEPTED.into_response()),
        Err(kiln_store::StoreError::Conflict { .. }) => Err(unknown(digest)),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 10)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 10)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 10)));
        assert_eq!(parse_range("bytes=95-200", 100), Some((95, 5)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-1", 100), None);
        assert_eq!(parse_range("bytes=0-1,3-4", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=0-0", 0), None);
    }
}
