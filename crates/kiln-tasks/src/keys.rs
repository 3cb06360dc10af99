//! Where tasks keep their bookkeeping besides the task record itself.

/// One key per unfinished task, so workers scan only live work, not the whole history.
pub fn queue_key(id: &str) -> String {
    format!("task-queue/{id}")
}

pub fn log_prefix(org: &str, id: &str) -> String {
    format!("task-logs/{org}/{id}/")
}

/// Zero-padded so the store's key order is the log's order.
pub fn log_key(org: &str, id: &str, seq: u64) -> String {
    format!("task-logs/{org}/{id}/{seq:010}")
}
