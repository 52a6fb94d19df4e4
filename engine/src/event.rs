//! Events: everything the engine has to say while it runs. The library never
//! prints; a [`Reporter`] (the CLI's) turns events into lines, progress bars
//! or NDJSON.

use serde::Serialize;
use std::collections::BTreeMap;

/// The outcome of one (task, host) node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Changed,
    Failed,
    Skipped,
    Unreachable,
}

/// A content diff shown with `--diff`.
#[derive(Debug, Clone, Serialize)]
pub struct DiffText {
    pub label: String,
    pub before: String,
    pub after: String,
}

/// Counts per host for the recap.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct HostRecap {
    pub ok: u32,
    pub changed: u32,
    pub failed: u32,
    pub skipped: u32,
    pub unreachable: u32,
    pub rescued: u32,
    pub ignored: u32,
}

/// Something that happened.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    PlayStart {
        play: String,
        hosts: Vec<String>,
        nodes: usize,
    },
    TaskStart {
        play: String,
        task: String,
        host: String,
    },
    TaskDone(Box<TaskResult>),
    Warning {
        message: String,
    },
    PlayEnd {
        play: String,
    },
    Recap {
        hosts: BTreeMap<String, HostRecap>,
        elapsed_ms: u128,
    },
}

/// The result of one (task, host) node, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct TaskResult {
    pub play: String,
    pub task: String,
    pub host: String,
    pub status: Status,
    /// Check mode: the change is predicted, not made.
    pub check: bool,
    /// A command whose effect is unknown until it runs ("would run").
    pub would_run: bool,
    /// The loop item, when the task loops.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<serde_json::Value>,
    /// Summaries of the changes (made or predicted).
    pub changes: Vec<String>,
    /// Diffs, only filled with `--diff` and never for `no_log` tasks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diffs: Vec<DiffText>,
    /// Failure or skip reason, or the module's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg: Option<String>,
    pub ignored: bool,
    pub elapsed_ms: u128,
    /// Extra output for `debug` and `-v` (command stdout etc.).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
}

/// Receives events. Implementations must be cheap: they are called from the
/// executor's tasks.
pub trait Reporter: Send + Sync {
    fn event(&self, e: &Event);
}

/// A reporter that collects events (tests, library users).
#[derive(Default)]
pub struct Collect(pub std::sync::Mutex<Vec<Event>>);

impl Reporter for Collect {
    fn event(&self, e: &Event) {
        if let Ok(mut v) = self.0.lock() {
            v.push(e.clone());
        }
    }
}
