//! `sysctl` module: one kernel parameter, as Ansible's `sysctl`, with the
//! running value (`/proc/sys/...`) and the persistent one (a line of
//! `sysctl_file`, default `/etc/sysctl.d/99-drover.conf`) compared
//! separately, so drift in either is seen and fixed. The runtime value is set
//! with `sysctl -w name=value` (argv) only when it differs — never a reload of
//! a whole file, so `--check` predicts exactly what changes. A key without a
//! `/proc/sys` entry fails before the file is written, and so does a runtime
//! change on a host whose `/proc/sys` is read-only (a docker container).
//! Differences from Ansible: the runtime value is managed whenever `reload`
//! (default yes) or `sysctl_set` is true, not only after the file changed.

use crate::acct_common::exec_at;
use crate::sys_common::config_write;
use drover_engine::args::{get_bool, get_str, req_str};
use drover_engine::module::{
    Action, Args, Change, Diff, Kind, Module, ModuleError, Observed, Param, Plan, Probe, Registry,
    Step, TaskContext,
};
use serde_json::json;
use std::sync::Arc;

const STATES: &[&str] = &["present", "absent"];
const DEFAULT_FILE: &str = "/etc/sysctl.d/99-drover.conf";
/// Prints `missing`, or `rw`/`ro` and then the current value.
const RUNTIME: &str = "p=$1; if [ ! -e \"$p\" ]; then echo missing; exit 0; fi; \
if [ -w \"$p\" ]; then echo rw; else echo ro; fi; cat -- \"$p\"";

const PARAMS: &[Param] = &[
    Param::new("name", Kind::Str).required().aliases(&["key"]),
    Param::new("value", Kind::Str).aliases(&["val"]),
    Param::new("state", Kind::Str).choices(STATES),
    Param::new("sysctl_file", Kind::Str),
    Param::new("reload", Kind::Bool),
    Param::new("sysctl_set", Kind::Bool),
    Param::new("ignoreerrors", Kind::Bool),
];

pub struct SysctlModule;

fn bad(name: &str, value: &str, message: &str) -> ModuleError {
    ModuleError::BadArg {
        name: name.into(),
        value: format!("`{value}`"),
        message: message.into(),
    }
}

/// `net.ipv4.ip_forward` (or `net/ipv4/ip_forward`) → its `/proc/sys` path.
pub fn proc_path(name: &str) -> Option<String> {
    let parts: Vec<&str> = if name.contains('/') {
        name.split('/').collect()
    } else {
        name.split('.').collect()
    };
    let ok = |p: &&str| {
        !p.is_empty()
            && *p != "."
            && *p != ".."
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:@+".contains(&b))
    };
    (!parts.is_empty() && parts.iter().all(ok)).then(|| format!("/proc/sys/{}", parts.join("/")))
}

/// Values compare with runs of whitespace collapsed (`/proc` uses tabs).
fn norm(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The key of a `sysctl.conf` line, `/` spelled as `.`.
fn line_key(line: &str) -> Option<String> {
    let t = line.trim_start();
    if t.starts_with('#') || t.starts_with(';') {
        return None;
    }
    let (k, _) = t.split_once('=')?;
    Some(k.trim().trim_start_matches('-').replace('/', "."))
}

/// (value in the file, new file content).
pub fn edit_file(before: &str, key: &str, value: Option<&str>) -> (Option<String>, String) {
    let want_key = key.replace('/', ".");
    let mut old = None;
    let mut out: Vec<String> = Vec::new();
    let mut placed = false;
    for line in before.lines() {
        if line_key(line).as_deref() == Some(want_key.as_str()) {
            if old.is_none() {
                old = line.split_once('=').map(|(_, v)| norm(v));
            }
            if let (Some(v), false) = (value, placed) {
                // A line that already holds the value keeps its spelling.
                let same = line.split_once('=').is_some_and(|(_, x)| norm(x) == v);
                out.push(if same {
                    line.to_string()
                } else {
                    format!("{key}={v}")
                });
                placed = true;
            }
            continue;
        }
        out.push(line.to_string());
    }
    if let (Some(v), false) = (value, placed) {
        out.push(format!("{key}={v}"));
    }
    let mut s = out.join("\n");
    if !s.is_empty() {
        s.push('\n');
    }
    (old, s)
}

impl Module for SysctlModule {
    fn name(&self) -> &'static str {
        "sysctl"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["ansible.posix.sysctl"]
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let name = req_str(args, "name")?.trim().to_string();
        let path = proc_path(&name).ok_or_else(|| bad("name", &name, "not a sysctl key"))?;
        let state = get_str(args, "state")?.unwrap_or_else(|| "present".into());
        if !STATES.contains(&state.as_str()) {
            return Err(ModuleError::BadChoice {
                name: "state".into(),
                value: state,
                choices: STATES.join("|"),
            });
        }
        let value = get_str(args, "value")?.map(|v| norm(&v));
        let value = match (state.as_str(), value) {
            ("present", None) => return Err(ModuleError::MissingArg("value".into())),
            ("present", Some(v)) if v.is_empty() || v.contains('\n') => {
                return Err(bad("value", &v, "must be one non-empty line"))
            }
            (_, v) => v,
        };
        let file = get_str(args, "sysctl_file")?.unwrap_or_else(|| DEFAULT_FILE.into());
        if !file.starts_with('/') {
            return Err(bad("sysctl_file", &file, "must be an absolute path"));
        }
        let runtime = state == "present"
            && (get_bool(args, "reload", true)? || get_bool(args, "sysctl_set", false)?);
        Ok(Box::new(SysctlAction {
            name,
            path,
            value: if state == "present" { value } else { None },
            file,
            runtime,
        }))
    }
}

