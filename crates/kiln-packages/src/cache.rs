//! The shared download cache: package files stored by their digest, written only after the
//! bytes matched the digest their index gave, so every build can trust a hit. Files are named
//! only by a parsed [`Digest`], never by a string an index or lockfile supplied, so no entry
//! can name a path outside the cache.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use futures::StreamExt;
use kiln_oci::{Algorithm, Digest, Hasher};
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
        "{url} has {} {actual} and {size} bytes, not {expected}{} as {listed_by} says: the server sent the wrong file",
        algorithm_label(expected.algorithm()),
        expected_size.map(|s| format!(" and {s} bytes")).unwrap_or_default(),
        actual = actual.hex(),
        expected = expected.hex(),
    )]
    Mismatch { url: String, expected: Digest, actual: Digest, size: u64, expected_size: Option<u64>, listed_by: String },
    #[error(
        "{url} is larger than the package cache's limit of {limit} bytes and {listed_by} gives no size: raise --package-cache-limit-bytes"
    )]
    TooBig { url: String, limit: u64, listed_by: String },
    #[error("writing {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// Downloads a killed process left half-written (`.<name>.<pid>`): one server owns a data
/// directory, so a temporary file of another process id is nobody's any more.
fn remove_abandoned_downloads(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let ours = std::process::id().to_string();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let owner = name.strip_prefix('.').and_then(|rest| rest.rsplit_once('.')).map(|(_, pid)| pid);
        if owner.is_some_and(|pid| pid != ours && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

impl DownloadCache {
    pub fn open(dir: &Path, max_bytes: u64) -> Result<DownloadCache, CacheError> {
        std::fs::create_dir_all(dir).map_err(|source| CacheError::Io { path: dir.display().to_string(), source })?;
        remove_abandoned_downloads(dir);
        Ok(DownloadCache { dir: dir.to_path_buf(), max_bytes })
    }

    /// Only a digest's hex (and its algorithm) makes up the name: lower-case `[0-9a-f]` of a fixed
    /// length, which cannot climb out of the directory. SHA-256 files keep their bare-hex names.
    fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(file_name(digest))
    }

    /// Refuses up front a build whose packages could never fit.
    pub fn check_room(&self, needed: u64) -> Result<(), CacheError> {
        if needed > self.max_bytes {
            return Err(CacheError::TooSmall { needed, limit: self.max_bytes });
        }
        Ok(())
    }

    /// The verified file for `digest`, downloading it from `url` on a miss. `listed_by` says
    /// where the digest came from (such as the signed Debian index), for the error when the
    /// download does not match.
    ///
    /// Only a parsed digest can name a file, never a string from an index:
    ///
    /// ```compile_fail
    /// # async fn f(cache: &kiln_packages::cache::DownloadCache, client: &reqwest::Client) {
    /// let from_index = String::from("/../../tmp/planted.whl");
    /// cache.fetch(client, "http://127.0.0.1/x", &from_index, 1, "an index", &|_| {}).await;
    /// # }
    /// ```
    pub async fn fetch(
        &self,
        client: &reqwest::Client,
        url: &str,
        digest: &Digest,
        size: u64,
        listed_by: &str,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<PathBuf, FetchError> {
        self.fetch_with(client.get(url), url, digest, Some(size), listed_by, progress).await
    }

    /// `fetch` for a prepared request (credentials of a private index) and a size the index
    /// may not know; an unknown size is bounded by the cache's own limit.
    pub async fn fetch_with(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
        digest: &Digest,
        size: Option<u64>,
        listed_by: &str,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<PathBuf, FetchError> {
        let path = self.path(digest);
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
        let temp = self.dir.join(format!(".{}.{}", file_name(digest), std::process::id()));
        let result = async {
            let mut file = tokio::fs::File::create(&temp).await.map_err(io)?;
            let mut hasher = Hasher::new(digest.algorithm());
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
            if done > limit && size.is_none() {
                return Err(FetchError::TooBig { url: url.to_string(), limit, listed_by: listed_by.to_string() });
            }
            let actual = hasher.finish();
            if actual != *digest || size.is_some_and(|size| done != size) || done > limit {
                return Err(FetchError::Mismatch {
                    url: url.to_string(),
                    expected: digest.clone(),
                    actual,
                    size: done,
                    expected_size: size,
                    listed_by: listed_by.to_string(),
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

fn file_name(digest: &Digest) -> String {
    match digest.algorithm() {
        Algorithm::Sha256 => digest.hex().to_string(),
        other => format!("{other}-{}", digest.hex()),
    }
}

fn algorithm_label(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::Sha256 => "SHA-256",
        Algorithm::Sha512 => "SHA-512",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest as _;
    use tokio::io::AsyncReadExt;

    /// Answers every request on loopback with `body`, as often as asked.
    async fn serve(body: &'static [u8]) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buffer = [0u8; 2048];
                let _ = socket.read(&mut buffer).await;
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(body).await;
            }
        });
        format!("http://{address}/file")
    }

    /// Every file below `root`, relative to it.
    fn files_below(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut dirs = vec![root.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("read dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    out.push(path.strip_prefix(root).expect("below root").display().to_string());
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn downloads_a_dead_process_left_are_removed() {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("cache");
        std::fs::create_dir_all(&dir).expect("cache dir");
        let ours = format!(".abc.{}", std::process::id());
        for name in [".abc.4294967295", ours.as_str(), "abc", ".keep"] {
            std::fs::write(dir.join(name), "x").expect("file");
        }
        DownloadCache::open(&dir, 1 << 20).expect("cache");
        assert_eq!(files_below(root.path()), [format!("cache/{ours}"), "cache/.keep".to_string(), "cache/abc".into()]);
    }

    #[tokio::test]
    async fn files_are_named_by_their_digest_and_stay_in_the_cache() {
        let root = tempfile::tempdir().expect("temp dir");
        let cache = DownloadCache::open(&root.path().join("cache"), 1 << 20).expect("cache");
        let client = reqwest::Client::new();
        let url = serve(b"wheel bytes").await;
        // As an index may write it: upper case, parsed before it reaches the cache.
        let listed = hex::encode(sha2::Sha256::digest(b"wheel bytes")).to_uppercase();
        let digest = Digest::from_hex(Algorithm::Sha256, &listed).expect("a SHA-256");
        let path = cache.fetch(&client, &url, &digest, 11, "the test index", &|_| {}).await.expect("fetched");
        assert_eq!(path, root.path().join("cache").join(listed.to_lowercase()));
        assert_eq!(std::fs::read(&path).expect("cached file"), b"wheel bytes");
        let sha512 = Digest::of(Algorithm::Sha512, b"wheel bytes");
        let path = cache.fetch_with(client.get(&url), &url, &sha512, None, "npm", &|_| {}).await.expect("fetched");
        assert_eq!(path, root.path().join("cache").join(format!("sha512-{}", sha512.hex())));
        assert_eq!(
            files_below(root.path()),
            [format!("cache/{}", listed.to_lowercase()), format!("cache/sha512-{}", sha512.hex())]
        );
    }

    #[tokio::test]
    async fn a_mismatch_leaves_nothing_behind_and_says_who_listed_the_hash() {
        let root = tempfile::tempdir().expect("temp dir");
        let cache = DownloadCache::open(&root.path().join("cache"), 1 << 20).expect("cache");
        let client = reqwest::Client::new();
        let url = serve(b"planted").await;
        let claimed = Digest::sha256(b"honest");
        let err = cache
            .fetch_with(client.get(&url), &url, &claimed, None, "the package index test (not signed)", &|_| {})
            .await
            .expect_err("a mismatch");
        let text = err.to_string();
        assert!(
            text.contains(claimed.hex()) && text.contains(&hex::encode(sha2::Sha256::digest(b"planted"))),
            "{text}"
        );
        assert!(text.contains("as the package index test (not signed) says"), "{text}");
        assert!(!text.contains("signed index"), "{text}");
        let err =
            cache.fetch(&client, &url, &claimed, 7, "the signed Debian index", &|_| {}).await.expect_err("a mismatch");
        assert!(err.to_string().contains("and 7 bytes as the signed Debian index says"), "{err}");
        let small = DownloadCache::open(&root.path().join("small"), 3).expect("cache");
        let err =
            small.fetch_with(client.get(&url), &url, &claimed, None, "an index", &|_| {}).await.expect_err("too big");
        assert!(matches!(err, FetchError::TooBig { limit: 3, .. }), "{err}");
        assert_eq!(files_below(root.path()), Vec::<String>::new());
    }
}
