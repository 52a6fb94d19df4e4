//! The playbook model. [`load`] reads a playbook file (and its roles,
//! `import_tasks`/`include_tasks` files and `vars_files`) into [`Playbook`]:
//! plays with flattened task lists where blocks, roles and includes are
//! already expanded, each task knowing its file, line, block membership and
//! inherited keywords. Templates inside tasks stay unrendered: they are
//! resolved per host by the executor.

mod load;
mod task;

pub use load::load_playbook;

use serde_json::Value;
use std::path::PathBuf;

use crate::vars::Vars;

/// Errors in the playbook itself; each names file and line.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Yaml(#[from] crate::yaml::YamlError),
    #[error("{file}: cannot read: {reason}")]
    Io { file: PathBuf, reason: String },
    #[error("{file}:{line}: {message}")]
    At {
        file: PathBuf,
        line: usize,
        message: String,
    },
}

/// Where something was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// Which part of a block a task belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    Main,
    Rescue,
    Always,
}

/// Membership of a task in one (possibly nested) block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockRef {
    /// Playbook-wide block number.
    pub id: usize,
    pub section: Section,
    /// Whether the block has a rescue section.
    pub has_rescue: bool,
}

/// A dependency named with `after:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After {
    /// A task `id` of the same host.
    Task(String),
    /// A task `id` on every host of a pattern.
    Hosts { task: String, hosts: String },
}

/// A role the task came from.
#[derive(Debug, Clone, Default)]
pub struct RoleInfo {
    pub name: String,
    pub dir: PathBuf,
    pub defaults: Vars,
    pub vars: Vars,
    /// `vars:` given where the play lists the role (role params).
    pub params: Vars,
}

/// One task (or handler), after blocks/roles/includes were flattened.
#[derive(Debug, Clone, Default)]
pub struct Task {
    /// Display name (`name:`, else the module name and its arguments).
    pub name: String,
    pub origin: Origin,
    /// drover's own task id (`id:`), for `after:`.
    pub id: Option<String>,
    pub after: Vec<After>,
    /// Canonical module name (or `meta`).
    pub module: String,
    /// Raw arguments (object); a free form string is under `_raw_params`.
    pub args: Value,
    /// All conditions that must hold (inherited from blocks/roles first).
    pub when: Vec<String>,
    pub loop_: Option<Value>,
    pub loop_var: String,
    pub index_var: Option<String>,
    pub loop_label: Option<String>,
    pub register: Option<String>,
    pub notify: Vec<String>,
    pub tags: Vec<String>,
    pub changed_when: Option<Vec<String>>,
    pub failed_when: Option<Vec<String>>,
    pub ignore_errors: bool,
    pub retries: Option<u32>,
    pub until: Option<Vec<String>>,
    pub delay: u64,
    pub delegate_to: Option<String>,
    pub run_once: bool,
    pub become_: Option<bool>,
    pub become_user: Option<String>,
    pub become_flags: Option<String>,
    pub check_mode: Option<bool>,
    pub diff: Option<bool>,
    pub no_log: bool,
    pub timeout: Option<u64>,
    pub environment: Vars,
    /// Block and task `vars:` (merged, inner wins).
    pub vars: Vars,
    pub blocks: Vec<BlockRef>,
    pub role: Option<std::sync::Arc<RoleInfo>>,
    /// Handlers: extra names this handler answers to.
    pub listen: Vec<String>,
}

/// One play.
#[derive(Debug, Clone, Default)]
pub struct Play {
    pub name: String,
    pub origin: Origin,
    pub hosts: String,
    pub vars: Vars,
    /// Variables read from `vars_files`, in order.
    pub vars_files: Vars,
    pub gather_facts: bool,
    pub become_: bool,
    pub become_user: Option<String>,
    /// Batch sizes (`serial:`); empty = all hosts at once.
    pub serial: Vec<Serial>,
    pub any_errors_fatal: bool,
    pub max_fail_percentage: Option<f64>,
    /// `strategy: linear` restores a barrier after every task.
    pub linear: bool,
    pub tags: Vec<String>,
    pub tasks: Vec<Task>,
    pub handlers: Vec<Task>,
    pub dir: PathBuf,
}

/// A `serial:` batch size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Serial {
    Count(usize),
    Percent(f64),
}

/// A whole playbook.
#[derive(Debug, Clone, Default)]
pub struct Playbook {
    pub file: PathBuf,
    pub dir: PathBuf,
    pub plays: Vec<Play>,
}

/// Keywords of a task that are not module names.
pub const TASK_KEYWORDS: &[&str] = &[
    "name",
    "id",
    "after",
    "when",
    "loop",
    "with_items",
    "with_list",
    "loop_control",
    "register",
    "notify",
    "tags",
    "changed_when",
    "failed_when",
    "ignore_errors",
    "retries",
    "until",
    "delay",
    "delegate_to",
    "run_once",
    "become",
    "become_user",
    "become_method",
    "become_flags",
    "check_mode",
    "diff",
    "no_log",
    "vars",
    "args",
    "environment",
    "timeout",
    "listen",
    "block",
    "rescue",
    "always",
    "debugger",
    "any_errors_fatal",
    "connection",
    "remote_user",
    "throttle",
    "collections",
    "module_defaults",
    "ignore_unreachable",
    "local_action",
    "delegate_facts",
];
