//! `reboot` module, as Ansible's: reboots the host and waits until it is
//! back. The module only plans: it observes the current boot id and plans
//! one [`Step::Reboot`]; the engine runs the reboot command, re-dials the
//! host (host keys verified) until the boot id differs and `test_command`
//! succeeds, within `reboot_timeout`, and carries on with the new
//! connection. `--check` reports "would reboot" and touches nothing. The
//! result has `rebooted` and `elapsed` (seconds), as Ansible's. Accepted:
//! `msg`, `pre_reboot_delay` (whole minutes go to `shutdown -r +M`, as
//! Ansible does on Linux), `post_reboot_delay`, `reboot_timeout` (600),
//! `connect_timeout`, `test_command` (`whoami`), `reboot_command`,
//! `boot_time_command` (default: read `/proc/sys/kernel/random/boot_id`).
//! Commands given as strings are split shell-wise into argv.

use drover_engine::args::{get_int, get_str};
use drover_engine::module::{
    Action, Args, Change, Diff, Kind, Module, ModuleError, Observed, Param, Plan, Probe, Reboot,
    Registry, Step, TaskContext,
};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";
const DEFAULT_MSG: &str = "Reboot initiated by drover";

const PARAMS: &[Param] = &[
    Param::new("msg", Kind::Str),
    Param::new("pre_reboot_delay", Kind::Int),
    Param::new("post_reboot_delay", Kind::Int),
    Param::new("reboot_timeout", Kind::Int),
    Param::new("connect_timeout", Kind::Int),
    Param::new("test_command", Kind::Str),
    Param::new("reboot_command", Kind::Str),
    Param::new("boot_time_command", Kind::Str),
];

pub struct RebootModule;

fn seconds(args: &Args, name: &str, default: u64) -> Result<u64, ModuleError> {
    match get_int(args, name)? {
        None => Ok(default),
        Some(n) if n >= 0 => Ok(n as u64),
        Some(n) => Err(ModuleError::BadArg {
            name: name.into(),
            value: n.to_string(),
            message: "must not be negative".into(),
        }),
    }
}

fn argv(args: &Args, name: &str, default: &[&str]) -> Result<Vec<String>, ModuleError> {
    let Some(s) = get_str(args, name)? else {
        return Ok(default.iter().map(|s| s.to_string()).collect());
    };
    let words = shell_words::split(&s).map_err(|e| ModuleError::BadArg {
        name: name.into(),
        value: format!("`{s}`"),
        message: e.to_string(),
    })?;
    if words.is_empty() {
        return Err(ModuleError::BadArg {
            name: name.into(),
            value: format!("`{s}`"),
            message: "empty command".into(),
        });
    }
    Ok(words)
}

impl Module for RebootModule {
    fn name(&self) -> &'static str {
        "reboot"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let msg = get_str(args, "msg")?.unwrap_or_else(|| DEFAULT_MSG.into());
        let minutes = seconds(args, "pre_reboot_delay", 0)? / 60;
        let when = if minutes == 0 {
            "now".to_string()
        } else {
            format!("+{minutes}")
        };
        let default_cmd = ["shutdown", "-r", when.as_str(), msg.as_str()];
        let timeout = seconds(args, "reboot_timeout", 600)?;
        if timeout == 0 {
            return Err(ModuleError::BadArg {
                name: "reboot_timeout".into(),
                value: "0".into(),
                message: "must be at least 1 second".into(),
            });
        }
        let connect = get_int(args, "connect_timeout")?
            .map(|_| seconds(args, "connect_timeout", 0))
            .transpose()?
            .filter(|s| *s > 0)
            .map(Duration::from_secs);
        let custom_boot = get_str(args, "boot_time_command")?.is_some();
        Ok(Box::new(RebootAction {
            custom_boot,
            spec: Reboot {
                command: argv(args, "reboot_command", &default_cmd)?,
                boot_id_command: argv(args, "boot_time_command", &["cat", BOOT_ID])?,
                test_command: argv(args, "test_command", &["whoami"])?,
                timeout: Duration::from_secs(timeout),
                connect_timeout: connect,
                post_delay: Duration::from_secs(seconds(args, "post_reboot_delay", 0)?),
            },
        }))
    }
}

struct RebootAction {
    spec: Reboot,
    /// `boot_time_command` given: observe with it instead of the boot id file.
    custom_boot: bool,
}

impl Action for RebootAction {
    fn probes(&self) -> Vec<Probe> {
        if self.custom_boot {
            vec![Probe::Exec {
                argv: self.spec.boot_id_command.clone(),
            }]
        } else {
            vec![Probe::Read {
                path: BOOT_ID.into(),
            }]
        }
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        let id = match observed.first() {
            Some(Observed::Content(Some(b))) => String::from_utf8_lossy(b).trim().to_string(),
            Some(Observed::Exec(o)) if o.success() => o.stdout_str().trim().to_string(),
            Some(Observed::Content(None)) => {
                return Err(ModuleError::Failed(format!(
                    "{BOOT_ID} is missing: cannot tell when the host has rebooted (set boot_time_command)"
                )))
            }
            Some(Observed::Exec(o)) => {
                return Err(ModuleError::Failed(format!(
                    "boot_time_command `{}` failed (exit {:?}): {}",
                    self.spec.boot_id_command.join(" "),
                    o.status,
                    o.stderr_str().trim()
                )))
            }
            other => {
                return Err(ModuleError::Probe(format!(
                    "expected the boot id, got {other:?}"
                )))
            }
        };
        if id.is_empty() {
            return Err(ModuleError::Failed("the boot id is empty".into()));
        }
        let mut plan = Plan::default();
        plan.result.insert("boot_id_before".into(), json!(id));
        plan.changes.push(
            Change::new(
                format!(
                    "reboot (wait up to {}s for a new boot id)",
                    self.spec.timeout.as_secs()
                ),
                vec![Step::Reboot(self.spec.clone())],
            )
            .with_diff(Diff {
                label: "boot_id".into(),
                before: format!("{id}\n"),
                after: "(a new boot id)\n".into(),
            }),
        );
        Ok(plan)
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(RebootModule));
}
