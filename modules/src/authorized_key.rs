//! `authorized_key` module: add or remove SSH public keys in a user's
//! `authorized_keys`, as Ansible's `authorized_key` (`key` may hold several
//! lines, `exclusive`, `path`, `manage_dir`). Keys are compared by type and
//! base64 blob, ignoring comments and options. Probes resolve the user's home
//! on the host; the plan creates `~/.ssh` (0700, owned by the user) and
//! writes the whole file once (0600, owned by the user).

use crate::acct_common::{check_name, exec_at, passwd_of};
use drover_engine::args::{get_bool, get_str, req_str};
use drover_engine::module::{
    Action, Args, Change, Diff, Kind, Module, ModuleError, Observed, Param, Plan, Probe, Registry,
    Step, TaskContext,
};
use serde_json::json;
use std::sync::Arc;

pub struct AuthorizedKeyModule;

const STATES: &[&str] = &["present", "absent"];

/// `$1` user, `$2` explicit path or empty. Prints `MODE OWNER` of the key
/// file's directory, exit 3 when it is missing, 4 when the user is unknown.
const DIR_PROBE: &str = "h=$(getent passwd \"$1\" | cut -d: -f6); [ -n \"$h\" ] || exit 4; \
p=${2:-$h/.ssh/authorized_keys}; d=$(dirname -- \"$p\"); [ -d \"$d\" ] || exit 3; \
exec stat -c '%a %U' -- \"$d\"";
/// Same arguments; prints the key file, exit 3 when it is missing.
const FILE_PROBE: &str = "h=$(getent passwd \"$1\" | cut -d: -f6); [ -n \"$h\" ] || exit 4; \
p=${2:-$h/.ssh/authorized_keys}; [ -f \"$p\" ] || exit 3; exec cat -- \"$p\"";

const PARAMS: &[Param] = &[
    Param::new("user", Kind::Str).required(),
    Param::new("key", Kind::Str).required(),
    Param::new("state", Kind::Str).choices(STATES),
    Param::new("exclusive", Kind::Bool),
    Param::new("path", Kind::Str),
    Param::new("manage_dir", Kind::Bool),
];

impl Module for AuthorizedKeyModule {
    fn name(&self) -> &'static str {
        "authorized_key"
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let user = req_str(args, "user")?;
        check_name("user", &user)?;
        let state = get_str(args, "state")?.unwrap_or_else(|| "present".into());
        if !STATES.contains(&state.as_str()) {
            return Err(ModuleError::BadChoice {
                name: "state".into(),
                value: state,
                choices: STATES.join("|"),
            });
        }
        let key_text = req_str(args, "key")?;
        let mut keys = Vec::new();
        for line in key_text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let id = key_id(line).ok_or_else(|| ModuleError::BadArg {
                name: "key".into(),
                value: line.into(),
                message: "not an SSH public key (TYPE BASE64 [COMMENT])".into(),
            })?;
            keys.push((id, line.to_string()));
        }
        if keys.is_empty() {
            return Err(ModuleError::BadArg {
                name: "key".into(),
                value: key_text,
                message: "no key given".into(),
            });
        }
        let path = get_str(args, "path")?.filter(|p| !p.is_empty());
        if path.as_deref().is_some_and(|p| !p.starts_with('/')) {
            return Err(ModuleError::BadArg {
                name: "path".into(),
                value: path.unwrap_or_default(),
                message: "must be an absolute path".into(),
            });
        }
        Ok(Box::new(KeyAction {
            user,
            keys,
            present: state == "present",
            exclusive: get_bool(args, "exclusive", false)?,
            path,
            manage_dir: get_bool(args, "manage_dir", true)?,
        }))
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
}

/// (type, base64) of a key line, skipping any leading options.
fn key_id(line: &str) -> Option<(String, String)> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let is_type =
        |w: &str| w.starts_with("ssh-") || w.starts_with("ecdsa-sha2-") || w.starts_with("sk-");
    let i = words.iter().position(|w| is_type(w))?;
    let blob = words.get(i + 1)?;
    blob.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
        .then(|| (words[i].to_string(), blob.to_string()))
}

struct KeyAction {
    user: String,
    keys: Vec<((String, String), String)>,
    present: bool,
    exclusive: bool,
    path: Option<String>,
    manage_dir: bool,
}

impl KeyAction {
    fn probe(&self, script: &str) -> Probe {
        Probe::Exec {
            argv: vec![
                "sh".into(),
                "-c".into(),
                script.into(),
                "sh".into(),
                self.user.clone(),
                self.path.clone().unwrap_or_default(),
            ],
        }
    }

    /// The wanted file content from the current one.
    fn edit(&self, before: &str) -> String {
        let wanted = |id: &(String, String)| self.keys.iter().any(|(k, _)| k == id);
        let mut out: Vec<String> = Vec::new();
        let mut seen: Vec<(String, String)> = Vec::new();
        for line in before.lines() {
            match key_id(line) {
                Some(id) if !self.present && wanted(&id) => {}
                Some(id) if self.present && self.exclusive && !wanted(&id) => {}
                Some(id) => {
                    seen.push(id);
                    out.push(line.to_string());
                }
                None if self.present && self.exclusive => {}
                None => out.push(line.to_string()),
            }
        }
        if self.present {
            for (id, line) in &self.keys {
                if !seen.contains(id) {
                    seen.push(id.clone());
                    out.push(line.clone());
                }
            }
        }
        let mut s = out.join("\n");
        if !s.is_empty() {
            s.push('\n');
        }
        s
    }
}

