//! `zk_ensemble` module (alias `zk_status`): the mode of each ZooKeeper
//! member (leader, follower, standalone, or why it does not serve) from the
//! `srvr` four-letter word (`4lw.commands.whitelist` must allow it), asked
//! from the controller through ports the engine forwards over the host's
//! connection. `members` are addresses as the host sees them (default: the
//! host itself). Read-only: without `wait_for` it only reports; with
//! `wait_for: leader` and an ensemble not yet serving, the plan is a wait
//! (bounded by `timeout` seconds) that check mode reports as "would run"
//! and a real run performs without counting it as a change.

use drover_engine::args::{get_int, get_str, get_str_list};
use drover_engine::module::{
    Action, Args, Change, Endpoint, Kind, Module, ModuleError, Observed, Param, Plan, Registry,
    Remote, RemoteOutcome, RemoteProbe, RemoteStep, Step, TaskContext,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PARAMS: &[Param] = &[
    Param::new("members", Kind::List),
    Param::new("port", Kind::Int),
    Param::new("wait_for", Kind::Str).choices(&["leader"]),
    Param::new("timeout", Kind::Int),
];

/// Deadline for one `srvr` exchange.
const ASK: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(500);

pub struct ZkEnsembleModule;

pub fn register(r: &mut Registry) {
    r.add(Arc::new(ZkEnsembleModule));
}

impl Module for ZkEnsembleModule {
    fn name(&self) -> &'static str {
        "zk_ensemble"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["zk_status"]
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let bad = |name: &str, v: String, m: &str| ModuleError::BadArg {
            name: name.into(),
            value: v,
            message: m.into(),
        };
        let port = match get_int(args, "port")? {
            None => 2181,
            Some(p) => u16::try_from(p)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("port", p.to_string(), "not a TCP port"))?,
        };
        let mut members = endpoints("members", &get_str_list(args, "members")?, port)?;
        if members.is_empty() {
            members.push(Endpoint::local(port));
        }
        let timeout = match get_int(args, "timeout")? {
            None => 60,
            Some(t) if (1..=86_400).contains(&t) => t as u64,
            Some(t) => return Err(bad("timeout", t.to_string(), "seconds, 1 to 86400")),
        };
        Ok(Box::new(EnsembleAction {
            members,
            wait_leader: get_str(args, "wait_for")?.is_some(),
            timeout,
        }))
    }
}

/// Parse `host`, `host:port` or `[v6]:port` words (as the task's host sees
/// them) into endpoints; a word without a port gets `port`.
pub(crate) fn endpoints(
    name: &str,
    words: &[String],
    port: u16,
) -> Result<Vec<Endpoint>, ModuleError> {
    let bad = |v: &str, m: &str| ModuleError::BadArg {
        name: name.into(),
        value: format!("`{v}`"),
        message: m.into(),
    };
    let mut out = Vec::new();
    for m in words {
        let (host, port) = match m.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') || h.starts_with('[') => (
                h.trim_matches(['[', ']']).to_string(),
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| bad(m, "bad port"))?,
            ),
            _ => (m.clone(), port),
        };
        if host.is_empty() || host.starts_with('-') || host.contains(char::is_whitespace) {
            return Err(bad(m, "not a host or address"));
        }
        out.push(Endpoint { host, port });
    }
    Ok(out)
}

/// One member's answer to `srvr`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Member {
    pub member: String,
    /// leader, follower, observer, standalone, or none when it does not serve.
    pub mode: Option<String>,
    pub zxid: Option<String>,
    pub version: Option<String>,
    /// Why there is no mode (unreachable, not serving, not whitelisted).
    pub error: Option<String>,
}

/// Parse a `srvr` reply.
pub fn parse_srvr(member: &str, reply: &str) -> Member {
    let mut m = Member {
        member: member.to_string(),
        ..Default::default()
    };
    let field = |k: &str| {
        reply
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().to_string())
    };
    m.mode = field("Mode:");
    m.zxid = field("Zxid:");
    m.version = field("Zookeeper version:").map(|v| v.split(',').next().unwrap_or("").to_string());
    if m.mode.is_none() {
        let r = reply.trim();
        m.error = Some(if r.is_empty() {
            "no answer (not running, or the port is closed)".into()
        } else if r.contains("whitelist") {
            "srvr is not allowed: add it to 4lw.commands.whitelist in zoo.cfg".into()
        } else {
            r.lines().next().unwrap_or(r).to_string()
        });
    }
    m
}

/// Every member serves under one leader: each is leader, follower,
/// observer or standalone, and at most one says leader.
pub fn has_leader(members: &[Member]) -> bool {
    let modes: Vec<&str> = members.iter().filter_map(|m| m.mode.as_deref()).collect();
    modes.len() == members.len()
        && !modes.is_empty()
        && modes
            .iter()
            .all(|m| matches!(*m, "leader" | "follower" | "observer" | "standalone"))
        && modes.iter().filter(|m| **m == "leader").count() <= 1
}

