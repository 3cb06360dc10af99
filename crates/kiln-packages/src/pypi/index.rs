//! Python package indexes through the Simple Repository API: the JSON form (PEP 691) where
//! the index offers it, the HTML form (PEP 503) otherwise, with each file's hash, its
//! `Requires-Python` and whether its core metadata can be read without the wheel (PEP 658).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kiln_oci::{Algorithm, Digest, DigestError};
use serde::Deserialize;

use super::normalize_name;

/// One index to search, such as an organisation's private one or the machine's default.
#[derive(Debug, Clone)]
pub struct IndexSpec {
    /// How errors and locks name it.
    pub label: String,
    /// The Simple API root, ending in `/simple` or similar.
    pub url: String,
    pub basic_auth: Option<(String, String)>,
}

/// What an index says a file's SHA-256 is. Index pages are not signed and a hash on one can
/// be any text, so it is parsed as the page is read: only [`ListedHash::Sha256`] can verify a
/// download or name it in the cache; the others only say why the file is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListedHash {
    Sha256(Digest),
    /// The index lists no SHA-256 for the file.
    Missing,
    /// The index lists something that is not a SHA-256; the error names it.
    Malformed(DigestError),
}

impl ListedHash {
    fn parse(hex: Option<&str>) -> ListedHash {
        match hex {
            None => ListedHash::Missing,
            Some(hex) => {
                Digest::from_hex(Algorithm::Sha256, hex).map_or_else(ListedHash::Malformed, ListedHash::Sha256)
            }
        }
    }
}

/// A distribution file the index lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistFile {
    pub filename: String,
    pub url: String,
    pub hash: ListedHash,
    pub requires_python: Option<String>,
    /// The core metadata is served at `url + ".metadata"`; with its SHA-256 when listed.
    pub metadata: Option<Option<Digest>>,
    pub yanked: bool,
    /// Which of the searched indexes lists it.
    pub index: usize,
}

impl DistFile {
    /// The SHA-256 the file must have; a file without a usable one is refused by name.
    pub fn sha256(&self) -> Result<&Digest, IndexError> {
        let why = match &self.hash {
            ListedHash::Sha256(digest) => return Ok(digest),
            ListedHash::Missing => "the index lists no SHA-256 for it".to_string(),
            ListedHash::Malformed(e) => format!("the SHA-256 the index lists for it is unusable ({e})"),
        };
        Err(IndexError::Unverifiable { filename: self.filename.clone(), why })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("GET {url} failed: {why}")]
    Fetch { url: String, why: String },
    #[error("{url}: {why}")]
    Invalid { url: String, why: String },
    #[error("no project {name} in {searched}: check the name, or add a package source (ecosystem pypi) that has it")]
    Unknown { name: String, searched: String },
    #[error("{url} has SHA-256 {actual}, not {expected} as the index lists: the index served the wrong file")]
    Mismatch { url: String, expected: String, actual: String },
    #[error("{filename}: {why}, so it cannot be verified: pin another version, or use an index that lists hashes")]
    Unverifiable { filename: String, why: String },
}

pub struct Index {
    client: reqwest::Client,
    pub specs: Vec<IndexSpec>,
    projects: Mutex<HashMap<String, Arc<Vec<DistFile>>>>,
}

const ACCEPT: &str = "application/vnd.pypi.simple.v1+json, text/html;q=0.1";

impl Index {
    pub fn new(client: reqwest::Client, specs: Vec<IndexSpec>) -> Index {
        Index { client, specs, projects: Mutex::new(HashMap::new()) }
    }

    /// How errors name the index at `index`: by its label, and as not signed, so a hash from
    /// it is never mistaken for one a signature vouches for.
    pub fn describe(&self, index: usize) -> String {
        match self.specs.get(index) {
            Some(spec) => format!("the Python package index {} (not signed)", spec.label),
            None => "the Python package index (not signed)".to_string(),
        }
    }

