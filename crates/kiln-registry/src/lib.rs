//! Kiln's OCI registry: the Distribution 1.1 API under `/v2/` (blobs, uploads, manifests,
//! tags, catalog, referrers) over a content-addressed blob store and the metadata store,
//! with online garbage collection. Who may do what is asked of an [`access::Access`].

pub mod access;
pub mod blobs;
pub mod copy;
pub mod error;
pub mod gc;
pub mod image;
mod local;
pub mod meta;
pub mod names;
pub(crate) mod routes;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use kiln_oci::Hasher;
use kiln_store::KvStore;

use access::{Access, Action, Caller};
use blobs::BlobStore;
use error::{Code, RegistryError, RegistryResult};

#[derive(Debug, Clone)]
pub struct Settings {
    /// Uploads untouched this long are abandoned and removed.
    pub upload_ttl: Duration,
    /// Blobs stay this long after their last upload or reference before collection.
    pub gc_grace: Duration,
    /// How often the collector runs.
    pub gc_interval: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            upload_ttl: Duration::from_secs(24 * 3600),
            gc_grace: Duration::from_secs(3600),
            gc_interval: Duration::from_secs(600),
        }
    }
}

pub struct Registry {
    pub store: Arc<dyn KvStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub access: Arc<dyn Access>,
    pub settings: Settings,
    /// Running hashes of uploads in progress, with the offset they cover; lost on restart,
    /// when the upload is hashed from its file instead.
    hashers: Mutex<HashMap<String, (u64, Hasher)>>,
    /// Taken for writing by the collector while it deletes, for reading by anything that
    /// makes a blob referenced, so nothing referenced is deleted under it.
    gc_lock: tokio::sync::RwLock<()>,
}

impl Registry {
    pub fn new(
        store: Arc<dyn KvStore>,
        blobs: Arc<dyn BlobStore>,
        access: Arc<dyn Access>,
        settings: Settings,
    ) -> Registry {
        Registry { store, blobs, access, settings, hashers: Mutex::default(), gc_lock: tokio::sync::RwLock::new(()) }
    }

    fn take_hasher(&self, id: &str) -> Option<(u64, Hasher)> {
        self.hashers.lock().unwrap_or_else(|e| e.into_inner()).remove(id)
    }

    fn keep_hasher(&self, id: &str, offset: u64, hasher: Hasher) {
        self.hashers.lock().unwrap_or_else(|e| e.into_inner()).insert(id.to_string(), (offset, hasher));
    }
}

/// The `/v2` routes.
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/v2", get(base))
        .route("/v2/", get(base))
        .route("/v2/token", get(token))
        .route("/v2/_catalog", get(routes::listing::catalog))
        .route("/v2/{*path}", any(dispatch))
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::map_response(|mut response: Response| async move {
            response.headers_mut().insert("docker-distribution-api-version", HeaderValue::from_static("registry/2.0"));
            response
        }))
        .with_state(registry)
}

/// One request's caller and where it came from.
pub struct Ctx {
    pub caller: Box<dyn Caller>,
    pub headers: HeaderMap,
}

impl Ctx {
    /// Reads what it needs from the request first, so the future does not borrow it.
    pub(crate) fn of<'a>(
        registry: &'a Registry,
        request: &Request,
    ) -> impl Future<Output = RegistryResult<Ctx>> + Send + 'a {
        let source = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let headers = request.headers().clone();
        async move {
            let caller =
                registry.access.caller(&headers, source).await.map_err(|e| with_challenge(e, &headers, None))?;
            Ok(Ctx { caller, headers })
        }
    }

    /// Refuses unless the caller may act on the repository: anonymous callers are asked for
    /// credentials, callers who may not see the organisation get "unknown".
    pub async fn require(&self, repository: &str, action: Action) -> RegistryResult<()> {
        let organisation = names::organisation(repository);
        if self.caller.may(organisation, action).await? {
            return Ok(());
        }
        if self.caller.is_anonymous() {
            let error = RegistryError::new(Code::Unauthorized, "authentication required: log in with a Kiln token");
            return Err(with_challenge(error, &self.headers, Some((repository, action))));
        }
        if !self.caller.may_see(organisation).await? {
            return Err(unknown_repository(repository));
        }
        Err(RegistryError::new(
            Code::Denied,
            format!(
                "{} on {repository:?} is not allowed: ask an administrator for a role that grants it",
                action.as_str()
            ),
        ))
    }
}

pub fn unknown_repository(repository: &str) -> RegistryError {
    RegistryError::new(Code::NameUnknown, format!("repository {repository:?} is not known"))
}

