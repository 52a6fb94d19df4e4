//! `firewall` module: allow a port (or ports) of one protocol from a set of
//! sources and deny it to everyone else, on nftables. Every rule set lives in
//! drover's own table `inet drover`, one base chain per `name` (filter,
//! input hook, priority 0, policy accept) holding, in order:
//! `iifname "lo" … accept` (the host may always reach itself), an `ip saddr`
//! and/or `ip6 saddr` accept rule for `sources`, then a `drop`/`reject` for
//! the port; with no `sources` one plain accept rule. Tables and chains drover
//! did not write are never read, flushed or deleted. Observation is
//! `nft -j list table inet drover` (read-only); a chain that differs is
//! rewritten in one atomic `nft -f -` transaction. `state: absent` removes
//! the chain (and the table once it holds no chain); without `name` and
//! `port` it removes the whole drover table. `persist: yes` also writes the
//! chain's (idempotent) script to `/etc/nftables.d/drover-NAME.nft` and makes
//! sure `/etc/nftables.conf` includes `/etc/nftables.d/*.nft`, both checked
//! with `nft -c -f` before they are installed. Hosts without `nft` but with
//! `iptables` get the same rules in a `DROVER-NAME` chain (see `fw_ipt`);
//! a second probe says which backend the host has.

use crate::fw_ipt;
use crate::fw_nft::{chain_script, chain_text, parse_table, Chain, Net, Rule, Table, Verdict};
use crate::fw_nft::{FAMILY, TABLE};
use crate::fw_persist::{self, CONF};
use drover_engine::args::{get_bool, get_list, get_str, get_str_list};
use drover_engine::module::{
    Action, Args, Change, Diff, Kind, Module, ModuleError, Observed, Param, Plan, Probe, Registry,
    Step, TaskContext,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const PARAMS: &[Param] = &[
    Param::new("port", Kind::Any).aliases(&["ports", "dport"]),
    Param::new("proto", Kind::Str)
        .choices(&["tcp", "udp"])
        .aliases(&["protocol"]),
    Param::new("sources", Kind::List).aliases(&["source", "src"]),
    Param::new("state", Kind::Str).choices(&["present", "absent"]),
    Param::new("name", Kind::Str),
    Param::new("deny", Kind::Str).choices(&["reject", "drop"]),
    Param::new("persist", Kind::Bool),
];

pub struct FirewallModule;

fn bad(name: &str, value: impl std::fmt::Display, message: &str) -> ModuleError {
    ModuleError::BadArg {
        name: name.into(),
        value: format!("`{value}`"),
        message: message.into(),
    }
}

fn parse_ports(args: &Args) -> Result<BTreeSet<u16>, ModuleError> {
    let mut out = BTreeSet::new();
    for v in get_list(args, "port")? {
        let s = match &v {
            Value::String(s) => s.trim().to_string(),
            other => other.to_string(),
        };
        match s.parse::<u16>() {
            Ok(p) if p > 0 => {
                out.insert(p);
            }
            _ => return Err(bad("port", s, "not a port number (1-65535)")),
        }
    }
    Ok(out)
}

impl Module for FirewallModule {
    fn name(&self) -> &'static str {
        "firewall"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let ports = parse_ports(args)?;
        let proto = get_str(args, "proto")?.unwrap_or_else(|| "tcp".into());
        if proto != "tcp" && proto != "udp" {
            return Err(bad("proto", &proto, "must be tcp or udp"));
        }
        let present = match get_str(args, "state")?.as_deref() {
            None | Some("present") => true,
            Some("absent") => false,
            Some(o) => return Err(bad("state", o, "must be present or absent")),
        };
        let mut sources = BTreeSet::new();
        for s in get_str_list(args, "sources")? {
            sources.insert(Net::parse(s.trim()).map_err(|m| bad("sources", &s, &m))?);
        }
        let name = match get_str(args, "name")? {
            Some(n) => n,
            None if ports.is_empty() => String::new(),
            None => {
                let p: Vec<String> = ports.iter().map(u16::to_string).collect();
                format!("{proto}_{}", p.join("_"))
            }
        };
        let ident = name.len() <= 64
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !name.is_empty() && !ident {
            return Err(bad(
                "name",
                &name,
                "must start with a letter and hold only letters, digits and _ (it names the chain)",
            ));
        }
        if present && ports.is_empty() {
            return Err(ModuleError::MissingArg("port".into()));
        }
        let tcp = proto == "tcp";
        let verdict = match get_str(args, "deny")?.as_deref() {
            None | Some("reject") => Verdict::Reject { tcp_reset: tcp },
            Some("drop") => Verdict::Drop,
            Some(o) => return Err(bad("deny", o, "must be reject or drop")),
        };
        let rule = |iif: Option<&str>, saddr: Option<BTreeSet<Net>>, v: Verdict| Rule {
            iif: iif.map(String::from),
            saddr,
            proto: proto.clone(),
            dports: ports.clone(),
            verdict: v,
        };
        let mut rules = Vec::new();
        if sources.is_empty() {
            rules.push(rule(None, None, Verdict::Accept));
        } else {
            rules.push(rule(Some("lo"), None, Verdict::Accept));
            let (v4, v6): (BTreeSet<Net>, BTreeSet<Net>) =
                sources.iter().cloned().partition(Net::is_v4);
            for fam in [v4, v6].into_iter().filter(|s| !s.is_empty()) {
                rules.push(rule(None, Some(fam), Verdict::Accept));
            }
            rules.push(rule(None, None, verdict));
        }
        Ok(Box::new(FirewallAction {
            name,
            present,
            rules: rules.iter().map(Rule::text).collect(),
            model: rules,
            persist: get_bool(args, "persist", false)?,
        }))
    }
}

