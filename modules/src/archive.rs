//! `archive` module: pack `path` (one path or a list) on the host into
//! `dest` with the host's `tar` (`format`: gz, bz2, xz or tar). Members are
//! named relative to the sources' common parent folder, as Ansible's
//! `arcroot`. The archive is written to a temp file beside `dest` and
//! renamed. Changed only when `dest` is missing or `force: yes`.

use crate::sys_common::{bad, exec_step, sh, stat_at, step_output};
use drover_engine::args::{get_bool, get_str, get_str_list, req_str};
use drover_engine::module::{
    Action, Args, Change, ExecOutput, Kind, Module, ModuleError, Observed, Param, Plan, Probe,
    Registry, TaskContext,
};
use serde_json::{json, Map, Value};
use std::sync::Arc;

const FORMATS: &[&str] = &["gz", "bz2", "xz", "tar"];

const PARAMS: &[Param] = &[
    Param::new("path", Kind::List).required(),
    Param::new("dest", Kind::Str).required(),
    Param::new("format", Kind::Str).choices(FORMATS),
    Param::new("force", Kind::Bool),
];

/// `$1` dest, `$2` tar compression flag (or -), `$3` root, rest: members.
const SCRIPT: &str = r#"dest=$1 z=$2 root=$3; shift 3
tmp=$(mktemp "$(dirname -- "$dest")/.drover-archive.XXXXXXXX") || exit 1
trap 'rm -f -- "$tmp"' EXIT
if [ "$z" = - ]; then tar -c -f "$tmp" -C "$root" -- "$@"; else tar -c "$z" -f "$tmp" -C "$root" -- "$@"; fi || exit 1
chmod 0644 "$tmp" && mv -f -- "$tmp" "$dest" && trap - EXIT
"#;

pub struct ArchiveModule;

pub fn register(r: &mut Registry) {
    r.add(Arc::new(ArchiveModule));
}

/// The longest common parent folder of absolute paths.
fn common_root(paths: &[String]) -> String {
    let parents: Vec<Vec<&str>> = paths
        .iter()
        .map(|p| {
            let mut c: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
            c.pop();
            c
        })
        .collect();
    let mut root: Vec<&str> = parents.first().cloned().unwrap_or_default();
    for p in &parents[1..] {
        let n = root.iter().zip(p).take_while(|(a, b)| a == b).count();
        root.truncate(n);
    }
    format!("/{}", root.join("/"))
}

impl Module for ArchiveModule {
    fn name(&self) -> &'static str {
        "archive"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let mut paths = Vec::new();
        for p in get_str_list(args, "path")? {
            if !p.starts_with('/') || p.split('/').any(|c| c == "..") {
                return Err(bad("path", &p, "must be absolute paths without `..`"));
            }
            let p = if p.len() > 1 {
                p.trim_end_matches('/').to_string()
            } else {
                p
            };
            paths.push(p);
        }
        if paths.is_empty() {
            return Err(ModuleError::MissingArg("path".into()));
        }
        let dest = req_str(args, "dest")?;
        if !dest.starts_with('/') || dest.ends_with('/') {
            return Err(bad(
                "dest",
                &dest,
                "must be the absolute path of the archive file",
            ));
        }
        let format = get_str(args, "format")?.unwrap_or_else(|| "gz".into());
        let flag = match format.as_str() {
            "gz" => "-z",
            "bz2" => "-j",
            "xz" => "-J",
            "tar" => "-",
            other => {
                return Err(ModuleError::BadChoice {
                    name: "format".into(),
                    value: other.into(),
                    choices: FORMATS.join("|"),
                })
            }
        };
        Ok(Box::new(ArchiveAction {
            root: common_root(&paths),
            paths,
            dest,
            flag,
            format,
            force: get_bool(args, "force", false)?,
        }))
    }
}

struct ArchiveAction {
    paths: Vec<String>,
    root: String,
    dest: String,
    flag: &'static str,
    format: String,
    force: bool,
}

impl Action for ArchiveAction {
    fn probes(&self) -> Vec<Probe> {
        let mut p = vec![Probe::Stat {
            path: self.dest.clone(),
            follow: true,
        }];
        p.extend(self.paths.iter().map(|x| Probe::Stat {
            path: x.clone(),
            follow: false,
        }));
        p
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        let mut present = Vec::new();
        let mut missing = Vec::new();
        for (i, p) in self.paths.iter().enumerate() {
            match stat_at(observed, 1 + i)? {
                Some(_) => present.push(p.clone()),
                None => missing.push(p.clone()),
            }
        }
        let mut plan = Plan::default();
        plan.result.insert("dest".into(), json!(self.dest));
        plan.result.insert("arcroot".into(), json!(self.root));
        plan.result.insert("archived".into(), json!(present));
        plan.result.insert("missing".into(), json!(missing));
        plan.result.insert("format".into(), json!(self.format));
        let exists = stat_at(observed, 0)?.is_some();
        plan.result.insert(
            "state".into(),
            json!(if exists || !present.is_empty() {
                "archive"
            } else {
                "absent"
            }),
        );
        if exists && !self.force {
            plan.reason = Some(format!("{} exists (force: no)", self.dest));
            return Ok(plan);
        }
        if present.is_empty() {
            return Err(ModuleError::Failed(format!(
                "Error, no source paths were found: {}",
                self.paths.join(", ")
            )));
        }
        let root = self.root.trim_end_matches('/');
        let members: Vec<String> = present
            .iter()
            .map(|p| p[root.len()..].trim_start_matches('/').to_string())
            .collect();
        let mut a = vec![self.dest.clone(), self.flag.into(), self.root.clone()];
        a.extend(members);
        plan.changes.push(Change::new(
            format!(
                "{} {} from {}",
                if exists { "rebuild" } else { "create" },
                self.dest,
                present.join(", ")
            ),
            vec![exec_step(
                sh(SCRIPT, "drover-archive", &a),
                None,
                true,
                true,
            )],
        ));
        Ok(plan)
    }

    fn after_apply(
        &self,
        captured: &[ExecOutput],
        result: &mut Map<String, Value>,
    ) -> Result<(), ModuleError> {
        step_output(captured, result, &format!("creating {}", self.dest)).map(|_| ())
    }
}