fn summary(members: &[Member]) -> String {
    members
        .iter()
        .map(|m| {
            let what = m
                .mode
                .clone()
                .or_else(|| m.error.clone())
                .unwrap_or_default();
            format!("{} {what}", m.member)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn result_of(members: &[Member]) -> Map<String, Value> {
    let mut r = Map::new();
    let leader = members
        .iter()
        .find(|m| matches!(m.mode.as_deref(), Some("leader" | "standalone")));
    r.insert("members".into(), json!(members));
    r.insert("leader".into(), json!(leader.map(|m| m.member.clone())));
    let modes: Map<String, Value> = members
        .iter()
        .map(|m| (m.member.clone(), json!(m.mode)))
        .collect();
    r.insert("modes".into(), Value::Object(modes));
    r
}

async fn ask(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(b"srvr").await?;
    let mut buf = Vec::new();
    s.take(64 * 1024).read_to_end(&mut buf).await?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

async fn survey(members: &[Endpoint], addrs: &[SocketAddr]) -> Vec<Member> {
    let mut out = Vec::new();
    for (ep, addr) in members.iter().zip(addrs) {
        let name = ep.to_string();
        out.push(match tokio::time::timeout(ASK, ask(*addr)).await {
            Ok(Ok(reply)) => parse_srvr(&name, &reply),
            Ok(Err(e)) => parse_srvr(&name, "").with_error(format!("no answer: {e}")),
            Err(_) => {
                parse_srvr(&name, "").with_error(format!("no answer within {}s", ASK.as_secs()))
            }
        });
    }
    out
}

impl Member {
    fn with_error(mut self, e: String) -> Self {
        self.error = Some(e);
        self
    }
}

#[derive(Debug)]
struct Survey {
    members: Vec<Endpoint>,
}

#[async_trait::async_trait]
impl RemoteProbe for Survey {
    fn targets(&self) -> Vec<Endpoint> {
        self.members.clone()
    }
    async fn observe(&self, addrs: &[SocketAddr]) -> Result<Value, String> {
        Ok(json!({ "members": survey(&self.members, addrs).await }))
    }
}

struct WaitLeader {
    members: Vec<Endpoint>,
    timeout: u64,
}

#[async_trait::async_trait]
impl RemoteStep for WaitLeader {
    fn targets(&self) -> Vec<Endpoint> {
        self.members.clone()
    }
    fn describe(&self) -> String {
        let m: Vec<String> = self.members.iter().map(Endpoint::to_string).collect();
        format!(
            "zk srvr {}: wait up to {}s for a leader",
            m.join(","),
            self.timeout
        )
    }
    async fn apply(&self, addrs: &[SocketAddr]) -> Result<RemoteOutcome, String> {
        let until = tokio::time::Instant::now() + Duration::from_secs(self.timeout);
        loop {
            let now = survey(&self.members, addrs).await;
            if has_leader(&now) {
                return Ok(RemoteOutcome {
                    changed: false,
                    result: result_of(&now),
                });
            }
            if tokio::time::Instant::now() + POLL > until {
                return Err(format!(
                    "no leader within {}s: {}",
                    self.timeout,
                    summary(&now)
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

struct EnsembleAction {
    members: Vec<Endpoint>,
    wait_leader: bool,
    timeout: u64,
}

impl Action for EnsembleAction {
    fn remote_probes(&self) -> Vec<Arc<dyn RemoteProbe>> {
        vec![Arc::new(Survey {
            members: self.members.clone(),
        })]
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        let members: Vec<Member> = match observed.first() {
            Some(Observed::Remote(v)) => serde_json::from_value(v["members"].clone())
                .map_err(|e| ModuleError::Probe(format!("srvr survey: {e}")))?,
            _ => return Err(ModuleError::Probe("srvr survey missing".into())),
        };
        if members.len() != self.members.len() {
            return Err(ModuleError::Probe(format!(
                "srvr survey has {} members for {}",
                members.len(),
                self.members.len()
            )));
        }
        let now = summary(&members);
        let result = result_of(&members);
        if !self.wait_leader || has_leader(&members) {
            return Ok(Plan {
                reason: Some(now),
                result,
                ..Default::default()
            });
        }
        let step = Step::Remote(Remote(Arc::new(WaitLeader {
            members: self.members.clone(),
            timeout: self.timeout,
        })));
        Ok(Plan {
            changes: vec![Change::new(
                format!("wait up to {}s for a leader (now: {now})", self.timeout),
                vec![step],
            )],
            result,
            unknown_until_run: true,
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srvr_replies() {
        let r = "Zookeeper version: 3.8.0-debian, built on 2024-04-12\nLatency min/avg/max: 0/0.0/0\nZxid: 0x100000002\nMode: follower\nNode count: 5\n";
        let m = parse_srvr("127.0.0.1:2181", r);
        assert_eq!(m.mode.as_deref(), Some("follower"));
        assert_eq!(m.zxid.as_deref(), Some("0x100000002"));
        assert_eq!(m.version.as_deref(), Some("3.8.0-debian"));
        let n = parse_srvr(
            "x:1",
            "This ZooKeeper instance is not currently serving requests\n",
        );
        assert_eq!(n.mode, None);
        assert!(n.error.unwrap().contains("not currently serving"));
        let w = parse_srvr(
            "x:1",
            "srvr is not executed because it is not in the whitelist.\n",
        );
        assert!(w.error.unwrap().contains("4lw.commands.whitelist"));
        assert!(has_leader(std::slice::from_ref(&m)));
        let mut l = m.clone();
        l.mode = Some("leader".into());
        assert!(has_leader(&[l.clone(), m.clone()]));
        assert!(!has_leader(&[l.clone(), l.clone()]));
        assert!(!has_leader(&[l, parse_srvr("y:1", "")]));
        assert!(!has_leader(&[]));
    }

    #[test]
    fn endpoint_words() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let e = endpoints("members", &w(&["a", "b:2182", "[::1]:2183"]), 2181).unwrap();
        let s: Vec<String> = e.iter().map(Endpoint::to_string).collect();
        assert_eq!(s, ["a:2181", "b:2182", "::1:2183"]);
        let err = endpoints("members", &w(&["b:99999"]), 2181).unwrap_err();
        assert!(err.to_string().contains("b:99999"), "{err}");
        assert!(endpoints("members", &w(&["-x"]), 1).is_err());
    }
}
