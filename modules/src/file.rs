//! `file` module: Ansible's `file` with `state` file|directory|link|hard|
//! absent|touch (default: what is there, else `file`), `mode`/`owner`/`group`,
//! `recurse` for directories, `src`/`force` for links and `follow`. Observes
//! the path with and without following links (plus `src` for links, and the
//! tree for `recurse`) and plans the minimal `mkdir`/`ln`/`rm`/`touch`/
//! `chown`/`chmod` steps.

use crate::fs_attrs::{self, Attrs};
use crate::fs_content::stat_at;
use crate::fs_recurse;
use drover_engine::args::{get_bool, get_str, req_str};
use drover_engine::module::{
    Action, Args, Change, Diff, FileKind, FileStat, Kind, Module, ModuleError, Observed, Param,
    Plan, Probe, Registry, Step, TaskContext,
};
use serde_json::Value;

const STATES: &[&str] = &["file", "directory", "link", "hard", "absent", "touch"];

const PARAMS: &[Param] = &[
    Param::new("path", Kind::Str)
        .required()
        .aliases(&["dest", "name"]),
    Param::new("state", Kind::Str).choices(STATES),
    Param::new("src", Kind::Str),
    Param::new("force", Kind::Bool),
    Param::new("follow", Kind::Bool),
    Param::new("recurse", Kind::Bool),
    fs_attrs::PARAMS[0],
    fs_attrs::PARAMS[1],
    fs_attrs::PARAMS[2],
];

/// The `file` module.
pub struct FileModule;

pub fn register(r: &mut Registry) {
    r.add(std::sync::Arc::new(FileModule));
}

impl Module for FileModule {
    fn name(&self) -> &'static str {
        "file"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let path = req_str(args, "path")?;
        let state = get_str(args, "state")?;
        if let Some(s) = &state {
            if !STATES.contains(&s.as_str()) {
                return Err(ModuleError::BadChoice {
                    name: "state".into(),
                    value: s.clone(),
                    choices: STATES.join("|"),
                });
            }
        }
        let src = get_str(args, "src")?;
        let recurse = get_bool(args, "recurse", false)?;
        match state.as_deref() {
            Some("link" | "hard") if src.is_none() => {
                return Err(ModuleError::MissingArg(format!(
                    "src (required with state={})",
                    state.as_deref().unwrap_or_default()
                )))
            }
            Some("link" | "hard") | None => {}
            Some(s) if src.is_some() => {
                return Err(ModuleError::Failed(format!(
                    "src option requires state to be 'link' or 'hard' (got state={s})"
                )))
            }
            _ => {}
        }
        if recurse && !matches!(state.as_deref(), None | Some("directory")) {
            return Err(ModuleError::Failed(format!(
                "recurse option requires state to be 'directory' (got state={})",
                state.as_deref().unwrap_or_default()
            )));
        }
        let src_check = src.as_ref().map(|s| {
            if s.starts_with('/') {
                s.clone()
            } else {
                let dir = path
                    .rsplit_once('/')
                    .map_or(".", |(d, _)| if d.is_empty() { "/" } else { d });
                format!("{dir}/{s}")
            }
        });
        Ok(Box::new(FileAction {
            path,
            state,
            src,
            src_check,
            force: get_bool(args, "force", false)?,
            follow: get_bool(args, "follow", true)?,
            recurse,
            attrs: Attrs::from_args(args)?,
        }))
    }
}

pub(crate) struct FileAction {
    pub(crate) path: String,
    pub(crate) state: Option<String>,
    pub(crate) src: Option<String>,
    /// `src` resolved against the link's folder, to check that it exists.
    pub(crate) src_check: Option<String>,
    pub(crate) force: bool,
    pub(crate) follow: bool,
    pub(crate) recurse: bool,
    pub(crate) attrs: Attrs,
}

pub(crate) fn kind_word(st: Option<&FileStat>) -> &'static str {
    match st {
        None => "absent",
        Some(s) => match s.kind {
            FileKind::Directory => "directory",
            FileKind::Link => "link",
            FileKind::File if s.nlink > 1 => "hard",
            FileKind::File | FileKind::Other => "file",
        },
    }
}

pub(crate) fn state_diff(path: &str, before: &str, after: &str) -> Diff {
    Diff {
        label: "state".into(),
        before: format!("path: {path}\nstate: {before}\n"),
        after: format!("path: {path}\nstate: {after}\n"),
    }
}

impl Action for FileAction {
    fn probes(&self) -> Vec<Probe> {
        let mut p = vec![
            Probe::Stat {
                path: self.path.clone(),
                follow: false,
            },
            Probe::Stat {
                path: self.path.clone(),
                follow: true,
            },
        ];
        if let Some(src) = &self.src_check {
            let follow = self.state.as_deref() != Some("hard");
            p.push(Probe::Stat {
                path: src.clone(),
                follow,
            });
        }
        if self.recurse {
            p.push(fs_recurse::probe(&self.path, self.follow));
        }
        p
    }

