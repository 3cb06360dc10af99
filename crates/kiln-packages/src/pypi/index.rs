//! Python package indexes through the Simple Repository API: the JSON form (PEP 691) where
//! the index offers it, the HTML form (PEP 503) otherwise, with each file's hash, its
//! `Requires-Python` and whether its core metadata can be read without the wheel (PEP 658).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use sha2::{Digest, Sha256};

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

/// A distribution file the index lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistFile {
    pub filename: String,
    pub url: String,
    pub sha256: Option<String>,
    pub requires_python: Option<String>,
    /// The core metadata is served at `url + ".metadata"`; with its SHA-256 when listed.
    pub metadata: Option<Option<String>>,
    pub yanked: bool,
    /// Which of the searched indexes lists it.
    pub index: usize,
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
            let actual = hex::encode(Sha256::digest(&bytes));
            if &actual != expected {
                return Err(IndexError::Mismatch { url, expected: expected.clone(), actual });
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

fn metadata_flag(value: Option<&serde_json::Value>) -> Option<Option<String>> {
    match value? {
        serde_json::Value::Bool(true) => Some(None),
        serde_json::Value::Object(map) => Some(map.get("sha256").and_then(|v| v.as_str()).map(str::to_string)),
        _ => None,
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
                url: file_url,
                sha256: f.hashes.get("sha256").cloned().or(fragment_hash),
                requires_python: f.requires_python.filter(|r| !r.is_empty()),
                metadata,
                yanked,
                index,
            }
        })
        .collect())
}

/// `url#sha256=…` → (url, hash).
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
            .map(|v| v.strip_prefix("sha256=").map(str::to_string));
        files.push(DistFile {
            filename: text,
            url,
            sha256,
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
