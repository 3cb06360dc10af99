//! Kiln's REST client, for the CLI and for anything else that drives Kiln: it sends the
//! token and the organisation header, turns the server's `{code, message, details}` errors
//! into a typed error whose text a user can act on, and reads Server-Sent Events.

pub mod sse;

use std::fmt;

use kiln_model::auth::ORG_HEADER;
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub use reqwest;

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    org: Option<String>,
}

/// Why a request did not give an answer to use; each text says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("server {0:?} is not an http:// or https:// URL: set --server or KILN_URL")]
    BadServer(String),
    #[error("cannot set up the HTTP client")]
    Setup(#[source] reqwest::Error),
    #[error("cannot reach Kiln at {0}: start it with `kiln serve` or point --server / KILN_URL at it")]
    Unreachable(String),
    /// The request failed on the way (not an answer from the server).
    #[error("{method} {url} failed: {error}")]
    Transport { method: Method, url: String, error: reqwest::Error },
    #[error("reading the answer to {method} {url}")]
    Read {
        method: Method,
        url: String,
        #[source]
        error: reqwest::Error,
    },
    #[error("the server's answer to {method} {path} is not JSON")]
    NotJson {
        method: Method,
        path: String,
        #[source]
        error: serde_json::Error,
    },
    #[error(
        "no token was sent: run kiln login --server URL --token TOKEN once, or pass --token or set KILN_TOKEN (401)"
    )]
    NoToken,
    /// The server refused, in its `{code, message, details}` shape.
    #[error("{0}")]
    Refused(Refusal),
    /// The server answered an error that is not in Kiln's shape (a proxy in between).
    #[error("the server answered {status}: {text}")]
    Unparsed { status: StatusCode, text: String },
}

impl ClientError {
    /// The HTTP status the server answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Refused(refusal) => Some(refusal.status),
            ClientError::Unparsed { status, .. } => Some(status.as_u16()),
            ClientError::NoToken => Some(401),
            _ => None,
        }
    }
}

/// An error answer of the API: its status, message and the details naming each field.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
    pub details: Vec<Value>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut lines = vec![self.message.clone()];
        // One detail repeats the message; several are listed, each with where it is.
        if self.details.len() > 1 {
            for detail in &self.details {
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
        write!(f, "{} ({})", lines.join("\n"), self.status)
    }
}

pub type ClientResult<T> = Result<T, ClientError>;

impl Client {
    pub fn new(server: &str, token: Option<String>, org: Option<String>) -> ClientResult<Client> {
        let base = server.trim_end_matches('/').to_string();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            return Err(ClientError::BadServer(server.to_string()));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientError::Setup)?;
        Ok(Client { http, base, token, org })
    }

    fn request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        let mut request = self.http.request(method, url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(org) = &self.org {
            request = request.header(ORG_HEADER, org);
        }
        request
    }

    /// Sends a request; `Ok` holds the JSON of a 2xx answer.
    pub async fn send(&self, method: Method, path: &str, body: Option<Body>) -> ClientResult<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self.request(method.clone(), &url);
        match body {
            Some(Body::Json(value)) => request = request.json(&value),
            Some(Body::Bytes(bytes, content_type)) => {
                request = request.header("content-type", content_type).body(bytes);
            }
            None => {}
        }
        let response = request.send().await.map_err(|error| {
            if error.is_connect() {
                ClientError::Unreachable(self.base.clone())
            } else {
                ClientError::Transport { method: method.clone(), url: url.clone(), error }
            }
        })?;
        let status = response.status();
        let text = response.text().await.map_err(|error| ClientError::Read { method: method.clone(), url, error })?;
        if status.is_success() {
            if text.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text).map_err(|error| ClientError::NotJson {
                method,
                path: path.to_string(),
                error,
            });
        }
        Err(server_error(status, &text, self.token.is_some()))
    }

    /// Opens a streaming GET (Server-Sent Events, or text read whole); errors as `send` does.
    pub async fn stream(&self, path: &str) -> ClientResult<reqwest::Response> {
        let url = format!("{}{path}", self.base);
        let request = self.request(Method::GET, &url).header("accept", "text/event-stream");
        let response =
            request.send().await.map_err(|error| ClientError::Transport { method: Method::GET, url, error })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        Err(server_error(status, &text, self.token.is_some()))
    }

    /// A GET whose answer is text (a Dockerfile).
    pub async fn get_text(&self, path: &str) -> ClientResult<String> {
        let response = self.stream(path).await?;
        response.text().await.map_err(|error| ClientError::Read { method: Method::GET, url: path.to_string(), error })
    }

    pub async fn get(&self, path: &str) -> ClientResult<Value> {
        self.send(Method::GET, path, None).await
    }

    /// A GET that answers `None` for 404 instead of an error.
    pub async fn get_if_present(&self, path: &str) -> ClientResult<Option<Value>> {
        let url = format!("{}{path}", self.base);
        let response = self.request(Method::GET, &url).send().await.map_err(|error| ClientError::Transport {
            method: Method::GET,
            url: url.clone(),
            error,
        })?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let status = response.status();
        let text = response.text().await.map_err(|error| ClientError::Read { method: Method::GET, url, error })?;
        if !status.is_success() {
            return Err(server_error(status, &text, self.token.is_some()));
        }
        serde_json::from_str(&text).map(Some).map_err(|error| ClientError::NotJson {
            method: Method::GET,
            path: path.to_string(),
            error,
        })
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

fn server_error(status: StatusCode, text: &str, sent_token: bool) -> ClientError {
    if status == StatusCode::UNAUTHORIZED && !sent_token {
        return ClientError::NoToken;
    }
    let Ok(body) = serde_json::from_str::<Value>(text) else {
        return ClientError::Unparsed { status, text: text.trim().to_string() };
    };
    // The API's words are for HTTP clients; the CLI's own flag says the same.
    let message =
        body.get("message").and_then(Value::as_str).unwrap_or("no message").replace("pass force=true", "pass --force");
    let details = body.get("details").and_then(Value::as_array).cloned().unwrap_or_default();
    ClientError::Refused(Refusal { status: status.as_u16(), message, details })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_the_cli_always_printed_them() {
        let one = server_error(StatusCode::CONFLICT, r#"{"code":409,"message":"in use: pass force=true"}"#, true);
        assert_eq!(one.to_string(), "in use: pass --force (409)");
        assert_eq!(one.status(), Some(409));
        let many = server_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            r#"{"code":422,"message":"invalid","details":[{"field":"name","message":"empty"},{"document":2,"line":3,"column":1,"message":"bad"}]}"#,
            true,
        );
        assert_eq!(many.to_string(), "invalid\n  name: empty\n  document 2: line 3 column 1: bad (422)");
        assert!(matches!(server_error(StatusCode::UNAUTHORIZED, "{}", false), ClientError::NoToken));
        let proxy = server_error(StatusCode::BAD_GATEWAY, " upstream down \n", true);
        assert_eq!(proxy.to_string(), "the server answered 502 Bad Gateway: upstream down");
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("@types/node"), "%40types%2Fnode");
        assert_eq!(segment("a-b_c.d~e"), "a-b_c.d~e");
    }

    #[test]
    fn only_http_servers_are_taken() {
        assert!(matches!(Client::new("ftp://x", None, None), Err(ClientError::BadServer(_))));
        assert!(Client::new("http://127.0.0.1:8470/", None, None).is_ok());
    }
}
