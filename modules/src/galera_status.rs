//! `galera_status` module (drover's own): reads a MariaDB Galera node's
//! `wsrep_%` status (`wsrep_cluster_size`, `wsrep_ready`,
//! `wsrep_cluster_status`, `wsrep_local_state_comment`, … as result
//! fields, all of them under `status`). With `min_cluster_size: N` it is
//! also a bounded wait, like `wait_for`: the probe polls once a second on
//! the host until the node is ready in a cluster of at least N nodes, and
//! the task fails after `timeout` seconds (default 60) saying what it saw.
//! Read-only: it never changes anything, and it waits in check mode too
//! (so `--check` of a cluster not yet formed fails here, as `wait_for`
//! would). See `sql_common` for the client, and `playbooks/galera/` for
//! the whole bootstrap-and-join pattern.

use crate::sql_common::{ok_text, rows, Login};
use crate::sql_params;
use drover_engine::args::get_int;
use drover_engine::module::{
    Action, Args, Kind, Module, ModuleError, Observed, Param, Plan, Probe, Registry, TaskContext,
};
use serde_json::{json, Map, Value};
use std::sync::Arc;

pub struct GaleraStatusModule;

const PARAMS: &[Param] = sql_params![
    Param::new("min_cluster_size", Kind::Int),
    Param::new("timeout", Kind::Int),
];

/// `$2` = wanted size (0: no wait), `$3` = timeout; polls `"$@"`.
const WAIT: &str = "c=$(head -c \"$1\"; echo .); c=${c%.}; n=$2; end=$(( $(date +%s) + $3 )); shift 3
while :; do
  out=$(printf %s \"$c\" | \"$@\" 3<&0 </dev/null); rc=$?
  s=$(printf '%s\\n' \"$out\" | awk -F '\\t' '$1==\"wsrep_cluster_size\"{print $2}')
  r=$(printf '%s\\n' \"$out\" | awk -F '\\t' '$1==\"wsrep_ready\"{print $2}')
  if [ \"$rc\" = 0 ] && [ \"${s:-0}\" -ge \"$n\" ] && { [ \"$n\" = 0 ] || [ \"$r\" = ON ]; }; then break; fi
  [ \"$(date +%s)\" -ge \"$end\" ] && break
  sleep 1
done
printf '%s\\n' \"$out\"; exit $rc";

impl Module for GaleraStatusModule {
    fn name(&self) -> &'static str {
        "galera_status"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let min = get_int(args, "min_cluster_size")?.unwrap_or(0);
        let timeout = get_int(args, "timeout")?.unwrap_or(60);
        if min < 0 || timeout < 0 {
            return Err(ModuleError::Failed(format!(
                "min_cluster_size ({min}) and timeout ({timeout}) must not be negative"
            )));
        }
        Ok(Box::new(StatusAction {
            login: Login::from_args(args)?,
            min,
            timeout,
        }))
    }
}

struct StatusAction {
    login: Login,
    min: i64,
    timeout: i64,
}

impl Action for StatusAction {
    fn probes(&self) -> Vec<Probe> {
        let (n, t) = (self.min.to_string(), self.timeout.to_string());
        vec![self.login.probe_script(
            WAIT,
            &[&n, &t],
            &[
                "--batch",
                "--skip-column-names",
                "-e",
                "SHOW GLOBAL STATUS LIKE 'wsrep%'",
            ],
        )]
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        let o = match observed.first() {
            Some(Observed::Exec(o)) => o,
            _ => return Err(ModuleError::Probe("galera status probe missing".into())),
        };
        let text = ok_text(o)?;
        let mut status = Map::new();
        for r in rows(&text) {
            if let (Some(Some(k)), Some(v)) = (r.first(), r.get(1)) {
                status.insert(k.clone(), json!(v.clone().unwrap_or_default()));
            }
        }
        let get = |k: &str| {
            status
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let size: i64 = get("wsrep_cluster_size").parse().unwrap_or(0);
        let ready = get("wsrep_ready");
        let mut plan = Plan::default();
        plan.result.insert("wsrep_cluster_size".into(), json!(size));
        for k in [
            "wsrep_ready",
            "wsrep_connected",
            "wsrep_cluster_status",
            "wsrep_local_state_comment",
            "wsrep_cluster_state_uuid",
        ] {
            plan.result.insert(k.into(), json!(get(k)));
        }
        plan.result.insert("status".into(), Value::Object(status));
        if self.min > 0 && (size < self.min || ready != "ON") {
            return Err(ModuleError::Failed(format!(
                "galera: wsrep_cluster_size is {size}, wsrep_ready {} (wanted ≥ {} and ON) after {} s",
                if ready.is_empty() { "unset (is wsrep on?)" } else { &ready },
                self.min,
                self.timeout
            )));
        }
        plan.reason = Some(format!("galera cluster size {size}, ready {ready}"));
        Ok(plan)
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(GaleraStatusModule));
}