    pub fn request(&self, index: usize, url: &str) -> reqwest::RequestBuilder {
        let mut request = self.client.get(url);
        if let Some((user, password)) = self.specs.get(index).and_then(|s| s.basic_auth.as_ref()) {
            request = request.basic_auth(user, Some(password));
        }
        request
    }

    async fn get(&self, index: usize, url: &str) -> Result<Option<(String, String)>, IndexError> {
        let fail = |why: String| IndexError::Fetch { url: url.to_string(), why };
        let response =
            self.request(index, url).header("accept", ACCEPT).send().await.map_err(|e| fail(e.to_string()))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(fail(format!("the index answered {}", response.status())));
        }
        let final_url = response.url().to_string();
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let body = response.text().await.map_err(|e| fail(e.to_string()))?;
        let is_json = content_type.contains("json") || body.trim_start().starts_with('{');
        Ok(Some((if is_json { "json".to_string() } else { final_url }, body)))
    }

    /// Every file of project `name`, from the first index that knows it (later indexes never
    /// shadow an earlier one, so a public name cannot replace a private package).
    pub async fn files(&self, name: &str) -> Result<Arc<Vec<DistFile>>, IndexError> {
        let name = normalize_name(name);
        if let Some(found) = self.projects.lock().ok().and_then(|p| p.get(&name).cloned()) {
            return Ok(found);
        }
        for (index, spec) in self.specs.iter().enumerate() {
            let url = format!("{}/{name}/", spec.url.trim_end_matches('/'));
            let Some((kind, body)) = self.get(index, &url).await? else { continue };
            let files = if kind == "json" { parse_json(&url, &body, index)? } else { parse_html(&kind, &body, index) };
            let files = Arc::new(files);
            if let Ok(mut projects) = self.projects.lock() {
                projects.insert(name.clone(), files.clone());
            }
            return Ok(files);
        }
        Err(IndexError::Unknown {
            name,
            searched: self.specs.iter().map(|s| s.label.clone()).collect::<Vec<_>>().join(", "),
        })
    }

    /// The core metadata of a wheel the index serves separately, verified when hashed.
    pub async fn metadata(&self, file: &DistFile) -> Result<Option<String>, IndexError> {
        let Some(hash) = &file.metadata else { return Ok(None) };
        let url = format!("{}.metadata", file.url);
        let fail = |why: String| IndexError::Fetch { url: url.clone(), why };
        let response = self.request(file.index, &url).send().await.map_err(|e| fail(e.to_string()))?;
        if !response.status().is_success() {
            return Ok(None);
        }
        let bytes = response.bytes().await.map_err(|e| fail(e.to_string()))?;
        if let Some(expected) = hash {
            let actual = Digest::sha256(&bytes);
            if actual != *expected {
                return Err(IndexError::Mismatch {
                    url,
                    expected: expected.hex().to_string(),
                    actual: actual.hex().to_string(),
                });
            }
        }
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }
}

#[derive(Deserialize)]
struct JsonProject {
    files: Vec<JsonFile>,
}

#[derive(Deserialize)]
struct JsonFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: HashMap<String, String>,
    #[serde(rename = "requires-python", default)]
    requires_python: Option<String>,
    #[serde(rename = "core-metadata", default)]
    core_metadata: Option<serde_json::Value>,
    #[serde(rename = "dist-info-metadata", default)]
    dist_info_metadata: Option<serde_json::Value>,
    #[serde(default)]
    yanked: Option<serde_json::Value>,
}

fn metadata_flag(value: Option<&serde_json::Value>) -> Option<Option<Digest>> {
    match value? {
        serde_json::Value::Bool(true) => Some(None),
        serde_json::Value::Object(map) => metadata_hash(map.get("sha256").and_then(|v| v.as_str())),
        _ => None,
    }
}

