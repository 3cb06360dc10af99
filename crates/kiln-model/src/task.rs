//! Long-running work (image builds, bootstrap of root images) as a stored object, so that
//! progress, logs, cancellation and recovery after a crash all go through one record.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a task does; each kind has one runner in the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TaskKind {
    /// Builds an image from its definition and pushes it to the built-in registry.
    BuildImage,
    /// Assembles a language's root image from OS packages and registers it as a base image.
    Bootstrap,
    /// Composes a function's image again over its runtime image's new build.
    ComposeFunction,
    /// Makes an image's debug variant: the image plus a busybox layer, tagged `<tag>-debug`.
    DebugImage,
}

impl TaskKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::BuildImage => "build-image",
            TaskKind::Bootstrap => "bootstrap",
            TaskKind::ComposeFunction => "compose-function",
            TaskKind::DebugImage => "debug-image",
        }
    }
}

/// `queued → running → succeeded | failed | cancelled`; a running task whose lease lapses
/// (its process died) is queued again by whichever worker notices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    #[default]
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Queued => "queued",
            TaskState::Running => "running",
            TaskState::Succeeded => "succeeded",
            TaskState::Failed => "failed",
            TaskState::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<TaskState> {
        [TaskState::Queued, TaskState::Running, TaskState::Succeeded, TaskState::Failed, TaskState::Cancelled]
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text))
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, TaskState::Succeeded | TaskState::Failed | TaskState::Cancelled)
    }
}

/// Where the work is: the current step and, while bytes move, how many of how many.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub step: String,
    #[serde(default)]
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<u64>,
    /// 0–100 over the whole task.
    #[serde(default)]
    pub percent: u8,
}

/// A task. Every field is server-owned; clients create tasks only through the objects they
/// act on (creating an image starts its build) and may cancel them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: String,
    pub organization: String,
    pub kind: TaskKind,
    /// The object the task acts on, such as the image's name.
    pub target: String,
    /// Kind-specific input, fixed when the task is created.
    #[serde(default)]
    pub params: serde_json::Value,
    pub state: TaskState,
    #[serde(default)]
    pub attempts: u32,
    pub max_attempts: u32,
    /// The worker holding the task while it runs: `<node>/<process start>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_expires: Option<DateTime<Utc>>,
    /// Not to be started before this time (backoff after a failed attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
    /// Work running longer than this fails; 0 means no limit.
    pub timeout_seconds: u64,
    #[serde(default)]
    pub cancel_requested: bool,
    #[serde(default)]
    pub progress: Progress,
    /// Lines written to the log so far.
    #[serde(default)]
    pub log_lines: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_time: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
}

/// One line of a task's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    pub seq: u64,
    pub time: DateTime<Utc>,
    pub line: String,
}
