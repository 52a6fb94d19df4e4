//! `synchronize` module: rsync a tree, as Ansible's `synchronize`, in two
//! forms. (1) Controller ↔ host (`mode: push`, the default, or `pull`): the
//! controller's own `rsync` runs (the action is `on_controller`) with
//! `-e "ssh -i KEY -p PORT -o UserKnownHostsFile=… -o StrictHostKeyChecking=yes
//! -o BatchMode=yes"` built from the host's connection variables
//! (`ansible_host`, `ansible_port`, `ansible_user`,
//! `ansible_ssh_private_key_file`, `drover_known_hosts`), because drover's
//! own SSH is in-process and rsync needs an ssh program; password logins and
//! `become` are not supported in this form. (2) Between hosts: a `src` that is
//! an rsync daemon address (`rsync://host/module/path`, `host::module/path`,
//! or `src_host` + `src` = `rsync://src_host/src`) runs `rsync` on the task's
//! host, pulling from that daemon into `dest`. The probe is the same command
//! with `--dry-run`; its `--itemize-changes` lines are exactly the changes
//! (no line = nothing to do), and the real run is one `rsync` step.

use drover_engine::args::{get_bool, get_int, get_str, get_str_list, req_str};
use drover_engine::module::{
    Action, Args, Change, Kind, Module, ModuleError, Observed, Param, Plan, Probe, Registry, Step,
    TaskContext,
};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

const PARAMS: &[Param] = &[
    Param::new("src", Kind::Str).required(),
    Param::new("dest", Kind::Str).required(),
    Param::new("mode", Kind::Str).choices(&["push", "pull"]),
    Param::new("src_host", Kind::Str),
    Param::new("delete", Kind::Bool),
    Param::new("archive", Kind::Bool),
    Param::new("recursive", Kind::Bool),
    Param::new("checksum", Kind::Bool),
    Param::new("compress", Kind::Bool),
    Param::new("rsync_opts", Kind::List),
    Param::new("rsync_path", Kind::Str),
    Param::new("rsync_timeout", Kind::Int),
    Param::new("dest_port", Kind::Int),
    Param::new("private_key", Kind::Str),
];

/// Marks rsync's itemized lines in its output.
const MARK: &str = "<<CHANGED>>";

pub struct SynchronizeModule;

fn bad(name: &str, value: &str, message: &str) -> ModuleError {
    ModuleError::BadArg {
        name: name.into(),
        value: format!("`{value}`"),
        message: message.into(),
    }
}

/// Quote one word of rsync's `-e` command: rsync splits it on spaces and
/// honours single and double quotes, but not backslashes.
fn rsh_word(name: &str, w: &str) -> Result<String, ModuleError> {
    if !w.is_empty() && !w.contains([' ', '\'', '"']) {
        Ok(w.to_string())
    } else if !w.contains('\'') {
        Ok(format!("'{w}'"))
    } else if !w.contains('"') {
        Ok(format!("\"{w}\""))
    } else {
        Err(bad(
            name,
            w,
            "holds both quote characters; rsync's -e cannot carry it",
        ))
    }
}

fn var(ctx: &dyn TaskContext, k: &str) -> Option<String> {
    match ctx.vars().get(k)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn is_daemon(s: &str) -> bool {
    s.starts_with("rsync://") || s.contains("::")
}

impl Module for SynchronizeModule {
    fn name(&self) -> &'static str {
        "synchronize"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let mut src = req_str(args, "src")?;
        let dest = req_str(args, "dest")?;
        if src.is_empty() || dest.is_empty() {
            return Err(ModuleError::Failed("src and dest must not be empty".into()));
        }
        let pull = match get_str(args, "mode")?.as_deref() {
            None | Some("push") => false,
            Some("pull") => true,
            Some(o) => return Err(bad("mode", o, "must be push or pull")),
        };
        if let Some(h) = get_str(args, "src_host")? {
            if h.is_empty() || h.contains(['/', ':', ' ', '@']) {
                return Err(bad("src_host", &h, "must be a host name or address"));
            }
            src = format!("rsync://{h}/{}", src.trim_start_matches('/'));
        }
        let archive = get_bool(args, "archive", true)?;
        let mut argv: Vec<String> = vec!["rsync".into()];
        if let Some(p) = get_str(args, "rsync_path")? {
            argv.push(format!("--rsync-path={p}"));
        }
        if archive {
            argv.push("--archive".into());
        }
        if get_bool(args, "recursive", archive)? && !archive {
            argv.push("--recursive".into());
        }
        for (flag, default, opt) in [
            ("delete", false, "--delete-after"),
            ("checksum", false, "--checksum"),
            ("compress", true, "--compress"),
        ] {
            if get_bool(args, flag, default)? {
                argv.push(opt.into());
            }
        }
        if let Some(t) = get_int(args, "rsync_timeout")? {
            argv.push(format!("--timeout={t}"));
        }
        argv.push(format!("--out-format={MARK}%i %n%L"));
        argv.extend(get_str_list(args, "rsync_opts")?);
        let between_hosts = is_daemon(&src);
        let (from, to) = if between_hosts {
            if pull {
                return Err(bad(
                    "mode",
                    "pull",
                    "a daemon `src` is always pulled by the host; leave mode out",
                ));
            }
            (src, dest)
        } else {
            let host = var(ctx, "ansible_host").unwrap_or_else(|| ctx.host().to_string());
            let port = get_int(args, "dest_port")?
                .map(|p| p.to_string())
                .or_else(|| var(ctx, "ansible_port"))
                .unwrap_or_else(|| "22".into());
            let mut rsh = vec![
                "ssh".to_string(),
                "-p".into(),
                port,
                "-o".into(),
                "BatchMode=yes".into(),
            ];
            let key = get_str(args, "private_key")?
                .or_else(|| var(ctx, "ansible_ssh_private_key_file"))
                .or_else(|| var(ctx, "ansible_private_key_file"));
            if let Some(k) = key {
                rsh.extend(["-i".into(), k, "-o".into(), "IdentitiesOnly=yes".into()]);
            }
            if let Some(kh) = var(ctx, "drover_known_hosts") {
                rsh.extend([
                    "-o".into(),
                    format!("UserKnownHostsFile={kh}"),
                    "-o".into(),
                    "StrictHostKeyChecking=yes".into(),
                ]);
            }
            let words: Vec<String> = rsh
                .iter()
                .map(|w| rsh_word("ssh option", w))
                .collect::<Result<_, _>>()?;
            argv.push("-e".into());
            argv.push(words.join(" "));
            let user = var(ctx, "ansible_user")
                .map(|u| format!("{u}@"))
                .unwrap_or_default();
            let h = if host.contains(':') {
                format!("[{host}]")
            } else {
                host
            };
            let local = |p: &str| -> Result<String, ModuleError> {
                if p.starts_with('/') {
                    return Ok(p.to_string());
                }
                // Relative controller paths: the role's files/, then the playbook's folder.
                let slash = if p.ends_with('/') { "/" } else { "" };
                let found = ctx.find_file("files", p.trim_end_matches('/'))?;
                Ok(format!("{}{slash}", found.display()))
            };
            if pull {
                (format!("{user}{h}:{src}"), dest)
            } else {
                (local(&src)?, format!("{user}{h}:{dest}"))
            }
        };
        argv.push("--".into());
        argv.push(from);
        argv.push(to);
        Ok(Box::new(SyncAction {
            argv,
            on_controller: !between_hosts,
        }))
    }
}

