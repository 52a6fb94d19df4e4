//! Applying the steps of a host's next tasks in the exec of the current
//! task's steps. When a task is about to apply its plan, the next tasks of
//! the play are prepared (see `batch`) and planned from cached observations
//! that stay valid after the steps before them, or, for a file an earlier
//! step of the batch wrote, from what that write left there (`derive`:
//! a chain of `lineinfile` edits of one file goes in one exec); the ones
//! that qualify run their steps in the same script, in order, stopping at
//! the first failure.
//! At its turn such a task observes (the recorded observation), plans again
//! for real and, when the plan is the one already applied, reports it
//! without running anything; a different plan is applied normally.
//!
//! Only tasks that cannot change what comes after are taken: the run of
//! tasks must be a chain in the DAG (each task's only predecessor is the
//! one before it: no `after:`, no cross-host wait, no barrier), with no
//! `register`, `failed_when`, `until`, check mode, `delegate_to`, loop,
//! facts, remote probes, and steps of known effect only (writes and the
//! path commands of `batch`, no capture); plays with `any_errors_fatal` or
//! `max_fail_percentage` never batch. A failure stops the script: the
//! current task re-runs its failed step alone (for its error), later tasks
//! run normally at their turn. A `/bin/sh -c` helper step (file's mkdir)
//! runs as a shell function of the batch script, not as a new shell, and a
//! run of new folders with one mode is made by one `mkdir` (see
//! `mkdir_together` for how a failure inside it stays the failing task's).

use super::apply::{write_body, ExecEnv, Input, StepError};
use super::batch::{env_key, known_effect, HostCache};
use super::scheduler::Runtime;
use crate::connection::script::{quote, quote_argv};
use crate::connection::Connection;
use crate::dag::NodeKind;
use crate::model::Task;
use crate::module::{Change, Observed, Plan, Probe, Step};
use petgraph::graph::NodeIndex;
use petgraph::Direction;
use std::collections::HashMap;
use std::sync::OnceLock;

const LOOKAHEAD: usize = 32;
/// Most bytes of file content sent in one batch.
const MAX_STDIN: usize = 4 << 20;
const STEP: &str = "@@DROVER-STEP";

/// A task whose steps already ran, as planned then.
#[derive(Clone)]
pub(in crate::exec) struct Applied {
    pub key: String,
    pub probes: Vec<Probe>,
    pub observed: Vec<Observed>,
    changes: Vec<Change>,
}

/// What happened to the current task's steps.
pub(super) enum Ahead {
    /// Not batched: run them one by one.
    No,
    /// All ran.
    Done,
    /// Its step with this index (over all its changes' steps) failed or did
    /// not run; the ones before it ran.
    FailedAt(usize),
}

/// (play, task, host) → DAG node.
pub(super) type Nodes = OnceLock<HashMap<(usize, usize, String), NodeIndex>>;

fn batchable(s: &Step) -> bool {
    match s {
        Step::Write { .. } => true,
        Step::Exec {
            stdin,
            cwd,
            env,
            capture,
            allow_fail,
            ..
        } => {
            stdin.is_none()
                && cwd.is_none()
                && env.is_empty()
                && !capture
                && !allow_fail
                && known_effect(s)
        }
        _ => false,
    }
}

/// One step's command line in a batch script. A `/bin/sh -c SCRIPT NAME
/// ARGS…` step (a module's shell helper, such as `file`'s mkdir) becomes a
/// call of a shell function, defined once per script (in `funcs`, at the
/// script's head), whose body runs in a subshell: a fork of the batch's
/// shell instead of the exec of a new one.
fn exec_line<'a>(argv: &'a [String], funcs: &mut Vec<&'a str>) -> String {
    if argv.len() >= 4 && argv[0] == "/bin/sh" && argv[1] == "-c" && !argv[2].contains("$0") {
        let body = argv[2].as_str();
        let k = funcs.iter().position(|f| *f == body).unwrap_or_else(|| {
            funcs.push(body);
            funcs.len() - 1
        });
        return format!(
            "drover_step_{k} {} </dev/null >/dev/null || exit 1\n",
            quote_argv(&argv[4..])
        );
    }
    format!("{} </dev/null >/dev/null || exit 1\n", quote_argv(argv))
}

