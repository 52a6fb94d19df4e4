//! The task DAG: plays × hosts expanded into (task, host) nodes (petgraph).
//!
//! Edges: a host runs its tasks in written order (each task waits for the
//! host's previous "frontier"), unless a task names its own dependencies with
//! `after:`; then it waits only for those, which lets independent tasks of one
//! host run at once. `after: [{task: id, hosts: pattern}]` waits for that task
//! on every matching host. `run_once`, `serial` batches, `strategy: linear`,
//! fact gathering and play boundaries add barrier nodes. Hosts never wait for
//! each other otherwise. Cycles are reported with the tasks' names.

use crate::model::{After, Playbook};
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::HashMap;

/// What a node does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// Gather facts of a host (once per run; later plays reuse them).
    Gather { play: usize, host: String },
    /// Run task `task` of play `play` for `host` (for `run_once`: on `host`
    /// for the whole batch).
    Task {
        play: usize,
        task: usize,
        host: String,
        run_once_for: Vec<String>,
    },
    /// A join point (play/batch start and end, linear steps, facts gathered).
    Barrier { play: usize, label: String },
}

/// The built DAG.
#[derive(Debug, Default)]
pub struct Dag {
    pub graph: DiGraph<NodeKind, ()>,
}

/// DAG construction errors.
#[derive(Debug, thiserror::Error)]
pub enum DagError {
    #[error("{origin}: task `{task}`: `after` names unknown task id `{id}`")]
    UnknownId {
        origin: String,
        task: String,
        id: String,
    },
    #[error("{origin}: task `{task}`: `after` host pattern `{pattern}`: {reason}")]
    Pattern {
        origin: String,
        task: String,
        pattern: String,
        reason: String,
    },
    #[error("dependency cycle between tasks: {0}")]
    Cycle(String),
    #[error("{origin}: duplicate task id `{id}`")]
    DuplicateId { origin: String, id: String },
}

/// Which hosts and tasks take part: the caller applies `--limit` and tags.
pub struct Selection<'a> {
    /// Hosts of each play (pattern ∩ limit), in inventory order.
    pub hosts: Vec<Vec<String>>,
    /// Whether task `i` of play `p` is selected (tags).
    pub task_selected: &'a dyn Fn(usize, usize) -> bool,
    /// Resolve a host pattern (for cross-host `after`).
    pub resolve: &'a dyn Fn(&str) -> Result<Vec<String>, String>,
}

fn batches(play: &crate::model::Play, hosts: &[String]) -> Vec<Vec<String>> {
    if play.serial.is_empty() || hosts.is_empty() {
        return vec![hosts.to_vec()];
    }
    let mut out = Vec::new();
    let mut rest = hosts;
    let mut i = 0;
    while !rest.is_empty() {
        let spec = play.serial[i.min(play.serial.len() - 1)];
        let n = match spec {
            crate::model::Serial::Count(c) => c.max(1),
            crate::model::Serial::Percent(p) => {
                ((hosts.len() as f64 * p / 100.0).floor() as usize).max(1)
            }
        };
        let n = n.min(rest.len());
        out.push(rest[..n].to_vec());
        rest = &rest[n..];
        i += 1;
    }
    out
}

