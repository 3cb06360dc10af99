//! A client for other registries (CNCF distribution, Harbor, private ones): anonymous,
//! Basic and bearer-token (Docker token flow) authentication, TLS through the platform's
//! trust store plus an optional CA, and an explicit insecure mode (plain HTTP, no
//! verification) for loopback tests. Errors say which of not-found, unauthorized or
//! network went wrong, since that is what a user must fix.

use std::time::Duration;

use kiln_oci::media_types::{DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_V2, OCI_IMAGE_INDEX, OCI_IMAGE_MANIFEST};
use kiln_oci::{Digest, ManifestInfo, ManifestKind, Platform};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};

/// How to reach one registry host.
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    pub username: Option<String>,
    pub password: Option<String>,
    /// Extra CA certificate (PEM) to trust besides the platform's store.
    pub ca_certificate: Option<String>,
    /// Plain HTTP and no certificate checks; for loopback tests only.
    pub insecure: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("network: {0}")]
    Network(String),
    #[error("registry answered unexpectedly: {0}")]
    Protocol(String),
    #[error("no manifest for platform {0} in the index")]
    NoPlatform(String),
    #[error("invalid client setting: {0}")]
    Setting(String),
}

/// What a reference resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Digest of the image manifest for the platform.
    pub digest: Digest,
    /// Digest of the index it was chosen from, if the reference named an index.
    pub index_digest: Option<Digest>,
    pub media_type: String,
    pub os: Option<String>,
    pub architecture: Option<String>,
    pub variant: Option<String>,
    pub config_digest: Option<Digest>,
    /// The image configuration document.
    pub config: Option<serde_json::Value>,
    /// Total size of the layers.
    pub layers_size: u64,
}

const ACCEPTED: [&str; 4] = [OCI_IMAGE_INDEX, OCI_IMAGE_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_V2];
/// Largest config document read.
const MAX_CONFIG: usize = 4 << 20;

pub struct Client {
    http: reqwest::Client,
    base: String,
    options: HostOptions,
    /// The `Authorization` value that answered the last challenge, reused for the session.
    authorization: tokio::sync::Mutex<Option<String>>,
}

fn network(e: reqwest::Error) -> ClientError {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(inner) = source {
        message = format!("{message}: {inner}");
        source = inner.source();
    }
    ClientError::Network(message)
}

impl Client {
    pub fn new(host: &str, options: HostOptions) -> Result<Client, ClientError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // A stalled read fails; a large layer that keeps arriving does not.
            .read_timeout(Duration::from_secs(60))
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &options.ca_certificate {
            let certificate = reqwest::Certificate::from_pem(pem.as_bytes())
                .map_err(|e| ClientError::Setting(format!("caCertificate is not a PEM certificate: {e}")))?;
            builder = builder.add_root_certificate(certificate);
        }
        if options.insecure {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let http = builder.build().map_err(|e| ClientError::Setting(e.to_string()))?;
        let scheme = if options.insecure { "http" } else { "https" };
        Ok(Client { http, base: format!("{scheme}://{host}"), options, authorization: tokio::sync::Mutex::new(None) })
    }

