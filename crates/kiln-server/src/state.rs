//! What every handler shares: the metadata store behind its trait, and where registry
//! blobs live (chosen by the binary, which knows the data directory).

use std::sync::Arc;

use kiln_registry::blobs::BlobStore;
use kiln_store::KvStore;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn KvStore>,
    /// Failed authentications allowed per source address per minute.
    pub auth_failures_per_minute: u32,
    /// The registry's blob storage; without it `/v2` is not served.
    pub blobs: Option<Arc<dyn BlobStore>>,
    pub registry: kiln_registry::Settings,
    /// The running registry, set by `app` when `blobs` is given.
    pub registry_server: Option<Arc<kiln_registry::Registry>>,
    /// The task engine; without it builds are not run and `/v1/tasks` lists what is stored.
    pub tasks: Option<Arc<kiln_tasks::Engine>>,
    /// When set, `app` starts a task engine with these settings and Kiln's runners.
    pub task_settings: Option<kiln_tasks::TaskSettings>,
    /// When set (with `task_settings` and `blobs`), images are built and root images can be
    /// bootstrapped.
    pub builds: Option<kiln_builder::builds::BuildSettings>,
    /// When set, `app` runs the base-image controller.
    pub controller: Option<kiln_builder::controllers::Settings>,
}

impl AppState {
    pub fn new(store: Arc<dyn KvStore>) -> AppState {
        AppState {
            store,
            auth_failures_per_minute: crate::auth::limiter::MAX_FAILURES,
            blobs: None,
            registry: kiln_registry::Settings::default(),
            registry_server: None,
            tasks: None,
            task_settings: None,
            builds: None,
            controller: None,
        }
    }
}
