//! Kiln's metadata store: a small key/value contract with revisions, transactions, prefix
//! listing and watches, an embedded backend, and the typed records built on top of it.
//! Everything above this crate sees only the [`KvStore`] trait, so a second backend (etcd)
//! can serve several replicas without the server changing.

mod embedded;
mod kv;
pub mod records;
pub mod testkit;
mod versioned;

pub use embedded::EmbeddedStore;
pub use kv::{Entry, KvStore, Op, Page, Precondition, StoreError, WatchEvent, WatchEventKind, WatchStream};
