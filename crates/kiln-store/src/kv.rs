//! The key/value contract every metadata backend implements.

use async_trait::async_trait;

/// A stored key and its bookkeeping. Revisions are global and grow with every commit;
/// `mod_revision` is the revision of the commit that last wrote the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: Vec<u8>,
    pub create_revision: u64,
    pub mod_revision: u64,
    /// How many times the key was written since it was created.
    pub version: u64,
}

/// What must hold for a write to go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    Any,
    /// The key must not exist (create).
    Absent,
    /// The key must exist.
    Present,
    /// The key must exist with exactly this `mod_revision` (optimistic concurrency).
    Revision(u64),
}

impl Precondition {
    pub fn holds(self, current: Option<u64>) -> bool {
        match self {
            Precondition::Any => true,
            Precondition::Absent => current.is_none(),
            Precondition::Present => current.is_some(),
            Precondition::Revision(r) => current == Some(r),
        }
    }
}

/// One step of a transaction; every precondition is checked before anything is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put {
        key: String,
        value: Vec<u8>,
        expect: Precondition,
    },
    Delete {
        key: String,
        expect: Precondition,
    },
    /// Writes nothing; fails the transaction unless the precondition holds.
    Check {
        key: String,
        expect: Precondition,
    },
}

impl Op {
    pub fn key(&self) -> &str {
        match self {
            Op::Put { key, .. } | Op::Delete { key, .. } | Op::Check { key, .. } => key,
        }
    }
    pub fn expect(&self) -> Precondition {
        match self {
            Op::Put { expect, .. } | Op::Delete { expect, .. } | Op::Check { expect, .. } => *expect,
        }
    }
}

/// One page of a prefix listing, in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub entries: Vec<Entry>,
    /// Pass as `after` to get the next page; `None` on the last page.
    pub next: Option<String>,
    /// The store revision the page was read at.
    pub revision: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEventKind {
    Put,
    Delete,
}

/// A change seen by a watch. For a delete, `entry.value` is empty and `mod_revision` is the
/// revision of the delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: WatchEventKind,
    pub entry: Entry,
}

/// Changes in revision order; an `Err` ends the stream (re-list and watch again).
pub type WatchStream = tokio::sync::mpsc::Receiver<Result<WatchEvent, StoreError>>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("{key} does not satisfy {expected:?}: its revision is {actual:?}")]
    Conflict { key: String, expected: Precondition, actual: Option<u64> },
    #[error("revision {requested} is no longer kept; the oldest revision a watch can start from is {oldest}")]
    Compacted { requested: u64, oldest: u64 },
    #[error("the watch fell too far behind; list again and watch from the listed revision")]
    Lagged,
    #[error("stored value of {key} cannot be read: {message}")]
    Corrupt { key: String, message: String },
    #[error("invalid request to the store: {0}")]
    Invalid(String),
    #[error("store backend failed: {0}")]
    Backend(String),
    /// Another process holds the store (the embedded backend's file lock): callers that
    /// must not run beside a server, such as offline administration, say so.
    #[error("{0} is in use by another process")]
    InUse(String),
}

/// The metadata store contract. Every write that returns `Ok` is durable.
#[async_trait]
pub trait KvStore: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError>;

    /// Writes `value` if `expect` holds; returns the new revision.
    async fn put(&self, key: &str, value: Vec<u8>, expect: Precondition) -> Result<u64, StoreError> {
        self.txn(vec![Op::Put { key: key.to_string(), value, expect }]).await
    }

    /// Deletes `key` if `expect` holds; returns the revision of the delete, or `None` if
    /// there was nothing to delete.
    async fn delete(&self, key: &str, expect: Precondition) -> Result<Option<u64>, StoreError> {
        match self.get(key).await? {
            None if expect.holds(None) => Ok(None),
            None => Err(StoreError::Conflict { key: key.to_string(), expected: expect, actual: None }),
            Some(_) => self.txn(vec![Op::Delete { key: key.to_string(), expect }]).await.map(Some),
        }
    }

    /// Keys starting with `prefix` and sorting after `after`, at most `limit` of them.
    async fn list(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Page, StoreError>;

    /// Applies all `ops` atomically at one new revision, or none of them if any
    /// precondition fails (the error names the first key that failed).
    async fn txn(&self, ops: Vec<Op>) -> Result<u64, StoreError>;

    /// Changes to keys under `prefix` from revision `from` on (0: from now).
    async fn watch(&self, prefix: &str, from: u64) -> Result<WatchStream, StoreError>;

    /// The revision of the newest commit.
    async fn revision(&self) -> Result<u64, StoreError>;
}