/// A metadata file whose listed hash is not a SHA-256 is treated as not offered: the core
/// metadata is then read from the (verified) wheel instead of trusted unverified.
fn metadata_hash(hex: Option<&str>) -> Option<Option<Digest>> {
    match hex {
        None => Some(None),
        Some(hex) => Digest::from_hex(Algorithm::Sha256, hex).ok().map(Some),
    }
}

fn join(base: &str, href: &str) -> String {
    url::Url::parse(base).and_then(|b| b.join(href)).map(|u| u.to_string()).unwrap_or_else(|_| href.to_string())
}

fn parse_json(url: &str, body: &str, index: usize) -> Result<Vec<DistFile>, IndexError> {
    let project: JsonProject =
        serde_json::from_str(body).map_err(|e| IndexError::Invalid { url: url.to_string(), why: e.to_string() })?;
    Ok(project
        .files
        .into_iter()
        .map(|f| {
            let metadata =
                metadata_flag(f.core_metadata.as_ref()).or_else(|| metadata_flag(f.dist_info_metadata.as_ref()));
            let yanked = match &f.yanked {
                Some(serde_json::Value::Bool(b)) => *b,
                Some(serde_json::Value::String(_)) => true,
                _ => false,
            };
            let (file_url, fragment_hash) = split_fragment(&join(url, &f.url));
            DistFile {
                filename: f.filename,
                hash: ListedHash::parse(f.hashes.get("sha256").map(String::as_str).or(fragment_hash.as_deref())),
                url: file_url,
                requires_python: f.requires_python.filter(|r| !r.is_empty()),
                metadata,
                yanked,
                index,
            }
        })
        .collect())
}

