//! The module contract. A module turns templated arguments into an
//! [`Action`]; the action names the read-only [`Probe`]s it needs, and from
//! their results plans a list of [`Change`]s, each carrying the [`Step`]s that
//! would make it. Only the engine runs steps, and only outside check mode, so
//! no module ever looks at a check-mode flag.
//!
//! Modules also declare their parameters ([`Param`]), which lets the engine
//! reject unknown or mistyped arguments before any host is touched.

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Arguments of one task after templating, as a JSON object.
pub type Args = Map<String, Value>;

/// What a parameter accepts; used for the pre-flight check of raw arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Any string (numbers and booleans are accepted and stringified).
    Str,
    /// Ansible truthiness: true/false/yes/no/on/off/1/0.
    Bool,
    Int,
    /// A file mode: octal string (`"0644"`), number or symbolic (`u+rwx`).
    Mode,
    /// A list, or a single scalar meaning a one-element list.
    List,
    Map,
    Any,
}

/// One declared parameter of a module.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
    /// Allowed literal values (e.g. `state`), empty = any.
    pub choices: &'static [&'static str],
    /// Other names accepted for this parameter (Ansible aliases, e.g. `dest` for `path`).
    pub aliases: &'static [&'static str],
}

impl Param {
    pub const fn new(name: &'static str, kind: Kind) -> Self {
        Param {
            name,
            kind,
            required: false,
            choices: &[],
            aliases: &[],
        }
    }
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub const fn choices(mut self, c: &'static [&'static str]) -> Self {
        self.choices = c;
        self
    }
    pub const fn aliases(mut self, a: &'static [&'static str]) -> Self {
        self.aliases = a;
        self
    }
}

/// Errors a module reports. The engine adds file, line, task and host.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ModuleError {
    #[error("unknown argument `{name}` (accepted: {accepted})")]
    UnknownArg { name: String, accepted: String },
    #[error("missing required argument `{0}`")]
    MissingArg(String),
    #[error("argument `{name}`: {message} (got {value})")]
    BadArg {
        name: String,
        value: String,
        message: String,
    },
    #[error("argument `{name}` must be one of {choices} (got `{value}`)")]
    BadChoice {
        name: String,
        value: String,
        choices: String,
    },
    #[error("{0}")]
    Failed(String),
    #[error("probe result missing or malformed: {0}")]
    Probe(String),
    /// What the task manages does not exist on the host (a service without a
    /// unit or init script). Check mode reports it as a predicted change when
    /// an earlier task on the host would have changed it (a package install
    /// that would provide it); otherwise it fails like `Failed`.
    #[error("{0}")]
    Absent(String),
}

/// Context a module may use while preparing an action for one host.
pub trait TaskContext: Send + Sync {
    /// Variables visible to this task on this host (a JSON object).
    fn vars(&self) -> &Value;
    /// Render a handlebars template with the task's variables.
    fn render(&self, template: &str) -> Result<String, ModuleError>;
    /// Evaluate a `when:`-style condition with the task's variables.
    fn condition(&self, expr: &str) -> Result<bool, ModuleError>;
    /// Find a controller-side file (`kind` is "files" or "templates"): looks in
    /// the role's folder, then beside the playbook; absolute paths as given.
    fn find_file(&self, kind: &str, name: &str) -> Result<PathBuf, ModuleError>;
    /// Name of the host the task runs for.
    fn host(&self) -> &str;
    /// Folder of the playbook, for controller paths given relative (fetch's
    /// `dest`, as Ansible's `path_dwim`); None when unknown.
    fn playbook_dir(&self) -> Option<PathBuf> {
        None
    }
}

/// A module: a name, its parameters, and a way to build an action.
pub trait Module: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Other names, besides `ansible.builtin.<name>` which is always accepted.
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }
    fn params(&self) -> &'static [Param];
    /// Accepts a free-form string (`command: ls -l`, `shell: ...`), given as `_raw_params`.
    fn free_form(&self) -> bool {
        false
    }
    /// True when the action never touches the host (debug, set_fact, assert, fail).
    fn controller_only(&self) -> bool {
        false
    }
    /// Build the action for one host from templated arguments.
    fn prepare(&self, args: &Args, ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError>;
}