struct SysctlAction {
    name: String,
    path: String,
    /// None: state absent.
    value: Option<String>,
    file: String,
    /// Compare and set the running value too.
    runtime: bool,
}

impl Action for SysctlAction {
    fn probes(&self) -> Vec<Probe> {
        vec![
            Probe::Exec {
                argv: vec![
                    "sh".into(),
                    "-c".into(),
                    RUNTIME.into(),
                    "sh".into(),
                    self.path.clone(),
                ],
            },
            Probe::Read {
                path: self.file.clone(),
            },
        ]
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        let out = exec_at(observed, 0, "the /proc/sys read")?;
        let text = out.stdout_str();
        let (mode, cur) = text.split_once('\n').unwrap_or((text.trim(), ""));
        if mode.trim() == "missing" {
            return Err(ModuleError::Failed(format!(
                "sysctl key `{}` does not exist on this host ({} is missing; is its kernel module loaded?)",
                self.name, self.path
            )));
        }
        if !out.success() {
            return Err(ModuleError::Failed(format!(
                "cannot read {}: {}",
                self.path,
                out.stderr_str().trim()
            )));
        }
        let cur = norm(cur);
        let before = match observed.get(1) {
            Some(Observed::Content(c)) => {
                String::from_utf8_lossy(c.as_deref().unwrap_or_default()).into_owned()
            }
            other => {
                return Err(ModuleError::Probe(format!(
                    "expected the content of {}, got {other:?}",
                    self.file
                )))
            }
        };
        let (in_file, after) = edit_file(&before, &self.name, self.value.as_deref());
        let mut plan = Plan::default();
        let r = &mut plan.result;
        r.insert("name".into(), json!(self.name));
        r.insert("runtime_value".into(), json!(cur));
        r.insert("file_value".into(), json!(in_file));
        r.insert("sysctl_file".into(), json!(self.file));
        if after != before {
            let what = match &self.value {
                Some(v) => format!("set {}={v} in {}", self.name, self.file),
                None => format!("remove {} from {}", self.name, self.file),
            };
            plan.changes
                .push(config_write(what, &self.file, before.clone(), after));
        }
        if let (true, Some(v)) = (self.runtime, &self.value) {
            if *v != cur {
                if mode.trim() != "rw" {
                    return Err(ModuleError::Failed(format!(
                        "sysctl {}: {} is read-only on this host (a container?); the running value `{cur}` cannot be set to `{v}` (a container gets it at creation: docker run --sysctl {}={v})",
                        self.name, self.path, self.name
                    )));
                }
                plan.changes.push(
                    Change::new(
                        format!("set running {} from {cur} to {v}", self.name),
                        vec![Step::exec([
                            "sysctl".to_string(),
                            "-q".into(),
                            "-w".into(),
                            format!("{}={v}", self.name),
                        ])],
                    )
                    .with_diff(Diff {
                        label: self.path.clone(),
                        before: format!("{cur}\n"),
                        after: format!("{v}\n"),
                    }),
                );
            }
        }
        if plan.changes.is_empty() {
            plan.reason = Some(match &self.value {
                Some(v) => format!("{} is already {v}", self.name),
                None => format!("{} is not in {}", self.name, self.file),
            });
        }
        Ok(plan)
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(SysctlModule));
}
