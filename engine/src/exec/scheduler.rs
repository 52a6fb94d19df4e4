//! Walking the DAG: a node starts as soon as all its predecessors finished
//! (no per-task barrier across hosts), bounded by `--forks`. Failure rules:
//! a node whose same-host or cross-host dependency failed is skipped
//! ("dependency failed"); blocks catch failures of their `block:` part in
//! `rescue:`, `always:` runs regardless; a host that failed or became
//! unreachable takes no part in later plays; `any_errors_fatal` and
//! `max_fail_percentage` stop a play's remaining nodes. Ctrl-C (the cancel
//! flag) lets running nodes finish and skips the rest.

use super::hostvars::{self, Sources};
use super::Prepared;
use super::Summary;
use crate::connection::local::LocalConnection;
use crate::connection::{Connection, ConnectionError, ConnectionSpec};
use crate::dag::NodeKind;
use crate::event::{Event, HostRecap, Reporter, Status, TaskResult};
use crate::model::{Section, Task};
use crate::vars::Vars;
use petgraph::graph::NodeIndex;
use petgraph::Direction;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The outcome of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Ok,
    Changed,
    Skipped,
    /// Failed; `caught` when a block's rescue takes it.
    Failed {
        caught: bool,
    },
    DepFailed,
    Unreachable,
}