/// A prepared module invocation for one host.
pub trait Action: Send + Sync {
    /// Read-only observations the plan needs. The engine runs them (batched in
    /// one round trip) and hands the results to [`Action::plan`] in order.
    fn probes(&self) -> Vec<Probe> {
        Vec::new()
    }
    /// Read-only observations made from the controller over TCP ports of
    /// the host (a service's own protocol, e.g. ZooKeeper's). They run after
    /// [`Action::probes`], also in check mode; each result is an
    /// [`Observed::Remote`] appended, in order, after the probes' results.
    fn remote_probes(&self) -> Vec<Arc<dyn RemoteProbe>> {
        Vec::new()
    }
    /// Pure: from observations to a plan. Must not perform I/O.
    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError>;
    /// Called once after the plan's steps ran (never in check mode) with the
    /// outputs of its capturing `Step::Exec`s, in order: a module whose
    /// result comes from a step (uri's status of a POST, get_url's checksum)
    /// reads it here, may edit the result and may fail the task. Pure.
    fn after_apply(
        &self,
        _captured: &[ExecOutput],
        _result: &mut Map<String, Value>,
    ) -> Result<(), ModuleError> {
        Ok(())
    }
    /// True when its plan reads of a file's `Stat` only the kind, mode,
    /// size and link target (owner and group only when it sets them; never
    /// uid, gid, inode, device or link count). The engine may then plan it
    /// ahead of its turn from what an earlier write to the same file left
    /// there, instead of probing the host again (`exec::derive`).
    fn plans_on_written_state(&self) -> bool {
        false
    }
    /// True when the probes and steps run on the controller (local
    /// connection, no become) instead of on the task's host: `synchronize`
    /// runs the controller's `rsync` that talks to the host over ssh.
    fn on_controller(&self) -> bool {
        false
    }
}

/// A TCP endpoint as the host sees it (`127.0.0.1:2181` is the host's own
/// port). The engine forwards it through the host's connection and hands
/// the remote probe or step a controller-side address for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// A port of the host itself.
    pub fn local(port: u16) -> Self {
        Endpoint {
            host: "127.0.0.1".into(),
            port,
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// A read-only observation the engine runs on the controller, with each of
/// [`RemoteProbe::targets`] forwarded to a local address (same order).
#[async_trait::async_trait]
pub trait RemoteProbe: Send + Sync + std::fmt::Debug {
    fn targets(&self) -> Vec<Endpoint>;
    /// Observe; the error fails the task (the engine adds the host).
    async fn observe(&self, addrs: &[SocketAddr]) -> Result<Value, String>;
}

/// An effect the engine applies from the controller through forwarded
/// ports, only outside check mode (as every [`Step`]).
#[async_trait::async_trait]
pub trait RemoteStep: Send + Sync {
    fn targets(&self) -> Vec<Endpoint>;
    /// One line for fixtures and logs, e.g. `zk 127.0.0.1:2181 create /a`.
    fn describe(&self) -> String;
    async fn apply(&self, addrs: &[SocketAddr]) -> Result<RemoteOutcome, String>;
}

/// What a [`RemoteStep`] did. `changed: false` (a step that only waited)
/// makes the task ok instead of changed when all its steps say so.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemoteOutcome {
    pub changed: bool,
    /// Merged into the task's result (`register`).
    pub result: Map<String, Value>,
}

/// A [`RemoteStep`] inside a [`Step`]; compared and printed by its description.
#[derive(Clone)]
pub struct Remote(pub Arc<dyn RemoteStep>);

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Remote({})", self.0.describe())
    }
}

impl PartialEq for Remote {
    fn eq(&self, other: &Self) -> bool {
        self.0.describe() == other.0.describe()
    }
}

/// A read-only observation on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// `lstat` (or `stat` when `follow`) of a path.
    Stat { path: String, follow: bool },
    /// The whole content of a file (None if absent).
    Read { path: String },
    /// Run a read-only command (argv, never a shell line with values pasted in).
    Exec { argv: Vec<String> },
    /// As `Exec`, with exactly these bytes on the command's stdin. They travel
    /// on the channel's stdin, never in the script text (argv), so they may
    /// carry a secret (e.g. a client option file with a password).
    ExecStdin { argv: Vec<String>, stdin: Vec<u8> },
}

/// Kind of filesystem object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    File,
    Directory,
    Link,
    Other,
}

/// Result of a [`Probe::Stat`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileStat {
    pub kind: FileKind,
    /// Permission bits, e.g. 0o644.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub owner: String,
    pub group: String,
    pub size: u64,
    /// Target of a symlink.
    pub link_target: Option<String>,
    /// Inode number and device, to recognise hard links.
    pub inode: u64,
    pub dev: u64,
    pub nlink: u64,
}

/// Output of a command on the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// None when the exit status is unknown (connection lost, signal).
    pub status: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Result of one probe, in the same order as the probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    Stat(Option<FileStat>),
    Content(Option<Vec<u8>>),
    Exec(ExecOutput),
    /// Result of a [`RemoteProbe`].
    Remote(Value),
}

