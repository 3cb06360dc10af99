//! Where packuments and tarballs come from. Resolution only sees the `NpmSource` trait, so
//! tests feed it in-memory packuments; `HttpRegistry` is the real thing, speaking the npm
//! registry protocol with abbreviated metadata and remembering each packument it fetched.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;
use nodejs_semver::Version;
use serde_json::Value;
use url::Url;

use super::error::NpmError;
use super::manifest::{Manifest, Spec, valid_name};

/// Everything the registry says about one package name.
#[derive(Debug, Clone, Default)]
pub struct Packument {
    pub name: String,
    pub dist_tags: BTreeMap<String, String>,
    /// Oldest first; versions that are not valid semver are left out, as npm ignores them.
    pub versions: Vec<(Version, Arc<Manifest>)>,
}

impl Packument {
    /// Reads a packument; relative `dist.tarball` URLs are made absolute against `base`.
    pub fn from_json(name: &str, bytes: &[u8], base: Option<&Url>) -> Result<Packument, String> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        let Some(Value::Object(versions)) = value.get("versions") else {
            return Err("it has no versions object".into());
        };
        let mut list = Vec::new();
        for (key, entry) in versions {
            let Ok(version) = Version::parse(key) else { continue };
            let mut manifest = Manifest::from_value(entry);
            manifest.name = name.to_string();
            manifest.version = key.clone();
            if let Some(base) = base
                && !manifest.dist.tarball.is_empty()
            {
                manifest.dist.tarball = base
                    .join(&manifest.dist.tarball)
                    .map_err(|e| format!("version {key} has dist.tarball {:?}: {e}", manifest.dist.tarball))?
                    .to_string();
            }
            list.push((version, Arc::new(manifest)));
        }
        list.sort_by(|a, b| a.0.cmp(&b.0));
        let dist_tags = match value.get("dist-tags") {
            Some(Value::Object(tags)) => {
                tags.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect()
            }
            _ => BTreeMap::new(),
        };
        Ok(Packument { name: name.to_string(), dist_tags, versions: list })
    }

    pub fn get(&self, version: &str) -> Option<&Arc<Manifest>> {
        self.versions.iter().find(|(_, m)| m.version == version).map(|(_, m)| m)
    }

    /// npm's choice: the `latest` tag when it fits the range, else the highest fitting version.
    pub fn pick(&self, spec: &Spec) -> Option<&Arc<Manifest>> {
        match spec {
            Spec::Tag(tag) => self.dist_tags.get(tag).and_then(|v| self.get(v)),
            Spec::Range(range) => {
                let latest = self.dist_tags.get("latest").and_then(|v| self.get(v));
                if let Some(latest) = latest
                    && Version::parse(&latest.version).is_ok_and(|v| range.satisfies(&v))
                {
                    return Some(latest);
                }
                self.versions.iter().rev().find(|(v, _)| range.satisfies(v)).map(|(_, m)| m)
            }
        }
    }

    /// The newest few versions, for error messages that help pick a range.
    pub fn newest(&self, count: usize) -> String {
        let shown: Vec<String> = self.versions.iter().rev().take(count).map(|(v, _)| v.to_string()).collect();
        if shown.is_empty() { "none".into() } else { shown.join(", ") }
    }
}

/// A source of packuments and tarballs; implementations report failures as `NpmError`.
pub trait NpmSource: Sync {
    fn packument(&self, name: &str) -> impl Future<Output = Result<Arc<Packument>, NpmError>> + Send;
    /// The bytes at `url`, refusing more than `max_bytes`.
    fn tarball(&self, url: &str, max_bytes: u64) -> impl Future<Output = Result<Bytes, NpmError>> + Send;
}

#[derive(Debug, Clone, Default)]
pub enum RegistryAuth {
    #[default]
    None,
    Bearer(String),
    Basic {
        username: String,
        password: String,
    },
}

/// An npm registry over HTTP. Packuments are remembered for the life of the value, so use
/// one per installation: a later build should see newly published versions.
pub struct HttpRegistry {
    client: reqwest::Client,
    base: Url,
    auth: RegistryAuth,
    packuments: Mutex<HashMap<String, Arc<Packument>>>,
}

