//! Small helpers shared by the host-side utility modules (`mount`,
//! `wait_for`, `uri`, `get_url`, `slurp`, `fetch`, `known_hosts`,
//! `unarchive`, `archive`, and the kernel-side `sysctl`, `modprobe`, `ipvs`):
//! argument errors naming the value, exec steps with capture/allow_fail,
//! whole-file config writes with their diff, and reading probe results.

pub use crate::observed::{content_at, exec_at, stat_at};
use drover_engine::module::{Change, Diff, ExecOutput, ModuleError, Step};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A bad argument, naming the value.
pub fn bad(name: &str, value: &str, message: &str) -> ModuleError {
    ModuleError::BadArg {
        name: name.into(),
        value: format!("`{value}`"),
        message: message.into(),
    }
}

/// An exec step with its options spelled out.
pub fn exec_step(
    argv: Vec<String>,
    stdin: Option<Vec<u8>>,
    capture: bool,
    allow_fail: bool,
) -> Step {
    Step::Exec {
        argv,
        stdin,
        cwd: None,
        env: BTreeMap::new(),
        capture,
        allow_fail,
    }
}

/// Change `what` that makes the config file `path` (mode 0644, owner left as
/// it is) hold `after` whole, with the diff from `before`.
pub fn config_write(what: String, path: &str, before: String, after: String) -> Change {
    Change::new(
        what,
        vec![Step::Write {
            path: path.to_string(),
            content: Arc::new(after.clone().into_bytes()),
            mode: Some(0o644),
            owner: None,
            group: None,
            validate: None,
            backup: false,
        }],
    )
    .with_diff(Diff {
        label: path.to_string(),
        before,
        after,
    })
}

/// `sh -c SCRIPT NAME ARGS...`: a fixed script, values only as positional
/// arguments (never pasted into the script).
pub fn sh(script: &str, name: &str, args: &[String]) -> Vec<String> {
    let mut v = vec![
        "/bin/sh".to_string(),
        "-c".into(),
        script.into(),
        name.into(),
    ];
    v.extend(args.iter().cloned());
    v
}

/// A positive number of seconds (int or float, as Ansible takes them).
pub fn seconds(
    args: &drover_engine::module::Args,
    name: &str,
    default: f64,
) -> Result<f64, ModuleError> {
    use serde_json::Value;
    let v = match args.get(name) {
        None | Some(Value::Null) => return Ok(default),
        Some(v) => v,
    };
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if n >= 0.0 && n.is_finite() => Ok(n),
        _ => Err(bad(
            name,
            &match v {
                Value::String(s) => s.clone(),
                o => o.to_string(),
            },
            "must be a number of seconds (>= 0)",
        )),
    }
}

/// For a module whose one step is a capturing, `allow_fail` exec: drop the
/// command fields from the result and fail with `what` and its stderr when
/// it did not exit 0. Returns the output.
pub fn step_output<'a>(
    captured: &'a [ExecOutput],
    result: &mut serde_json::Map<String, serde_json::Value>,
    what: &str,
) -> Result<&'a ExecOutput, ModuleError> {
    for k in ["rc", "stdout", "stderr", "stdout_lines", "stderr_lines"] {
        result.remove(k);
    }
    let o = captured
        .first()
        .ok_or_else(|| ModuleError::Probe(format!("{what}: no output")))?;
    if o.success() {
        Ok(o)
    } else {
        Err(ModuleError::Failed(format!(
            "{what} failed (rc {}): {}",
            o.status.map_or("unknown".into(), |r| r.to_string()),
            o.stderr_str().trim()
        )))
    }
}
