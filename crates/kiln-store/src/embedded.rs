//! The embedded backend: one redb file under the data directory. redb is pure Rust, ACID,
//! and durable on commit, so no separate database service is needed for a single node.
//! Writes go through one writer thread that commits everything waiting in one fsync
//! (group commit), so many concurrent clients do not each pay for a disk flush.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{broadcast, oneshot};

use crate::kv::{Entry, KvStore, Op, Page, StoreError, WatchEvent, WatchEventKind, WatchStream};

const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Change history for watches, keyed by (revision, index within the commit).
const EVENTS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("events");

const REVISION: &str = "revision";
/// Oldest revision still in EVENTS; a watch from earlier gets `Compacted`.
const OLDEST: &str = "oldest";
/// How many revisions of history watches can replay.
const HISTORY: u64 = 10_000;
/// Most transactions folded into one commit.
const MAX_BATCH: usize = 256;
const HEADER: usize = 24;

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn encode_entry(create: u64, modified: u64, version: u64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + value.len());
    out.extend_from_slice(&create.to_le_bytes());
    out.extend_from_slice(&modified.to_le_bytes());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(value);
    out
}

fn word(bytes: &[u8], at: usize) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(buf)
}

fn decode_entry(key: &str, bytes: &[u8]) -> Result<Entry, StoreError> {
    if bytes.len() < HEADER {
        return Err(StoreError::Corrupt {
            key: key.to_string(),
            message: format!("record of {} bytes is shorter than its header", bytes.len()),
        });
    }
    Ok(Entry {
        key: key.to_string(),
        create_revision: word(bytes, 0),
        mod_revision: word(bytes, 8),
        version: word(bytes, 16),
        value: bytes[HEADER..].to_vec(),
    })
}

/// Event record: kind byte, key length, key, then the entry record (puts) or the revision.
fn encode_event(kind: WatchEventKind, key: &str, record: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + key.len() + record.len());
    out.push(match kind {
        WatchEventKind::Put => 0,
        WatchEventKind::Delete => 1,
    });
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(record);
    out
}

fn decode_event(revision: u64, bytes: &[u8]) -> Result<WatchEvent, StoreError> {
    let corrupt = || StoreError::Corrupt { key: format!("event {revision}"), message: "truncated event record".into() };
    if bytes.len() < 5 {
        return Err(corrupt());
    }
    let mut len = [0u8; 4];
    len.copy_from_slice(&bytes[1..5]);
    let len = u32::from_le_bytes(len) as usize;
    let key = bytes.get(5..5 + len).ok_or_else(corrupt)?;
    let key = std::str::from_utf8(key).map_err(|_| corrupt())?;
    let rest = &bytes[5 + len..];
    match bytes[0] {
        0 => Ok(WatchEvent { kind: WatchEventKind::Put, entry: decode_entry(key, rest)? }),
        _ => Ok(WatchEvent {
            kind: WatchEventKind::Delete,
            entry: Entry {
                key: key.to_string(),
                value: Vec::new(),
                create_revision: 0,
                mod_revision: revision,
                version: 0,
            },
        }),
    }
}

struct Request {
    ops: Vec<Op>,
    reply: oneshot::Sender<Result<u64, StoreError>>,
}

/// The embedded store. Cheap to clone; all clones share one database.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    writer: std_mpsc::Sender<Request>,
    events: broadcast::Sender<Arc<Vec<WatchEvent>>>,
    writer_thread: Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl EmbeddedStore {
    /// Opens (or creates) the store file at `path`.
    pub fn open(path: &Path) -> Result<EmbeddedStore, StoreError> {
        let db = Arc::new(Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse(path.display().to_string()),
            e => StoreError::Backend(format!("cannot open {}: {e}", path.display())),
        })?);
        let txn = db.begin_write().map_err(backend)?;
        {
            txn.open_table(KV).map_err(backend)?;
            txn.open_table(EVENTS).map_err(backend)?;
            let mut meta = txn.open_table(META).map_err(backend)?;
            if meta.get(OLDEST).map_err(backend)?.is_none() {
                meta.insert(OLDEST, 1).map_err(backend)?;
            }
        }
        txn.commit().map_err(backend)?;
        let (writer, queue) = std_mpsc::channel::<Request>();
        let (events, _) = broadcast::channel(1024);
        let thread = std::thread::Builder::new()
            .name("kiln-store-writer".into())
            .spawn({
                let db = db.clone();
                let events = events.clone();
                move || write_loop(&db, &queue, &events)
            })
            .map_err(backend)?;
        Ok(EmbeddedStore { db, writer, events, writer_thread: Arc::new(std::sync::Mutex::new(Some(thread))) })
    }

    /// Closes the database once this is the last handle: waits for the writer to finish
    /// what it was given, so the file can be opened again at once (by a restarted server).
    pub fn close(self) {
        let thread = self.writer_thread.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        drop(self);
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    fn read_revision(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let meta = txn.open_table(META).map_err(backend)?;
        Ok(meta.get(REVISION).map_err(backend)?.map(|v| v.value()).unwrap_or(0))
    }
}

