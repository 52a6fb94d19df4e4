//! `wait_for` module: wait, bounded, on the host for a TCP port to open or
//! close (or its connections to drain), or for a file to appear (holding
//! `search_regex`) or go away. The waiting is one read-only Exec probe (a
//! POSIX sh loop; TCP connects through bash's `/dev/tcp` with host and port
//! as positional arguments; drained reads `/proc/net/tcp*`), so it runs the
//! same under `--check`. Never changes anything; the result has `elapsed`.

use crate::sys_common::{bad, exec_at, seconds, sh};
use drover_engine::args::{get_int, get_str};
use drover_engine::module::{
    Action, Args, Kind, Module, ModuleError, Observed, Param, Plan, Probe, Registry, TaskContext,
};
use serde_json::json;
use std::sync::Arc;

const STATES: &[&str] = &["started", "stopped", "present", "absent", "drained"];

const PARAMS: &[Param] = &[
    Param::new("host", Kind::Str),
    Param::new("port", Kind::Int),
    Param::new("path", Kind::Str),
    Param::new("search_regex", Kind::Str),
    Param::new("state", Kind::Str).choices(STATES),
    Param::new("timeout", Kind::Int),
    Param::new("delay", Kind::Any),
    Param::new("sleep", Kind::Any),
    Param::new("connect_timeout", Kind::Int),
    Param::new("msg", Kind::Str),
];

pub struct WaitForModule;

pub fn register(r: &mut Registry) {
    r.add(Arc::new(WaitForModule));
}

/// The loop. Args: mode state host port path regex timeout delay sleep ct.
/// Prints the elapsed milliseconds; exit 0 = condition met, 1 = timed out.
const SCRIPT: &str = r#"mode=$1 state=$2 host=$3 port=$4 path=$5 re=$6 timeout=$7 delay=$8 pause=$9 ct=${10}
ms() { date +%s%3N; }
start=$(ms)
case $mode in port|regexport) command -v bash >/dev/null 2>&1 || { echo "wait_for needs bash on the host for TCP checks" >&2; exit 3; } ;; esac
hexport=$(printf '%04X' "$port")
connect() { timeout "$ct" bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null; }
check() {
  case $mode in
    none) return 1 ;;
    port) if connect; then [ "$state" != stopped ] && [ "$state" != absent ]; else [ "$state" = stopped ] || [ "$state" = absent ]; fi ;;
    regexport) timeout "$ct" bash -c 'exec 3<>"/dev/tcp/$0/$1" || exit 1; head -c 65536 <&3' "$host" "$port" 2>/dev/null | grep -Eq -- "$re" ;;
    drained) awk -v p="$hexport" 'FNR > 1 { split($2, a, ":"); if (a[2] == p && $4 != "0A" && $4 != "07") n++ } END { exit n > 0 }' /proc/net/tcp /proc/net/tcp6 2>/dev/null ;;
    path) if [ "$state" = absent ] || [ "$state" = stopped ]; then [ ! -e "$path" ]; elif [ -n "$re" ]; then [ -f "$path" ] && grep -Eq -- "$re" "$path" 2>/dev/null; else [ -e "$path" ]; fi ;;
  esac
}
sleep "$delay"
while :; do
  if check; then echo $(( $(ms) - start )); exit 0; fi
  now=$(ms)
  if [ $(( now - start )) -ge $(( timeout * 1000 )) ]; then
    if [ "$mode" = none ]; then echo $(( now - start )); exit 0; fi
    echo $(( now - start )); exit 1
  fi
  left=$(( timeout * 1000 - (now - start) ))
  if [ "$mode" = none ]; then sleep "$(( left / 1000 )).$(printf '%03d' $(( left % 1000 )))"; else sleep "$pause"; fi
done
"#;

