//! `mount` module (Ansible's `ansible.posix.mount`): one mount point's line
//! in an fstab file and its live state. Observes the fstab (Read probe) and
//! `/proc/self/mountinfo`; plans a minimal fstab rewrite (one atomic Write;
//! every other line kept byte for byte) and `mount`/`umount` commands, with
//! the mount point created before mounting. States: `mounted`, `present`,
//! `unmounted`, `absent` (also removes the empty mount point), `remounted`.

use crate::sys_common::{bad, exec_step};
use drover_engine::args::{get_str, req_str};
use drover_engine::module::{
    Action, Args, Change, Diff, Kind, Module, ModuleError, Observed, Param, Plan, Probe, Registry,
    Step, TaskContext,
};
use serde_json::json;
use std::sync::Arc;

const STATES: &[&str] = &["mounted", "present", "unmounted", "absent", "remounted"];

const PARAMS: &[Param] = &[
    Param::new("path", Kind::Str).required().aliases(&["name"]),
    Param::new("src", Kind::Str),
    Param::new("fstype", Kind::Str),
    Param::new("opts", Kind::Str),
    Param::new("dump", Kind::Str),
    Param::new("passno", Kind::Str),
    Param::new("state", Kind::Str).required().choices(STATES),
    Param::new("fstab", Kind::Str),
];

pub struct MountModule;

pub fn register(r: &mut Registry) {
    r.add(Arc::new(MountModule));
}

/// One fstab field: non-empty, no whitespace (spaces in paths are `\040`).
fn field(name: &str, v: &str) -> Result<String, ModuleError> {
    if v.is_empty() {
        return Err(bad(name, v, "must not be empty"));
    }
    if v.chars().any(|c| c.is_control()) {
        return Err(bad(name, v, "must be one line"));
    }
    Ok(escape(v))
}

/// fstab/mountinfo escaping of whitespace and backslashes.
fn escape(s: &str) -> String {
    s.replace('\\', "\\134")
        .replace(' ', "\\040")
        .replace('\t', "\\011")
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

impl Module for MountModule {
    fn name(&self) -> &'static str {
        "mount"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["ansible.posix.mount"]
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let raw_path = req_str(args, "path")?;
        let path = if raw_path.len() > 1 {
            raw_path.trim_end_matches('/').to_string()
        } else {
            raw_path.clone()
        };
        if !path.starts_with('/') {
            return Err(bad("path", &raw_path, "must be an absolute path"));
        }
        field("path", &path)?;
        let state = req_str(args, "state")?;
        if !STATES.contains(&state.as_str()) {
            return Err(ModuleError::BadChoice {
                name: "state".into(),
                value: state,
                choices: STATES.join("|"),
            });
        }
        let fstab = get_str(args, "fstab")?.unwrap_or_else(|| "/etc/fstab".into());
        if !fstab.starts_with('/') {
            return Err(bad("fstab", &fstab, "must be an absolute path"));
        }
        let needs_entry = matches!(state.as_str(), "mounted" | "present");
        let opt = |name: &str, default: &str| -> Result<String, ModuleError> {
            let v = get_str(args, name)?.unwrap_or_else(|| default.into());
            field(name, v.trim())
        };
        let src = match get_str(args, "src")? {
            Some(s) => Some(field("src", s.trim())?),
            None if needs_entry => return Err(ModuleError::MissingArg("src".into())),
            None => None,
        };
        let fstype = match get_str(args, "fstype")? {
            Some(s) => Some(field("fstype", s.trim())?),
            None if needs_entry => return Err(ModuleError::MissingArg("fstype".into())),
            None => None,
        };
        let opts = opt("opts", "defaults")?;
        let dump = opt("dump", "0")?;
        let passno = opt("passno", "0")?;
        for (n, v) in [("dump", &dump), ("passno", &passno)] {
            if !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(n, v, "must be a number"));
            }
        }
        let entry = match (&src, &fstype) {
            (Some(s), Some(t)) => Some(vec![
                s.clone(),
                escape(&path),
                t.clone(),
                opts.clone(),
                dump.clone(),
                passno.clone(),
            ]),
            _ => None,
        };
        Ok(Box::new(MountAction {
            path,
            state,
            fstab,
            entry,
            opts,
        }))
    }
}

struct MountAction {
    path: String,
    state: String,
    fstab: String,
    /// The wanted fstab fields (src, path, fstype, opts, dump, passno).
    entry: Option<Vec<String>>,
    opts: String,
}

/// Is `path` a mount point, according to mountinfo's fifth field?
fn is_mounted(mountinfo: &str, path: &str) -> bool {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mp| unescape(mp) == path)
}

impl MountAction {
    /// New fstab content: the first line for our path replaced (or appended),
    /// later duplicates dropped; `None` entry removes every line for it.
    fn edit(&self, before: &str) -> String {
        let want = self.entry.as_ref().map(|e| format!("{}\n", e.join(" ")));
        let mut out = String::new();
        let mut done = false;
        for line in before.split_inclusive('\n') {
            let t = line.trim_start();
            let fields: Vec<&str> = t.split_whitespace().collect();
            let ours =
                !t.starts_with('#') && fields.get(1).is_some_and(|p| unescape(p) == self.path);
            if !ours {
                out.push_str(line);
                continue;
            }
            if let Some(w) = &want {
                if !done {
                    // Same fields: keep the line as it is (spacing included).
                    let wf: Vec<&str> = w.split_whitespace().collect();
                    if fields == wf {
                        out.push_str(line);
                    } else {
                        out.push_str(w);
                    }
                    done = true;
                }
            }
        }
        if let (Some(w), false) = (&want, done) {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(w);
        }
        out
    }

