//! `modprobe` module: load or unload a kernel module now (`modprobe NAME
//! PARAMS...` / `modprobe -r NAME`, as argv) and, with `persistent`, at boot:
//! `/etc/modules-load.d/NAME.conf` (the name) and `/etc/modprobe.d/NAME.conf`
//! (`options NAME PARAMS`). Observes `/proc/modules` and the running
//! kernel's `modules.builtin` (a built-in module counts as loaded and cannot
//! be removed). Ansible's names: `name`, `state`, `params`, `persistent`
//! (`disabled`, the default, leaves the boot files alone). Differences: only
//! drover's own two files are managed, and `absent` deletes them (Ansible
//! comments lines out of whatever file holds them).

use crate::sys_common::config_write;
use drover_engine::args::{get_str, req_str};
use drover_engine::module::{
    Action, Args, Change, Diff, Kind, Module, ModuleError, Observed, Param, Plan, Probe, Registry,
    Step, TaskContext,
};
use serde_json::json;
use std::sync::Arc;

const STATES: &[&str] = &["present", "absent"];
const PERSISTENT: &[&str] = &["disabled", "absent", "present"];
const BUILTIN: &str = "cat \"/lib/modules/$(uname -r)/modules.builtin\" 2>/dev/null; true";

const PARAMS: &[Param] = &[
    Param::new("name", Kind::Str).required(),
    Param::new("state", Kind::Str).choices(STATES),
    Param::new("params", Kind::Str),
    Param::new("persistent", Kind::Str).choices(PERSISTENT),
];

pub struct ModprobeModule;

fn choice(name: &str, v: String, choices: &[&str]) -> Result<String, ModuleError> {
    if choices.contains(&v.as_str()) {
        Ok(v)
    } else {
        Err(ModuleError::BadChoice {
            name: name.into(),
            value: v,
            choices: choices.join("|"),
        })
    }
}

/// Kernel module names treat `-` and `_` alike.
fn canon(n: &str) -> String {
    n.replace('-', "_")
}

impl Module for ModprobeModule {
    fn name(&self) -> &'static str {
        "modprobe"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["community.general.modprobe"]
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let name = req_str(args, "name")?;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(ModuleError::BadArg {
                name: "name".into(),
                value: format!("`{name}`"),
                message: "not a kernel module name (letters, digits, _ and -)".into(),
            });
        }
        let state = choice(
            "state",
            get_str(args, "state")?.unwrap_or_else(|| "present".into()),
            STATES,
        )?;
        let persistent = choice(
            "persistent",
            get_str(args, "persistent")?.unwrap_or_else(|| "disabled".into()),
            PERSISTENT,
        )?;
        let params = get_str(args, "params")?.unwrap_or_default();
        let words = shell_words::split(&params).map_err(|e| ModuleError::BadArg {
            name: "params".into(),
            value: format!("`{params}`"),
            message: e.to_string(),
        })?;
        if params.contains('\n') {
            return Err(ModuleError::BadArg {
                name: "params".into(),
                value: format!("`{params}`"),
                message: "must be one line".into(),
            });
        }
        Ok(Box::new(ModprobeAction {
            present: state == "present",
            persistent,
            params: words,
            name,
        }))
    }
}

struct ModprobeAction {
    name: String,
    present: bool,
    persistent: String,
    params: Vec<String>,
}

impl ModprobeAction {
    fn load_file(&self) -> String {
        format!("/etc/modules-load.d/{}.conf", self.name)
    }
    fn options_file(&self) -> String {
        format!("/etc/modprobe.d/{}.conf", self.name)
    }

    /// Change that makes `path` hold `want` (None: absent).
    fn file_change(
        &self,
        path: String,
        have: Option<String>,
        want: Option<String>,
    ) -> Option<Change> {
        if have == want {
            return None;
        }
        Some(match want {
            Some(w) => config_write(format!("write {path}"), &path, have.unwrap_or_default(), w),
            None => Change::new(
                format!("remove {path}"),
                vec![Step::exec(["rm", "-f", "--", path.as_str()])],
            )
            .with_diff(Diff {
                label: path.clone(),
                before: have.unwrap_or_default(),
                after: String::new(),
            }),
        })
    }
}

