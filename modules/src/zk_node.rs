//! `zk_node` module (alias `znode`): one ZooKeeper znode present with a
//! value (and ACL), or absent (with its subtree when `recursive`). It speaks
//! ZooKeeper's protocol from the controller ([`crate::zk_client`]) on the
//! host's client port, or on `hosts` (ZooKeeper servers as the host sees
//! them; one session on whichever answers, so a write needs only a quorum),
//! which the engine forwards through the host's SSH connection: a remote
//! probe reads the znode, the pure plan compares, and a remote step writes
//! only outside check mode. The result names the znode's `children`. Writes are compare-and-set on
//! the observed versions in one transaction: a value is set in place
//! (never delete-then-create), a recursive delete removes exactly the
//! observed subtree or nothing. `value` is a string; a mapping or list is
//! written as compact JSON.

use crate::zk_client::{self, canonical_acl, NodeState, Op};
use drover_engine::args::{get_bool, get_int, get_str, get_str_list, req_str};
use drover_engine::module::{
    Action, Args, Change, Diff, Endpoint, Kind, Module, ModuleError, Observed, Param, Plan,
    Registry, Remote, RemoteOutcome, RemoteProbe, RemoteStep, Step, TaskContext,
};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;

const PARAMS: &[Param] = &[
    Param::new("path", Kind::Str).required().aliases(&["name"]),
    Param::new("value", Kind::Any),
    Param::new("state", Kind::Str).choices(&["present", "absent"]),
    Param::new("recursive", Kind::Bool),
    Param::new("acl", Kind::List),
    Param::new("port", Kind::Int),
    Param::new("hosts", Kind::List),
    Param::new("create_parents", Kind::Bool),
];

const DEFAULT_ACL: &str = "world:anyone:cdrwa";

pub struct ZkNodeModule;

pub fn register(r: &mut Registry) {
    r.add(Arc::new(ZkNodeModule));
}

fn bad(name: &str, value: &str, message: &str) -> ModuleError {
    ModuleError::BadArg {
        name: name.into(),
        value: format!("`{value}`"),
        message: message.into(),
    }
}

/// A znode path: absolute, no empty, `.` or `..` segments, no trailing `/`.
fn check_path(p: &str) -> Result<(), ModuleError> {
    let ok = p.starts_with('/')
        && (p == "/"
            || !p[1..]
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == ".."))
        && !p.contains('\0');
    if ok {
        Ok(())
    } else {
        Err(bad(
            "path",
            p,
            "not a znode path (absolute, no empty, `.` or `..` parts, no trailing /)",
        ))
    }
}

impl Module for ZkNodeModule {
    fn name(&self) -> &'static str {
        "zk_node"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["znode"]
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let path = req_str(args, "path")?;
        check_path(&path)?;
        let present = get_str(args, "state")?.as_deref() != Some("absent");
        let value = match args.get("value") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => Some(v.to_string()),
            Some(v) => Some(v.to_string()),
        };
        if path == "/" && (!present || value.is_some()) {
            return Err(bad(
                "path",
                &path,
                "the root znode cannot be deleted or set",
            ));
        }
        let acl = match args.get("acl") {
            None | Some(Value::Null) => None,
            Some(_) => {
                let words = get_str_list(args, "acl")?;
                if words.is_empty() {
                    return Err(bad("acl", "[]", "an empty ACL would lock everyone out"));
                }
                let mut out = Vec::new();
                for w in &words {
                    out.push(canonical_acl(w).map_err(|m| bad("acl", w, &m))?);
                }
                Some(out)
            }
        };
        let port = match get_int(args, "port")? {
            None => 2181,
            Some(p) => u16::try_from(p)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("port", &p.to_string(), "not a TCP port"))?,
        };
        let mut endpoints =
            crate::zk_ensemble::endpoints("hosts", &get_str_list(args, "hosts")?, port)?;
        if endpoints.is_empty() {
            endpoints.push(Endpoint::local(port));
        }
        Ok(Box::new(ZkNodeAction {
            path,
            value,
            present,
            recursive: get_bool(args, "recursive", false)?,
            acl,
            create_parents: get_bool(args, "create_parents", true)?,
            endpoints,
        }))
    }
}

