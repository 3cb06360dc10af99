//! Who may do what in the registry is decided outside it: the server plugs in its own
//! tokens and roles through this trait, so the registry never knows how identities work.

use std::net::IpAddr;

use async_trait::async_trait;
use axum::http::HeaderMap;

use crate::error::RegistryError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pull,
    Push,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }
}

/// The caller of one request, once its credentials were checked.
#[async_trait]
pub trait Caller: Send + Sync {
    /// Whether the caller is anonymous (no credentials): refusals then ask for them (`401`).
    fn is_anonymous(&self) -> bool;
    /// Who the caller is, for the log.
    fn subject(&self) -> &str;
    /// Whether the caller may see the organisation's repositories at all; a repository it
    /// may not see is answered as unknown.
    async fn may_see(&self, organisation: &str) -> Result<bool, RegistryError>;
    async fn may(&self, organisation: &str, action: Action) -> Result<bool, RegistryError>;
}

#[async_trait]
pub trait Access: Send + Sync + 'static {
    /// Checks the request's credentials (`Authorization: Basic` with a token as password,
    /// or `Bearer`). No credentials gives an anonymous caller; bad ones an error.
    async fn caller(&self, headers: &HeaderMap, source: Option<IpAddr>) -> Result<Box<dyn Caller>, RegistryError>;
    /// The token the Docker token flow hands back for the credentials of `headers`.
    async fn issue_token(&self, headers: &HeaderMap, source: Option<IpAddr>) -> Result<String, RegistryError>;
}

/// Lets everyone do everything: for tests of the protocol alone and for benchmarks.
pub struct OpenAccess;

struct Everyone;

#[async_trait]
impl Caller for Everyone {
    fn is_anonymous(&self) -> bool {
        false
    }
    fn subject(&self) -> &str {
        "anyone"
    }
    async fn may_see(&self, _organisation: &str) -> Result<bool, RegistryError> {
        Ok(true)
    }
    async fn may(&self, _organisation: &str, _action: Action) -> Result<bool, RegistryError> {
        Ok(true)
    }
}

#[async_trait]
impl Access for OpenAccess {
    async fn caller(&self, _headers: &HeaderMap, _source: Option<IpAddr>) -> Result<Box<dyn Caller>, RegistryError> {
        Ok(Box::new(Everyone))
    }
    async fn issue_token(&self, _headers: &HeaderMap, _source: Option<IpAddr>) -> Result<String, RegistryError> {
        Ok("open".into())
    }
}