/// What a module decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Changes to make; empty means the host is already as wanted.
    pub changes: Vec<Change>,
    /// Why nothing needs to change (shown with `-v`), or a note on the plan.
    pub reason: Option<String>,
    /// Module-specific fields for `register` (e.g. `stat`, `msg`, `content`).
    pub result: Map<String, Value>,
    /// Facts to set on the host (`set_fact`); the engine merges them.
    pub facts: Map<String, Value>,
    /// For modules whose change is not knowable before running (command,
    /// shell): check mode reports "would run" instead of "would change".
    pub unknown_until_run: bool,
    /// The observation itself is a failure (uri's unexpected status,
    /// wait_for's timeout): the task fails with this message but keeps
    /// `result`, so `register`, `until` and `failed_when` can look at it.
    pub failed: Option<String>,
}

impl Plan {
    pub fn unchanged(reason: impl Into<String>) -> Self {
        Plan {
            reason: Some(reason.into()),
            ..Default::default()
        }
    }
    pub fn is_change(&self) -> bool {
        !self.changes.is_empty()
    }
}

/// One change: a human summary, an optional content diff, and the steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub summary: String,
    pub diff: Option<Diff>,
    pub steps: Vec<Step>,
}

impl Change {
    pub fn new(summary: impl Into<String>, steps: Vec<Step>) -> Self {
        Change {
            summary: summary.into(),
            diff: None,
            steps,
        }
    }
    pub fn with_diff(mut self, diff: Diff) -> Self {
        self.diff = Some(diff);
        self
    }
}

/// Before/after text of something that changes (file content, state words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    /// What is compared, e.g. a path, or "state" for a non-content change.
    pub label: String,
    pub before: String,
    pub after: String,
}

/// An effect on the host. Only the engine runs steps.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Run a command. Its output becomes `rc`/`stdout`/`stderr` of the result
    /// when `capture` is set (command, shell). A non-zero exit fails the task
    /// unless `allow_fail` is set.
    Exec {
        argv: Vec<String>,
        stdin: Option<Vec<u8>>,
        cwd: Option<String>,
        env: BTreeMap<String, String>,
        capture: bool,
        allow_fail: bool,
    },
    /// Atomically write a file: temp file in the same directory (0600 while in
    /// flight), `validate` run on it (`%s` = temp path), then owner/mode set
    /// and renamed over `path`. With `backup`, the old file is kept as
    /// `path.<timestamp>~` first.
    Write {
        path: String,
        content: Arc<Vec<u8>>,
        mode: Option<u32>,
        owner: Option<String>,
        group: Option<String>,
        validate: Option<String>,
        backup: bool,
    },
    /// Wait on the controller (pause module).
    Sleep(Duration),
    /// Copy a file from the host (`src`, read with the connection's `get`,
    /// through `become`) to the controller (`dest`): parent folders are
    /// created, the write is atomic (temp file + rename). The fetch module.
    Fetch { src: String, dest: PathBuf },
    /// Act from the controller through forwarded ports ([`RemoteStep`]).
    Remote(Remote),
    /// Reboot the host and wait for it to come back ([`Reboot`]); the
    /// engine re-dials its connection (host keys verified as on any dial).
    Reboot(Reboot),
}

/// How the engine reboots a host: it reads the boot id, runs `command` (a
/// connection lost while it runs is expected), then re-dials until the host
/// answers with a different boot id and `test_command` succeeds, all within
/// `timeout`, and uses the new connection for the rest of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Reboot {
    /// Starts the reboot, e.g. `shutdown -r 0 "Reboot initiated by drover"`.
    pub command: Vec<String>,
    /// Prints an id that changes with every boot.
    pub boot_id_command: Vec<String>,
    /// Must succeed after the reboot before the host counts as back.
    pub test_command: Vec<String>,
    /// Deadline for the whole reboot (command, down, up, test).
    pub timeout: Duration,
    /// Deadline for one dial while waiting (None: the host's own).
    pub connect_timeout: Option<Duration>,
    /// Wait on the controller after the host is back.
    pub post_delay: Duration,
}

impl Step {
    /// A plain command whose failure fails the task.
    pub fn exec<S: Into<String>>(argv: impl IntoIterator<Item = S>) -> Step {
        Step::Exec {
            argv: argv.into_iter().map(Into::into).collect(),
            stdin: None,
            cwd: None,
            env: BTreeMap::new(),
            capture: false,
            allow_fail: false,
        }
    }
}

/// The set of known modules, filled by the binary from the modules crate.
#[derive(Default, Clone)]
pub struct Registry {
    by_name: BTreeMap<String, Arc<dyn Module>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn add(&mut self, m: Arc<dyn Module>) {
        let mut names = vec![m.name().to_string()];
        names.extend(m.aliases().iter().map(|s| s.to_string()));
        for n in names {
            self.by_name
                .insert(format!("ansible.builtin.{n}"), m.clone());
            self.by_name.insert(n, m.clone());
        }
    }
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Module>> {
        self.by_name.get(name)
    }
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.by_name.keys()
    }
}