struct ZkNodeAction {
    path: String,
    value: Option<String>,
    present: bool,
    recursive: bool,
    /// Canonical words; None = not managed (the default is used at creation).
    acl: Option<Vec<String>>,
    create_parents: bool,
    /// ZooKeeper servers as the host sees them (one session, any of them).
    endpoints: Vec<Endpoint>,
}

/// Reads the znode (its subtree too for a recursive delete).
#[derive(Debug)]
struct ReadNode {
    endpoints: Vec<Endpoint>,
    path: String,
    subtree: bool,
}

#[async_trait::async_trait]
impl RemoteProbe for ReadNode {
    fn targets(&self) -> Vec<Endpoint> {
        self.endpoints.clone()
    }
    async fn observe(&self, addrs: &[SocketAddr]) -> Result<Value, String> {
        if addrs.is_empty() {
            return Err("no forwarded address".into());
        }
        let st = zk_client::observe(addrs, &self.path, self.subtree)
            .await
            .map_err(|e| {
                format!(
                    "ZooKeeper at {} (from the host): {e}",
                    names(&self.endpoints)
                )
            })?;
        serde_json::to_value(st).map_err(|e| e.to_string())
    }
}

/// Writes the planned operations.
struct WriteNodes {
    endpoints: Vec<Endpoint>,
    ops: Vec<Op>,
}

#[async_trait::async_trait]
impl RemoteStep for WriteNodes {
    fn targets(&self) -> Vec<Endpoint> {
        self.endpoints.clone()
    }
    fn describe(&self) -> String {
        let ops: Vec<String> = self.ops.iter().map(Op::describe).collect();
        format!("zk {}: {}", names(&self.endpoints), ops.join("; "))
    }
    async fn apply(&self, addrs: &[SocketAddr]) -> Result<RemoteOutcome, String> {
        if addrs.is_empty() {
            return Err("no forwarded address".into());
        }
        zk_client::apply(addrs, &self.ops).await?;
        Ok(RemoteOutcome {
            changed: true,
            ..Default::default()
        })
    }
}