fn write_loop(db: &Database, queue: &std_mpsc::Receiver<Request>, events: &broadcast::Sender<Arc<Vec<WatchEvent>>>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let ops: Vec<Vec<Op>> = batch.iter_mut().map(|r| std::mem::take(&mut r.ops)).collect();
        match commit_batch(db, ops) {
            Ok((outcomes, changes)) => {
                if !changes.is_empty() {
                    // Nobody watching is fine: history in EVENTS serves later watchers.
                    let _ = events.send(Arc::new(changes));
                }
                for (request, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = request.reply.send(outcome);
                }
            }
            Err(e) => {
                for request in batch {
                    let _ = request.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

type Outcomes = (Vec<Result<u64, StoreError>>, Vec<WatchEvent>);

/// Applies each transaction of the batch in order inside one redb commit. A transaction
/// whose precondition fails is skipped whole and the others still apply.
fn commit_batch(db: &Database, batch: Vec<Vec<Op>>) -> Result<Outcomes, StoreError> {
    let txn = db.begin_write().map_err(backend)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut changes = Vec::new();
    {
        let mut kv = txn.open_table(KV).map_err(backend)?;
        let mut meta = txn.open_table(META).map_err(backend)?;
        let mut history = txn.open_table(EVENTS).map_err(backend)?;
        let mut revision = meta.get(REVISION).map_err(backend)?.map(|v| v.value()).unwrap_or(0);
        for ops in batch {
            match check_preconditions(&kv, &ops) {
                Err(e) => outcomes.push(Err(e)),
                Ok(current) => {
                    revision += 1;
                    for (index, (op, existing)) in ops.into_iter().zip(current).enumerate() {
                        let event = match op {
                            Op::Check { .. } => continue,
                            Op::Put { key, value, .. } => {
                                let (create, version) = existing.map_or((revision, 1), |(c, _, v)| (c, v + 1));
                                let record = encode_entry(create, revision, version, &value);
                                kv.insert(key.as_str(), record.as_slice()).map_err(backend)?;
                                history
                                    .insert(
                                        (revision, index as u32),
                                        encode_event(WatchEventKind::Put, &key, &record).as_slice(),
                                    )
                                    .map_err(backend)?;
                                WatchEvent {
                                    kind: WatchEventKind::Put,
                                    entry: Entry {
                                        key,
                                        value,
                                        create_revision: create,
                                        mod_revision: revision,
                                        version,
                                    },
                                }
                            }
                            Op::Delete { key, .. } => {
                                if existing.is_none() {
                                    continue;
                                }
                                kv.remove(key.as_str()).map_err(backend)?;
                                history
                                    .insert(
                                        (revision, index as u32),
                                        encode_event(WatchEventKind::Delete, &key, &[]).as_slice(),
                                    )
                                    .map_err(backend)?;
                                WatchEvent {
                                    kind: WatchEventKind::Delete,
                                    entry: Entry {
                                        key,
                                        value: Vec::new(),
                                        create_revision: 0,
                                        mod_revision: revision,
                                        version: 0,
                                    },
                                }
                            }
                        };
                        changes.push(event);
                    }
                    outcomes.push(Ok(revision));
                }
            }
        }
        meta.insert(REVISION, revision).map_err(backend)?;
        let oldest = meta.get(OLDEST).map_err(backend)?.map(|v| v.value()).unwrap_or(1);
        if revision > HISTORY && revision - HISTORY > oldest {
            let keep_from = revision - HISTORY;
            history.retain_in((oldest, 0)..(keep_from, 0), |_, _| false).map_err(backend)?;
            meta.insert(OLDEST, keep_from).map_err(backend)?;
        }
    }
    txn.commit().map_err(backend)?;
    Ok((outcomes, changes))
}

/// (create_revision, mod_revision, version) of each op's key, if it exists.
type Current = Option<(u64, u64, u64)>;

fn check_preconditions(kv: &redb::Table<&str, &[u8]>, ops: &[Op]) -> Result<Vec<Current>, StoreError> {
    let mut current = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        if ops[..i].iter().any(|earlier| earlier.key() == op.key()) {
            return Err(StoreError::Invalid(format!("key {} appears twice in one transaction", op.key())));
        }
        let found = kv.get(op.key()).map_err(backend)?.map(|g| {
            let bytes = g.value();
            if bytes.len() < HEADER { (0, 0, 0) } else { (word(bytes, 0), word(bytes, 8), word(bytes, 16)) }
        });
        if !op.expect().holds(found.map(|f| f.1)) {
            return Err(StoreError::Conflict {
                key: op.key().to_string(),
                expected: op.expect(),
                actual: found.map(|f| f.1),
            });
        }
        current.push(found);
    }
    Ok(current)
}

#[async_trait]
impl KvStore for EmbeddedStore {
    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let kv = txn.open_table(KV).map_err(backend)?;
        match kv.get(key).map_err(backend)? {
            Some(guard) => Ok(Some(decode_entry(key, guard.value())?)),
            None => Ok(None),
        }
    }

    async fn list(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let meta = txn.open_table(META).map_err(backend)?;
        let revision = meta.get(REVISION).map_err(backend)?.map(|v| v.value()).unwrap_or(0);
        let kv = txn.open_table(KV).map_err(backend)?;
        let start = match after {
            Some(after) if after >= prefix => after,
            _ => prefix,
        };
        let mut entries = Vec::new();
        let mut next = None;
        for item in kv.range::<&str>(start..).map_err(backend)? {
            let (key, value) = item.map_err(backend)?;
            let key = key.value();
            if !key.starts_with(prefix) {
                break;
            }
            if Some(key) == after {
                continue;
            }
            if entries.len() == limit {
                next = entries.last().map(|e: &Entry| e.key.clone());
                break;
            }
            entries.push(decode_entry(key, value.value())?);
        }
        Ok(Page { entries, next, revision })
    }

    async fn txn(&self, ops: Vec<Op>) -> Result<u64, StoreError> {
        if ops.is_empty() {
            return Err(StoreError::Invalid("a transaction needs at least one operation".into()));
        }
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(Request { ops, reply })
            .map_err(|_| StoreError::Backend("the store writer has stopped".into()))?;
        answer.await.map_err(|_| StoreError::Backend("the store writer has stopped".into()))?
    }

    async fn watch(&self, prefix: &str, from: u64) -> Result<WatchStream, StoreError> {
        // Subscribe before reading history so no commit falls between the two.
        let mut live = self.events.subscribe();
        let current = self.read_revision()?;
        let from = if from == 0 { current + 1 } else { from };
        let mut replay = Vec::new();
        {
            let txn = self.db.begin_read().map_err(backend)?;
            let meta = txn.open_table(META).map_err(backend)?;
            let oldest = meta.get(OLDEST).map_err(backend)?.map(|v| v.value()).unwrap_or(1);
            if from < oldest {
                return Err(StoreError::Compacted { requested: from, oldest });
            }
            let history = txn.open_table(EVENTS).map_err(backend)?;
            for item in history.range((from, 0)..).map_err(backend)? {
                let (key, value) = item.map_err(backend)?;
                let event = decode_event(key.value().0, value.value())?;
                if event.entry.key.starts_with(prefix) {
                    replay.push(event);
                }
            }
        }
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let prefix = prefix.to_string();
        tokio::spawn(async move {
            let mut seen = current.max(from.saturating_sub(1));
            for event in replay {
                seen = seen.max(event.entry.mod_revision);
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            loop {
                match live.recv().await {
                    Ok(batch) => {
                        for event in batch.iter() {
                            if event.entry.mod_revision > seen
                                && event.entry.key.starts_with(&prefix)
                                && tx.send(Ok(event.clone())).await.is_err()
                            {
                                return;
                            }
                        }
                        if let Some(last) = batch.last() {
                            seen = seen.max(last.entry.mod_revision);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let _ = tx.send(Err(StoreError::Lagged)).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(rx)
    }

    async fn revision(&self) -> Result<u64, StoreError> {
        self.read_revision()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passes_the_store_contract() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln.redb");
        crate::testkit::run_contract(|| EmbeddedStore::open(&path).unwrap()).await;
    }

    #[tokio::test]
    async fn data_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln.redb");
        let revision = {
            let store = EmbeddedStore::open(&path).unwrap();
            let revision = store.put("a", b"1".to_vec(), crate::Precondition::Absent).await.unwrap();
            store.close();
            revision
        };
        let store = EmbeddedStore::open(&path).expect("store reopens at once after close");
        let entry = store.get("a").await.unwrap().unwrap();
        assert_eq!((entry.value.as_slice(), entry.mod_revision), (b"1".as_slice(), revision));
    }

    #[tokio::test]
    async fn a_held_store_is_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln.redb");
        let store = EmbeddedStore::open(&path).unwrap();
        let second = EmbeddedStore::open(&path);
        assert!(matches!(second, Err(StoreError::InUse(_))), "{:?}", second.err());
        store.close();
        assert!(EmbeddedStore::open(&path).is_ok(), "free again once closed");
    }
}
