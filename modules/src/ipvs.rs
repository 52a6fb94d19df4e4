//! `ipvs` module (drover's own; Ansible has none): the declarative IPVS
//! (LVS) table of a director. `services:` lists virtual services (`protocol`
//! tcp|udp|fwmark, `address`, `port` or `fwmark`, `scheduler`, `persistent`
//! seconds, `state`) each with its `reals:` (`address`, `port`,
//! `forwarding` route|masq|tunnel, `weight`). A listed service ends up with
//! exactly the listed real servers (one dropped from the vars is deleted);
//! services not listed are left alone. Observes `ipvsadm -Ln` and the rules
//! file; plans the minimal `ipvsadm -A/-E/-D/-a/-e/-d` argv calls
//! (`ipvs_table`). Before the first change the old table is saved with
//! `ipvsadm-save -n` to `backup_dir/ipvsadm-<time>.rules`; with `save` the
//! resulting table is written to `rules_file` (default `/etc/ipvsadm.rules`,
//! what Debian's ipvsadm init script restores at boot) in `ipvsadm-save -n`
//! form, so drift of the file is fixed too.

use crate::acct_common::exec_at;
use crate::ipvs_table::{self, Forward, Key, Real, Service, Table};
use crate::sys_common::config_write;
use drover_engine::args::{get_bool, get_str};
use drover_engine::module::{
    Action, Args, Change, Diff, Kind, Module, ModuleError, Observed, Param, Plan, Probe, Registry,
    Step, TaskContext,
};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

const PARAMS: &[Param] = &[
    Param::new("services", Kind::List).required(),
    Param::new("save", Kind::Bool),
    Param::new("rules_file", Kind::Str),
    Param::new("backup", Kind::Bool),
    Param::new("backup_dir", Kind::Str),
];
const SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
];
/// Saves the current table to `$1/ipvsadm-<time>.rules` before any change.
const BACKUP: &str =
    "mkdir -p -- \"$1\" && ipvsadm-save -n > \"$1/ipvsadm-$(date +%Y%m%d-%H%M%S).rules\"";

pub struct IpvsModule;

fn bad(name: &str, value: &Value, message: &str) -> ModuleError {
    ModuleError::BadArg {
        name: name.into(),
        value: value.to_string(),
        message: message.into(),
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number(m: &Map<String, Value>, k: &str, what: &str) -> Result<Option<u32>, ModuleError> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => text(Some(v))
            .and_then(|t| t.parse().ok())
            .map(Some)
            .ok_or_else(|| bad(what, v, &format!("`{k}` must be a number"))),
    }
}

fn host_port(addr: &str, port: u32, what: &str, v: &Value) -> Result<String, ModuleError> {
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| bad(what, v, &format!("`{addr}` is not an IP address")))?;
    if port > 65535 {
        return Err(bad(what, v, "port out of range"));
    }
    Ok(match ip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    })
}

/// One `services:` entry → its key and wanted state (None = absent).
fn service(v: &Value) -> Result<(Key, Option<Service>), ModuleError> {
    let m = v
        .as_object()
        .ok_or_else(|| bad("services", v, "each service must be a mapping"))?;
    for k in m.keys() {
        if ![
            "protocol",
            "address",
            "port",
            "fwmark",
            "scheduler",
            "persistent",
            "state",
            "reals",
        ]
        .contains(&k.as_str())
        {
            return Err(bad("services", v, &format!("unknown key `{k}`")));
        }
    }
    let proto = text(m.get("protocol")).unwrap_or_else(|| "tcp".into());
    let port = number(m, "port", "services")?;
    let key = match proto.as_str() {
        "tcp" | "udp" => {
            let addr = text(m.get("address"))
                .ok_or_else(|| bad("services", v, "`address` (the VIP) is required"))?;
            let port = port.ok_or_else(|| bad("services", v, "`port` is required"))?;
            let hp = host_port(&addr, port, "services", v)?;
            if proto == "tcp" {
                Key::Tcp(hp)
            } else {
                Key::Udp(hp)
            }
        }
        "fwmark" => Key::Fwmark(
            number(m, "fwmark", "services")?
                .ok_or_else(|| bad("services", v, "`fwmark` is required"))?,
        ),
        _ => return Err(bad("services", v, "`protocol` must be tcp, udp or fwmark")),
    };
    match text(m.get("state")).as_deref() {
        None | Some("present") => {}
        Some("absent") => return Ok((key, None)),
        Some(_) => return Err(bad("services", v, "`state` must be present or absent")),
    }
    let scheduler = text(m.get("scheduler")).unwrap_or_else(|| "wlc".into());
    if !SCHEDULERS.contains(&scheduler.as_str()) {
        return Err(bad(
            "services",
            v,
            &format!("`scheduler` must be one of {}", SCHEDULERS.join("|")),
        ));
    }
    let persistent = number(m, "persistent", "services")?;
    let mut reals = BTreeMap::new();
    let list = match m.get("reals") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(a)) => a.clone(),
        Some(o) => return Err(bad("services", o, "`reals` must be a list")),
    };
    for r in &list {
        let rm = r
            .as_object()
            .ok_or_else(|| bad("reals", r, "each real server must be a mapping"))?;
        for k in rm.keys() {
            if !["address", "port", "forwarding", "weight", "state"].contains(&k.as_str()) {
                return Err(bad("reals", r, &format!("unknown key `{k}`")));
            }
        }
        if text(rm.get("state")).as_deref() == Some("absent") {
            continue;
        }
        let addr =
            text(rm.get("address")).ok_or_else(|| bad("reals", r, "`address` is required"))?;
        let forward = match text(rm.get("forwarding")) {
            None => Forward::Route,
            Some(f) => Forward::parse(&f)
                .ok_or_else(|| bad("reals", r, "`forwarding` must be route, masq or tunnel"))?,
        };
        let svc_port = match &key {
            Key::Tcp(a) | Key::Udp(a) => a.rsplit(':').next().and_then(|p| p.parse().ok()),
            Key::Fwmark(_) => None,
        };
        // Direct routing and tunnelling keep the service's port (ipvsadm
        // ignores another one); masquerading may map to any port.
        let port = match (forward, number(rm, "port", "reals")?) {
            (Forward::Masq, Some(p)) => p,
            (_, _) => svc_port.unwrap_or(0),
        };
        let weight = number(rm, "weight", "reals")?.unwrap_or(1);
        reals.insert(
            host_port(&addr, port, "reals", r)?,
            Real { forward, weight },
        );
    }
    Ok((
        key,
        Some(Service {
            scheduler,
            persistent,
            reals,
        }),
    ))
}

