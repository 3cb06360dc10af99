//! The shared download cache: package files stored by their SHA-256, written only after the
//! bytes matched the hash the signed index gave, so every build can trust a hit.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

pub struct DownloadCache {
    dir: PathBuf,
    max_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache directory {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error(
        "the build needs {needed} bytes of packages but the package cache holds at most {limit}: raise --package-cache-limit-bytes"
    )]
    TooSmall { needed: u64, limit: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("GET {url} failed: {why}")]
    Fetch { url: String, why: String },
    #[error(
        "{url} has SHA-256 {actual} and {size} bytes, not {expected} and {expected_size} as the signed index says: the mirror served the wrong file"
    )]
    Mismatch { url: String, expected: String, actual: String, size: u64, expected_size: u64 },
    #[error("writing {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

impl DownloadCache {
    pub fn open(dir: &Path, max_bytes: u64) -> Result<DownloadCache, CacheError> {
        std::fs::create_dir_all(dir).map_err(|source| CacheError::Io { path: dir.display().to_string(), source })?;
        Ok(DownloadCache { dir: dir.to_path_buf(), max_bytes })
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(sha256)
    }

    /// Refuses up front a build whose packages could never fit.
    pub fn check_room(&self, needed: u64) -> Result<(), CacheError> {
        if needed > self.max_bytes {
            return Err(CacheError::TooSmall { needed, limit: self.max_bytes });
        }
        Ok(())
    }

    /// The verified file for `sha256`, downloading it from `url` on a miss.
    pub async fn fetch(
        &self,
        client: &reqwest::Client,
        url: &str,
        sha256: &str,
        size: u64,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<PathBuf, FetchError> {
        self.fetch_with(client.get(url), url, sha256, Some(size), progress).await
    }

    /// `fetch` for a prepared request (credentials of a private index) and a size the index
    /// may not know; an unknown size is bounded by the cache's own limit.
    pub async fn fetch_with(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
        sha256: &str,
        size: Option<u64>,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<PathBuf, FetchError> {
        let sha256 = sha256.to_ascii_lowercase();
        let path = self.path(&sha256);
        // Files are renamed into place only once verified, so one that exists is good.
        if let Ok(meta) = tokio::fs::metadata(&path).await
            && size.is_none_or(|size| meta.len() == size)
        {
            // Touch: eviction takes the least recently used first.
            if let Ok(file) = std::fs::File::options().append(true).open(&path) {
                let _ = file.set_modified(SystemTime::now());
            }
            progress(meta.len());
            return Ok(path);
        }
        let limit = size.unwrap_or(self.max_bytes);
        let io = |source: std::io::Error| FetchError::Io { path: path.display().to_string(), source };
        let fail = |why: String| FetchError::Fetch { url: url.to_string(), why };
        let response = request.send().await.map_err(|e| fail(e.to_string()))?;
        if !response.status().is_success() {
            return Err(fail(format!("the server answered {}", response.status())));
        }
        let temp = self.dir.join(format!(".{sha256}.{}", std::process::id()));
        let result = async {
            let mut file = tokio::fs::File::create(&temp).await.map_err(io)?;
            let mut hasher = Sha256::new();
            let mut done = 0u64;
            let mut body = response.bytes_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| fail(e.to_string()))?;
                done += chunk.len() as u64;
                if done > limit {
                    break;
                }
                hasher.update(&chunk);
                file.write_all(&chunk).await.map_err(io)?;
                progress(done);
            }
            let actual = hex::encode(hasher.finalize());
            if actual != sha256 || size.is_some_and(|size| done != size) || done > limit {
                return Err(FetchError::Mismatch {
                    url: url.to_string(),
                    expected: sha256.clone(),
                    actual,
                    size: done,
                    expected_size: size.unwrap_or(limit),
                });
            }
            file.sync_all().await.map_err(io)?;
            tokio::fs::rename(&temp, &path).await.map_err(io)
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        result?;
        self.evict();
        Ok(path)
    }

    /// Removes the least recently used files until the cache is within its limit.
    fn evict(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        let mut files: Vec<(SystemTime, u64, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| {
                e.metadata().ok().map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len(), e.path()))
            })
            .collect();
        let mut total: u64 = files.iter().map(|(_, size, _)| size).sum();
        files.sort();
        for (_, size, path) in files {
            if total <= self.max_bytes {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= size;
            }
        }
    }
}
