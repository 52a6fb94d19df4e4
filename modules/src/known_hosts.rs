//! `known_hosts` module: one host's key line in a known_hosts file on the
//! host, as Ansible's. `present` adds `key` (replacing lines of the same
//! host and key type with another key), `absent` removes every line naming
//! the host. `path` defaults to `~/.ssh/known_hosts` of the remote user; one
//! Exec probe resolves `~` and reads the file; one atomic write changes it
//! (the `~/.ssh` folder is created 0700 first when missing). Hashed entries
//! (`|1|…`, `hash_host: yes`) are not supported: such lines are kept as
//! they are.

use crate::sys_common::{bad, exec_at, sh};
use drover_engine::args::{get_bool, get_str, req_str};
use drover_engine::module::{
    Action, Args, Change, Diff, Kind, Module, ModuleError, Observed, Param, Plan, Probe, Registry,
    Step, TaskContext,
};
use serde_json::json;
use std::sync::Arc;

const STATES: &[&str] = &["present", "absent"];

const PARAMS: &[Param] = &[
    Param::new("name", Kind::Str).required().aliases(&["host"]),
    Param::new("key", Kind::Str),
    Param::new("path", Kind::Str),
    Param::new("state", Kind::Str).choices(STATES),
    Param::new("hash_host", Kind::Bool),
];

/// `$1` path (a leading `~/` is the remote user's home): prints the
/// resolved path, `present` or `absent`, then the content.
const SCRIPT: &str = r#"p=$1
case $p in "~/"*) p="$HOME/${p#??}" ;; esac
printf '%s\n' "$p"
if [ -f "$p" ]; then echo present; cat -- "$p"; else echo absent; fi
"#;

pub struct KnownHostsModule;

pub fn register(r: &mut Registry) {
    r.add(Arc::new(KnownHostsModule));
}

impl Module for KnownHostsModule {
    fn name(&self) -> &'static str {
        "known_hosts"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let name = req_str(args, "name")?.to_lowercase();
        if name.is_empty() || name.contains(char::is_whitespace) || name.contains(',') {
            return Err(bad("name", &name, "must be one host name or address"));
        }
        let state = get_str(args, "state")?.unwrap_or_else(|| "present".into());
        if !STATES.contains(&state.as_str()) {
            return Err(ModuleError::BadChoice {
                name: "state".into(),
                value: state,
                choices: STATES.join("|"),
            });
        }
        if get_bool(args, "hash_host", false)? {
            return Err(bad(
                "hash_host",
                "yes",
                "hashed host names are not supported",
            ));
        }
        let path = get_str(args, "path")?.unwrap_or_else(|| "~/.ssh/known_hosts".into());
        if !(path.starts_with('/') || path.starts_with("~/")) {
            return Err(bad("path", &path, "must be absolute or start with ~/"));
        }
        let key = match (get_str(args, "key")?, state.as_str()) {
            (Some(k), _) => {
                let k = k.trim().to_string();
                let f: Vec<&str> = k.split_whitespace().collect();
                if k.contains('\n') || f.len() < 3 {
                    return Err(bad(
                        "key",
                        &k,
                        "must be one line `HOST KEYTYPE BASE64` (as ssh-keyscan prints)",
                    ));
                }
                if !hosts_of(f[0]).contains(&name) {
                    return Err(bad(
                        "key",
                        &k,
                        &format!("the host name in the key does not match name `{name}`"),
                    ));
                }
                Some(k)
            }
            (None, "present") => return Err(ModuleError::MissingArg("key".into())),
            (None, _) => None,
        };
        Ok(Box::new(KnownHostsAction {
            name,
            key,
            present: state == "present",
            path,
        }))
    }
}

/// Host names of a known_hosts host field, `[h]:22` counted as `h` too
/// only when the port is 22 (as ssh does).
fn hosts_of(field: &str) -> Vec<String> {
    field
        .split(',')
        .map(|h| {
            let h = h.to_lowercase();
            match h.strip_prefix('[').and_then(|r| r.strip_suffix("]:22")) {
                Some(bare) => bare.to_string(),
                None => h,
            }
        })
        .collect()
}

struct KnownHostsAction {
    name: String,
    key: Option<String>,
    present: bool,
    path: String,
}

impl KnownHostsAction {
    fn edit(&self, before: &str) -> String {
        let mut out = String::new();
        let want = self.key.as_ref().filter(|_| self.present);
        let want_type = want.and_then(|k| k.split_whitespace().nth(1));
        let mut found = false;
        for line in before.split_inclusive('\n') {
            let f: Vec<&str> = line.split_whitespace().collect();
            let ours = f.len() >= 3
                && !f[0].starts_with('#')
                && !f[0].starts_with('@')
                && hosts_of(f[0]).contains(&self.name);
            if !ours {
                out.push_str(line);
                continue;
            }
            match want {
                None => {}
                Some(k) => {
                    let kf: Vec<&str> = k.split_whitespace().collect();
                    if f[1] == kf[1] && f[2] == kf[2] {
                        found = true;
                        out.push_str(line);
                    } else if Some(f[1]) != want_type {
                        out.push_str(line);
                    }
                }
            }
        }
        if let (Some(k), false) = (want, found) {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(k);
            out.push('\n');
        }
        out
    }
}

impl Action for KnownHostsAction {
    fn probes(&self) -> Vec<Probe> {
        vec![Probe::Exec {
            argv: sh(
                SCRIPT,
                "drover-known_hosts",
                std::slice::from_ref(&self.path),
            ),
        }]
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        let o = exec_at(observed, 0, "reading the known_hosts file")?;
        if !o.success() {
            return Err(ModuleError::Failed(format!(
                "cannot read {}: {}",
                self.path,
                o.stderr_str().trim()
            )));
        }
        let out = o.stdout_str();
        let mut it = out.splitn(3, '\n');
        let path = it.next().unwrap_or_default().to_string();
        let exists = it.next() == Some("present");
        let before = if exists {
            it.next().unwrap_or_default().to_string()
        } else {
            String::new()
        };
        let after = self.edit(&before);
        let mut plan = Plan::default();
        plan.result.insert("path".into(), json!(path));
        plan.result.insert("hash_host".into(), json!(false));
        plan.result.insert("key".into(), json!(self.key));
        plan.result.insert("name".into(), json!(self.name));
        if after == before {
            plan.reason = Some(format!("{path} already as wanted for {}", self.name));
            return Ok(plan);
        }
        let mut steps = Vec::new();
        if !exists {
            let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("/");
            if !dir.is_empty() {
                steps.push(Step::exec(["mkdir", "-p", "--mode=0700", dir]));
            }
        }
        steps.push(Step::Write {
            path: path.clone(),
            content: Arc::new(after.clone().into_bytes()),
            mode: None,
            owner: None,
            group: None,
            validate: None,
            backup: false,
        });
        let verb = if self.present { "add" } else { "remove" };
        plan.changes.push(
            Change::new(format!("{verb} {} in {path}", self.name), steps).with_diff(Diff {
                label: path.clone(),
                before,
                after,
            }),
        );
        Ok(plan)
    }
}
