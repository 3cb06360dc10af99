//! The audit log: every mutation, allowed or refused, with who, what, when, from where and
//! the answer's status. Never the token, never a body.

use axum::http::Method;
use chrono::Utc;

use kiln_model::auth::AuditEntry;
use kiln_store::records::{GLOBAL, encode, key};
use kiln_store::{KvStore, Precondition};

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
