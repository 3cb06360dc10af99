//! Kiln's HTTP server: the `/v1` REST API over the metadata store, its OpenAPI document
//! (generated from the handlers, so it cannot drift from the routes) and the docs page.
//! Handlers stay thin: validate, plan, commit one transaction, answer.

mod api;
pub mod auth;
mod dependents;
mod error;
mod extract;
mod names;
mod objects;
mod parents;
mod resource;
mod state;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::http::{Method, StatusCode, Uri};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

pub use error::{ApiError, ErrorBody};
pub use extract::MAX_BODY_BYTES;
pub use names::migrate_all as migrate_name_claims;
pub use state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Kiln",
        description = "Kiln manages base images, runtime images and the package catalog for serverless platforms.\n\n\
            Objects are created in status `INITIALIZED`. The controller that pulls base images and builds images \
            moves them to `CREATING`, `READY` or `ERROR`; until it acts, objects rest in `INITIALIZED`.\n\n\
            Every object carries a `revision`; send it back on update (or as `If-Match`) and a stale update is \
            refused with `409`. Errors are `{code, message, details}`."
    ),
    tags(
        (name = "base-images", description = "Images Kiln did not build, registered by reference"),
        (name = "images", description = "Runtime images built from a base image and declared packages"),
        (name = "packages", description = "The catalog of approved and denied packages"),
        (name = "package-sources", description = "Where each ecosystem's packages come from"),
        (name = "registry-credentials", description = "How to reach other registries: credentials (write-only), CA, insecure"),
        (name = "definitions", description = "Definition files and their JSON Schemas"),
        (name = "access", description = "Users, service accounts, roles, organisations and role bindings"),
        (name = "tokens", description = "API tokens"),
        (name = "functions", description = "Function code on built images: push, list, get, delete"),
        (name = "tasks", description = "Long-running work (builds, bootstrap): progress, logs, cancel"),
        (name = "registry", description = "The built-in OCI registry's maintenance (the registry itself is served under /v2)"),
        (name = "system", description = "Health and identity"),
    ),
    modifiers(&BearerScheme)
)]
struct ApiDoc;

/// Declares the bearer-token scheme every `security` requirement refers to.
struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// Routes that are served but are not API operations, so are not in the document.
pub const UNDOCUMENTED_ROUTES: [&str; 2] = ["/v1/openapi.json", "/docs"];

fn api_router() -> OpenApiRouter<AppState> {
    use api::resources::{base_images, images, package_sources, packages, registry_credentials};
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(base_images::create, base_images::list))
        .routes(routes!(base_images::get, base_images::replace, base_images::patch, base_images::delete))
        .routes(routes!(images::create, images::list))
        .routes(routes!(images::get, images::replace, images::patch, images::delete))
        .routes(routes!(package_sources::create, package_sources::list))
        .routes(routes!(
            package_sources::get,
            package_sources::replace,
            package_sources::patch,
            package_sources::delete
        ))
        .routes(routes!(registry_credentials::create, registry_credentials::list))
        .routes(routes!(
            registry_credentials::get,
            registry_credentials::replace,
            registry_credentials::patch,
            registry_credentials::delete
        ))
        .routes(routes!(packages::create, packages::list))
        .routes(routes!(packages::get, packages::replace, packages::patch, packages::delete))
        .routes(routes!(api::identity::users::create, api::identity::users::list))
        .routes(routes!(api::identity::users::get, api::identity::users::replace, api::identity::users::delete))
        .routes(routes!(api::identity::roles::create, api::identity::roles::list))
        .routes(routes!(api::identity::roles::get, api::identity::roles::replace, api::identity::roles::delete))
        .routes(routes!(api::identity::organizations::create, api::identity::organizations::list))
        .routes(routes!(
            api::identity::organizations::get,
            api::identity::organizations::replace,
            api::identity::organizations::delete
        ))
        .routes(routes!(api::identity::role_bindings::create, api::identity::role_bindings::list))
        .routes(routes!(api::identity::role_bindings::delete))
        .routes(routes!(api::tokens::create, api::tokens::list))
        .routes(routes!(api::tokens::revoke))
        .routes(routes!(api::audit::list))
        .routes(routes!(api::builds::packages))
        .routes(routes!(api::builds::base_image_packages))
        .routes(routes!(api::builds::build))
        .routes(routes!(api::builds::dockerfile))
        .routes(routes!(api::builds::sbom))
        .routes(routes!(api::builds::rebuild))
        .routes(routes!(api::builds::debug))
        .routes(routes!(api::builds::package_images))
        .routes(routes!(api::builds::bootstrap))
        .routes(routes!(api::functions::put_code))
        .routes(routes!(api::functions::list))
        .routes(routes!(api::functions::get, api::functions::delete))
        .routes(routes!(api::tasks::list))
        .routes(routes!(api::tasks::get, api::tasks::cancel))
        .routes(routes!(api::tasks::logs))
        .routes(routes!(api::tasks::events))
        .routes(routes!(api::registry::collect))
        .routes(routes!(api::registry::copy))
        .routes(routes!(api::apply::apply))
        .routes(routes!(api::schemas::list))
        .routes(routes!(api::schemas::get))
        .routes(routes!(api::system::health))
        .routes(routes!(api::system::whoami))
}

/// The OpenAPI document, as served at `/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().split_for_parts().1
}

/// What runs beside the routes: task workers, controllers, the registry's collector and the
/// permission cache's follower. Each got the same shutdown signal; [`Background::stop`]
/// sends it and waits for every one to end.
pub struct Background {
    shutdown: CancellationToken,
    handles: Vec<JoinHandle<()>>,
}

