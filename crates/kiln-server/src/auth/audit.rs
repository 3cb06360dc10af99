//! The audit log: every mutation, allowed or refused, with who, what, when, from where and
//! the answer's status. Never the token, never a body. A request's entry rides in the same
//! transaction as the change it made, so no crash can store a change without its entry.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::http::Method;
use chrono::Utc;

use kiln_model::auth::AuditEntry;
use kiln_store::records::{GLOBAL, encode, key};
use kiln_store::{Entry, KvStore, Op, Page, Precondition, StoreError, WatchStream};

pub fn entry(
    subject: &str,
    organization: String,
    method: &Method,
    path: &str,
    source: Option<String>,
    status: u16,
) -> AuditEntry {
    let time = Utc::now();
    let mut salt = [0u8; 4];
    // A clash of two entries in the same nanosecond is what the salt prevents; without
    // randomness the Absent precondition still refuses to overwrite.
    let _ = getrandom::fill(&mut salt);
    let nanos = time.timestamp_nanos_opt().unwrap_or_default();
    AuditEntry {
        id: format!("{nanos:020}-{}", hex::encode(salt)),
        time,
        subject: subject.to_string(),
        organization,
        method: method.to_string(),
        path: path.to_string(),
        source,
        status,
        committed: false,
        revision: None,
    }
}

/// Stores the entry; a failure is logged, never turned into a failed request.
pub async fn record(store: &dyn KvStore, entry: &AuditEntry) {
    let written = match encode(entry) {
        Ok(value) => store.put(&key::<AuditEntry>(GLOBAL, &entry.id), value, Precondition::Absent).await.map(|_| ()),
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        tracing::error!(error = %e, subject = entry.subject, path = entry.path, "could not record an audit entry");
    }
}

tokio::task_local! {
    /// The entry of the request being handled on this task, until a write carries it.
    static PENDING: Arc<Pending>;
}

/// A request's audit entry on its way into the store.
pub struct Pending(Mutex<State>);

enum State {
    Waiting(AuditEntry),
    Written { entry: AuditEntry, revision: u64 },
    Done,
}

impl Pending {
    fn take_waiting(&self) -> Option<AuditEntry> {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match std::mem::replace(&mut *state, State::Done) {
            State::Waiting(entry) => Some(entry),
            other => {
                *state = other;
                None
            }
        }
    }

    fn set(&self, next: State) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = next;
    }
}

/// Runs `handler` with `entry` pending: the handler's first successful write stores it too.
/// Afterwards the entry gets the answer's status, or is stored alone if nothing committed.
pub async fn around<F>(store: &dyn KvStore, entry: AuditEntry, handler: F) -> axum::response::Response
where
    F: Future<Output = axum::response::Response>,
{
    let pending = Arc::new(Pending(Mutex::new(State::Waiting(entry))));
    let response = PENDING.scope(pending.clone(), handler).await;
    let status = response.status().as_u16();
    let finished = std::mem::replace(&mut *pending.0.lock().unwrap_or_else(|e| e.into_inner()), State::Done);
    match finished {
        State::Waiting(mut entry) => {
            entry.status = status;
            record(store, &entry).await;
        }
        State::Written { mut entry, revision } => {
            entry.status = status;
            let updated = match encode(&entry) {
                Ok(value) => store
                    .put(&key::<AuditEntry>(GLOBAL, &entry.id), value, Precondition::Revision(revision))
                    .await
                    .map(|_| ()),
                Err(e) => Err(e),
            };
            if let Err(e) = updated {
                tracing::error!(error = %e, id = entry.id, "could not record the status of an audit entry");
            }
        }
        State::Done => {}
    }
    response
}

/// The store handlers write through: adds the pending audit entry of the request (if any)
/// to the first write that commits.
pub struct AuditingStore {
    inner: Arc<dyn KvStore>,
}

impl AuditingStore {
    pub fn new(inner: Arc<dyn KvStore>) -> AuditingStore {
        AuditingStore { inner }
    }
}

