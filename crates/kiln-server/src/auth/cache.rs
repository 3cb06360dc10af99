//! Remembers what a token may do in an organisation, so a request does not read the token,
//! its subject and its bindings from the store every time. Any change to users, roles,
//! bindings, tokens or organisations empties it: the request that made the change does so
//! before it answers, and a store watch catches changes made elsewhere.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use kiln_model::auth::{Permission, Token};
use kiln_store::KvStore;

/// A safety net: entries are dropped after this even without a change.
const TTL: Duration = Duration::from_secs(30);
const MAX_ENTRIES: usize = 10_000;
/// Key prefixes whose changes can alter what a token may do.
pub const AUTH_PREFIXES: [&str; 5] = ["users/", "roles/", "role-bindings/", "tokens/", "organizations/"];

pub struct Cached {
    pub token: Token,
    pub subject: Arc<str>,
    pub org: Arc<str>,
    pub permissions: Arc<[Permission]>,
    pub global: Arc<[Permission]>,
    /// Whether the organisation exists (`default` always does).
    pub org_exists: bool,
}

/// Entries of one token: (organisation, when cached, what it may do there).
type Slots = Vec<(String, Instant, Arc<Cached>)>;

#[derive(Default)]
pub struct AuthCache {
    /// Keyed by the SHA-256 of the presented token; the secret itself is never kept.
    entries: RwLock<HashMap<[u8; 32], Slots>>,
}

impl AuthCache {
    pub fn get(&self, digest: &[u8; 32], org: &str) -> Option<Arc<Cached>> {
        let entries = self.entries.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (_, at, cached) = entries.get(digest)?.iter().find(|(o, _, _)| o == org)?;
        (at.elapsed() < TTL).then(|| cached.clone())
    }

    pub fn put(&self, digest: [u8; 32], org: &str, cached: Arc<Cached>) {
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        let slots = entries.entry(digest).or_default();
        slots.retain(|(o, _, _)| o != org);
        slots.push((org.to_string(), Instant::now(), cached));
    }

    pub fn clear(&self) {
        self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
    }

    /// Empties the cache whenever the store reports a change under an auth prefix.
    pub fn follow(self: &Arc<Self>, store: Arc<dyn KvStore>, shutdown: CancellationToken) -> JoinHandle<()> {
        let cache = self.clone();
        tokio::spawn(async move {
            while !shutdown.is_cancelled() {
                let Ok(mut events) = store.watch("", 0).await else {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = shutdown.cancelled() => return,
                    }
                };
                loop {
                    let event = tokio::select! {
                        event = events.recv() => event,
                        _ = shutdown.cancelled() => return,
                    };
                    match event {
                        Some(Ok(event)) if AUTH_PREFIXES.iter().any(|p| event.entry.key.starts_with(p)) => {
                            cache.clear()
                        }
                        Some(Ok(_)) => {}
                        // Fell behind, or the watch ended: anything may have changed.
                        Some(Err(_)) | None => {
                            cache.clear();
                            break;
                        }
                    }
                }
            }
        })
    }
}