impl Outcome {
    fn bad(self) -> bool {
        matches!(
            self,
            Outcome::Failed { .. } | Outcome::DepFailed | Outcome::Unreachable
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BlockState {
    /// A task of `block:` failed.
    Failed,
    /// A task of `rescue:` failed too.
    RescueFailed,
}

/// What the run knows about one host.
#[derive(Default)]
pub(super) struct HostState {
    pub facts: Option<Vars>,
    pub runtime: Vars,
    pub notified: Vec<String>,
    /// The play in which the host failed (it sits out later plays).
    pub failed_play: Option<usize>,
    pub ended_play: Option<usize>,
    pub unreachable: bool,
    pub blocks: HashMap<usize, BlockState>,
    pub recap: HostRecap,
    /// Check mode: what earlier tasks would have written (path → state), so
    /// later tasks predict from it instead of failing on a missing file.
    pub predicted: HashMap<String, super::predict::Predicted>,
}

/// Shared state of one run.
pub(super) struct Runtime {
    pub prepared: Arc<Prepared>,
    pub reporter: Arc<dyn Reporter>,
    hosts: HashMap<String, Mutex<HostState>>,
    conns: super::pool::Pool,
    inv_vars: HashMap<String, Arc<Vars>>,
    groups: Value,
    /// `ansible_play_hosts` of each play, built once.
    play_hosts_v: Vec<Value>,
    needs: super::magic::TaskNeeds,
    /// Probe results of coming tasks (see `batch`).
    pub(super) batch: super::batch::Caches,
    /// (play, task, host) → DAG node, built on first use (see `ahead`).
    pub(super) nodes: super::ahead::Nodes,
    forks: Semaphore,
    cancel: Arc<AtomicBool>,
    aborted: Mutex<HashSet<usize>>,
    outcomes: Vec<OnceLock<Outcome>>,
}

impl Runtime {
    pub(super) fn emit(&self, e: Event) {
        self.reporter.event(&e);
    }

    pub(super) fn emit_simple(
        &self,
        play: usize,
        task: &str,
        host: &str,
        status: Status,
        msg: Option<String>,
    ) {
        self.emit(Event::TaskDone(Box::new(TaskResult {
            play: self.prepared.playbook.plays[play].name.clone(),
            task: task.to_string(),
            host: host.to_string(),
            status,
            check: self.prepared.options.check,
            would_run: false,
            item: None,
            changes: vec![],
            diffs: vec![],
            msg,
            ignored: false,
            elapsed_ms: 0,
            output: None,
        })));
    }

    pub(super) fn with_host<R>(&self, host: &str, f: impl FnOnce(&mut HostState) -> R) -> R {
        let m = self
            .hosts
            .get(host)
            .unwrap_or_else(|| &self.hosts["localhost"]);
        let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }

    /// A host that failed in an earlier play, is unreachable, or ended.
    pub(super) fn host_is_out(&self, host: &str, play: usize) -> bool {
        self.with_host(host, |st| {
            st.unreachable
                || st.failed_play.is_some_and(|p| p < play)
                || st.ended_play == Some(play)
        })
    }

    /// Record an uncaught or caught failure of `task` on `host`.
    pub(super) fn finish_failure(&self, play: usize, task: &Task, host: &str) -> Outcome {
        let caught = self.with_host(host, |st| {
            for b in task.blocks.iter().rev() {
                match b.section {
                    Section::Main if b.has_rescue => {
                        st.blocks.insert(b.id, BlockState::Failed);
                        st.recap.rescued += 1;
                        return true;
                    }
                    Section::Main => {
                        st.blocks.insert(b.id, BlockState::Failed);
                    }
                    Section::Rescue => {
                        st.blocks.insert(b.id, BlockState::RescueFailed);
                        st.recap.rescued = st.recap.rescued.saturating_sub(1);
                    }
                    Section::Always => {}
                }
            }
            st.recap.failed += 1;
            st.failed_play.get_or_insert(play);
            false
        });
        if !caught {
            let p = &self.prepared.playbook.plays[play];
            let hosts = &self.prepared.play_hosts[play];
            let failed = hosts
                .iter()
                .filter(|h| self.with_host(h, |st| st.failed_play == Some(play) || st.unreachable))
                .count();
            let over = p.max_fail_percentage.is_some_and(|m| {
                !hosts.is_empty() && (failed as f64) * 100.0 / (hosts.len() as f64) > m
            });
            if p.any_errors_fatal || over {
                if let Ok(mut a) = self.aborted.lock() {
                    a.insert(play);
                }
            }
        }
        Outcome::Failed { caught }
    }

    /// Variables of `host` at `task` (or at play level).
    pub(super) fn vars_for(
        &self,
        play: usize,
        task: Option<&Task>,
        host: &str,
    ) -> Result<Vars, String> {
        let p = &self.prepared.playbook.plays[play];
        let empty = Vars::new();
        let inv = self
            .inv_vars
            .get(host)
            .map(|a| a.as_ref())
            .unwrap_or(&empty);
        let mut magic = Vars::new();
        magic.insert("inventory_hostname".into(), json!(host));
        magic.insert(
            "inventory_hostname_short".into(),
            json!(host.split('.').next().unwrap_or(host)),
        );
        let needs = self.needs.of(task);
        if needs.groups {
            magic.insert("groups".into(), self.groups.clone());
        }
        magic.insert(
            "group_names".into(),
            json!(self.prepared.inventory.group_names(host)),
        );
        if needs.play_hosts {
            let ph = &self.play_hosts_v[play];
            magic.insert("ansible_play_hosts".into(), ph.clone());
            magic.insert("ansible_play_hosts_all".into(), ph.clone());
            magic.insert("play_hosts".into(), ph.clone());
        }
        magic.insert(
            "ansible_check_mode".into(),
            json!(self.prepared.options.check),
        );
        magic.insert(
            "ansible_diff_mode".into(),
            json!(self.prepared.options.diff),
        );
        magic.insert(
            "playbook_dir".into(),
            json!(self.prepared.playbook.dir.display().to_string()),
        );
        if let Some(r) = task.and_then(|t| t.role.as_ref()) {
            magic.insert("role_name".into(), json!(r.name));
            magic.insert("role_path".into(), json!(r.dir.display().to_string()));
        }
        let (facts, runtime) = self.with_host(host, |st| (st.facts.clone(), st.runtime.clone()));
        if let Some(f) = &facts {
            magic.insert(
                "ansible_facts".into(),
                f.get("ansible_facts").cloned().unwrap_or(json!({})),
            );
        }
        if needs.hostvars {
            magic.insert("hostvars".into(), self.hostvars());
        }
        let src = Sources {
            inventory: inv,
            facts: facts.as_ref(),
            runtime: &runtime,
            play: p,
            task,
            extra: &self.prepared.options.extra_vars,
            magic,
        };
        hostvars::build(&src, &self.prepared.templater)
    }

    /// `hostvars`: every host's inventory variables, facts and runtime vars.
    fn hostvars(&self) -> Value {
        let mut m = serde_json::Map::new();
        for (h, inv) in &self.inv_vars {
            let mut v = inv.as_ref().clone();
            self.with_host(h, |st| {
                if let Some(f) = &st.facts {
                    v.extend(f.clone());
                }
                v.extend(st.runtime.clone());
            });
            v.insert("inventory_hostname".into(), json!(h));
            m.insert(h.clone(), Value::Object(v));
        }
        Value::Object(m)
    }

    fn spec(&self, host: &str) -> ConnectionSpec {
        let empty = Vars::new();
        let v = self
            .inv_vars
            .get(host)
            .map(|a| a.as_ref())
            .unwrap_or(&empty);
        let ctx = Value::Object(v.clone());
        let s = |k: &str| -> Option<String> {
            v.get(k).map(|x| match x {
                Value::String(t) => self
                    .prepared
                    .templater
                    .render(t, &ctx)
                    .unwrap_or_else(|_| t.clone()),
                other => other.to_string(),
            })
        };
        let implicit_local = !self.prepared.inventory.contains_host(host)
            && (host == "localhost" || host == "127.0.0.1");
        ConnectionSpec {
            name: host.to_string(),
            kind: s("ansible_connection").unwrap_or_else(|| {
                if implicit_local {
                    "local".into()
                } else {
                    "ssh".into()
                }
            }),
            address: s("ansible_host").unwrap_or_else(|| host.to_string()),
            port: s("ansible_port").and_then(|p| p.parse().ok()),
            user: s("ansible_user").or_else(|| s("ansible_ssh_user")),
            password: s("ansible_password").or_else(|| s("ansible_ssh_pass")),
            private_key_file: s("ansible_ssh_private_key_file")
                .or_else(|| s("ansible_private_key_file")),
            known_hosts_file: s("drover_known_hosts").or_else(|| s("ansible_ssh_known_hosts_file")),
            connect_timeout: s("ansible_timeout")
                .and_then(|t| t.parse().ok())
                .map(Duration::from_secs),
        }
    }

    /// The host's connection, opened on first use and shared afterwards.
    pub(super) async fn connection(
        &self,
        host: &str,
    ) -> Result<Arc<dyn Connection>, ConnectionError> {
        match self.conns.get(host, || self.dial(host, None)).await {
            Some(r) => r,
            None => Err(ConnectionError::Unreachable {
                host: host.into(),
                reason: "host is not in the inventory".into(),
            }),
        }
    }

    /// Use a re-dialled connection for the host's later tasks.
    pub(super) async fn replace_connection(&self, host: &str, conn: Arc<dyn Connection>) {
        self.conns.replace(host, conn).await;
    }

    /// The host's `ansible_connection` (local, ssh, ...).
    pub(super) fn connection_kind(&self, host: &str) -> String {
        self.spec(host).kind
    }

    /// Open a new connection to the host (not pooled), with the connect
    /// timeout given or the host's own.
    pub(super) async fn dial(
        &self,
        host: &str,
        connect_timeout: Option<Duration>,
    ) -> Result<Arc<dyn Connection>, ConnectionError> {
        let mut spec = self.spec(host);
        let kind = spec.kind.clone();
        match kind.as_str() {
            "local" => Ok(Arc::new(LocalConnection::new(host)) as Arc<dyn Connection>),
            "ssh" | "smart" | "paramiko" => {
                let mut opts = self.prepared.options.ssh.clone();
                if let Some(k) = &spec.known_hosts_file {
                    opts.known_hosts.insert(0, k.into());
                }
                if let Some(t) = connect_timeout.or(spec.connect_timeout) {
                    opts.connect_timeout = t;
                }
                spec.connect_timeout = connect_timeout.or(spec.connect_timeout);
                crate::connection::ssh::SshConnection::connect(&spec, &opts)
                    .await
                    .map(|c| Arc::new(c) as Arc<dyn Connection>)
            }
            other => Err(ConnectionError::Unreachable {
                host: host.into(),
                reason: format!("unsupported ansible_connection `{other}`"),
            }),
        }
    }

    async fn gather(&self, play: usize, host: &str) -> Outcome {
        if self.host_is_out(host, play) || self.with_host(host, |st| st.facts.is_some()) {
            return Outcome::Ok;
        }
        let start = Instant::now();
        let res = async {
            let c = self.connection(host).await?;
            let out = c
                .exec(crate::connection::ExecRequest::new([
                    "/bin/sh",
                    "-c",
                    &crate::facts::facts_script(),
                ]))
                .await?;
            crate::facts::parse_facts(&out.stdout).map_err(|e| ConnectionError::Other {
                host: host.into(),
                reason: e.to_string(),
            })
        }
        .await;
        let play_name = self.prepared.playbook.plays[play].name.clone();
        let (status, msg, outcome) = match res {
            Ok(f) => {
                self.with_host(host, |st| {
                    st.facts = Some(f);
                    st.recap.ok += 1;
                });
                (Status::Ok, None, Outcome::Ok)
            }
            Err(e) if e.is_unreachable() => {
                self.with_host(host, |st| {
                    st.unreachable = true;
                    st.recap.unreachable += 1;
                });
                (
                    Status::Unreachable,
                    Some(e.to_string()),
                    Outcome::Unreachable,
                )
            }
            Err(e) => {
                self.with_host(host, |st| {
                    st.failed_play.get_or_insert(play);
                    st.recap.failed += 1;
                });
                (
                    Status::Failed,
                    Some(e.to_string()),
                    Outcome::Failed { caught: false },
                )
            }
        };
        let mut r = TaskResult {
            play: play_name,
            task: "Gathering Facts".into(),
            host: host.into(),
            status,
            check: self.prepared.options.check,
            would_run: false,
            item: None,
            changes: vec![],
            diffs: vec![],
            msg,
            ignored: false,
            elapsed_ms: 0,
            output: None,
        };
        r.elapsed_ms = start.elapsed().as_millis();
        self.emit(Event::TaskDone(Box::new(r)));
        outcome
    }

    fn task_of(&self, n: NodeIndex) -> Option<(usize, &Task, &str)> {
        match &self.prepared.dag.graph[n] {
            NodeKind::Task {
                play, task, host, ..
            } => Some((
                *play,
                &self.prepared.playbook.plays[*play].tasks[*task],
                host.as_str(),
            )),
            _ => None,
        }
    }

    /// Decide whether a task node may run, from its predecessors.
    fn blocked(&self, n: NodeIndex, task: &Task, host: &str) -> Option<String> {
        let in_section =
            |t: &Task, id: usize| t.blocks.iter().find(|b| b.id == id).map(|b| b.section);
        for d in self
            .prepared
            .dag
            .graph
            .neighbors_directed(n, Direction::Incoming)
        {
            let Some((_, dt, dh)) = self.task_of(d) else {
                continue;
            };
            let out = self.outcomes[d.index()]
                .get()
                .copied()
                .unwrap_or(Outcome::Skipped);
            let mut bad = out.bad();
            if dh == host {
                // Exiting a block whose failure was not rescued propagates it.
                for b in &dt.blocks {
                    if in_section(task, b.id).is_none() {
                        let st = self.with_host(host, |s| s.blocks.get(&b.id).copied());
                        bad |= matches!(st, Some(BlockState::RescueFailed))
                            || (st == Some(BlockState::Failed) && !b.has_rescue);
                    } else if let Some(sec) = in_section(task, b.id) {
                        let d_sec = b.section;
                        if (sec == Section::Rescue && d_sec == Section::Main)
                            || sec == Section::Always
                        {
                            bad = false;
                        }
                    }
                }
                if matches!(out, Outcome::Failed { caught: true })
                    && dt.blocks.iter().any(|b| {
                        in_section(task, b.id) == Some(Section::Rescue)
                            || in_section(task, b.id) == Some(Section::Always)
                    })
                {
                    bad = false;
                }
            }
            if bad {
                return Some(format!("dependency failed: `{}` on {dh}", dt.name));
            }
        }
        None
    }

    async fn run_node(self: &Arc<Self>, n: NodeIndex) -> Outcome {
        let kind = self.prepared.dag.graph[n].clone();
        match kind {
            NodeKind::Barrier { .. } => Outcome::Ok,
            NodeKind::Gather { play, host } => {
                if self.cancel.load(Ordering::SeqCst) {
                    return Outcome::Skipped;
                }
                let _permit = self.forks.acquire().await;
                self.gather(play, &host).await
            }
            NodeKind::Task {
                play,
                task,
                host,
                run_once_for,
            } => {
                let t = &self.prepared.playbook.plays[play].tasks[task];
                if self.cancel.load(Ordering::SeqCst) {
                    if t.module == "meta" {
                        return Outcome::Skipped;
                    }
                    self.emit_simple(
                        play,
                        &t.name,
                        &host,
                        Status::Skipped,
                        Some("interrupted".into()),
                    );
                    return Outcome::Skipped;
                }
                if self.host_is_out(&host, play) {
                    if self.with_host(&host, |st| st.unreachable) && t.module != "meta" {
                        self.emit_simple(
                            play,
                            &t.name,
                            &host,
                            Status::Skipped,
                            Some("host unreachable".into()),
                        );
                    }
                    return Outcome::Skipped;
                }
                if self
                    .aborted
                    .lock()
                    .map(|a| a.contains(&play))
                    .unwrap_or(false)
                {
                    self.emit_simple(
                        play,
                        &t.name,
                        &host,
                        Status::Skipped,
                        Some(
                            "play stopped: a host failed (any_errors_fatal / max_fail_percentage)"
                                .into(),
                        ),
                    );
                    return Outcome::DepFailed;
                }
                if let Some(reason) = self.blocked(n, t, &host) {
                    if t.module == "meta" {
                        return Outcome::DepFailed;
                    }
                    self.emit_simple(play, &t.name, &host, Status::Skipped, Some(reason));
                    return Outcome::DepFailed;
                }
                if let Some(b) = t.blocks.iter().rev().find(|b| b.section == Section::Rescue) {
                    let failed = self.with_host(&host, |st| st.blocks.contains_key(&b.id));
                    if !failed {
                        return Outcome::Skipped;
                    }
                }
                if self.prepared.playbook.plays[play].linear
                    && self.with_host(&host, |st| st.failed_play == Some(play))
                {
                    return Outcome::Skipped;
                }
                let _permit = self.forks.acquire().await;
                self.with_host(&host, |_| ());
                self.emit(Event::TaskStart {
                    play: self.prepared.playbook.plays[play].name.clone(),
                    task: t.name.clone(),
                    host: host.clone(),
                });
                self.run_task(play, t, &host, &run_once_for).await
            }
        }
    }
}

impl Prepared {
    /// Run the DAG. `cancel` set to true (Ctrl-C) skips nodes not yet started.
    pub async fn run(self, reporter: Arc<dyn Reporter>, cancel: Arc<AtomicBool>) -> Summary {
        let started = Instant::now();
        let prepared = Arc::new(self);
        let mut all_hosts: Vec<String> = prepared.play_hosts.iter().flatten().cloned().collect();
        all_hosts.sort();
        all_hosts.dedup();
        let mut inv_hosts = prepared.inventory.hosts();
        inv_hosts.push("localhost".into());
        let mut extra: Vec<String> = Vec::new();
        for p in &prepared.playbook.plays {
            for t in &p.tasks {
                if let Some(d) = &t.delegate_to {
                    if !crate::template::has_template(d) {
                        extra.push(d.clone());
                    }
                }
            }
        }
        let mut conn_hosts: HashSet<String> = all_hosts.iter().cloned().collect();
        conn_hosts.extend(inv_hosts.iter().cloned());
        conn_hosts.extend(extra);
        let inv_vars: HashMap<String, Arc<Vars>> = conn_hosts
            .iter()
            .map(|h| (h.clone(), Arc::new(prepared.inventory.host_vars(h))))
            .collect();
        let groups = serde_json::to_value(prepared.inventory.groups_map()).unwrap_or(Value::Null);
        let play_hosts_v = prepared.play_hosts.iter().map(|h| json!(h)).collect();
        let needs = super::magic::TaskNeeds::new(
            &prepared.playbook,
            inv_vars
                .values()
                .map(|v| v.as_ref())
                .chain([&prepared.options.extra_vars]),
        );
        let rt = Arc::new(Runtime {
            reporter,
            hosts: conn_hosts
                .iter()
                .map(|h| (h.clone(), Mutex::new(HostState::default())))
                .collect(),
            conns: super::pool::Pool::new(conn_hosts.iter().cloned()),
            inv_vars,
            groups,
            play_hosts_v,
            needs,
            batch: Default::default(),
            nodes: Default::default(),
            forks: Semaphore::new(prepared.options.forks.max(1)),
            cancel: cancel.clone(),
            aborted: Mutex::new(HashSet::new()),
            outcomes: (0..prepared.dag.graph.node_count())
                .map(|_| OnceLock::new())
                .collect(),
            prepared: prepared.clone(),
        });
        let g = &prepared.dag.graph;
        let mut indeg: Vec<usize> = g
            .node_indices()
            .map(|n| g.neighbors_directed(n, Direction::Incoming).count())
            .collect();
        let mut set = tokio::task::JoinSet::new();
        let mut announced: HashSet<usize> = HashSet::new();
        let spawn = |set: &mut tokio::task::JoinSet<(NodeIndex, Outcome)>,
                     n: NodeIndex,
                     announced: &mut HashSet<usize>| {
            if let NodeKind::Barrier { play, .. } = &g[n] {
                if announced.insert(*play) {
                    let p = &prepared.playbook.plays[*play];
                    rt.emit(Event::PlayStart {
                        play: p.name.clone(),
                        hosts: prepared.play_hosts[*play].clone(),
                        nodes: g.node_count(),
                    });
                }
            }
            let rt = rt.clone();
            set.spawn(async move {
                let o = rt.run_node(n).await;
                (n, o)
            });
        };
        for n in g.node_indices() {
            if indeg[n.index()] == 0 {
                spawn(&mut set, n, &mut announced);
            }
        }
        while let Some(res) = set.join_next().await {
            let Ok((n, o)) = res else { continue };
            let _ = rt.outcomes[n.index()].set(o);
            for s in g.neighbors_directed(n, Direction::Outgoing) {
                indeg[s.index()] -= 1;
                if indeg[s.index()] == 0 {
                    spawn(&mut set, s, &mut announced);
                }
            }
        }
        let mut recap = BTreeMap::new();
        for h in &all_hosts {
            recap.insert(h.clone(), rt.with_host(h, |st| st.recap.clone()));
        }
        rt.conns.close_all().await;
        rt.emit(Event::Recap {
            hosts: recap.clone(),
            elapsed_ms: started.elapsed().as_millis(),
        });
        Summary {
            recap,
            interrupted: cancel.load(Ordering::SeqCst),
        }
    }
}