struct FirewallAction {
    /// Chain name; empty = the whole table (absent only).
    name: String,
    present: bool,
    rules: Vec<String>,
    model: Vec<Rule>,
    persist: bool,
}

impl FirewallAction {
    fn table(&self, o: Option<&Observed>) -> Result<Table, ModuleError> {
        let Some(Observed::Exec(e)) = o else {
            return Err(ModuleError::Probe(format!(
                "expected nft output, got {o:?}"
            )));
        };
        match e.status {
            Some(0) => parse_table(&e.stdout_str())
                .map(Some)
                .map_err(ModuleError::Probe),
            Some(1) if e.stderr_str().contains("No such file or directory") => Ok(None),
            Some(127) => Err(ModuleError::Failed(
                "nft not found (install the `nftables` package)".into(),
            )),
            _ => Err(ModuleError::Failed(format!(
                "nft -j list table {FAMILY} {TABLE} failed (exit {:?}): {}",
                e.status,
                e.stderr_str().trim()
            ))),
        }
    }

    /// Hosts without nft: the iptables backend (see `fw_ipt`).
    fn plan_iptables(&self, out: &str) -> Result<Plan, ModuleError> {
        if self.persist {
            return Err(ModuleError::Failed(
                "persist needs nftables; this host only has iptables".into(),
            ));
        }
        let st = fw_ipt::parse(out);
        let changes = fw_ipt::plan(&self.name, self.present, &self.model, &st)
            .map_err(ModuleError::Failed)?;
        let mut result = serde_json::Map::new();
        result.insert("backend".into(), json!("iptables"));
        Ok(Plan {
            reason: changes
                .is_empty()
                .then(|| format!("iptables chain DROVER-{} is as wanted", self.name)),
            changes,
            result,
            ..Default::default()
        })
    }

    fn nft(script: String) -> Step {
        Step::Exec {
            argv: vec!["nft".into(), "-f".into(), "-".into()],
            stdin: Some(script.into_bytes()),
            cwd: None,
            env: BTreeMap::new(),
            capture: false,
            allow_fail: false,
        }
    }

    /// Changes for the persisted files (present: write them; absent: remove).
    fn persist_changes(&self, obs: &[Observed], out: &mut Vec<Change>) -> Result<(), ModuleError> {
        let content = |i: usize| match obs.get(i) {
            Some(Observed::Content(c)) => {
                Ok(c.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()))
            }
            o => Err(ModuleError::Probe(format!(
                "expected file content, got {o:?}"
            ))),
        };
        let (file, conf) = (content(2)?, content(3)?);
        out.extend(fw_persist::changes(
            &self.name,
            self.present,
            &self.rules,
            file,
            conf,
        ));
        Ok(())
    }
}