    fn plan(&self, obs: &[Observed]) -> Result<Plan, ModuleError> {
        let lst = stat_at(obs, 0)?;
        let fst = stat_at(obs, 1)?;
        let src_st = match self.src_check {
            Some(_) => stat_at(obs, 2)?,
            None => None,
        };
        let prev = kind_word(lst);
        let state = match self.state.as_deref() {
            Some(s) => s,
            None if lst.is_some() => "",
            None if self.recurse => "directory",
            None => "file",
        };
        let path = self.path.as_str();
        // The object attributes apply to: the link's target when following.
        let target = if self.follow { fst } else { lst };
        let mut changes = Vec::new();
        match state {
            "absent" => {
                if lst.is_none() {
                    return Ok(self.finish(
                        Plan::unchanged(format!("{path} is already absent")),
                        "absent",
                    ));
                }
                changes.push(
                    Change::new(
                        format!("remove {prev} {path}"),
                        vec![Step::exec(["rm", "-rf", "--", path])],
                    )
                    .with_diff(state_diff(path, prev, "absent")),
                );
            }
            "" => {
                // No state given on an existing path: manage its attributes only.
                if let Some(t) = target {
                    let is_link = t.kind == FileKind::Link;
                    let d = self.attrs.diff(t, t.kind == FileKind::Directory, !is_link);
                    changes.extend(d.changes(path, is_link));
                }
            }
            "file" => match (lst, target) {
                (None, _) => {
                    return Err(ModuleError::Failed(format!(
                        "file ({path}) is absent, cannot continue"
                    )))
                }
                (_, Some(t)) if t.kind == FileKind::File || t.kind == FileKind::Other => {
                    changes.extend(self.attrs.diff(t, false, true).changes(path, false))
                }
                (_, t) => {
                    return Err(ModuleError::Failed(format!(
                        "file ({path}) is {}, cannot continue",
                        if t.is_none() {
                            "a broken link"
                        } else {
                            kind_word(t)
                        }
                    )))
                }
            },
            "directory" => match target {
                None if lst.is_some() => {
                    return Err(ModuleError::Failed(format!(
                        "{path} is a broken link, cannot create a directory"
                    )))
                }
                None => {
                    // mkdir_step sets mode and owner on every directory it
                    // creates, this one included: one round trip.
                    let steps = vec![mkdir_step(&self.attrs, path)];
                    changes.push(
                        Change::new(format!("create directory {path}"), steps)
                            .with_diff(state_diff(path, "absent", "directory")),
                    );
                }
                Some(t) if t.kind == FileKind::Directory => {
                    changes.extend(self.attrs.diff(t, true, true).changes(path, false));
                    if self.recurse {
                        changes.extend(fs_recurse::plan(&self.attrs, path, obs.last())?);
                    }
                }
                Some(_) => {
                    return Err(ModuleError::Failed(format!(
                        "{path} already exists as a {prev}"
                    )))
                }
            },
            "touch" => {
                let (summary, base) = match target {
                    Some(_) => (format!("touch {path}"), None),
                    None => (format!("create file {path}"), Some(0o644)),
                };
                let mut steps = vec![Step::exec(["touch", "--", path])];
                match (base, target) {
                    (Some(b), _) => {
                        steps.extend(fs_attrs::fresh_steps(&self.attrs, path, b, false))
                    }
                    (None, Some(t)) => {
                        let d = self.attrs.diff(t, t.kind == FileKind::Directory, true);
                        steps.extend(d.changes(path, false).into_iter().flat_map(|c| c.steps));
                    }
                    (None, None) => {}
                }
                let mut c = Change::new(summary, steps);
                if target.is_none() {
                    c = c.with_diff(state_diff(path, "absent", "file"));
                }
                changes.push(c);
            }
            "link" => changes = self.plan_link(lst, src_st)?,
            "hard" => changes = self.plan_hard(lst, src_st)?,
            other => return Err(ModuleError::Failed(format!("unknown state {other}"))),
        }
        let after = match state {
            "" => prev,
            s => s,
        };
        let plan = if changes.is_empty() {
            Plan::unchanged(format!(
                "{path} is already {after} with the wanted attributes"
            ))
        } else {
            Plan {
                changes,
                ..Default::default()
            }
        };
        Ok(self.finish(plan, after))
    }
}

impl FileAction {
    fn finish(&self, mut plan: Plan, state: &str) -> Plan {
        plan.result
            .insert("path".into(), Value::String(self.path.clone()));
        plan.result
            .insert("state".into(), Value::String(state.into()));
        if let Some(src) = &self.src {
            plan.result.insert("src".into(), Value::String(src.clone()));
        }
        plan
    }
}

/// Create a directory and its missing parents. As Ansible does, the parents
/// this creates get the same mode and owner as the directory itself.
fn mkdir_step(attrs: &fs_attrs::Attrs, path: &str) -> Step {
    let mode = attrs
        .resolve_mode(0o755, true)
        .map(|m| format!("{m:04o}"))
        .unwrap_or_default();
    let owner = match (&attrs.owner, &attrs.group) {
        (Some(o), Some(g)) => format!("{o}:{g}"),
        (Some(o), None) => o.clone(),
        (None, Some(g)) => format!(":{g}"),
        (None, None) => String::new(),
    };
    if mode.is_empty() && owner.is_empty() {
        return Step::exec(["mkdir", "-p", "--", path]);
    }
    const SCRIPT: &str = "p=$1; m=$2; o=$3; d=$p; set --; \
while [ ! -e \"$d\" ] && [ ! -L \"$d\" ]; do set -- \"$d\" \"$@\"; \
case $d in */*) d=${d%/*}; d=${d:-/} ;; *) d=. ;; esac; done; \
if [ $# = 1 ] && [ -z \"$o\" ] && [ -n \"$m\" ]; then exec mkdir -m \"$m\" -- \"$p\"; fi; \
mkdir -p -- \"$p\" || exit 1; \
for x; do if [ -n \"$o\" ]; then chown -- \"$o\" \"$x\" || exit 1; fi; if [ -n \"$m\" ]; then chmod -- \"$m\" \"$x\" || exit 1; fi; done";
    Step::exec(["/bin/sh", "-c", SCRIPT, "drover-mkdir", path, &mode, &owner])
}