impl Action for KeyAction {
    fn probes(&self) -> Vec<Probe> {
        vec![
            Probe::Exec {
                argv: vec!["getent".into(), "passwd".into(), self.user.clone()],
            },
            self.probe(DIR_PROBE),
            self.probe(FILE_PROBE),
        ]
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        let u = &self.user;
        let pw = passwd_of(exec_at(observed, 0, "getent passwd")?, u)?
            .ok_or_else(|| ModuleError::Failed(format!("user {u} does not exist")))?;
        let path = self
            .path
            .clone()
            .unwrap_or_else(|| format!("{}/.ssh/authorized_keys", pw.home.trim_end_matches('/')));
        let dir = match path.rfind('/') {
            Some(0) => "/".to_string(),
            Some(i) => path[..i].to_string(),
            None => ".".to_string(),
        };
        let probe_err = |what: &str, o: &drover_engine::module::ExecOutput| {
            ModuleError::Probe(format!(
                "{what} for {path} failed (rc {:?}): {}",
                o.status,
                o.stderr_str().trim()
            ))
        };
        let d = exec_at(observed, 1, "the key directory probe")?;
        let dir_state = match d.status {
            Some(0) => Some(d.stdout_str().trim().to_string()),
            Some(3) => None,
            _ => return Err(probe_err("stat of the key directory", d)),
        };
        let f = exec_at(observed, 2, "the key file probe")?;
        let before = match f.status {
            Some(0) => Some(f.stdout_str()),
            Some(3) => None,
            _ => return Err(probe_err("reading the key file", f)),
        };
        let mut plan = Plan::default();
        plan.result.insert("user".into(), json!(u));
        plan.result.insert("path".into(), json!(path));
        let old = before.clone().unwrap_or_default();
        let new = self.edit(&old);
        let write_needed = new != old || (before.is_none() && self.present);
        let (uid, gid) = (pw.uid.to_string(), pw.gid.to_string());
        match dir_state.filter(|_| self.present) {
            None if !self.present => {}
            None if self.manage_dir => plan.changes.push(Change::new(
                format!("create directory {dir} (0700, owner {u})"),
                vec![
                    Step::exec(["mkdir", "-p", "--", dir.as_str()]),
                    Step::exec(["chown", &format!("{uid}:{gid}"), "--", dir.as_str()]),
                    Step::exec(["chmod", "0700", "--", dir.as_str()]),
                ],
            )),
            None => {
                return Err(ModuleError::Failed(format!(
                    "directory {dir} does not exist and manage_dir is off"
                )))
            }
            Some(st) if self.manage_dir => {
                let (mode, owner) = st.split_once(' ').unwrap_or((st.as_str(), ""));
                if mode != "700" || owner != u {
                    plan.changes.push(Change::new(
                        format!("set mode 0700 and owner {u} on {dir} (was {mode} {owner})"),
                        vec![
                            Step::exec(["chown", &format!("{uid}:{gid}"), "--", dir.as_str()]),
                            Step::exec(["chmod", "0700", "--", dir.as_str()]),
                        ],
                    ));
                }
            }
            Some(_) => {}
        }
        if !write_needed {
            if plan.changes.is_empty() {
                plan.reason = Some(format!("{path} already has the wanted keys"));
            }
            return Ok(plan);
        }
        let added = self.keys.len();
        let summary = if self.present {
            format!(
                "write {path} ({added} key(s) wanted, exclusive: {})",
                self.exclusive
            )
        } else {
            format!("remove {added} key(s) from {path}")
        };
        plan.changes.push(
            Change::new(
                summary,
                vec![Step::Write {
                    path: path.clone(),
                    content: Arc::new(new.clone().into_bytes()),
                    mode: Some(0o600),
                    owner: Some(uid),
                    group: Some(gid),
                    validate: None,
                    backup: false,
                }],
            )
            .with_diff(Diff {
                label: path,
                before: old,
                after: new,
            }),
        );
        Ok(plan)
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(AuthorizedKeyModule));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_ignore_comments_and_options() {
        let a = key_id("ssh-ed25519 AAAAC3Nz alice@x").unwrap();
        let b = key_id("from=\"10.0.0.1\" ssh-ed25519 AAAAC3Nz other").unwrap();
        assert_eq!(a, b);
        assert_eq!(key_id("not a key"), None);
        assert_eq!(key_id("ssh-rsa"), None);
    }

    #[test]
    fn dir_probe_with_real_sh() {
        let o = std::process::Command::new("sh")
            .args(["-c", DIR_PROBE, "sh", "root", "/nonexistent-dir/keys"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(3));
        let o = std::process::Command::new("sh")
            .args(["-c", FILE_PROBE, "sh", "no-such-user-xyz", ""])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(4));
    }
}