fn content(o: Option<&Observed>, what: &str) -> Result<Option<String>, ModuleError> {
    match o {
        Some(Observed::Content(c)) => {
            Ok(c.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()))
        }
        other => Err(ModuleError::Probe(format!(
            "expected the content of {what}, got {other:?}"
        ))),
    }
}

impl Action for ModprobeAction {
    fn probes(&self) -> Vec<Probe> {
        let mut p = vec![
            Probe::Read {
                path: "/proc/modules".into(),
            },
            Probe::Exec {
                argv: vec!["sh".into(), "-c".into(), BUILTIN.into()],
            },
        ];
        if self.persistent != "disabled" {
            p.push(Probe::Read {
                path: self.load_file(),
            });
            p.push(Probe::Read {
                path: self.options_file(),
            });
        }
        p
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        let want = canon(&self.name);
        let modules = content(observed.first(), "/proc/modules")?.ok_or_else(|| {
            ModuleError::Failed("/proc/modules is missing: no loadable module support".into())
        })?;
        let loaded = modules
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .any(|m| canon(m) == want);
        let builtin = match observed.get(1) {
            Some(Observed::Exec(o)) => o.stdout_str().lines().any(|l| {
                let base = l.rsplit('/').next().unwrap_or("");
                canon(base.strip_suffix(".ko").unwrap_or(base)) == want
            }),
            other => {
                return Err(ModuleError::Probe(format!(
                    "expected modules.builtin, got {other:?}"
                )))
            }
        };
        let mut plan = Plan::default();
        plan.result.insert("name".into(), json!(self.name));
        plan.result
            .insert("loaded".into(), json!(loaded || builtin));
        plan.result.insert("builtin".into(), json!(builtin));
        let word = |b: bool| if b { "loaded\n" } else { "not loaded\n" };
        if self.present && !loaded && !builtin {
            let mut argv = vec!["modprobe".to_string(), self.name.clone()];
            argv.extend(self.params.iter().cloned());
            plan.changes.push(
                Change::new(
                    format!("load kernel module {}", self.name),
                    vec![Step::exec(argv)],
                )
                .with_diff(Diff {
                    label: "state".into(),
                    before: word(false).into(),
                    after: word(true).into(),
                }),
            );
        }
        if !self.present && builtin {
            return Err(ModuleError::Failed(format!(
                "kernel module {} is built into the kernel and cannot be removed",
                self.name
            )));
        }
        if !self.present && loaded {
            plan.changes.push(
                Change::new(
                    format!("unload kernel module {}", self.name),
                    vec![Step::exec(["modprobe", "-r", self.name.as_str()])],
                )
                .with_diff(Diff {
                    label: "state".into(),
                    before: word(true).into(),
                    after: word(false).into(),
                }),
            );
        }
        if self.persistent != "disabled" {
            let have_load = content(observed.get(2), &self.load_file())?;
            let have_opts = content(observed.get(3), &self.options_file())?;
            let on = self.persistent == "present";
            let want_load = on.then(|| format!("{}\n", self.name));
            let want_opts = if !on {
                None
            } else if self.params.is_empty() {
                have_opts.clone()
            } else {
                Some(format!("options {} {}\n", self.name, self.params.join(" ")))
            };
            plan.changes
                .extend(self.file_change(self.load_file(), have_load, want_load));
            plan.changes
                .extend(self.file_change(self.options_file(), have_opts, want_opts));
        }
        if plan.changes.is_empty() {
            plan.reason = Some(format!(
                "kernel module {} is already {}",
                self.name,
                if self.present { "loaded" } else { "absent" }
            ));
        }
        Ok(plan)
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(ModprobeModule));
}