/// The `file` mkdir steps at the start of `steps` that create one folder
/// with a mode and no owner, all with the first one's mode: (path, mode).
fn mkdir_run<'a>(steps: &[&'a Step]) -> Vec<(&'a str, &'a str)> {
    let plain = |s: &&'a Step| match s {
        Step::Exec { argv, .. }
            if argv.len() == 7
                && argv[0] == "/bin/sh"
                && argv[3] == "drover-mkdir"
                && !argv[5].is_empty()
                && argv[6].is_empty() =>
        {
            Some((argv[4].as_str(), argv[5].as_str()))
        }
        _ => None,
    };
    let mut out: Vec<(&str, &str)> = Vec::new();
    for s in steps {
        match plain(s) {
            Some(m) if out.first().is_none_or(|f| f.1 == m.1) => out.push(m),
            _ => break,
        }
    }
    out
}

/// The shell for a run of new folders: when every parent is a folder and
/// no path exists yet (builtin tests), one `mkdir` makes them all. Should
/// that fail, the folders it made are removed again and the steps run one
/// by one (`alone`), so the failing one reports its own error and nothing
/// after it is left made; the same when the check fails.
fn mkdir_together(run: &[(&str, &str)], alone: &str) -> String {
    let mut check = Vec::new();
    for (p, _) in run {
        match p.rsplit_once('/') {
            Some((parent, name)) if p.starts_with('/') && !name.is_empty() => {
                let parent = if parent.is_empty() { "/" } else { parent };
                check.push(format!(
                    "[ -d {} ] && [ ! -e {q} ] && [ ! -L {q} ]",
                    quote(parent),
                    q = quote(p)
                ));
            }
            _ => return alone.to_string(),
        }
    }
    let paths = |it: &mut dyn Iterator<Item = &(&str, &str)>| {
        it.fold(String::new(), |a, (p, _)| a + " " + &quote(p))
    };
    format!(
        "if {}; then\nif ! mkdir -m {} --{} </dev/null >/dev/null 2>&1; then\nrmdir --{} </dev/null >/dev/null 2>&1\n{alone}fi\nelse\n{alone}fi\n",
        check.join(" && "),
        quote(run[0].1),
        paths(&mut run.iter()),
        paths(&mut run.iter().rev()),
    )
}

fn steps(plan_changes: &[Change]) -> impl Iterator<Item = &Step> {
    plan_changes.iter().flat_map(|c| &c.steps)
}

/// A task that must not be run ahead (or after which nothing may be).
fn settles(t: &Task) -> bool {
    t.register.is_some() || t.failed_when.is_some() || t.until.is_some() || t.check_mode.is_some()
}

impl Runtime {
    fn node_of(&self, play: usize, task: usize, host: &str) -> Option<NodeIndex> {
        let map = self.nodes.get_or_init(|| {
            let g = &self.prepared.dag.graph;
            g.node_indices()
                .filter_map(|n| match &g[n] {
                    NodeKind::Task {
                        play, task, host, ..
                    } => Some(((*play, *task, host.clone()), n)),
                    _ => None,
                })
                .collect()
        });
        map.get(&(play, task, host.to_string())).copied()
    }

    /// Task `j`'s only predecessor is task `prev` of the same host.
    fn chained(&self, play: usize, prev: usize, j: usize, host: &str) -> bool {
        let (Some(a), Some(b)) = (self.node_of(play, prev, host), self.node_of(play, j, host))
        else {
            return false;
        };
        let mut preds = self
            .prepared
            .dag
            .graph
            .neighbors_directed(b, Direction::Incoming);
        preds.next() == Some(a) && preds.next().is_none()
    }