    fn mount_step(&self) -> Step {
        let e = self.entry.as_ref();
        let arg = |i: usize| e.map(|e| unescape(&e[i])).unwrap_or_default();
        Step::exec([
            "mount".to_string(),
            "-t".into(),
            arg(2),
            "-o".into(),
            arg(3),
            arg(0),
            self.path.clone(),
        ])
    }

    /// `mount -o remount,OPTS PATH`; with the default options, as Ansible,
    /// plain `-o remount` (mount then reads them from the fstab: `-T` for
    /// another file), so "defaults" never turns a read-only mount writable.
    fn remount_step(&self) -> Step {
        let mut argv = vec!["mount".to_string(), "-o".into()];
        if self.opts == "defaults" {
            argv.push("remount".into());
            if self.fstab != "/etc/fstab" {
                argv.extend(["-T".into(), self.fstab.clone()]);
            }
        } else {
            argv.push(format!("remount,{}", unescape(&self.opts)));
        }
        argv.push(self.path.clone());
        Step::exec(argv)
    }
}

impl Action for MountAction {
    fn probes(&self) -> Vec<Probe> {
        vec![
            Probe::Read {
                path: self.fstab.clone(),
            },
            Probe::Read {
                path: "/proc/self/mountinfo".into(),
            },
            Probe::Stat {
                path: self.path.clone(),
                follow: true,
            },
        ]
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        let text = |i: usize| match observed.get(i) {
            Some(Observed::Content(c)) => Ok(c
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).into_owned())),
            other => Err(ModuleError::Probe(format!(
                "expected file content at {i}, got {other:?}"
            ))),
        };
        let before = text(0)?.unwrap_or_default();
        let mountinfo = text(1)?
            .ok_or_else(|| ModuleError::Failed("cannot read /proc/self/mountinfo".into()))?;
        let dir_exists = matches!(observed.get(2), Some(Observed::Stat(Some(_))));
        let mounted = is_mounted(&mountinfo, &self.path);
        let mut plan = Plan::default();
        plan.result.insert("name".into(), json!(self.path));
        plan.result.insert("fstab".into(), json!(self.fstab));
        plan.result.insert("state".into(), json!(self.state));
        if let Some(e) = &self.entry {
            for (k, v) in ["src", "", "fstype", "opts", "dump", "passno"]
                .iter()
                .zip(e)
            {
                if !k.is_empty() {
                    plan.result.insert((*k).into(), json!(unescape(v)));
                }
            }
        }
        let state = self.state.as_str();
        let mut fstab_changed = false;
        if matches!(state, "mounted" | "present" | "absent") {
            let after = self.edit(&before);
            if after != before {
                fstab_changed = true;
                let verb = if self.entry.is_none() {
                    "remove"
                } else if before.lines().any(|l| {
                    l.split_whitespace().nth(1).map(unescape).as_deref() == Some(&self.path)
                }) {
                    "update"
                } else {
                    "add"
                };
                plan.changes.push(
                    Change::new(
                        format!("{verb} {} in {}", self.path, self.fstab),
                        vec![Step::Write {
                            path: self.fstab.clone(),
                            content: Arc::new(after.clone().into_bytes()),
                            mode: None,
                            owner: None,
                            group: None,
                            validate: None,
                            backup: false,
                        }],
                    )
                    .with_diff(Diff {
                        label: self.fstab.clone(),
                        before: before.clone(),
                        after,
                    }),
                );
            }
        }
        match state {
            "mounted" if !mounted => {
                let mut steps = Vec::new();
                if !dir_exists {
                    steps.push(Step::exec(["mkdir", "-p", self.path.as_str()]));
                }
                steps.push(self.mount_step());
                plan.changes
                    .push(Change::new(format!("mount {}", self.path), steps));
            }
            "mounted" if fstab_changed => plan.changes.push(Change::new(
                format!("remount {} with the new options", self.path),
                vec![self.remount_step()],
            )),
            "remounted" => plan.changes.push(Change::new(
                format!("remount {}", self.path),
                vec![self.remount_step()],
            )),
            "unmounted" | "absent" if mounted => {
                let mut steps = vec![Step::exec(["umount", self.path.as_str()])];
                if state == "absent" {
                    steps.push(rmdir(&self.path));
                }
                plan.changes
                    .push(Change::new(format!("unmount {}", self.path), steps));
            }
            _ => {}
        }
        if plan.changes.is_empty() {
            plan.reason = Some(format!(
                "{} is {} and {} is as wanted",
                self.path,
                if mounted { "mounted" } else { "not mounted" },
                self.fstab
            ));
        }
        Ok(plan)
    }
}

/// Remove the (empty) mount point, as Ansible's `absent`; a non-empty or
/// missing folder is left alone.
fn rmdir(path: &str) -> Step {
    exec_step(vec!["rmdir".into(), path.into()], None, false, true)
}
