//! A small client for Kiln's REST API that turns the server's `{code, message, details}`
//! errors into messages a user can act on.

use anyhow::{Context, Result, anyhow};
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    org: Option<String>,
}

impl Client {
    pub fn new(server: &str, token: Option<String>, org: Option<String>) -> Result<Client> {
        let base = server.trim_end_matches('/').to_string();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            return Err(anyhow!("server {server:?} is not an http:// or https:// URL: set --server or KILN_URL"));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Client { http, base, token, org })
    }

    /// Sends a request; `Ok` holds the JSON of a 2xx answer.
    pub async fn send(&self, method: Method, path: &str, body: Option<Body>) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method.clone(), &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(org) = &self.org {
            request = request.header("x-kiln-org", org);
        }
        match body {
            Some(Body::Json(value)) => request = request.json(&value),
            Some(Body::Bytes(bytes, content_type)) => {
                request = request.header("content-type", content_type).body(bytes);
            }
            None => {}
        }
        let response = request.send().await.map_err(|e| {
            if e.is_connect() {
                anyhow!(
                    "cannot reach Kiln at {}: start it with `kiln serve` or point --server / KILN_URL at it",
                    self.base
                )
            } else {
                anyhow!("{method} {url} failed: {e}")
            }
        })?;
        let status = response.status();
        let text = response.text().await.with_context(|| format!("reading the answer to {method} {url}"))?;
        if status.is_success() {
            if text.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text)
                .with_context(|| format!("the server's answer to {method} {path} is not JSON"));
        }
        Err(server_error(status, &text, self.token.is_some()))
    }

    /// Opens a streaming GET (Server-Sent Events); errors as `send` does.
    pub async fn stream(&self, path: &str) -> Result<reqwest::Response> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.get(&url).header("accept", "text/event-stream");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(org) = &self.org {
            request = request.header("x-kiln-org", org);
        }
        let response = request.send().await.map_err(|e| anyhow!("GET {url} failed: {e}"))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        Err(server_error(status, &text, self.token.is_some()))
    }

    /// A GET whose answer is text (a Dockerfile).
    pub async fn get_text(&self, path: &str) -> Result<String> {
        let response = self.stream(path).await?;
        response.text().await.with_context(|| format!("reading the answer to GET {path}"))
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        self.send(Method::GET, path, None).await
    }

    /// A GET that answers `None` for 404 instead of an error.
    pub async fn get_if_present(&self, path: &str) -> Result<Option<Value>> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.get(&url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(org) = &self.org {
            request = request.header("x-kiln-org", org);
        }
        let response = request.send().await.map_err(|e| anyhow!("GET {url} failed: {e}"))?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let status = response.status();
        let text = response.text().await.with_context(|| format!("reading the answer to GET {url}"))?;
        if !status.is_success() {
            return Err(server_error(status, &text, self.token.is_some()));
        }
        serde_json::from_str(&text).map(Some).with_context(|| format!("the server's answer to GET {path} is not JSON"))
    }

    /// The same client acting in organisation `org`.
    pub fn in_org(&self, org: &str) -> Client {
        Client {
            http: self.http.clone(),
            base: self.base.clone(),
            token: self.token.clone(),
            org: Some(org.to_string()),
        }
    }
}

pub enum Body {
    Json(Value),
    /// Raw bytes with their content type (a tar of function code).
    Bytes(Vec<u8>, &'static str),
}

fn server_error(status: StatusCode, text: &str, sent_token: bool) -> anyhow::Error {
    if status == StatusCode::UNAUTHORIZED && !sent_token {
        return anyhow!(
            "no token was sent: run kiln login --server URL --token TOKEN once, or pass --token or set KILN_TOKEN (401)"
        );
    }
    let Ok(body) = serde_json::from_str::<Value>(text) else {
        return anyhow!("the server answered {status}: {}", text.trim());
    };
    // The API's words are for HTTP clients; the CLI's own flag says the same.
    let message =
        body.get("message").and_then(Value::as_str).unwrap_or("no message").replace("pass force=true", "pass --force");
    let mut lines = vec![message];
    if let Some(details) = body.get("details").and_then(Value::as_array)
        && details.len() > 1
    {
        for detail in details {
            let mut line = String::from("  ");
            if let Some(doc) = detail.get("document").and_then(Value::as_u64) {
                line.push_str(&format!("document {doc}: "));
            }
            if let (Some(l), Some(c)) =
                (detail.get("line").and_then(Value::as_u64), detail.get("column").and_then(Value::as_u64))
            {
                line.push_str(&format!("line {l} column {c}: "));
            }
            let field = detail.get("field").and_then(Value::as_str).unwrap_or("");
            if !field.is_empty() {
                line.push_str(field);
                line.push_str(": ");
            }
            line.push_str(detail.get("message").and_then(Value::as_str).unwrap_or(""));
            lines.push(line);
        }
    }
    anyhow!("{} ({})", lines.join("\n"), status.as_u16())
}

/// Percent-encodes one path segment.
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
