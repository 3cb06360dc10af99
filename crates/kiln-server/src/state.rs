//! What every handler shares: the metadata store behind its trait.

use std::sync::Arc;

use kiln_store::KvStore;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn KvStore>,
}

impl AppState {
    pub fn new(store: Arc<dyn KvStore>) -> AppState {
        AppState { store }
    }
}