struct SyncAction {
    /// The real command; the probe adds `--dry-run`.
    argv: Vec<String>,
    on_controller: bool,
}

/// One itemized line as a change summary.
fn summary(line: &str) -> String {
    let (code, name) = line.split_once(' ').unwrap_or((line, ""));
    if code == "*deleting" {
        return format!("delete {}", name.trim());
    }
    let what = match code.as_bytes().get(1) {
        Some(b'd') => "directory",
        Some(b'L') => "symlink",
        _ => "file",
    };
    let verb = if code.contains("+++++++") {
        "create"
    } else {
        "update"
    };
    format!("{verb} {what} {name} ({code})")
}

impl Action for SyncAction {
    fn on_controller(&self) -> bool {
        self.on_controller
    }

    fn probes(&self) -> Vec<Probe> {
        let mut argv = self.argv.clone();
        argv.insert(1, "--dry-run".into());
        vec![Probe::Exec { argv }]
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        let Some(Observed::Exec(e)) = observed.first() else {
            return Err(ModuleError::Probe("expected the rsync dry run".into()));
        };
        let where_ = if self.on_controller {
            "controller"
        } else {
            "host"
        };
        match e.status {
            Some(0) => {}
            Some(127) => {
                return Err(ModuleError::Failed(format!(
                    "rsync not found on the {where_} (install the `rsync` package)"
                )))
            }
            s => {
                return Err(ModuleError::Failed(format!(
                    "rsync --dry-run on the {where_} failed (exit {s:?}): {}",
                    e.stderr_str().trim()
                )))
            }
        }
        let items: Vec<String> = e
            .stdout_str()
            .lines()
            .filter_map(|l| l.strip_prefix(MARK))
            .map(String::from)
            .collect();
        let cmd = self.argv.join(" ");
        let mut result = Map::new();
        result.insert("cmd".into(), json!(cmd));
        result.insert("changes".into(), json!(items));
        let step = Step::Exec {
            argv: self.argv.clone(),
            stdin: None,
            cwd: None,
            env: BTreeMap::new(),
            capture: false,
            allow_fail: false,
        };
        let changes: Vec<Change> = items
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let steps = if i == 0 { vec![step.clone()] } else { vec![] };
                Change::new(summary(l), steps)
            })
            .collect();
        Ok(Plan {
            reason: changes
                .is_empty()
                .then(|| "rsync reports nothing to transfer or delete".to_string()),
            changes,
            result,
            ..Default::default()
        })
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(SynchronizeModule));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsh_words_are_quoted_for_rsync() {
        assert_eq!(rsh_word("x", "a b").unwrap(), "'a b'");
        assert_eq!(rsh_word("x", "it's").unwrap(), "\"it's\"");
        assert!(rsh_word("x", "'\"").is_err());
        assert_eq!(summary("*deleting old.txt"), "delete old.txt");
        assert_eq!(
            summary(">f+++++++++ a.txt"),
            "create file a.txt (>f+++++++++)"
        );
        assert_eq!(
            summary(">f.st...... a.txt"),
            "update file a.txt (>f.st......)"
        );
    }
}