impl Module for WaitForModule {
    fn name(&self) -> &'static str {
        "wait_for"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let state = get_str(args, "state")?.unwrap_or_else(|| "started".into());
        if !STATES.contains(&state.as_str()) {
            return Err(ModuleError::BadChoice {
                name: "state".into(),
                value: state,
                choices: STATES.join("|"),
            });
        }
        let host = get_str(args, "host")?.unwrap_or_else(|| "127.0.0.1".into());
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(bad("host", &host, "not a host name or address"));
        }
        let port = match get_int(args, "port")? {
            Some(p) if (1..=65535).contains(&p) => Some(p),
            Some(p) => return Err(bad("port", &p.to_string(), "must be 1..65535")),
            None => None,
        };
        let path = get_str(args, "path")?;
        if port.is_some() && path.is_some() {
            return Err(ModuleError::Failed(
                "port and path are mutually exclusive".into(),
            ));
        }
        let re = get_str(args, "search_regex")?.unwrap_or_default();
        if !re.is_empty() {
            regex::Regex::new(&re).map_err(|e| bad("search_regex", &re, &e.to_string()))?;
        }
        let timeout = get_int(args, "timeout")?.unwrap_or(300);
        if timeout < 0 {
            return Err(bad("timeout", &timeout.to_string(), "must be >= 0"));
        }
        let ct = get_int(args, "connect_timeout")?.unwrap_or(5).max(1);
        let delay = seconds(args, "delay", 0.0)?;
        let pause = seconds(args, "sleep", 1.0)?;
        let mode = match (port, &path, state.as_str()) {
            (None, _, "drained") => {
                return Err(ModuleError::MissingArg("port (state drained)".into()))
            }
            (Some(_), _, "drained") => "drained",
            (Some(_), _, "started" | "present") if !re.is_empty() => "regexport",
            (Some(_), _, _) => "port",
            (None, Some(_), _) => "path",
            (None, None, _) => "none",
        };
        let target = match (port, &path) {
            (Some(p), _) => format!("{host}:{p}"),
            (None, Some(p)) => p.clone(),
            (None, None) => String::new(),
        };
        let msg = get_str(args, "msg")?.unwrap_or_else(|| match (mode, state.as_str()) {
            ("port", "stopped" | "absent") => format!("Timeout when waiting for {target} to stop."),
            ("drained", _) => format!("Timeout when waiting for {target} to drain"),
            ("path", "stopped" | "absent") => {
                format!("Timeout when waiting for {target} to be absent.")
            }
            ("path" | "regexport", _) if !re.is_empty() => {
                format!("Timeout when waiting for search string {re} in {target}")
            }
            _ => format!("Timeout when waiting for {target}"),
        });
        let argv = sh(
            SCRIPT,
            "drover-wait_for",
            &[
                mode.into(),
                state.clone(),
                host,
                port.map(|p| p.to_string()).unwrap_or_default(),
                path.clone().unwrap_or_default(),
                re.clone(),
                timeout.to_string(),
                delay.to_string(),
                pause.to_string(),
                ct.to_string(),
            ],
        );
        Ok(Box::new(WaitForAction {
            argv,
            msg,
            state,
            port,
            path,
            re,
        }))
    }
}

struct WaitForAction {
    argv: Vec<String>,
    msg: String,
    state: String,
    port: Option<i64>,
    path: Option<String>,
    re: String,
}

impl Action for WaitForAction {
    fn probes(&self) -> Vec<Probe> {
        vec![Probe::Exec {
            argv: self.argv.clone(),
        }]
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        let o = exec_at(observed, 0, "the wait_for loop")?;
        let ms: u64 = o.stdout_str().trim().parse().unwrap_or(0);
        let elapsed = ms / 1000;
        let mut plan = Plan::unchanged(format!("condition met after {ms} ms"));
        match o.status {
            Some(0) => {}
            Some(1) => {
                plan.reason = None;
                plan.failed = Some(format!("{} (elapsed {elapsed} s)", self.msg));
            }
            rc => {
                return Err(ModuleError::Failed(format!(
                    "wait_for failed on the host (rc {rc:?}): {}",
                    o.stderr_str().trim()
                )))
            }
        }
        plan.result.insert("elapsed".into(), json!(elapsed));
        plan.result.insert("state".into(), json!(self.state));
        if let Some(p) = self.port {
            plan.result.insert("port".into(), json!(p));
        }
        if let Some(p) = &self.path {
            plan.result.insert("path".into(), json!(p));
        }
        if !self.re.is_empty() {
            plan.result.insert("search_regex".into(), json!(self.re));
        }
        Ok(plan)
    }
}