/// Build the DAG of a playbook.
pub fn build(pb: &Playbook, sel: &Selection) -> Result<Dag, DagError> {
    let mut g: DiGraph<NodeKind, ()> = DiGraph::new();
    // id → (host → node), across the whole playbook, for `after`.
    let mut ids: HashMap<String, HashMap<String, NodeIndex>> = HashMap::new();
    let mut prev_end: Option<NodeIndex> = None;
    for (pi, play) in pb.plays.iter().enumerate() {
        let hosts = sel.hosts.get(pi).cloned().unwrap_or_default();
        let selected: Vec<usize> = (0..play.tasks.len())
            .filter(|&t| (sel.task_selected)(pi, t))
            .collect();
        for (bi, batch) in batches(play, &hosts).into_iter().enumerate() {
            let start = g.add_node(NodeKind::Barrier {
                play: pi,
                label: format!("play {} batch {} start", pi + 1, bi + 1),
            });
            if let Some(p) = prev_end {
                g.add_edge(p, start, ());
            }
            let mut frontier: HashMap<&str, Vec<NodeIndex>> =
                batch.iter().map(|h| (h.as_str(), vec![start])).collect();
            if play.gather_facts && !batch.is_empty() {
                let done = g.add_node(NodeKind::Barrier {
                    play: pi,
                    label: format!("play {} facts gathered", pi + 1),
                });
                for h in &batch {
                    let n = g.add_node(NodeKind::Gather {
                        play: pi,
                        host: h.clone(),
                    });
                    g.add_edge(start, n, ());
                    g.add_edge(n, done, ());
                }
                for f in frontier.values_mut() {
                    *f = vec![done];
                }
            }
            // First pass: nodes; second pass: `after` edges (may point forward).
            let mut pending_after: Vec<(NodeIndex, usize, String)> = Vec::new();
            for &ti in &selected {
                let task = &play.tasks[ti];
                if task.run_once && !batch.is_empty() {
                    let n = g.add_node(NodeKind::Task {
                        play: pi,
                        task: ti,
                        host: batch[0].clone(),
                        run_once_for: batch.clone(),
                    });
                    let mut deps: Vec<NodeIndex> = frontier.values().flatten().copied().collect();
                    deps.sort();
                    deps.dedup();
                    for d in deps {
                        g.add_edge(d, n, ());
                    }
                    for f in frontier.values_mut() {
                        *f = vec![n];
                    }
                    if let Some(id) = &task.id {
                        let e = ids.entry(id.clone()).or_default();
                        for h in &batch {
                            e.insert(h.clone(), n);
                        }
                    }
                    continue;
                }
                let mut this: Vec<NodeIndex> = Vec::new();
                for h in &batch {
                    let n = g.add_node(NodeKind::Task {
                        play: pi,
                        task: ti,
                        host: h.clone(),
                        run_once_for: vec![],
                    });
                    this.push(n);
                    if let Some(id) = &task.id {
                        let e = ids.entry(id.clone()).or_default();
                        if e.insert(h.clone(), n).is_some() && bi == 0 && h == &batch[0] {
                            return Err(DagError::DuplicateId {
                                origin: task.origin.to_string(),
                                id: id.clone(),
                            });
                        }
                    }
                    let f = frontier.entry(h.as_str()).or_default();
                    if task.after.is_empty() {
                        for d in f.drain(..) {
                            g.add_edge(d, n, ());
                        }
                        f.push(n);
                    } else {
                        // Waits for the play start and for what `after` names.
                        g.add_edge(start, n, ());
                        f.push(n);
                        pending_after.push((n, ti, h.clone()));
                    }
                }
                if play.linear && !this.is_empty() {
                    let b = g.add_node(NodeKind::Barrier {
                        play: pi,
                        label: format!("after `{}`", task.name),
                    });
                    for n in &this {
                        g.add_edge(*n, b, ());
                    }
                    for f in frontier.values_mut() {
                        *f = vec![b];
                    }
                }
            }
            for (n, ti, host) in pending_after {
                let task = &play.tasks[ti];
                for a in &task.after {
                    let (id, hosts) = match a {
                        After::Task(id) => (id, vec![host.clone()]),
                        After::Hosts { task: id, hosts } => {
                            let hs = (sel.resolve)(hosts).map_err(|reason| DagError::Pattern {
                                origin: task.origin.to_string(),
                                task: task.name.clone(),
                                pattern: hosts.clone(),
                                reason,
                            })?;
                            (id, hs)
                        }
                    };
                    let m = ids.get(id).ok_or_else(|| DagError::UnknownId {
                        origin: task.origin.to_string(),
                        task: task.name.clone(),
                        id: id.clone(),
                    })?;
                    for h in hosts {
                        if let Some(&d) = m.get(&h) {
                            if d != n {
                                g.add_edge(d, n, ());
                                if let Some(f) = frontier.get_mut(h.as_str()) {
                                    f.retain(|x| *x != d);
                                }
                            }
                        }
                    }
                }
            }
            let end = g.add_node(NodeKind::Barrier {
                play: pi,
                label: format!("play {} batch {} end", pi + 1, bi + 1),
            });
            let mut last: Vec<NodeIndex> = frontier.values().flatten().copied().collect();
            last.sort();
            last.dedup();
            for d in last {
                g.add_edge(d, end, ());
            }
            g.add_edge(start, end, ());
            prev_end = Some(end);
        }
    }
    if let Err(c) = petgraph::algo::toposort(&g, None) {
        let sccs = petgraph::algo::tarjan_scc(&g);
        let cyc = sccs
            .into_iter()
            .find(|s| s.len() > 1 || s.contains(&c.node_id()))
            .unwrap_or_else(|| vec![c.node_id()]);
        let names: Vec<String> = cyc.iter().map(|n| label(pb, &g[*n])).collect();
        return Err(DagError::Cycle(names.join(" → ")));
    }
    Ok(Dag { graph: g })
}