    /// Sends a request, answering a `401` challenge once with Basic or a bearer token; the
    /// answer is remembered for the requests that follow.
    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        headers: &[(reqwest::header::HeaderName, String)],
        body: Option<&[u8]>,
    ) -> Result<reqwest::Response, ClientError> {
        let build = |authorization: Option<String>| {
            let mut request = self.http.request(method.clone(), url);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            if let Some(body) = body {
                request = request.body(body.to_vec());
            }
            if let Some(value) = authorization {
                request = request.header(AUTHORIZATION, value);
            }
            request
        };
        let remembered = self.authorization.lock().await.clone();
        let response = build(remembered).send().await.map_err(network)?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let challenge = response.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let authorization = self.answer(challenge).await?;
        *self.authorization.lock().await = Some(authorization.clone());
        let response = build(Some(authorization)).send().await.map_err(network)?;
        if response.status() == StatusCode::UNAUTHORIZED {
            let who = self.options.username.as_deref().unwrap_or("anonymous");
            return Err(ClientError::Unauthorized(format!("{url} refused the credentials of {who}")));
        }
        Ok(response)
    }

    async fn get(&self, url: &str, accept: &[&str], head: bool) -> Result<reqwest::Response, ClientError> {
        let method = if head { reqwest::Method::HEAD } else { reqwest::Method::GET };
        let headers = if accept.is_empty() { Vec::new() } else { vec![(ACCEPT, accept.join(", "))] };
        self.send(method, url, &headers, None).await
    }

    fn basic(&self) -> Option<String> {
        use base64::Engine;
        let user = self.options.username.as_deref()?;
        let password = self.options.password.as_deref().unwrap_or_default();
        Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))))
    }

    /// The `Authorization` value that answers a challenge.
    async fn answer(&self, challenge: &str) -> Result<String, ClientError> {
        let (scheme, parameters) = challenge.split_once(' ').unwrap_or((challenge, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return self.basic().ok_or_else(|| {
                ClientError::Unauthorized("the registry wants credentials: store them for its host".into())
            });
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ClientError::Protocol(format!("unsupported authentication challenge {challenge:?}")));
        }
        let parameters = challenge_parameters(parameters);
        let realm = parameters
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| ClientError::Protocol("a bearer challenge without a realm".into()))?;
        let query: Vec<(&str, &str)> = parameters
            .iter()
            .filter(|(k, _)| k == "service" || k == "scope")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut request = self.http.get(&realm).query(&query);
        if let Some(basic) = self.basic() {
            request = request.header(AUTHORIZATION, basic);
        }
        let response = request.send().await.map_err(network)?;
        match response.status() {
            status if status.is_success() => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                let who = self.options.username.as_deref().unwrap_or("anonymous");
                return Err(ClientError::Unauthorized(format!("the token service {realm} refused {who}")));
            }
            status => return Err(ClientError::Protocol(format!("the token service {realm} answered {status}"))),
        }
        let body: serde_json::Value = response.json().await.map_err(network)?;
        let token = body
            .get("token")
            .or_else(|| body.get("access_token"))
            .and_then(|t| t.as_str())
            .ok_or_else(|| ClientError::Protocol(format!("the token service {realm} returned no token")))?
            .to_string();
        Ok(format!("Bearer {token}"))
    }

    async fn manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<(Digest, ManifestInfo, Vec<u8>), ClientError> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        let response = self.get(&url, &ACCEPTED, false).await?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => {
                return Err(ClientError::NotFound(format!("{repository}:{reference} does not exist in the registry")));
            }
            StatusCode::FORBIDDEN => {
                return Err(ClientError::Unauthorized(format!("access to {repository} is denied")));
            }
            status => return Err(ClientError::Protocol(format!("GET {url} answered {status}"))),
        }
        let content_type = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = response.bytes().await.map_err(network)?.to_vec();
        kiln_oci::check_size(body.len() as u64).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let info = ManifestInfo::parse(&body, content_type.as_deref())
            .map_err(|e| ClientError::Protocol(format!("the manifest of {repository}:{reference} is invalid: {e}")))?;
        let digest = match reference.parse::<Digest>() {
            Ok(wanted) => {
                wanted
                    .verify(&body)
                    .map_err(|e| ClientError::Protocol(format!("the manifest does not match {wanted}: {e}")))?;
                wanted
            }
            Err(_) => Digest::sha256(&body),
        };
        Ok((digest, info, body))
    }

    /// Resolves `repository` at `reference` (tag or digest) to the image for `platform`,
    /// with its configuration.
    pub async fn resolve(
        &self,
        repository: &str,
        reference: &str,
        platform: &Platform,
    ) -> Result<Resolved, ClientError> {
        let (digest, info, _) = self.manifest(repository, reference).await?;
        let (index_digest, digest, info) = if info.kind == ManifestKind::Index {
            let chosen = info.select_platform(platform).ok_or_else(|| ClientError::NoPlatform(platform.to_string()))?;
            let child = chosen.digest.to_string();
            let (child_digest, child_info, _) = self.manifest(repository, &child).await?;
            (Some(digest), child_digest, child_info)
        } else {
            (None, digest, info)
        };
        let layers_size = info.layers.iter().map(|l| l.size).sum();
        let config = match &info.config {
            Some(descriptor) => Some(self.config(repository, &descriptor.digest).await?),
            None => None,
        };
        let field = |name: &str| config.as_ref().and_then(|c| c.get(name)).and_then(|v| v.as_str()).map(str::to_string);
        Ok(Resolved {
            digest,
            index_digest,
            media_type: info.media_type.to_string(),
            os: field("os"),
            architecture: field("architecture"),
            variant: field("variant"),
            config_digest: info.config.as_ref().map(|c| c.digest.clone()),
            config,
            layers_size,
        })
    }

    /// The manifest `digest` of `repository`, verified, with its media type.
    pub async fn fetch_manifest(&self, repository: &str, digest: &Digest) -> Result<(Vec<u8>, String), ClientError> {
        let (_, info, body) = self.manifest(repository, digest.as_str()).await?;
        Ok((body, info.media_type.to_string()))
    }

    /// Streams the blob `digest` of `repository` into `dest` (never whole in memory), checking
    /// its digest on the way and stopping at `size` bytes, the size its manifest gives.
    pub async fn fetch_blob(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        dest: &std::path::Path,
    ) -> Result<u64, ClientError> {
        use tokio::io::AsyncWriteExt;
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        let mut response = self.get(&url, &[], false).await?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Err(ClientError::NotFound(format!("blob {digest} of {repository}"))),
            status => return Err(ClientError::Protocol(format!("GET {url} answered {status}"))),
        }
        let local = |e: std::io::Error| ClientError::Setting(format!("writing {}: {e}", dest.display()));
        let mut file = tokio::fs::File::create(dest).await.map_err(local)?;
        let mut hasher = kiln_oci::digest::Hasher::new(digest.algorithm());
        let mut received = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(network)? {
            received += chunk.len() as u64;
            if received > size {
                return Err(ClientError::Protocol(format!(
                    "blob {digest} of {repository} is longer than the {size} bytes its manifest gives"
                )));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(local)?;
        }
        file.flush().await.map_err(local)?;
        let actual = hasher.finish();
        if actual != *digest {
            return Err(ClientError::Protocol(format!(
                "blob {digest} of {repository} arrived as {actual}: the registry served other bytes"
            )));
        }
        if received != size {
            return Err(ClientError::Protocol(format!(
                "blob {digest} of {repository} is {received} bytes, not the {size} its manifest gives"
            )));
        }
        Ok(received)
    }

    /// Whether the registry holds the blob in the repository.
    pub async fn has_blob(&self, repository: &str, digest: &Digest) -> Result<bool, ClientError> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        let response = self.get(&url, &[], true).await?;
        match response.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            status => Err(ClientError::Protocol(format!("HEAD {url} answered {status}"))),
        }
    }

    /// Uploads a blob: a POST opens the session (and settles authentication), a PUT
    /// streams the bytes.
    pub async fn push_blob(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        body: reqwest::Body,
    ) -> Result<(), ClientError> {
        let url = format!("{}/v2/{repository}/blobs/uploads/", self.base);
        let started = self.send(reqwest::Method::POST, &url, &[], Some(&[])).await?;
        if started.status() != StatusCode::ACCEPTED {
            return Err(refused("POST", &url, started).await);
        }
        let location = started
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ClientError::Protocol(format!("POST {url} gave no upload location")))?;
        let mut target = if location.starts_with("http://") || location.starts_with("https://") {
            reqwest::Url::parse(location)
        } else {
            reqwest::Url::parse(&self.base).and_then(|base| base.join(location))
        }
        .map_err(|e| ClientError::Protocol(format!("upload location {location:?}: {e}")))?;
        target.query_pairs_mut().append_pair("digest", digest.as_str());
        let mut request = self
            .http
            .put(target.clone())
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, size)
            .body(body);
        if let Some(authorization) = self.authorization.lock().await.clone() {
            request = request.header(AUTHORIZATION, authorization);
        }
        let finished = request.send().await.map_err(network)?;
        if finished.status() != StatusCode::CREATED {
            return Err(refused("PUT", target.as_str(), finished).await);
        }
        Ok(())
    }

    /// Stores a manifest under `reference` (a tag or its digest); returns its digest.
    pub async fn push_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, ClientError> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        let response =
            self.send(reqwest::Method::PUT, &url, &[(CONTENT_TYPE, media_type.to_string())], Some(bytes)).await?;
        if response.status() != StatusCode::CREATED {
            return Err(refused("PUT", &url, response).await);
        }
        Ok(Digest::sha256(bytes))
    }

    async fn config(&self, repository: &str, digest: &Digest) -> Result<serde_json::Value, ClientError> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        let response = self.get(&url, &[], false).await?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => {
                return Err(ClientError::NotFound(format!("config blob {digest} of {repository}")));
            }
            status => return Err(ClientError::Protocol(format!("GET {url} answered {status}"))),
        }
        let body = response.bytes().await.map_err(network)?;
        if body.len() > MAX_CONFIG {
            return Err(ClientError::Protocol(format!("config blob {digest} is larger than {MAX_CONFIG} bytes")));
        }
        digest.verify(&body).map_err(|e| ClientError::Protocol(format!("config blob {digest}: {e}")))?;
        serde_json::from_slice(&body)
            .map_err(|e| ClientError::Protocol(format!("config blob {digest} is not JSON: {e}")))
    }
}

