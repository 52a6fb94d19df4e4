//! `cron` module: manage one named entry of a user's crontab or of a file in
//! `/etc/cron.d`, as Ansible's `cron`: the job line follows a `#Ansible: NAME`
//! marker line; `env: yes` manages a `NAME=job` variable line instead.
//! Observes `crontab -l [-u USER]` ("no crontab" = empty) or reads the
//! cron file; installs user crontabs with `crontab [-u USER] -` fed on stdin
//! and cron files with one atomic write (0644).

use crate::acct_common::{check_name, exec_at};
use drover_engine::args::{get_bool, get_str, req_str};
use drover_engine::module::{
    Action, Args, Change, Diff, Kind, Module, ModuleError, Observed, Param, Plan, Probe, Registry,
    Step, TaskContext,
};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct CronModule;

const STATES: &[&str] = &["present", "absent"];
const SPECIAL: &[&str] = &[
    "annually", "daily", "hourly", "monthly", "reboot", "weekly", "yearly",
];
const TIMES: [&str; 5] = ["minute", "hour", "day", "month", "weekday"];

const PARAMS: &[Param] = &[
    Param::new("name", Kind::Str).required(),
    Param::new("job", Kind::Str).aliases(&["value"]),
    Param::new("minute", Kind::Str),
    Param::new("hour", Kind::Str),
    Param::new("day", Kind::Str).aliases(&["dom"]),
    Param::new("month", Kind::Str),
    Param::new("weekday", Kind::Str).aliases(&["dow"]),
    Param::new("special_time", Kind::Str).choices(SPECIAL),
    Param::new("user", Kind::Str),
    Param::new("state", Kind::Str).choices(STATES),
    Param::new("cron_file", Kind::Str),
    Param::new("disabled", Kind::Bool),
    Param::new("env", Kind::Bool),
];

fn bad(name: &str, value: &str, message: &str) -> ModuleError {
    ModuleError::BadArg {
        name: name.into(),
        value: value.into(),
        message: message.into(),
    }
}

impl Module for CronModule {
    fn name(&self) -> &'static str {
        "cron"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let name = req_str(args, "name")?;
        if name.contains('\n') || name.trim().is_empty() {
            return Err(bad("name", &name, "must be one non-empty line"));
        }
        let state = get_str(args, "state")?.unwrap_or_else(|| "present".into());
        if !STATES.contains(&state.as_str()) {
            return Err(ModuleError::BadChoice {
                name: "state".into(),
                value: state,
                choices: STATES.join("|"),
            });
        }
        let present = state == "present";
        let env = get_bool(args, "env", false)?;
        let job = get_str(args, "job")?;
        if job.as_deref().is_some_and(|j| j.contains('\n')) {
            return Err(bad("job", &job.unwrap_or_default(), "must be one line"));
        }
        let user = get_str(args, "user")?;
        if let Some(u) = &user {
            check_name("user", u)?;
        }
        let cron_file = match get_str(args, "cron_file")?.filter(|f| !f.is_empty()) {
            Some(f) if f.starts_with('/') => Some(f),
            Some(f) if f.contains('/') || f.contains('.') => {
                return Err(bad(
                    "cron_file",
                    &f,
                    "a name under /etc/cron.d must not contain `/` or `.`",
                ))
            }
            Some(f) => Some(format!("/etc/cron.d/{f}")),
            None => None,
        };
        let special = get_str(args, "special_time")?;
        let mut times = Vec::new();
        for t in TIMES {
            let v = get_str(args, t)?.unwrap_or_else(|| "*".into());
            if v.is_empty() || v.contains(char::is_whitespace) {
                return Err(bad(t, &v, "must be one cron time field without spaces"));
            }
            times.push(v);
        }
        let line = if !present {
            None
        } else {
            let job = job.ok_or_else(|| ModuleError::MissingArg("job".into()))?;
            let mut l = if env {
                format!("{name}={job}")
            } else {
                let when = match &special {
                    Some(s) if SPECIAL.contains(&s.as_str()) => format!("@{s}"),
                    Some(s) => {
                        return Err(ModuleError::BadChoice {
                            name: "special_time".into(),
                            value: s.clone(),
                            choices: SPECIAL.join("|"),
                        })
                    }
                    None => times.join(" "),
                };
                match &cron_file {
                    Some(_) => format!("{when} {} {job}", user.as_deref().unwrap_or("root")),
                    None => format!("{when} {job}"),
                }
            };
            if get_bool(args, "disabled", false)? && !env {
                l.insert(0, '#');
            }
            Some(l)
        };
        Ok(Box::new(CronAction {
            name,
            env,
            line,
            user,
            cron_file,
        }))
    }
}

