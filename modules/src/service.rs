//! `service` module (alias `systemd`): start, stop, restart or reload a
//! service and enable or disable it at boot, on systemd (`systemctl`) or
//! sysvinit (`service` + `/etc/init.d` + `update-rc.d`). The init system comes
//! from the `ansible_service_mgr` fact, or is probed when facts are missing.
//! `restarted` and `reloaded` always change, as in Ansible.

use drover_engine::args::{get_bool, get_str, req_str};
use drover_engine::module::{
    Action, Args, Change, Diff, ExecOutput, Kind, Module, ModuleError, Observed, Param, Plan,
    Probe, Registry, Step, TaskContext,
};
use serde_json::{json, Map, Value};
use std::sync::Arc;

const STATES: &[&str] = &["started", "stopped", "restarted", "reloaded"];
const DETECT: &str = "if [ -d /run/systemd/system ]; then echo systemd; else echo sysvinit; fi";
/// Prints enabled / disabled / none (no runlevel links at all) for `$1`.
const SYSV_ENABLED: &str = "if ls /etc/rc2.d/S??\"$1\" >/dev/null 2>&1; then echo enabled; \
elif ls /etc/rc?.d/[SK]??\"$1\" >/dev/null 2>&1; then echo disabled; else echo none; fi";

const PARAMS: &[Param] = &[
    Param::new("name", Kind::Str)
        .required()
        .aliases(&["service", "unit"]),
    Param::new("state", Kind::Str).choices(STATES),
    Param::new("enabled", Kind::Bool),
    Param::new("daemon_reload", Kind::Bool).aliases(&["daemon-reload"]),
    Param::new("use", Kind::Str),
];

pub struct ServiceModule;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mgr {
    Systemd,
    Sysv,
    /// Unknown until the detection probe has run.
    Detect,
}

impl Module for ServiceModule {
    fn name(&self) -> &'static str {
        "service"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["systemd"]
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let name = req_str(args, "name")?;
        if name.is_empty() || name.starts_with('-') || name.contains('/') {
            return Err(ModuleError::BadArg {
                name: "name".into(),
                value: format!("`{name}`"),
                message: "not a service name".into(),
            });
        }
        let state = get_str(args, "state")?;
        if let Some(s) = state.as_deref().filter(|s| !STATES.contains(s)) {
            return Err(ModuleError::BadChoice {
                name: "state".into(),
                value: s.into(),
                choices: STATES.join(", "),
            });
        }
        let enabled = match args.get("enabled") {
            None | Some(Value::Null) => None,
            Some(_) => Some(get_bool(args, "enabled", false)?),
        };
        if state.is_none() && enabled.is_none() {
            return Err(ModuleError::Failed(format!(
                "service {name}: one of `state` or `enabled` is required"
            )));
        }
        let given = get_str(args, "use")?.filter(|u| u != "auto");
        let fact = ctx
            .vars()
            .get("ansible_service_mgr")
            .and_then(Value::as_str)
            .map(str::to_string);
        let mgr = match given.or(fact).as_deref() {
            None | Some("unknown") => Mgr::Detect,
            Some("systemd") => Mgr::Systemd,
            Some("sysvinit") | Some("service") | Some("sysv") => Mgr::Sysv,
            Some(other) => {
                return Err(ModuleError::Failed(format!(
                    "service manager `{other}` is not implemented yet (systemd and sysvinit are)"
                )))
            }
        };
        Ok(Box::new(ServiceAction {
            name,
            state,
            enabled,
            mgr,
        }))
    }
}

struct ServiceAction {
    name: String,
    state: Option<String>,
    enabled: Option<bool>,
    mgr: Mgr,
}

/// What the probes said about the service.
struct Current {
    mgr: Mgr,
    running: bool,
    enabled: bool,
    /// sysvinit only: no runlevel links at all.
    no_links: bool,
    status: Map<String, Value>,
}

fn exec<'a>(o: Option<&'a Observed>, what: &str) -> Result<&'a ExecOutput, ModuleError> {
    match o {
        Some(Observed::Exec(e)) => Ok(e),
        other => Err(ModuleError::Probe(format!(
            "expected the output of {what}, got {other:?}"
        ))),
    }
}

