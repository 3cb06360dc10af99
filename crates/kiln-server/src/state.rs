//! What every handler shares: the metadata store behind its trait.

use std::sync::Arc;

use kiln_store::KvStore;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn KvStore>,
    /// Failed authentications allowed per source address per minute.
    pub auth_failures_per_minute: u32,
}

impl AppState {
    pub fn new(store: Arc<dyn KvStore>) -> AppState {
        AppState { store, auth_failures_per_minute: crate::auth::limiter::MAX_FAILURES }
    }
}