impl Module for IpvsModule {
    fn name(&self) -> &'static str {
        "ipvs"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let list = match args.get("services") {
            Some(Value::Array(a)) => a.clone(),
            Some(Value::Null) | None => return Err(ModuleError::MissingArg("services".into())),
            Some(other) => vec![other.clone()],
        };
        let mut want = BTreeMap::new();
        for v in &list {
            let (k, s) = service(v)?;
            if want.insert(k.clone(), s).is_some() {
                return Err(bad(
                    "services",
                    v,
                    &format!("{} is listed twice", k.label()),
                ));
            }
        }
        let rules_file =
            get_str(args, "rules_file")?.unwrap_or_else(|| "/etc/ipvsadm.rules".into());
        let backup_dir = get_str(args, "backup_dir")?.unwrap_or_else(|| "/var/backups".into());
        for (n, p) in [("rules_file", &rules_file), ("backup_dir", &backup_dir)] {
            if !p.starts_with('/') {
                return Err(bad(n, &json!(p), "must be an absolute path"));
            }
        }
        Ok(Box::new(IpvsAction {
            want,
            save: get_bool(args, "save", true)?,
            rules_file,
            backup: get_bool(args, "backup", true)?.then_some(backup_dir),
        }))
    }
}

struct IpvsAction {
    want: BTreeMap<Key, Option<Service>>,
    save: bool,
    rules_file: String,
    backup: Option<String>,
}

impl Action for IpvsAction {
    fn probes(&self) -> Vec<Probe> {
        let mut p = vec![Probe::Exec {
            argv: vec!["ipvsadm".into(), "-Ln".into()],
        }];
        if self.save {
            p.push(Probe::Read {
                path: self.rules_file.clone(),
            });
        }
        p
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        let out = exec_at(observed, 0, "ipvsadm -Ln")?;
        if out.status == Some(127) {
            // Absent: under --check, a package task before this one that
            // would install ipvsadm makes this a predicted change.
            return Err(ModuleError::Absent(
                "ipvsadm is not installed on this host (install the ipvsadm package first)".into(),
            ));
        }
        if !out.success() {
            return Err(ModuleError::Failed(format!(
                "ipvsadm -Ln failed (no IPVS in this kernel?): {}",
                out.stderr_str().trim()
            )));
        }
        let have: Table = ipvs_table::parse(&out.stdout_str()).map_err(ModuleError::Probe)?;
        let ops = ipvs_table::plan(&have, &self.want);
        let after = ipvs_table::apply(&have, &self.want);
        let mut plan = Plan::default();
        if !ops.is_empty() {
            let before_text = ipvs_table::render_save(&have);
            let after_text = ipvs_table::render_save(&after);
            for (i, op) in ops.into_iter().enumerate() {
                let mut steps = Vec::new();
                if let (0, Some(dir)) = (i, &self.backup) {
                    steps.push(Step::exec(["sh", "-c", BACKUP, "sh", dir.as_str()]));
                }
                steps.push(Step::exec(op.argv));
                let mut c = Change::new(op.summary, steps);
                if i == 0 {
                    c = c.with_diff(Diff {
                        label: "ipvs table".into(),
                        before: before_text.clone(),
                        after: after_text.clone(),
                    });
                }
                plan.changes.push(c);
            }
        }
        if self.save {
            let file = match observed.get(1) {
                Some(Observed::Content(c)) => {
                    c.as_ref().map(|b| String::from_utf8_lossy(b).into_owned())
                }
                other => {
                    return Err(ModuleError::Probe(format!(
                        "expected the content of {}, got {other:?}",
                        self.rules_file
                    )))
                }
            };
            let want_file = ipvs_table::render_save(&after);
            if file.as_deref() != Some(want_file.as_str()) {
                plan.changes.push(config_write(
                    format!("save the table to {}", self.rules_file),
                    &self.rules_file,
                    file.unwrap_or_default(),
                    want_file,
                ));
            }
        }
        plan.result
            .insert("table".into(), json!(ipvs_table::render_save(&after)));
        if plan.changes.is_empty() {
            plan.reason = Some("the IPVS table is already as wanted".into());
        }
        Ok(plan)
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(IpvsModule));
}