impl ServiceAction {
    fn s(&self, v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn not_found(&self) -> ModuleError {
        ModuleError::Absent(format!(
            "unit {} not found (Could not find the requested service {})",
            self.name, self.name
        ))
    }

    fn current(&self, observed: &[Observed]) -> Result<Current, ModuleError> {
        let mut i = 0;
        let mgr = match self.mgr {
            Mgr::Detect => {
                i = 1;
                match exec(observed.first(), "init system detection")?
                    .stdout_str()
                    .trim()
                {
                    "systemd" => Mgr::Systemd,
                    _ => Mgr::Sysv,
                }
            }
            m => m,
        };
        // With detection both probe sets ran: systemd's first.
        let sysv_at = if self.mgr == Mgr::Detect { i + 1 } else { i };
        let mut status = Map::new();
        if mgr == Mgr::Systemd {
            let out = exec(observed.get(i), "systemctl show")?.stdout_str();
            for line in out.lines() {
                if let Some((k, v)) = line.split_once('=') {
                    status.insert(k.to_string(), json!(v));
                }
            }
            let get = |k: &str| status.get(k).and_then(Value::as_str).unwrap_or("");
            if get("LoadState") == "not-found" || get("LoadState").is_empty() {
                return Err(self.not_found());
            }
            let running = matches!(get("ActiveState"), "active" | "activating" | "reloading");
            let enabled = matches!(
                get("UnitFileState"),
                "enabled" | "enabled-runtime" | "alias" | "static" | "indirect" | "generated"
            );
            return Ok(Current {
                mgr,
                running,
                enabled,
                no_links: false,
                status,
            });
        }
        match observed.get(sysv_at) {
            Some(Observed::Stat(Some(_))) => {}
            Some(Observed::Stat(None)) => return Err(self.not_found()),
            other => {
                return Err(ModuleError::Probe(format!(
                    "expected the stat of /etc/init.d/{}, got {other:?}",
                    self.name
                )))
            }
        }
        let st = exec(observed.get(sysv_at + 1), "service status")?;
        let links = exec(observed.get(sysv_at + 2), "runlevel links")?.stdout_str();
        let running = st.success();
        let enabled = links.trim() == "enabled";
        status.insert("running".into(), json!(running));
        status.insert("rc".into(), json!(st.status));
        status.insert("enabled".into(), json!(enabled));
        Ok(Current {
            mgr,
            running,
            enabled,
            no_links: links.trim() == "none",
            status,
        })
    }

    fn ctl(&self, mgr: Mgr, verb: &str) -> Step {
        match mgr {
            Mgr::Systemd => Step::exec(self.s(&["systemctl", verb, "--", &self.name])),
            _ => Step::exec(self.s(&["service", &self.name, verb])),
        }
    }
}

impl Action for ServiceAction {
    fn probes(&self) -> Vec<Probe> {
        let mut p = Vec::new();
        if self.mgr == Mgr::Detect {
            p.push(Probe::Exec {
                argv: self.s(&["sh", "-c", DETECT]),
            });
        }
        if self.mgr != Mgr::Sysv {
            p.push(Probe::Exec {
                argv: self.s(&[
                    "systemctl",
                    "show",
                    "--property=LoadState,ActiveState,SubState,UnitFileState",
                    "--",
                    &self.name,
                ]),
            });
        }
        if self.mgr != Mgr::Systemd {
            p.push(Probe::Stat {
                path: format!("/etc/init.d/{}", self.name),
                follow: true,
            });
            p.push(Probe::Exec {
                argv: self.s(&["service", &self.name, "status"]),
            });
            p.push(Probe::Exec {
                argv: self.s(&["sh", "-c", SYSV_ENABLED, "sh", &self.name]),
            });
        }
        p
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        let cur = self.current(observed)?;
        let n = &self.name;
        let mut changes = Vec::new();
        if let Some(want) = self.enabled.filter(|w| *w != cur.enabled) {
            let verb = if want { "enable" } else { "disable" };
            let steps = match cur.mgr {
                Mgr::Systemd => vec![Step::exec(self.s(&["systemctl", verb, "--", n]))],
                _ if want && cur.no_links => vec![
                    Step::exec(self.s(&["update-rc.d", n, "defaults"])),
                    Step::exec(self.s(&["update-rc.d", n, "enable"])),
                ],
                _ => vec![Step::exec(self.s(&["update-rc.d", n, verb]))],
            };
            changes.push(Change::new(format!("{verb} service {n}"), steps));
        }
        let word = |r: bool| if r { "started" } else { "stopped" };
        let verb = match (self.state.as_deref(), cur.running) {
            (Some("started"), false) => Some("start"),
            (Some("stopped"), true) => Some("stop"),
            (Some("restarted"), _) => Some("restart"),
            (Some("reloaded"), true) => Some("reload"),
            (Some("reloaded"), false) => Some("start"),
            _ => None,
        };
        if let Some(v) = verb {
            let after = v != "stop";
            changes.push(
                Change::new(format!("{v} service {n}"), vec![self.ctl(cur.mgr, v)]).with_diff(
                    Diff {
                        label: "state".into(),
                        before: word(cur.running).into(),
                        after: word(after).into(),
                    },
                ),
            );
        }
        let mut result = Map::new();
        result.insert("name".into(), json!(n));
        let state_after = match self.state.as_deref() {
            Some("stopped") => "stopped",
            Some(_) => "started",
            None => word(cur.running),
        };
        result.insert("state".into(), json!(state_after));
        result.insert("enabled".into(), json!(self.enabled.unwrap_or(cur.enabled)));
        result.insert("status".into(), Value::Object(cur.status));
        Ok(Plan {
            reason: changes
                .is_empty()
                .then(|| format!("service {n} is already {state_after}")),
            changes,
            result,
            ..Default::default()
        })
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(ServiceModule));
}