#[async_trait]
impl KvStore for AuditingStore {
    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.inner.get(key).await
    }

    async fn list(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        self.inner.list(prefix, after, limit).await
    }

    async fn txn(&self, mut ops: Vec<Op>) -> Result<u64, StoreError> {
        let pending = PENDING.try_with(Arc::clone).ok();
        let Some((pending, mut entry)) = pending.and_then(|p| p.take_waiting().map(|e| (p, e))) else {
            return self.inner.txn(ops).await;
        };
        entry.committed = true;
        let value = match encode(&entry) {
            Ok(value) => value,
            Err(e) => {
                entry.committed = false;
                pending.set(State::Waiting(entry));
                return Err(e);
            }
        };
        ops.push(Op::Put { key: key::<AuditEntry>(GLOBAL, &entry.id), value, expect: Precondition::Absent });
        match self.inner.txn(ops).await {
            Ok(revision) => {
                pending.set(State::Written { entry, revision });
                Ok(revision)
            }
            Err(e) => {
                entry.committed = false;
                pending.set(State::Waiting(entry));
                Err(e)
            }
        }
    }

    async fn watch(&self, prefix: &str, from: u64) -> Result<WatchStream, StoreError> {
        self.inner.watch(prefix, from).await
    }

    async fn revision(&self) -> Result<u64, StoreError> {
        self.inner.revision().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;
    use kiln_store::EmbeddedStore;

    async fn entries(store: &dyn KvStore) -> Vec<AuditEntry> {
        let page = store.list(&kiln_store::records::prefix::<AuditEntry>(GLOBAL), None, 100).await.unwrap();
        page.entries.iter().map(|e| kiln_store::records::decode(e).unwrap()).collect()
    }

    fn sample() -> AuditEntry {
        entry("alice", "default".into(), &Method::POST, "/v1/images", None, 0)
    }

    #[tokio::test]
    async fn the_entry_commits_with_the_change_and_then_gets_the_status() {
        let dir = tempfile::tempdir().unwrap();
        let raw: Arc<dyn KvStore> = Arc::new(EmbeddedStore::open(&dir.path().join("db")).unwrap());
        let wrapped = AuditingStore::new(raw.clone());
        let handler = async {
            let revision = wrapped.put("thing", b"x".to_vec(), Precondition::Absent).await.unwrap();
            // The change and the entry are one commit.
            let stored = entries(raw.as_ref()).await;
            assert_eq!(stored.len(), 1);
            assert!(stored[0].committed);
            assert_eq!(stored[0].status, 0);
            assert_eq!(raw.get("thing").await.unwrap().unwrap().mod_revision, revision);
            // A second write in the same request does not repeat the entry.
            wrapped.put("other", b"y".to_vec(), Precondition::Absent).await.unwrap();
            axum::http::StatusCode::CREATED.into_response()
        };
        around(raw.as_ref(), sample(), handler).await;
        let stored = entries(raw.as_ref()).await;
        assert_eq!(stored.len(), 1);
        assert_eq!((stored[0].status, stored[0].committed), (201, true));
    }

    #[tokio::test]
    async fn a_refused_write_leaves_the_entry_for_the_answer() {
        let dir = tempfile::tempdir().unwrap();
        let raw: Arc<dyn KvStore> = Arc::new(EmbeddedStore::open(&dir.path().join("db")).unwrap());
        raw.put("thing", b"x".to_vec(), Precondition::Any).await.unwrap();
        let wrapped = AuditingStore::new(raw.clone());
        let handler = async {
            assert!(wrapped.put("thing", b"x".to_vec(), Precondition::Absent).await.is_err());
            assert!(entries(raw.as_ref()).await.is_empty());
            axum::http::StatusCode::CONFLICT.into_response()
        };
        around(raw.as_ref(), sample(), handler).await;
        let stored = entries(raw.as_ref()).await;
        assert_eq!((stored.len(), stored[0].status, stored[0].committed), (1, 409, false));
    }
}
