//! `group` module: make a local group present (with an optional `gid`,
//! `system`) or absent, as Ansible's `group`. Observes `getent group NAME`;
//! applies `groupadd`/`groupmod`/`groupdel` with argv vectors.

use crate::acct_common::{check_name, exec_at, get_id};
use drover_engine::args::{get_bool, get_str, req_str};
use drover_engine::module::{
    Action, Args, Change, Diff, Kind, Module, ModuleError, Observed, Param, Plan, Probe, Registry,
    Step, TaskContext,
};
use serde_json::{json, Map};
use std::sync::Arc;

pub struct GroupModule;

const STATES: &[&str] = &["present", "absent"];

const PARAMS: &[Param] = &[
    Param::new("name", Kind::Str).required(),
    Param::new("state", Kind::Str).choices(STATES),
    Param::new("gid", Kind::Int),
    Param::new("system", Kind::Bool),
    Param::new("local", Kind::Bool),
    Param::new("non_unique", Kind::Bool),
];

impl Module for GroupModule {
    fn name(&self) -> &'static str {
        "group"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let name = req_str(args, "name")?;
        check_name("name", &name)?;
        let state = get_str(args, "state")?.unwrap_or_else(|| "present".into());
        if !STATES.contains(&state.as_str()) {
            return Err(ModuleError::BadChoice {
                name: "state".into(),
                value: state,
                choices: STATES.join("|"),
            });
        }
        get_bool(args, "local", false)?;
        Ok(Box::new(GroupAction {
            name,
            present: state == "present",
            gid: get_id(args, "gid")?,
            system: get_bool(args, "system", false)?,
            non_unique: get_bool(args, "non_unique", false)?,
        }))
    }
}

struct GroupAction {
    name: String,
    present: bool,
    gid: Option<u32>,
    system: bool,
    non_unique: bool,
}

fn state_diff(before: &str, after: &str) -> Diff {
    Diff {
        label: "state".into(),
        before: format!("{before}\n"),
        after: format!("{after}\n"),
    }
}

impl Action for GroupAction {
    fn probes(&self) -> Vec<Probe> {
        vec![Probe::Exec {
            argv: vec!["getent".into(), "group".into(), self.name.clone()],
        }]
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        let out = exec_at(observed, 0, "getent group")?;
        let current_gid = match out.status {
            Some(0) => {
                let text = out.stdout_str();
                let line = text.lines().next().unwrap_or_default();
                let gid = line.split(':').nth(2).and_then(|g| g.parse::<u32>().ok());
                Some(gid.ok_or_else(|| ModuleError::Probe(format!("bad group entry `{line}`")))?)
            }
            Some(2) => None,
            _ => {
                return Err(ModuleError::Probe(format!(
                    "getent group {} failed: {}",
                    self.name,
                    out.stderr_str().trim()
                )))
            }
        };
        let mut result = Map::new();
        result.insert("name".into(), json!(self.name));
        result.insert(
            "state".into(),
            json!(if self.present { "present" } else { "absent" }),
        );
        let n = &self.name;
        let mut plan = Plan::default();
        match (self.present, current_gid) {
            (true, None) => {
                let mut argv = vec!["groupadd".to_string()];
                if let Some(g) = self.gid {
                    argv.extend(["-g".into(), g.to_string()]);
                    if self.non_unique {
                        argv.push("-o".into());
                    }
                }
                if self.system {
                    argv.push("-r".into());
                }
                argv.extend(["--".into(), n.clone()]);
                plan.changes.push(
                    Change::new(format!("create group {n}"), vec![Step::exec(argv)])
                        .with_diff(state_diff("absent", "present")),
                );
                if let Some(g) = self.gid {
                    result.insert("gid".into(), json!(g));
                }
            }
            (true, Some(cur)) => match self.gid {
                Some(g) if g != cur => {
                    let mut argv = vec!["groupmod".to_string(), "-g".into(), g.to_string()];
                    if self.non_unique {
                        argv.push("-o".into());
                    }
                    argv.extend(["--".into(), n.clone()]);
                    plan.changes.push(Change::new(
                        format!("set gid of group {n} to {g} (was {cur})"),
                        vec![Step::exec(argv)],
                    ));
                    result.insert("gid".into(), json!(g));
                }
                _ => {
                    plan.reason = Some(format!("group {n} exists with gid {cur}"));
                    result.insert("gid".into(), json!(cur));
                }
            },
            (false, Some(_)) => plan.changes.push(
                Change::new(
                    format!("remove group {n}"),
                    vec![Step::exec(["groupdel", "--", n.as_str()])],
                )
                .with_diff(state_diff("present", "absent")),
            ),
            (false, None) => plan.reason = Some(format!("group {n} does not exist")),
        }
        plan.result = result;
        Ok(plan)
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(GroupModule));
}
