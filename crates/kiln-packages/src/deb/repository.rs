//! Opening a Debian repository: fetch `InRelease`, verify it, fetch each component's
//! `Packages` index by the checksum it lists, and keep verified indexes on disk so a later
//! build only fetches the small `InRelease` again.

use std::io::Read;
use std::path::Path;

use chrono::{DateTime, Utc};
use kiln_oci::Digest;

use super::index::{PackageRecord, parse_packages};
use super::release::{Distribution, Keyring, verify_inrelease};

pub struct RepoSpec {
    /// How errors and locks name the source.
    pub label: String,
    pub base_url: String,
    pub suite: String,
    pub components: Vec<String>,
    pub architecture: String,
    pub keyring: Keyring,
    pub basic_auth: Option<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    #[error("GET {url} failed: {why}")]
    Fetch { url: String, why: String },
    #[error("{url}: {why}")]
    Release { url: String, why: String },
    #[error(
        "{url} has SHA-256 {actual}, not {expected} as InRelease says: the mirror is inconsistent or tampered with"
    )]
    Mismatch { url: String, expected: String, actual: String },
    #[error("InRelease of {suite} lists no index for {component}/binary-{architecture}")]
    NoIndex { suite: String, component: String, architecture: String },
    #[error("index {url}: {why}")]
    Index { url: String, why: String },
}

/// Where a package's file is.
pub fn pool_url(base_url: &str, record: &PackageRecord) -> String {
    format!("{}/{}", base_url.trim_end_matches('/'), record.filename)
}

async fn get(client: &reqwest::Client, spec: &RepoSpec, url: &str) -> Result<Vec<u8>, RepositoryError> {
    let fail = |why: String| RepositoryError::Fetch { url: url.to_string(), why };
    let mut request = client.get(url);
    if let Some((user, password)) = &spec.basic_auth {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().await.map_err(|e| fail(e.to_string()))?;
    if !response.status().is_success() {
        return Err(fail(format!("the server answered {}", response.status())));
    }
    Ok(response.bytes().await.map_err(|e| fail(e.to_string()))?.to_vec())
}

/// An opened repository: what it offers and which distribution it is.
pub struct Opened {
    pub records: Vec<PackageRecord>,
    pub distribution: Distribution,
}

/// Every package the repository offers for the spec's architecture (and `all`).
pub async fn open_repository(
    client: &reqwest::Client,
    spec: &RepoSpec,
    index_dir: &Path,
    now: DateTime<Utc>,
) -> Result<Opened, RepositoryError> {
    let dists = format!("{}/dists/{}", spec.base_url.trim_end_matches('/'), spec.suite);
    let release_url = format!("{dists}/InRelease");
    let release_bytes = get(client, spec, &release_url).await?;
    let release = verify_inrelease(&release_bytes, &spec.keyring, now)
        .map_err(|e| RepositoryError::Release { url: release_url.clone(), why: e.to_string() })?;
    let mut records = Vec::new();
    let mut writes = Vec::new();
    for component in &spec.components {
        let stem = format!("{component}/binary-{}/Packages", spec.architecture);
        // The uncompressed index's checksum names the cached copy whatever was downloaded:
        // its parsed digest, never the release's text, so the name cannot leave `index_dir`.
        let plain = release.files.get(&stem);
        let cached = plain.map(|sum| index_dir.join(sum.sha256.hex()));
        let text = match cached.as_ref().map(std::fs::read_to_string) {
            Some(Ok(text)) => text,
            _ => {
                // Mirrors need not carry every compression InRelease lists (partial mirrors
                // and apt's own list cache keep one), so a missing file tries the next.
                let candidates: Vec<_> = [".xz", ".gz", ""]
                    .iter()
                    .filter_map(|ext| {
                        release.files.get(&format!("{stem}{ext}")).map(|sum| (format!("{stem}{ext}"), sum))
                    })
                    .collect();
                let mut fetched = None;
                let mut last_error = RepositoryError::NoIndex {
                    suite: spec.suite.clone(),
                    component: component.clone(),
                    architecture: spec.architecture.clone(),
                };
                for (name, sum) in candidates {
                    let url = format!("{dists}/{name}");
                    match get(client, spec, &url).await {
                        Ok(bytes) => {
                            fetched = Some((name, sum, url, bytes));
                            break;
                        }
                        Err(e) => last_error = e,
                    }
                }
                let Some((name, sum, url, bytes)) = fetched else {
                    return Err(last_error);
                };
                let actual = Digest::sha256(&bytes);
                if actual != sum.sha256 || bytes.len() as u64 != sum.size {
                    return Err(mismatch(url, &sum.sha256, &actual));
                }
                let text = decompress(&name, bytes).map_err(|why| RepositoryError::Index { url: url.clone(), why })?;
                // The plain index was checked as it arrived; a decompressed one is checked now.
                if let Some(sum) = plain.filter(|_| name != stem) {
                    let actual = Digest::sha256(text.as_bytes());
                    if actual != sum.sha256 {
                        return Err(mismatch(url, &sum.sha256, &actual));
                    }
                }
                if let Some(path) = cached.clone() {
                    // Written while the index is parsed; a cache that cannot be written only
                    // costs a download next time.
                    let (text, index_dir) = (text.clone(), index_dir.to_path_buf());
                    writes.push(std::thread::spawn(move || {
                        let temp = path.with_extension("partial");
                        if std::fs::create_dir_all(&index_dir)
                            .and_then(|()| std::fs::write(&temp, text.as_bytes()))
                            .and_then(|()| std::fs::rename(&temp, &path))
                            .is_err()
                        {
                            let _ = std::fs::remove_file(&temp);
                        }
                    }));
                }
                text
            }
        };
        let parsed = parse_packages(&text)
            .map_err(|e| RepositoryError::Index { url: format!("{dists}/{stem}"), why: e.to_string() })?;
        records.extend(parsed.into_iter().filter(|r| r.architecture == spec.architecture || r.architecture == "all"));
    }
    for write in writes {
        let _ = write.join();
    }
    Ok(Opened { records, distribution: Distribution::of(&release) })
}

fn mismatch(url: String, expected: &Digest, actual: &Digest) -> RepositoryError {
    RepositoryError::Mismatch { url, expected: expected.hex().to_string(), actual: actual.hex().to_string() }
}

fn decompress(name: &str, bytes: Vec<u8>) -> Result<String, String> {
    let mut text = String::new();
    let result = if name.ends_with(".xz") {
        liblzma::read::XzDecoder::new(bytes.as_slice()).read_to_string(&mut text)
    } else if name.ends_with(".gz") {
        flate2::read::GzDecoder::new(bytes.as_slice()).read_to_string(&mut text)
    } else {
        return String::from_utf8(bytes).map_err(|e| e.to_string());
    };
    result.map_err(|e| e.to_string())?;
    Ok(text)
}