    /// At a task's turn: true when `changes` already ran in an earlier
    /// task's batch (the record is used up either way).
    pub(super) fn pre_applied(
        &self,
        target: &str,
        env: &ExecEnv<'_>,
        probes: &[Probe],
        changes: &[Change],
    ) -> bool {
        let key = env_key(env);
        let mut all = self.batch.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(hc) = all.get_mut(target) else {
            return false;
        };
        match hc
            .applied
            .iter()
            .position(|a| a.key == key && a.probes == probes)
        {
            Some(i) => hc.applied.remove(i).changes == changes,
            None => false,
        }
    }

    /// Run the current task's steps together with those of the next tasks
    /// that qualify (see the module doc).
    pub(super) async fn apply_ahead(
        &self,
        conn: &dyn Connection,
        env: &ExecEnv<'_>,
        at: &super::batch::At<'_>,
        plan: &Plan,
        seen: (&[Probe], &[Observed]),
    ) -> Result<Ahead, StepError> {
        let p = &self.prepared.playbook.plays[at.play];
        let own: Vec<&Step> = steps(&plan.changes).collect();
        if at.target != Some(at.host)
            || p.any_errors_fatal
            || p.max_fail_percentage.is_some()
            || settles(at.task)
            || !plan.facts.is_empty()
            || !own.iter().all(|s| batchable(s))
        {
            return Ok(Ahead::No);
        }
        let Some(i) = p.tasks.iter().position(|t| std::ptr::eq(t, at.task)) else {
            return Ok(Ahead::No);
        };
        let key = env_key(env);
        let snapshot: Option<HostCache> = {
            let all = self.batch.0.lock().unwrap_or_else(|e| e.into_inner());
            all.get(at.host).cloned()
        };
        let mut members: Vec<Applied> = Vec::new();
        // Probes of the tasks after the batch, observed after its steps.
        let mut lists: Vec<Vec<Probe>> = Vec::new();
        if let Some(mut sim) = snapshot {
            sim.note(&key, seen.0, seen.1);
            own.iter().for_each(|s| sim.after(s));
            let mut prev = i;
            let mut bytes = 0usize;
            for (j, t) in p.tasks.iter().enumerate().skip(i + 1).take(LOOKAHEAD) {
                if !self.prepared.selected[at.play]
                    .get(j)
                    .copied()
                    .unwrap_or(false)
                    || !self.chained(at.play, prev, j, at.host)
                    || settles(t)
                {
                    break;
                }
                let Some(sp) = self.speculate(at.play, t, at.host) else {
                    break;
                };
                if sp.key != key || !sp.action.remote_probes().is_empty() {
                    break;
                }
                let Some((observed, derived)) = sim.lookup_ahead(&key, &sp.probes) else {
                    break;
                };
                if derived && !sp.action.plans_on_written_state() {
                    break;
                }
                let Ok(plan_j) = sp.action.plan(&observed) else {
                    break;
                };
                if plan_j.failed.is_some()
                    || !plan_j.facts.is_empty()
                    || plan_j.unknown_until_run
                    || !steps(&plan_j.changes).all(batchable)
                {
                    break;
                }
                bytes += steps(&plan_j.changes)
                    .map(|s| match s {
                        Step::Write { content, .. } => content.len(),
                        _ => 0,
                    })
                    .sum::<usize>();
                if bytes > MAX_STDIN {
                    break;
                }
                steps(&plan_j.changes).for_each(|s| sim.after(s));
                prev = j;
                if !plan_j.changes.is_empty() {
                    members.push(Applied {
                        key: key.clone(),
                        probes: sp.probes,
                        observed,
                        changes: plan_j.changes,
                    });
                }
            }
            for l in self.ahead(at.play, prev + 1, at.host, &key) {
                let known = matches!(sim.lookup_ahead(&key, &l), Some((_, false)));
                if !lists.contains(&l) && !known {
                    lists.push(l);
                }
            }
        }
        if members.is_empty() && own.len() < 2 && lists.is_empty() {
            return Ok(Ahead::No);
        }
        // One script: every step in order, a marker before each.
        let mut all: Vec<&Step> = own.clone();
        for m in &members {
            all.extend(steps(&m.changes));
        }
        let mut script = String::new();
        let mut stdin = Vec::new();
        let mut funcs: Vec<&str> = Vec::new();
        let mut k = 0usize;
        while k < all.len() {
            script.push_str(&format!("echo '{STEP} {k}'\n"));
            // A run of new folders with one mode (after the first, which
            // goes alone: it may create the parents the others need).
            let run = mkdir_run(&all[k..]);
            if run.len() > 1 && k > 0 && mkdir_run(&all[k - 1..k]).len() == 1 {
                let mut alone = String::new();
                for i in 0..run.len() {
                    if i > 0 {
                        alone.push_str(&format!("echo '{STEP} {}'\n", k + i));
                    }
                    if let Step::Exec { argv, .. } = all[k + i] {
                        alone.push_str(&exec_line(argv, &mut funcs));
                    }
                }
                script.push_str(&mkdir_together(&run, &alone));
                k += run.len();
                continue;
            }
            match all[k] {
                Step::Write {
                    path,
                    content,
                    mode,
                    owner,
                    group,
                    validate,
                    backup,
                } => {
                    // In a subshell (a fork, no new shell to exec), the
                    // content read straight from the channel's stdin.
                    let Ok(w) = write_body(
                        *mode,
                        owner.as_deref(),
                        group.as_deref(),
                        validate.as_deref(),
                        *backup,
                        Input::Exact(content.len()),
                    ) else {
                        return Ok(Ahead::No);
                    };
                    script.push_str(&format!(
                        "(set -- {}\n{w}) >/dev/null || exit 1\n",
                        quote(path)
                    ));
                    stdin.extend_from_slice(content);
                }
                Step::Exec { argv, .. } => {
                    script.push_str(&exec_line(argv, &mut funcs));
                }
                _ => return Ok(Ahead::No),
            }
            k += 1;
        }
        script.push_str(&format!("echo '{STEP} end'\n"));
        let defs: String = funcs
            .iter()
            .enumerate()
            .map(|(k, body)| format!("drover_step_{k}() (\n{body}\n)\n"))
            .collect();
        script.insert_str(0, &defs);
        let (probe_script, probe_all, paths) = super::batch::probe_section(&lists);
        if !lists.is_empty() {
            script.push_str(&probe_script);
        }
        let req = crate::connection::ExecRequest {
            argv: vec!["/bin/sh".into(), "-c".into(), script],
            env: env.env.clone(),
            become_: env.become_.cloned(),
            timeout: env.timeout,
            stdin: Some(stdin),
            ..Default::default()
        };
        let out = conn.exec(req).await?;
        let text = String::from_utf8_lossy(&out.stdout);
        let last = text
            .lines()
            .filter_map(|l| l.strip_prefix(STEP).map(str::trim))
            .next_back()
            .unwrap_or("0");
        let failed_at = match last {
            "end" => None,
            k => Some(k.parse::<usize>().unwrap_or(0)),
        };
        let done = failed_at.unwrap_or(all.len());
        // Record the members whose steps all ran.
        let mut start = own.len();
        let mut all_c = self.batch.0.lock().unwrap_or_else(|e| e.into_inner());
        let hc = all_c.entry(at.host.to_string()).or_default();
        for m in members {
            let n = steps(&m.changes).count();
            if start + n <= done {
                m.changes
                    .iter()
                    .flat_map(|c| &c.steps)
                    .for_each(|s| hc.forget(s));
                hc.applied.push(m);
            }
            start += n;
        }
        if failed_at.is_some() {
            hc.clear();
        }
        drop(all_c);
        if failed_at.is_none() && !lists.is_empty() {
            self.store(at.host, &key, lists, &probe_all, &paths, &out.stdout);
        }
        Ok(match failed_at {
            Some(k) if k < own.len() => Ahead::FailedAt(k),
            _ => Ahead::Done,
        })
    }
}