const ACCEPT: &str = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8";

impl HttpRegistry {
    pub fn new(client: reqwest::Client, base_url: &str, auth: RegistryAuth) -> Result<HttpRegistry, NpmError> {
        // Without the trailing slash `join` would replace the registry's last path segment.
        let with_slash = if base_url.ends_with('/') { base_url.to_string() } else { format!("{base_url}/") };
        let base = Url::parse(&with_slash)
            .map_err(|e| NpmError::RegistryUrl { url: base_url.to_string(), why: e.to_string() })?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(NpmError::RegistryUrl { url: base_url.to_string(), why: "use an http or https URL".into() });
        }
        Ok(HttpRegistry { client, base, auth, packuments: Mutex::new(HashMap::new()) })
    }

    /// `GET {registry}/@scope%2fname`, the form every registry accepts.
    pub fn packument_url(&self, name: &str) -> Result<Url, NpmError> {
        self.base
            .join(&name.replacen('/', "%2f", 1))
            .map_err(|e| NpmError::RegistryUrl { url: self.base.to_string(), why: e.to_string() })
    }

    fn request(&self, url: &Url) -> reqwest::RequestBuilder {
        let mut request = self.client.get(url.clone());
        // Credentials go to the registry's own origin only, never to a tarball host elsewhere.
        if url.origin() == self.base.origin() {
            request = match &self.auth {
                RegistryAuth::None => request,
                RegistryAuth::Bearer(token) => request.bearer_auth(token),
                RegistryAuth::Basic { username, password } => request.basic_auth(username, Some(password)),
            };
        }
        request
    }

    async fn fetch_packument(&self, name: &str) -> Result<Arc<Packument>, NpmError> {
        if let Ok(memo) = self.packuments.lock()
            && let Some(found) = memo.get(name)
        {
            return Ok(found.clone());
        }
        if !valid_name(name) {
            return Err(NpmError::Manifest {
                file: "package.json".into(),
                why: format!("{name:?} is not a valid npm package name; fix the dependency name"),
            });
        }
        let url = self.packument_url(name)?;
        let fail = |why: String| NpmError::Registry { url: url.to_string(), why };
        let response = self.request(&url).header("accept", ACCEPT).send().await.map_err(|e| fail(e.to_string()))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(NpmError::NotFound { name: name.to_string(), url: url.to_string() });
        }
        if !response.status().is_success() {
            return Err(fail(format!("the registry answered {}", response.status())));
        }
        let body = response.bytes().await.map_err(|e| fail(e.to_string()))?;
        let packument = Packument::from_json(name, &body, Some(&self.base)).map_err(|why| NpmError::Packument {
            name: name.to_string(),
            url: url.to_string(),
            why,
        })?;
        let packument = Arc::new(packument);
        if let Ok(mut memo) = self.packuments.lock() {
            memo.insert(name.to_string(), packument.clone());
        }
        Ok(packument)
    }

    async fn fetch_tarball(&self, raw: &str, max_bytes: u64) -> Result<Bytes, NpmError> {
        let url = self.base.join(raw).map_err(|e| NpmError::Registry { url: raw.to_string(), why: e.to_string() })?;
        let fail = |why: String| NpmError::Registry { url: url.to_string(), why };
        let response = self.request(&url).send().await.map_err(|e| fail(e.to_string()))?;
        if !response.status().is_success() {
            return Err(fail(format!("the server answered {}", response.status())));
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| fail(e.to_string()))?;
            if (body.len() + chunk.len()) as u64 > max_bytes {
                return Err(fail(format!("the tarball is larger than the {max_bytes}-byte limit")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    }
}

impl NpmSource for HttpRegistry {
    fn packument(&self, name: &str) -> impl Future<Output = Result<Arc<Packument>, NpmError>> + Send {
        self.fetch_packument(name)
    }

    fn tarball(&self, url: &str, max_bytes: u64) -> impl Future<Output = Result<Bytes, NpmError>> + Send {
        self.fetch_tarball(url, max_bytes)
    }
}