impl Background {
    /// Stops every background loop and waits until each has ended. Tasks in flight stay
    /// `RUNNING` under this node, so the next start takes them back at once.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for handle in self.handles {
            if let Err(e) = handle.await
                && e.is_panic()
            {
                tracing::error!(error = %e, "a background loop panicked");
            }
        }
    }

    /// How many loops run (for tests and logs).
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }
}

/// The whole HTTP application and its background loops, which end when `shutdown` is
/// cancelled (or through [`Background::stop`]). Must be called inside a Tokio runtime.
pub fn start(mut state: AppState, shutdown: CancellationToken) -> (Router, Background) {
    let mut handles = Vec::new();
    let (router, document) = api_router().split_for_parts();
    let raw_store = state.store.clone();
    // Handlers write through this so each request's audit entry joins its change.
    state.store = Arc::new(auth::audit::AuditingStore::new(raw_store.clone()));
    let cache = Arc::new(auth::cache::AuthCache::default());
    handles.push(cache.follow(raw_store.clone(), shutdown.child_token()));
    let auth = Arc::new(auth::Auth {
        store: raw_store,
        routes: auth::route_table(&document),
        limiter: auth::limiter::Limiter::new(state.auth_failures_per_minute),
        cache,
    });
    let registry = state.blobs.clone().map(|blobs| {
        let access = Arc::new(auth::registry::RegistryAccess(auth.clone()));
        Arc::new(kiln_registry::Registry::new(state.store.clone(), blobs, access, state.registry.clone()))
    });
    state.registry_server = registry.clone();
    if let Some(settings) = state.task_settings.clone() {
        let mut engine = kiln_tasks::Engine::new(auth.store.clone(), settings);
        if let (Some(registry), Some(settings)) = (&registry, state.builds.clone())
            && let Err(e) = kiln_builder::register_runners(&mut engine, registry, settings)
        {
            tracing::error!(error = %e, "builds are disabled");
        }
        let engine = Arc::new(engine);
        handles.push(engine.start());
        handles.push(kiln_builder::controllers::images::spawn(
            auth.store.clone(),
            engine.clone(),
            registry.clone(),
            shutdown.child_token(),
        ));
        // The engine's attempts end on the same signal as everything else.
        let signal = shutdown.clone();
        let stopping = engine.clone();
        handles.push(tokio::spawn(async move {
            signal.cancelled().await;
            stopping.stop().await;
        }));
        state.tasks = Some(engine);
    }
    if let Some(mut settings) = state.controller.clone() {
        if let (Some(registry), Some(builds)) = (&registry, &state.builds) {
            settings.local_registry = Some((builds.registry_host.clone(), registry.clone()));
            settings.copy_scratch = builds.cache_dir.join("base-image-copies");
        }
        handles.push(kiln_builder::controllers::base_images::spawn(
            auth.store.clone(),
            settings,
            shutdown.child_token(),
        ));
    }
    let rest = assemble(state, router, document, axum::middleware::from_fn_with_state(auth.clone(), auth::authorize));
    let router = match registry {
        Some(registry) => {
            handles.push(kiln_registry::gc::spawn(registry.clone(), shutdown.child_token()));
            let v2 = kiln_registry::router(registry)
                .layer(axum::middleware::from_fn_with_state(auth, auth::registry::audit))
                .layer(tower_http::trace::TraceLayer::new_for_http());
            rest.merge(v2)
        }
        None => rest,
    };
    (router, Background { shutdown, handles })
}

/// The HTTP application with its background loops running until the process ends; for
/// callers that never stop it (benchmark tools, tests of routes).
pub fn app(state: AppState) -> Router {
    start(state, CancellationToken::new()).0
}

/// The application with authorization replaced by a fixed administrator context. It exists
/// only to measure what authorization costs (`bench/auth.sh`); `kiln serve` never uses it.
#[doc(hidden)]
pub fn app_without_auth_for_benchmarks(state: AppState) -> Router {
    let trusting =
        axum::middleware::from_fn(|mut request: axum::extract::Request, next: axum::middleware::Next| async move {
            let permissions: Arc<[kiln_model::auth::Permission]> =
                kiln_model::auth::Permission::parse("*:*").into_iter().collect();
            request.extensions_mut().insert(auth::RequestContext {
                subject: "benchmark".into(),
                org: kiln_model::DEFAULT_ORG.into(),
                public_only: false,
                global: permissions.clone(),
                permissions,
                source: None,
            });
            next.run(request).await
        });
    let (router, document) = api_router().split_for_parts();
    assemble(state, router, document, trusting)
}

fn assemble<L>(
    state: AppState,
    router: Router<AppState>,
    document: utoipa::openapi::OpenApi,
    authorization: L,
) -> Router
where
    L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
    L::Service:
        tower::Service<axum::extract::Request, Error = std::convert::Infallible> + Clone + Send + Sync + 'static,
    <L::Service as tower::Service<axum::extract::Request>>::Response: axum::response::IntoResponse + 'static,
    <L::Service as tower::Service<axum::extract::Request>>::Future: Send + 'static,
{
    router
        .route_layer(authorization)
        .merge(SwaggerUi::new("/docs").url("/v1/openapi.json", document))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn no_route(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no such endpoint {}: see /docs for the API", uri.path()))
}

async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}: see /docs for the API", uri.path()),
    )
}

#[cfg(test)]
mod start_tests;
#[cfg(test)]
mod tests;