/// `url#sha256=…` → (url, hash as written).
fn split_fragment(url: &str) -> (String, Option<String>) {
    match url.split_once('#') {
        Some((base, fragment)) => (base.to_string(), fragment.strip_prefix("sha256=").map(str::to_string)),
        None => (url.to_string(), None),
    }
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

/// The anchors of a PEP 503 page; anything else on the page is ignored.
fn parse_html(base: &str, body: &str, index: usize) -> Vec<DistFile> {
    let mut files = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("<a ").or_else(|| rest.find("<A ")) {
        rest = &rest[start + 3..];
        let Some(close) = rest.find('>') else { break };
        let attributes = &rest[..close];
        let after = &rest[close + 1..];
        let Some(end) = after.find("</a>").or_else(|| after.find("</A>")) else { break };
        let text = unescape(after[..end].trim());
        rest = &after[end..];
        let attrs = parse_attributes(attributes);
        let Some(href) = attrs.get("href") else { continue };
        let (url, sha256) = split_fragment(&join(base, href));
        let metadata = attrs
            .get("data-core-metadata")
            .or_else(|| attrs.get("data-dist-info-metadata"))
            .filter(|v| v.as_str() != "false")
            .and_then(|v| metadata_hash(v.strip_prefix("sha256=")));
        files.push(DistFile {
            filename: text,
            url,
            hash: ListedHash::parse(sha256.as_deref()),
            requires_python: attrs.get("data-requires-python").filter(|v| !v.is_empty()).cloned(),
            metadata,
            yanked: attrs.contains_key("data-yanked"),
            index,
        });
    }
    files
}

fn parse_attributes(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let name_end = rest.find(|c: char| c == '=' || c.is_whitespace()).unwrap_or(rest.len());
        let name = rest[..name_end].to_ascii_lowercase();
        rest = rest[name_end..].trim_start();
        if let Some(value_part) = rest.strip_prefix('=') {
            let value_part = value_part.trim_start();
            let (value, remaining) = match value_part.chars().next() {
                Some(quote @ ('"' | '\'')) => {
                    let inner = &value_part[1..];
                    let end = inner.find(quote).unwrap_or(inner.len());
                    (&inner[..end], inner.get(end + 1..).unwrap_or(""))
                }
                _ => {
                    let end = value_part.find(char::is_whitespace).unwrap_or(value_part.len());
                    (&value_part[..end], &value_part[end..])
                }
            };
            out.insert(name, unescape(value));
            rest = remaining.trim_start();
        } else {
            if !name.is_empty() {
                out.insert(name, String::new());
            }
            if name_end == 0 {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn html_hash(fragment: &str) -> ListedHash {
        let page =
            format!("<a href=\"../../files/demo-1.0-py3-none-any.whl#{fragment}\">demo-1.0-py3-none-any.whl</a>");
        let files = parse_html("http://127.0.0.1:1/simple/demo/", &page, 0);
        assert_eq!(files.len(), 1, "{page}");
        assert_eq!(files[0].url, "http://127.0.0.1:1/files/demo-1.0-py3-none-any.whl");
        files[0].hash.clone()
    }

    fn refusal(hash: ListedHash) -> String {
        let file = DistFile {
            filename: "demo-1.0-py3-none-any.whl".into(),
            url: String::new(),
            hash,
            requires_python: None,
            metadata: None,
            yanked: false,
            index: 0,
        };
        file.sha256().expect_err("refused").to_string()
    }

    #[test]
    fn fragment_hashes_are_digests_or_refused_by_name() {
        assert_eq!(html_hash(&format!("sha256={HEX}")), ListedHash::Sha256(Digest::sha256(b"")));
        assert_eq!(html_hash(&format!("sha256={}", HEX.to_uppercase())), ListedHash::Sha256(Digest::sha256(b"")));
        assert_eq!(html_hash("md5=d41d8cd98f00b204e9800998ecf8427e"), ListedHash::Missing);
        let right_length_path = format!("/../../tmp/{}", &HEX[11..]);
        let planted = "/../../tmp/planted.whl";
        for bad in [planted, "../x", right_length_path.as_str(), &HEX[1..], &HEX.replace('e', "z"), ""] {
            let hash = html_hash(&format!("sha256={bad}"));
            assert!(matches!(hash, ListedHash::Malformed(_)), "{bad:?}: {hash:?}");
            let why = refusal(hash);
            assert!(why.starts_with("demo-1.0-py3-none-any.whl: the SHA-256 the index lists"), "{why}");
            assert!(why.contains(&format!("{bad:?}")), "the bad value is named: {why}");
        }
        let why = refusal(ListedHash::Missing);
        assert!(why.contains("the index lists no SHA-256 for it, so it cannot be verified"), "{why}");
    }

    #[test]
    fn json_hashes_are_parsed_and_a_bad_metadata_hash_drops_the_metadata() {
        let body = serde_json::json!({"files": [
            {"filename": "a-1.0-py3-none-any.whl", "url": "a.whl", "hashes": {"sha256": HEX.to_uppercase()},
             "core-metadata": {"sha256": "../../etc/passwd"}},
            {"filename": "b-1.0-py3-none-any.whl", "url": format!("b.whl#sha256={HEX}"), "hashes": {},
             "core-metadata": {"sha256": HEX}},
            {"filename": "c-1.0-py3-none-any.whl", "url": "c.whl#sha256=/../../tmp/planted.whl", "hashes": {},
             "core-metadata": true},
        ]})
        .to_string();
        let files = parse_json("http://127.0.0.1:1/simple/a/", &body, 0).expect("parsed");
        assert_eq!(files[0].hash, ListedHash::Sha256(Digest::sha256(b"")));
        assert_eq!(files[0].metadata, None, "metadata behind a bad hash is read from the wheel instead");
        assert_eq!(files[1].hash, ListedHash::Sha256(Digest::sha256(b"")));
        assert_eq!(files[1].url, "http://127.0.0.1:1/simple/a/b.whl");
        assert_eq!(files[1].metadata, Some(Some(Digest::sha256(b""))));
        assert!(matches!(&files[2].hash, ListedHash::Malformed(_)), "{:?}", files[2].hash);
        assert!(files[2].sha256().is_err());
        assert_eq!(files[2].metadata, Some(None));
    }
}