/// A human label for a node.
pub fn label(pb: &Playbook, k: &NodeKind) -> String {
    match k {
        NodeKind::Gather { host, .. } => format!("gather facts @ {host}"),
        NodeKind::Task {
            play,
            task,
            host,
            run_once_for,
        } => {
            let t = &pb.plays[*play].tasks[*task];
            let who = if run_once_for.is_empty() {
                host.clone()
            } else {
                format!("{host} (run_once)")
            };
            format!("{} @ {who}", t.name)
        }
        NodeKind::Barrier { label, .. } => label.clone(),
    }
}

/// The DAG as Graphviz DOT.
pub fn to_dot(pb: &Playbook, dag: &Dag) -> String {
    let mut s = String::from("digraph drover {\n  rankdir=LR;\n  node [shape=box, fontsize=10];\n");
    for n in dag.graph.node_indices() {
        let k = &dag.graph[n];
        let shape = if matches!(k, NodeKind::Barrier { .. }) {
            ", shape=point"
        } else {
            ""
        };
        s.push_str(&format!(
            "  n{} [label={:?}{shape}];\n",
            n.index(),
            label(pb, k)
        ));
    }
    for e in dag.graph.edge_indices() {
        if let Some((a, b)) = dag.graph.edge_endpoints(e) {
            s.push_str(&format!("  n{} -> n{};\n", a.index(), b.index()));
        }
    }
    s.push_str("}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Play, Task};
    use petgraph::algo::has_path_connecting;

    fn task(name: &str, id: Option<&str>, after: Vec<After>) -> Task {
        Task {
            name: name.into(),
            id: id.map(String::from),
            after,
            module: "debug".into(),
            ..Default::default()
        }
    }

    fn pb(plays: Vec<Play>) -> Playbook {
        Playbook {
            plays,
            ..Default::default()
        }
    }

    fn play(tasks: Vec<Task>) -> Play {
        Play {
            name: "p".into(),
            hosts: "all".into(),
            tasks,
            ..Default::default()
        }
    }

    fn build_for(pb: &Playbook, hosts: &[&str]) -> Result<Dag, DagError> {
        let hs: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let all = hs.clone();
        build(
            pb,
            &Selection {
                hosts: vec![hs; pb.plays.len()],
                task_selected: &|_, _| true,
                resolve: &move |p| {
                    if p == "all" {
                        Ok(all.clone())
                    } else {
                        Ok(vec![p.to_string()])
                    }
                },
            },
        )
    }

    fn node(d: &Dag, task: usize, host: &str) -> NodeIndex {
        d.graph
            .node_indices()
            .find(|n| matches!(&d.graph[*n], NodeKind::Task { task: t, host: h, .. } if *t == task && h == host))
            .unwrap()
    }

    #[test]
    fn hosts_run_in_written_order_without_waiting_for_each_other() {
        let p = pb(vec![play(vec![
            task("a", None, vec![]),
            task("b", None, vec![]),
        ])]);
        let d = build_for(&p, &["h1", "h2"]).unwrap();
        assert!(has_path_connecting(
            &d.graph,
            node(&d, 0, "h1"),
            node(&d, 1, "h1"),
            None
        ));
        assert!(!has_path_connecting(
            &d.graph,
            node(&d, 0, "h2"),
            node(&d, 1, "h1"),
            None
        ));
    }

    #[test]
    fn after_lets_independent_tasks_run_concurrently() {
        let p = pb(vec![play(vec![
            task("a", Some("a"), vec![]),
            task("b", Some("b"), vec![After::Task("x".into())]),
            task("x", Some("x"), vec![After::Task("a".into())]),
        ])]);
        let d = build_for(&p, &["h1"]).unwrap();
        // b waits only for x (which is written after it), not for a directly
        assert!(has_path_connecting(
            &d.graph,
            node(&d, 2, "h1"),
            node(&d, 1, "h1"),
            None
        ));
        assert!(!has_path_connecting(
            &d.graph,
            node(&d, 1, "h1"),
            node(&d, 2, "h1"),
            None
        ));
    }

    #[test]
    fn cross_host_after_waits_on_every_host_of_the_pattern() {
        let reg = task(
            "register",
            None,
            vec![After::Hosts {
                task: "zk".into(),
                hosts: "all".into(),
            }],
        );
        let p = pb(vec![play(vec![
            task("zk started", Some("zk"), vec![]),
            reg,
        ])]);
        let d = build_for(&p, &["h1", "h2", "h3"]).unwrap();
        for h in ["h1", "h2", "h3"] {
            assert!(has_path_connecting(
                &d.graph,
                node(&d, 0, h),
                node(&d, 1, "h1"),
                None
            ));
        }
    }

    #[test]
    fn cycles_are_reported_with_task_names() {
        let p = pb(vec![play(vec![
            task("first", Some("a"), vec![After::Task("b".into())]),
            task("second", Some("b"), vec![After::Task("a".into())]),
        ])]);
        let e = build_for(&p, &["h1"]).unwrap_err().to_string();
        assert!(e.contains("first") && e.contains("second"), "{e}");
    }

    #[test]
    fn unknown_after_id_is_an_error() {
        let p = pb(vec![play(vec![task(
            "t",
            None,
            vec![After::Task("nope".into())],
        )])]);
        assert!(matches!(
            build_for(&p, &["h1"]),
            Err(DagError::UnknownId { .. })
        ));
    }

    #[test]
    fn run_once_is_a_barrier_and_serial_makes_batches() {
        let mut t = task("once", None, vec![]);
        t.run_once = true;
        let p = pb(vec![play(vec![
            task("a", None, vec![]),
            t,
            task("c", None, vec![]),
        ])]);
        let d = build_for(&p, &["h1", "h2"]).unwrap();
        let once = d
            .graph
            .node_indices()
            .find(|n| matches!(&d.graph[*n], NodeKind::Task { task: 1, .. }))
            .unwrap();
        assert!(has_path_connecting(&d.graph, node(&d, 0, "h2"), once, None));
        assert!(has_path_connecting(&d.graph, once, node(&d, 2, "h1"), None));
        let mut sp = play(vec![task("a", None, vec![])]);
        sp.serial = vec![crate::model::Serial::Count(1)];
        let p = pb(vec![sp]);
        let d = build_for(&p, &["h1", "h2"]).unwrap();
        assert!(has_path_connecting(
            &d.graph,
            node(&d, 0, "h1"),
            node(&d, 0, "h2"),
            None
        ));
    }

    #[test]
    fn plays_run_in_order_and_linear_restores_barriers() {
        let mut lp = play(vec![task("a", None, vec![]), task("b", None, vec![])]);
        lp.linear = true;
        let p = pb(vec![play(vec![task("first play", None, vec![])]), lp]);
        let d = build_for(&p, &["h1", "h2"]).unwrap();
        let first = d
            .graph
            .node_indices()
            .find(|n| matches!(&d.graph[*n], NodeKind::Task { play: 0, host, .. } if host == "h2"))
            .unwrap();
        let second = d.graph.node_indices().find(|n| matches!(&d.graph[*n], NodeKind::Task { play: 1, task: 1, host, .. } if host == "h1")).unwrap();
        assert!(has_path_connecting(&d.graph, first, second, None));
        let a_h2 = d.graph.node_indices().find(|n| matches!(&d.graph[*n], NodeKind::Task { play: 1, task: 0, host, .. } if host == "h2")).unwrap();
        assert!(has_path_connecting(&d.graph, a_h2, second, None));
    }
}