impl Action for FirewallAction {
    fn probes(&self) -> Vec<Probe> {
        let mut p = vec![Probe::Exec {
            argv: ["nft", "-j", "list", "table", FAMILY, TABLE]
                .map(String::from)
                .to_vec(),
        }];
        p.push(Probe::Exec {
            argv: ["sh", "-c", fw_ipt::BACKEND_PROBE]
                .map(String::from)
                .to_vec(),
        });
        if self.persist && !self.name.is_empty() {
            p.push(Probe::Read {
                path: fw_persist::path(&self.name),
            });
            p.push(Probe::Read { path: CONF.into() });
        }
        p
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        let backend = match observed.get(1) {
            Some(Observed::Exec(e)) => e.stdout_str(),
            o => {
                return Err(ModuleError::Probe(format!(
                    "expected the backend, got {o:?}"
                )))
            }
        };
        match backend.lines().next().unwrap_or_default() {
            "nft" => {}
            "iptables" => return self.plan_iptables(&backend),
            _ => {
                return Err(ModuleError::Failed(
                    "neither nft nor iptables found: install the `nftables` package".into(),
                ))
            }
        }
        let table = self.table(observed.first())?;
        let t = format!("{FAMILY} {TABLE}");
        let n = &self.name;
        let mut changes = Vec::new();
        let cur: Option<&Chain> = table.as_ref().and_then(|c| c.get(n));
        if !self.present {
            match (&table, cur) {
                (Some(_), _) if n.is_empty() => changes.push(Change::new(
                    format!("delete table {t}"),
                    vec![Self::nft(format!("delete table {t}\n"))],
                )),
                (Some(chains), Some(c)) => {
                    let mut s = format!("flush chain {t} {n}\ndelete chain {t} {n}\n");
                    if chains.len() == 1 {
                        s.push_str(&format!("delete table {t}\n"));
                    }
                    let mut ch = Change::new(format!("delete chain {t} {n}"), vec![Self::nft(s)]);
                    ch.diff = Some(Diff {
                        label: format!("table {t} chain {n}"),
                        before: chain_text(n, Some(c)),
                        after: String::new(),
                    });
                    changes.push(ch);
                }
                _ => {}
            }
        } else {
            let have: &[String] = cur.map(|c| c.rules.as_slice()).unwrap_or(&[]);
            let right_kind = cur.is_none_or(|c| c.input_filter);
            if have != self.rules.as_slice() || !right_kind || cur.is_none() {
                let want = Chain {
                    input_filter: true,
                    rules: self.rules.clone(),
                };
                let step = Self::nft(chain_script(n, &self.rules, !right_kind));
                let mut summaries: Vec<String> = Vec::new();
                if cur.is_none() {
                    summaries.push(format!("add chain {t} {n}"));
                } else if !right_kind {
                    summaries.push(format!("recreate chain {t} {n} as an input filter chain"));
                }
                for r in have.iter().filter(|r| !self.rules.contains(r)) {
                    summaries.push(format!("remove rule {t} {n}: {r}"));
                }
                for r in self.rules.iter().filter(|r| !have.contains(r)) {
                    summaries.push(format!("add rule {t} {n}: {r}"));
                }
                if summaries.is_empty() {
                    summaries.push(format!("reorder rules of {t} {n}"));
                }
                let diff = Diff {
                    label: format!("table {t} chain {n}"),
                    before: chain_text(n, cur),
                    after: chain_text(n, Some(&want)),
                };
                // The first change carries the one atomic transaction.
                for (i, s) in summaries.into_iter().enumerate() {
                    let ch = if i == 0 {
                        Change::new(s, vec![step.clone()]).with_diff(diff.clone())
                    } else {
                        Change::new(s, vec![])
                    };
                    changes.push(ch);
                }
            }
        }
        if self.persist && !n.is_empty() {
            self.persist_changes(observed, &mut changes)?;
        }
        let mut result = serde_json::Map::new();
        result.insert("backend".into(), json!("nftables"));
        result.insert("table".into(), json!(t));
        result.insert("chain".into(), json!(n));
        result.insert(
            "rules".into(),
            json!(if self.present {
                self.rules.clone()
            } else {
                vec![]
            }),
        );
        Ok(Plan {
            reason: changes.is_empty().then(|| {
                if self.present {
                    format!("chain {t} {n} already holds the wanted rules")
                } else {
                    format!("chain {t} {n} is already absent")
                }
            }),
            changes,
            result,
            ..Default::default()
        })
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(FirewallModule));
}