/// The error for an answer that is not what the protocol promises, with the registry's words.
async fn refused(method: &str, url: &str, response: reqwest::Response) -> ClientError {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let body: String = body.chars().take(300).collect();
    match status {
        StatusCode::FORBIDDEN => ClientError::Unauthorized(format!("{method} {url} is denied: {body}")),
        StatusCode::NOT_FOUND => ClientError::NotFound(format!("{method} {url}: {body}")),
        _ => ClientError::Protocol(format!("{method} {url} answered {status}: {body}")),
    }
}

/// `key="value", key=value` pairs of a challenge.
fn challenge_parameters(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else { break };
        let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remainder) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        out.push((key, value.to_string()));
        rest = remainder.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::challenge_parameters;

    #[test]
    fn challenges_are_split_into_parameters() {
        let parsed = challenge_parameters(
            r#"realm="https://auth.example/token",service="registry",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            parsed,
            vec![
                ("realm".to_string(), "https://auth.example/token".to_string()),
                ("service".to_string(), "registry".to_string()),
                ("scope".to_string(), "repository:a/b:pull,push".to_string()),
            ]
        );
        assert_eq!(
            challenge_parameters("realm=plain, service=x"),
            vec![("realm".into(), "plain".into()), ("service".into(), "x".into())]
        );
    }
}
