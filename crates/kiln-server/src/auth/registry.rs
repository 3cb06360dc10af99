//! Kiln's tokens and roles in front of the OCI registry: `Basic` with a token as password,
//! `Bearer` with a token (what the Docker token flow hands back), or nothing (anonymous).
//! A repository belongs to the organisation named by its first path component; pulling
//! needs `repositories:read` there, pushing and deleting `repositories:write`.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use axum::http::{HeaderMap, header};
use base64::Engine;
use kiln_model::auth::Permission;
use kiln_registry::access::{Access, Action, Caller};
use kiln_registry::error::{Code, RegistryError};

use super::{Auth, Refused, resolve};

/// What the token endpoint hands anonymous clients; it grants nothing.
const ANONYMOUS: &str = "anonymous";

pub struct RegistryAccess(pub Arc<Auth>);

/// The secret of an `Authorization` header, `None` if there is none.
fn secret(headers: &HeaderMap) -> Result<Option<String>, RegistryError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().unwrap_or_default().trim();
    let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
    let credentials = credentials.trim();
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" if credentials == ANONYMOUS || credentials.is_empty() => Ok(None),
        "bearer" => Ok(Some(credentials.to_string())),
        "basic" => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(credentials)
                .ok()
                .and_then(|d| String::from_utf8(d).ok())
                .ok_or_else(|| {
                    RegistryError::new(Code::Unauthorized, "the Basic credentials are not base64 of user:token")
                })?;
            let (_, password) = decoded.split_once(':').unwrap_or(("", &decoded));
            Ok((!password.is_empty()).then(|| password.to_string()))
        }
        _ => {
            Err(RegistryError::new(Code::Unauthorized, "use Basic (a Kiln token as password) or Bearer authentication"))
        }
    }
}

impl RegistryAccess {
    fn refuse_blocked(&self, source: Option<IpAddr>) -> Result<(), RegistryError> {
        if let Some(address) = source
            && let Some(wait) = self.0.limiter.blocked(address)
        {
            let mut error = RegistryError::new(
                Code::TooManyRequests,
                format!("too many failed authentications from this address: wait {wait} s"),
            );
            error.retry_after = Some(wait);
            return Err(error);
        }
        Ok(())
    }

    /// Checks the secret once, in the default organisation, so a bad token fails here;
    /// returns its subject.
    async fn verified(&self, secret: &str, source: Option<IpAddr>) -> Result<String, RegistryError> {
        self.refuse_blocked(source)?;
        match resolve(&self.0, secret, kiln_model::DEFAULT_ORG).await {
            Ok(cached) => Ok(cached.subject.to_string()),
            Err(Refused::Token(message)) => {
                if let Some(address) = source {
                    self.0.limiter.failed(address);
                }
                Err(RegistryError::new(Code::Unauthorized, message))
            }
            Err(Refused::Failed(e)) => Err(RegistryError::internal(e.message)),
        }
    }
}

#[async_trait]
impl Access for RegistryAccess {
    async fn caller(&self, headers: &HeaderMap, source: Option<IpAddr>) -> Result<Box<dyn Caller>, RegistryError> {
        let Some(secret) = secret(headers)? else {
            return Ok(Box::new(TokenCaller { auth: self.0.clone(), secret: None, subject: ANONYMOUS.into() }));
        };
        let subject = self.verified(&secret, source).await?;
        Ok(Box::new(TokenCaller { auth: self.0.clone(), secret: Some(secret), subject }))
    }

    async fn issue_token(&self, headers: &HeaderMap, source: Option<IpAddr>) -> Result<String, RegistryError> {
        match secret(headers)? {
            None => Ok(ANONYMOUS.into()),
            Some(secret) => {
                self.verified(&secret, source).await?;
                // The client already holds this token; the flow only needs it back.
                Ok(secret)
            }
        }
    }
}

struct TokenCaller {
    auth: Arc<Auth>,
    secret: Option<String>,
    subject: String,
}

impl TokenCaller {
    async fn grants(&self, organisation: &str, action: &str) -> Result<bool, RegistryError> {
        let Some(secret) = &self.secret else { return Ok(false) };
        let cached = match resolve(&self.auth, secret, organisation).await {
            Ok(cached) => cached,
            Err(Refused::Token(message)) => return Err(RegistryError::new(Code::Unauthorized, message)),
            Err(Refused::Failed(e)) => return Err(RegistryError::internal(e.message)),
        };
        let wanted = Permission { resource: "repositories".into(), action: action.into() };
        Ok(cached.org_exists && cached.permissions.iter().any(|p| p.grants(&wanted)))
    }
}

#[async_trait]
impl Caller for TokenCaller {
    fn is_anonymous(&self) -> bool {
        self.secret.is_none()
    }
    fn subject(&self) -> &str {
        &self.subject
    }
    async fn may_see(&self, organisation: &str) -> Result<bool, RegistryError> {
        self.grants(organisation, "read").await
    }
    async fn may(&self, organisation: &str, action: Action) -> Result<bool, RegistryError> {
        self.grants(organisation, if action == Action::Pull { "read" } else { "write" }).await
    }
}

/// Records every registry mutation in the audit log; like the REST API's, the entry rides in
/// the first transaction the request commits.
pub async fn audit(
    axum::extract::State(auth): axum::extract::State<Arc<Auth>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::Method;
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    let subject = match secret(request.headers()) {
        Ok(Some(secret)) => match resolve(&auth, &secret, kiln_model::DEFAULT_ORG).await {
            Ok(cached) => cached.subject.to_string(),
            Err(_) => ANONYMOUS.to_string(),
        },
        _ => ANONYMOUS.to_string(),
    };
    let path = request.uri().path().to_string();
    let organisation = path.strip_prefix("/v2/").and_then(|p| p.split('/').next()).unwrap_or_default().to_string();
    let source =
        request.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip().to_string());
    let entry = super::audit::entry(&subject, organisation, request.method(), &path, source, 0);
    super::audit::around(auth.store.as_ref(), entry, next.run(request)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_basic_or_bearer() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, value.parse().unwrap());
            secret(&headers)
        };
        assert_eq!(secret(&HeaderMap::new()).unwrap(), None);
        assert_eq!(with("Bearer kiln_abc").unwrap().as_deref(), Some("kiln_abc"));
        assert_eq!(with("Bearer anonymous").unwrap(), None);
        let basic = base64::engine::general_purpose::STANDARD.encode("alice:kiln_abc");
        assert_eq!(with(&format!("Basic {basic}")).unwrap().as_deref(), Some("kiln_abc"));
        assert!(with("Basic !!!").is_err());
        assert!(with("Digest x").is_err());
    }
}