struct CronAction {
    name: String,
    env: bool,
    /// The wanted job (or variable) line; None for state absent.
    line: Option<String>,
    user: Option<String>,
    cron_file: Option<String>,
}

impl CronAction {
    fn target(&self) -> String {
        match (&self.cron_file, &self.user) {
            (Some(f), _) => f.clone(),
            (None, Some(u)) => format!("crontab of {u}"),
            (None, None) => "crontab".into(),
        }
    }

    fn crontab_argv(&self, tail: &str) -> Vec<String> {
        let mut a = vec!["crontab".to_string()];
        if let Some(u) = &self.user {
            a.extend(["-u".into(), u.clone()]);
        }
        a.push(tail.into());
        a
    }

    /// New content from the old one.
    fn edit(&self, before: &str) -> String {
        let mut lines: Vec<String> = before.lines().map(String::from).collect();
        let marker = format!("#Ansible: {}", self.name);
        let prefix = format!("{}=", self.name);
        if self.env {
            let pos = lines.iter().position(|l| l.starts_with(&prefix));
            match (pos, &self.line) {
                (Some(i), Some(l)) => lines[i] = l.clone(),
                (Some(i), None) => {
                    lines.remove(i);
                }
                (None, Some(l)) => lines.insert(0, l.clone()),
                (None, None) => {}
            }
        } else {
            let pos = lines.iter().position(|l| *l == marker);
            match (pos, &self.line) {
                (Some(i), Some(l)) if i + 1 < lines.len() => lines[i + 1] = l.clone(),
                (Some(_), Some(l)) => lines.push(l.clone()),
                (Some(i), None) => {
                    let end = (i + 2).min(lines.len());
                    lines.drain(i..end);
                }
                (None, Some(l)) => {
                    lines.push(marker);
                    lines.push(l.clone());
                }
                (None, None) => {}
            }
        }
        let mut s = lines.join("\n");
        if !s.is_empty() {
            s.push('\n');
        }
        s
    }
}

impl Action for CronAction {
    fn probes(&self) -> Vec<Probe> {
        match &self.cron_file {
            Some(f) => vec![Probe::Read { path: f.clone() }],
            None => vec![Probe::Exec {
                argv: self.crontab_argv("-l"),
            }],
        }
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        let before = match &self.cron_file {
            Some(f) => match observed.first() {
                Some(Observed::Content(c)) => {
                    String::from_utf8_lossy(c.as_deref().unwrap_or_default()).into_owned()
                }
                other => {
                    return Err(ModuleError::Probe(format!(
                        "expected the content of {f}, got {other:?}"
                    )))
                }
            },
            None => {
                let o = exec_at(observed, 0, "crontab -l")?;
                let err = o.stderr_str();
                if o.success() {
                    o.stdout_str()
                } else if err.contains("no crontab") {
                    String::new()
                } else {
                    return Err(ModuleError::Probe(format!(
                        "crontab -l failed (rc {:?}): {}",
                        o.status,
                        err.trim()
                    )));
                }
            }
        };
        let after = self.edit(&before);
        let target = self.target();
        let mut plan = Plan::default();
        plan.result.insert("name".into(), json!(self.name));
        plan.result.insert(
            "state".into(),
            json!(if self.line.is_some() {
                "present"
            } else {
                "absent"
            }),
        );
        if let Some(f) = &self.cron_file {
            plan.result.insert("cron_file".into(), json!(f));
        }
        if after == before {
            plan.reason = Some(format!("{target} already as wanted"));
            return Ok(plan);
        }
        let verb = match (
            &self.line,
            before.contains(&format!("#Ansible: {}", self.name)),
        ) {
            (None, _) => "remove",
            (Some(_), true) => "update",
            (Some(_), false) => "add",
        };
        let step = match &self.cron_file {
            Some(f) => Step::Write {
                path: f.clone(),
                content: Arc::new(after.clone().into_bytes()),
                mode: Some(0o644),
                owner: Some("root".into()),
                group: Some("root".into()),
                validate: None,
                backup: false,
            },
            None => Step::Exec {
                argv: self.crontab_argv("-"),
                stdin: Some(after.clone().into_bytes()),
                cwd: None,
                env: BTreeMap::new(),
                capture: false,
                allow_fail: false,
            },
        };
        plan.changes.push(
            Change::new(
                format!("{verb} cron job {} in {target}", self.name),
                vec![step],
            )
            .with_diff(Diff {
                label: target,
                before,
                after,
            }),
        );
        Ok(plan)
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(CronModule));
}