/// Adds the `WWW-Authenticate` challenge that starts the Docker token flow.
fn with_challenge(mut error: RegistryError, headers: &HeaderMap, scope: Option<(&str, Action)>) -> RegistryError {
    if error.code != Code::Unauthorized {
        return error;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let mut challenge = format!("Bearer realm=\"http://{host}/v2/token\",service=\"kiln\"");
    if let Some((repository, action)) = scope {
        let actions = if action == Action::Pull { "pull" } else { "pull,push" };
        challenge.push_str(&format!(",scope=\"repository:{repository}:{actions}\""));
    }
    error.challenge = Some(challenge);
    error
}

async fn base(State(registry): State<Arc<Registry>>, request: Request) -> Response {
    match Ctx::of(&registry, &request).await {
        Ok(ctx) if ctx.caller.is_anonymous() => with_challenge(
            RegistryError::new(Code::Unauthorized, "authentication required: log in with a Kiln token"),
            &ctx.headers,
            None,
        )
        .into_response(),
        Ok(_) => axum::Json(serde_json::json!({})).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The Docker token endpoint: trades Basic credentials (a Kiln token as password) for a
/// bearer token; without credentials, an anonymous one that reaches only public content.
async fn token(State(registry): State<Arc<Registry>>, request: Request) -> Response {
    let source = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    match registry.access.issue_token(request.headers(), source).await {
        Ok(token) => axum::Json(serde_json::json!({
            "token": token,
            "access_token": token,
            "expires_in": 3600,
            "issued_at": chrono::Utc::now().to_rfc3339(),
        }))
        .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Routes `/v2/<name>/…` by its last segments, since repository names contain slashes.
async fn dispatch(State(registry): State<Arc<Registry>>, request: Request) -> Response {
    match route(registry, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn route(registry: Arc<Registry>, request: Request) -> RegistryResult<Response> {
    let path = request.uri().path().strip_prefix("/v2/").unwrap_or_default().to_string();
    let method = request.method().clone();
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let n = segments.len();
    let tail = |k: usize| if n >= k { Some(segments[n - k]) } else { None };
    let repository_until = |k: usize| segments[..n.saturating_sub(k)].join("/");
    let not_found = || {
        RegistryError::new(Code::Unsupported, format!("no such registry endpoint: {method} /v2/{path}"))
            .with_status(axum::http::StatusCode::NOT_FOUND)
    };

    let (repository, endpoint) = match (tail(3), tail(2), tail(1)) {
        (_, Some("tags"), Some("list")) => (repository_until(2), Endpoint::Tags),
        (_, Some("manifests"), Some(reference)) => (repository_until(2), Endpoint::Manifest(reference.to_string())),
        (_, Some("referrers"), Some(digest)) => (repository_until(2), Endpoint::Referrers(digest.to_string())),
        (_, Some("blobs"), Some("uploads")) => (repository_until(2), Endpoint::Uploads),
        (Some("blobs"), Some("uploads"), Some(id)) => (repository_until(3), Endpoint::Upload(id.to_string())),
        (_, Some("blobs"), Some(digest)) => (repository_until(2), Endpoint::Blob(digest.to_string())),
        _ => return Err(not_found()),
    };
    if repository.is_empty() {
        return Err(not_found());
    }
    names::check_repository(&repository)?;
    let ctx = Ctx::of(&registry, &request).await?;
    let Some(action) = endpoint.action(&method) else {
        return Err(RegistryError::new(Code::Unsupported, format!("{method} is not supported on /v2/{path}"))
            .with_status(axum::http::StatusCode::METHOD_NOT_ALLOWED));
    };
    // Who may do what is checked here, once, before any handler runs or any input is parsed.
    ctx.require(&repository, action).await?;
    let r = &registry;
    match (endpoint, method) {
        (Endpoint::Tags, _) => routes::listing::tags(r, &repository, request).await,
        (Endpoint::Referrers(digest), _) => {
            routes::listing::referrers(r, &repository, &names::parse_digest(&digest)?, request).await
        }
        (Endpoint::Manifest(reference), Method::PUT) => {
            routes::manifest::put(r, &repository, &reference, request).await
        }
        (Endpoint::Manifest(reference), Method::DELETE) => routes::manifest::delete(r, &repository, &reference).await,
        (Endpoint::Manifest(reference), method) => {
            routes::manifest::get(r, &repository, &reference, method == Method::HEAD).await
        }
        (Endpoint::Blob(digest), Method::DELETE) => {
            routes::blob::delete(r, &repository, &names::parse_digest(&digest)?).await
        }
        (Endpoint::Blob(digest), _) => routes::blob::get(r, &repository, &names::parse_digest(&digest)?, request).await,
        (Endpoint::Uploads, _) => routes::upload::start(r, &ctx, &repository, request).await,
        (Endpoint::Upload(id), Method::GET) => routes::upload::status(r, &repository, &id).await,
        (Endpoint::Upload(id), Method::PATCH) => routes::upload::patch(r, &repository, &id, request).await,
        (Endpoint::Upload(id), Method::PUT) => routes::upload::finish(r, &repository, &id, request).await,
        (Endpoint::Upload(id), _) => routes::upload::cancel(r, &repository, &id).await,
    }
}

/// What a `/v2` path names; digests in it are parsed only after the caller is authorised.
enum Endpoint {
    Tags,
    Manifest(String),
    Referrers(String),
    Uploads,
    Upload(String),
    Blob(String),
}

impl Endpoint {
    /// The permission `method` on this endpoint needs; `None` if the method is not served.
    fn action(&self, method: &Method) -> Option<Action> {
        let read = *method == Method::GET || *method == Method::HEAD;
        match self {
            Endpoint::Tags | Endpoint::Referrers(_) => (*method == Method::GET).then_some(Action::Pull),
            Endpoint::Manifest(_) | Endpoint::Blob(_) if read => Some(Action::Pull),
            Endpoint::Manifest(_) if *method == Method::PUT => Some(Action::Push),
            Endpoint::Manifest(_) | Endpoint::Blob(_) if *method == Method::DELETE => Some(Action::Delete),
            Endpoint::Uploads => (*method == Method::POST).then_some(Action::Push),
            Endpoint::Upload(_) => {
                [Method::GET, Method::PATCH, Method::PUT, Method::DELETE].contains(method).then_some(Action::Push)
            }
            _ => None,
        }
    }
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