/// `a:2181,b:2181` for messages.
fn names(eps: &[Endpoint]) -> String {
    eps.iter()
        .map(Endpoint::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

impl ZkNodeAction {
    fn step(&self, ops: Vec<Op>) -> Step {
        Step::Remote(Remote(Arc::new(WriteNodes {
            endpoints: self.endpoints.clone(),
            ops,
        })))
    }

    fn label(&self) -> String {
        format!("znode {}", self.path)
    }

    fn plan_present(&self, st: &NodeState) -> Result<Vec<Change>, ModuleError> {
        let acl = self
            .acl
            .clone()
            .unwrap_or_else(|| vec![DEFAULT_ACL.to_string()]);
        let want = self.value.clone();
        if !st.exists {
            if !st.missing_parents.is_empty() && !self.create_parents {
                return Err(ModuleError::Failed(format!(
                    "znode {}: parent {} does not exist (create_parents: no)",
                    self.path, st.missing_parents[0]
                )));
            }
            let mut ops: Vec<Op> = st
                .missing_parents
                .iter()
                .map(|p| Op::Create {
                    path: p.clone(),
                    data: vec![],
                    acl: acl.clone(),
                })
                .collect();
            let data = want.clone().unwrap_or_default();
            ops.push(Op::Create {
                path: self.path.clone(),
                data: data.clone().into_bytes(),
                acl,
            });
            let mut summary = format!("create znode {}", self.path);
            if !st.missing_parents.is_empty() {
                summary.push_str(&format!(" (and {})", st.missing_parents.join(", ")));
            }
            let diff = Diff {
                label: self.label(),
                before: String::new(),
                after: data,
            };
            return Ok(vec![
                Change::new(summary, vec![self.step(ops)]).with_diff(diff)
            ]);
        }
        let mut changes = Vec::new();
        if let Some(v) = want.filter(|v| st.binary || *v != st.value) {
            let ops = vec![Op::Set {
                path: self.path.clone(),
                data: v.clone().into_bytes(),
                version: st.version,
            }];
            let before = if st.binary {
                format!("<{} bytes, not UTF-8>", st.value.len())
            } else {
                st.value.clone()
            };
            changes.push(
                Change::new(
                    format!("set znode {} (version {})", self.path, st.version),
                    vec![self.step(ops)],
                )
                .with_diff(Diff {
                    label: self.label(),
                    before,
                    after: v,
                }),
            );
        }
        if let Some(acl) = &self.acl {
            let mut now = st.acl.clone();
            let mut want = acl.clone();
            now.sort();
            want.sort();
            want.dedup();
            if now != want {
                let ops = vec![Op::SetAcl {
                    path: self.path.clone(),
                    acl: acl.clone(),
                    aversion: st.aversion,
                }];
                changes.push(
                    Change::new(
                        format!("set ACL of znode {}", self.path),
                        vec![self.step(ops)],
                    )
                    .with_diff(Diff {
                        label: format!("acl {}", self.path),
                        before: st.acl.join("\n"),
                        after: acl.join("\n"),
                    }),
                );
            }
        }
        Ok(changes)
    }

    fn plan_absent(&self, st: &NodeState) -> Result<Vec<Change>, ModuleError> {
        if !st.exists {
            return Ok(vec![]);
        }
        if !st.children.is_empty() && !self.recursive {
            return Err(ModuleError::Failed(format!(
                "znode {} has children ({}); set recursive: yes to delete them too",
                self.path,
                st.children.join(", ")
            )));
        }
        // Children before parents: the observed order reversed.
        let mut ops: Vec<Op> = st
            .subtree
            .iter()
            .rev()
            .map(|n| Op::Delete {
                path: n.path.clone(),
                version: n.version,
            })
            .collect();
        ops.push(Op::Delete {
            path: self.path.clone(),
            version: st.version,
        });
        let mut before = format!("{} = {}\n", self.path, st.value);
        for n in &st.subtree {
            before.push_str(&format!("{} = {}\n", n.path, n.value));
        }
        let mut summary = format!("delete znode {}", self.path);
        if !st.subtree.is_empty() {
            summary.push_str(&format!(" and {} below it", st.subtree.len()));
        }
        let diff = Diff {
            label: self.label(),
            before,
            after: String::new(),
        };
        Ok(vec![
            Change::new(summary, vec![self.step(ops)]).with_diff(diff)
        ])
    }
}

impl Action for ZkNodeAction {
    fn remote_probes(&self) -> Vec<Arc<dyn RemoteProbe>> {
        vec![Arc::new(ReadNode {
            endpoints: self.endpoints.clone(),
            path: self.path.clone(),
            subtree: !self.present && self.recursive,
        })]
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        let st: NodeState = match observed.first() {
            Some(Observed::Remote(v)) => serde_json::from_value(v.clone())
                .map_err(|e| ModuleError::Probe(format!("znode observation: {e}")))?,
            _ => return Err(ModuleError::Probe("znode observation missing".into())),
        };
        let changes = if self.present {
            self.plan_present(&st)?
        } else {
            self.plan_absent(&st)?
        };
        let mut result = serde_json::Map::new();
        result.insert("path".into(), json!(self.path));
        result.insert("exists".into(), json!(st.exists));
        if st.exists {
            result.insert("value".into(), json!(st.value));
            result.insert("version".into(), json!(st.version));
        }
        // Empty for an absent znode, so a `loop:` over it needs no guard.
        result.insert("children".into(), json!(st.children));
        let reason = if !st.exists {
            format!("znode {} is absent", self.path)
        } else {
            format!("znode {} is as wanted (version {})", self.path, st.version)
        };
        Ok(Plan {
            reason: changes.is_empty().then_some(reason),
            changes,
            result,
            ..Default::default()
        })
    }
}

#[cfg(test)]
#[path = "zk_node_tests.rs"]
mod tests;
