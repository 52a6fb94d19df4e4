//! Probes of a host's coming tasks, batched into one exec. When a task's
//! probes are not cached, the engine also prepares the next tasks of the
//! play for the same host (their `when`, arguments and module `prepare`,
//! with the variables they would see now) and sends every file probe
//! (`Stat`, `Read`) of them in the same script. A later task uses a cached
//! observation only when its own probes, prepared for real at its turn,
//! are exactly the cached ones (same `become` and environment too), so
//! nothing a task registers or sets can make it use the wrong result.
//!
//! Invalidation is conservative. Before a task's steps run, every cached
//! observation they could change is dropped: a step on paths (a write,
//! `mkdir`, `chmod`/`chown`/`chgrp`, `touch`, `rm`, `ln`, `rmdir`) drops
//! each entry that observed that path, one of its parent folders, or
//! something inside it (after a `mkdir`, something inside observed absent
//! is still absent and kept); any other step (a command, a service, a
//! remote step, a pause) drops everything. Path relations are compared
//! lexically, which is only sound without symlinks: the batch also asks
//! `realpath -m` for every probed path, an entry whose paths are not all
//! canonical is dropped by any change, and a change to a path not known to
//! be canonical drops everything. Tasks with command probes (`Exec`),
//! loops, `until`, `delegate_to` or `run_once` are never prepared ahead; a
//! retry always probes afresh. Aliases that `realpath` cannot see (bind
//! mounts of one folder at two places) are not tracked.

use super::apply::{probe, ExecEnv, StepError};
use super::scheduler::Runtime;
use crate::connection::script::{parse_probe_output, probe_script, quote};
use crate::connection::Connection;
use crate::model::Task;
use crate::module::{Observed, Plan, Probe, Step};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Entries kept per host (oldest dropped first).
const MAX_ENTRIES: usize = 128;
const CANON: &str = "@@DROVER-CANON";

/// Cached observations of every host.
#[derive(Default)]
pub(super) struct Caches(pub(super) Mutex<HashMap<String, HostCache>>);

#[derive(Default, Clone)]
pub(super) struct HostCache {
    entries: Vec<Entry>,
    /// Paths `realpath -m` returned unchanged (no symlink on the way).
    canonical: HashSet<String>,
    /// Tasks whose steps an earlier task's exec already ran (see `ahead`).
    pub(super) applied: Vec<super::ahead::Applied>,
}

#[derive(Clone)]
struct Entry {
    key: String,
    probes: Vec<Probe>,
    observed: Vec<Observed>,
    /// All its paths are canonical.
    safe: bool,
    /// Derived from a write's outcome, not observed (see `derive`).
    derived: bool,
}

/// Where a task's probes run.
pub(super) struct At<'a> {
    pub play: usize,
    pub task: &'a Task,
    pub host: &'a str,
    /// The connection's host; None when the probes do not run on a host.
    pub target: Option<&'a str>,
    /// Probe afresh, use no cached result (a retry).
    pub fresh: bool,
}

pub(super) fn env_key(env: &ExecEnv<'_>) -> String {
    format!(
        "{:?}|{:?}",
        env.become_.map(|b| (&b.user, &b.flags)),
        env.env
    )
}

fn path_of(p: &Probe) -> Option<&str> {
    match p {
        Probe::Stat { path, .. } | Probe::Read { path } => Some(path),
        Probe::Exec { .. } | Probe::ExecStdin { .. } => None,
    }
}

pub(super) fn file_probes_only(probes: &[Probe]) -> bool {
    probes.iter().all(|p| path_of(p).is_some())
}

/// `a` is `b` or inside it.
pub(super) fn within(a: &str, b: &str) -> bool {
    a == b || b == "/" || (a.starts_with(b) && a.as_bytes().get(b.len()) == Some(&b'/'))
}

/// What a step may change on the host.
enum Effect {
    /// Nothing on the host (a fetch reads).
    None,
    Paths {
        paths: Vec<String>,
        kind: Kind,
    },
    Unknown,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Mkdir,
    Link,
    Other,
}

/// A step whose effect on the host is known (paths) or nil.
pub(super) fn known_effect(step: &Step) -> bool {
    !matches!(effect(step), Effect::Unknown)
}

fn effect(step: &Step) -> Effect {
    match step {
        Step::Write { path, .. } => Effect::Paths {
            paths: vec![path.clone()],
            kind: Kind::Other,
        },
        Step::Fetch { .. } => Effect::None,
        Step::Exec { argv, .. } => exec_effect(argv),
        _ => Effect::Unknown,
    }
}

fn exec_effect(argv: &[String]) -> Effect {
    if argv.len() >= 5 && argv[0] == "/bin/sh" && argv[3] == "drover-mkdir" {
        return paths_effect(vec![argv[4].clone()], Kind::Mkdir);
    }
    let Some(cmd) = argv.first().map(String::as_str) else {
        return Effect::Unknown;
    };
    let Some(dd) = argv.iter().position(|a| a == "--") else {
        return Effect::Unknown;
    };
    let (before, after) = (&argv[1..dd], &argv[dd + 1..]);
    let plain = before.iter().filter(|a| !a.starts_with('-')).count();
    let (kind, specs) = match cmd {
        "mkdir" => (Kind::Mkdir, 0),
        "touch" | "rm" | "rmdir" => (Kind::Other, 0),
        "chmod" | "chown" | "chgrp" => (Kind::Other, 1),
        "ln" => (Kind::Link, 0),
        _ => return Effect::Unknown,
    };
    if plain != specs || after.is_empty() {
        return Effect::Unknown;
    }
    let symbolic = cmd == "ln" && before.iter().any(|a| a.contains('s'));
    let last = after.len() - 1;
    let mut paths = Vec::new();
    for (i, p) in after.iter().enumerate() {
        if p.starts_with('/') {
            paths.push(p.clone());
        } else if !(symbolic && i < last) {
            // A relative path (except a symlink's target, which ln leaves alone).
            return Effect::Unknown;
        }
    }
    paths_effect(paths, kind)
}

fn paths_effect(paths: Vec<String>, kind: Kind) -> Effect {
    if paths.iter().all(|p| p.starts_with('/')) {
        Effect::Paths { paths, kind }
    } else {
        Effect::Unknown
    }
}

/// One script for all probes of `lists`, then `realpath -m` of their paths.
pub(super) fn probe_section(lists: &[Vec<Probe>]) -> (String, Vec<Probe>, Vec<String>) {
    let all: Vec<Probe> = lists.iter().flatten().cloned().collect();
    let mut paths: Vec<String> = all.iter().filter_map(path_of).map(String::from).collect();
    paths.sort_unstable();
    paths.dedup();
    let mut script = probe_script(&all);
    if paths.iter().all(|p| !p.contains('\n')) {
        script.push_str(&format!("echo '{CANON}'\nrealpath -m --"));
        for p in &paths {
            script.push(' ');
            script.push_str(&quote(p));
        }
        script.push_str(" 2>/dev/null\n");
    }
    (script, all, paths)
}

fn absent(o: &Observed) -> bool {
    matches!(o, Observed::Stat(None) | Observed::Content(None))
}

impl HostCache {
    /// The cached result of exactly these probes.
    pub(super) fn lookup(&self, key: &str, probes: &[Probe]) -> Option<Vec<Observed>> {
        self.lookup_ahead(key, probes).map(|(o, _)| o)
    }

    /// [`HostCache::lookup`] in a batch's simulation; true when derived.
    pub(super) fn lookup_ahead(
        &self,
        key: &str,
        probes: &[Probe],
    ) -> Option<(Vec<Observed>, bool)> {
        self.entries
            .iter()
            .find(|e| e.key == key && e.probes == probes)
            .map(|e| (e.observed.clone(), e.derived))
    }

    /// In a batch's simulation: a task's own observation (already dropped
    /// from the cache, since its steps are about to change it), so that
    /// what its steps write can be derived from it.
    pub(super) fn note(&mut self, key: &str, probes: &[Probe], observed: &[Observed]) {
        if probes.len() != observed.len() || self.lookup_ahead(key, probes).is_some() {
            return;
        }
        let safe = probes
            .iter()
            .all(|p| path_of(p).is_some_and(|q| self.canonical.contains(q)));
        self.entries.push(Entry {
            key: key.to_string(),
            probes: probes.to_vec(),
            observed: observed.to_vec(),
            safe,
            derived: false,
        });
    }

    /// In a batch's simulation, after `step` ran: [`HostCache::forget`],
    /// but a write's own outcome replaces the observations of its path
    /// where it determines them (see `derive`).
    pub(super) fn after(&mut self, step: &Step) {
        let Step::Write { path, .. } = step else {
            return self.forget(step);
        };
        let derived: Vec<Entry> = if self.known_canonical(path) {
            self.entries
                .iter()
                .filter(|e| e.safe)
                .filter_map(|e| {
                    super::derive::after_write(step, &e.probes, &e.observed).map(|observed| Entry {
                        observed,
                        derived: true,
                        ..e.clone()
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        self.forget(step);
        self.entries.extend(derived);
    }

    pub(super) fn clear(&mut self) {
        self.entries.clear();
        self.canonical.clear();
    }

    /// A path with no symlink on the way, known from an earlier batch: it
    /// or something inside it came back unchanged from `realpath -m`.
    fn known_canonical(&self, q: &str) -> bool {
        self.canonical.contains(q) || self.canonical.iter().any(|p| within(p, q))
    }

    /// Drop what `step` could change.
    pub(super) fn forget(&mut self, step: &Step) {
        let (paths, kind) = match effect(step) {
            Effect::None => return,
            Effect::Unknown => return self.clear(),
            Effect::Paths { paths, kind } => (paths, kind),
        };
        for q in &paths {
            if !self.known_canonical(q) {
                return self.clear();
            }
        }
        self.entries.retain(|e| {
            e.safe
                && e.probes.iter().zip(&e.observed).all(|(p, o)| {
                    let Some(path) = path_of(p) else { return false };
                    paths.iter().all(|q| {
                        if within(q, path) {
                            false // the path itself or a folder above it
                        } else if within(path, q) {
                            kind == Kind::Mkdir && absent(o)
                        } else {
                            true
                        }
                    })
                })
        });
        if kind == Kind::Link {
            self.canonical
                .retain(|p| paths.iter().all(|q| !within(p, q) && !within(q, p)));
        }
    }
}

impl Caches {
    /// Drop what the plan's steps could change on `target` (before they run).
    pub(super) fn forget(&self, target: &str, plan: &Plan) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = all.get_mut(target) {
            for s in plan.changes.iter().flat_map(|c| &c.steps) {
                c.forget(s);
            }
        }
    }

    fn lookup(&self, target: &str, key: &str, probes: &[Probe]) -> Option<Vec<Observed>> {
        let all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let hc = all.get(target)?;
        hc.applied
            .iter()
            .find(|a| a.key == key && a.probes == probes)
            .map(|a| a.observed.clone())
            .or_else(|| hc.lookup(key, probes))
    }
}

impl Runtime {
    /// A task's probes: from the cache, or in one exec together with the
    /// file probes of the host's next tasks.
    pub(super) async fn probe_batched(
        &self,
        conn: &dyn Connection,
        env: &ExecEnv<'_>,
        probes: &[Probe],
        at: At<'_>,
    ) -> Result<Vec<Observed>, StepError> {
        let target = match at.target {
            Some(t) if !at.fresh && !probes.is_empty() && file_probes_only(probes) => t,
            _ => return probe(conn, env, probes).await,
        };
        let key = env_key(env);
        if let Some(o) = self.batch.lookup(target, &key, probes) {
            return Ok(o);
        }
        let mut lists: Vec<Vec<Probe>> = vec![probes.to_vec()];
        if target == at.host {
            if let Some(i) = self.index_of(at.play, at.task) {
                self.more_lists(at.play, i + 1, at.host, &key, &mut lists);
            }
        }
        let (script, all, paths) = probe_section(&lists);
        let req = crate::connection::ExecRequest {
            argv: vec!["/bin/sh".into(), "-c".into(), script],
            env: env.env.clone(),
            become_: env.become_.cloned(),
            timeout: env.timeout,
            ..Default::default()
        };
        let out = conn.exec(req).await?;
        let stored = match out.status {
            Some(0) => self.store(target, &key, lists, &all, &paths, &out.stdout),
            _ => None,
        };
        match stored {
            Some(own) => Ok(own),
            // Let the task's own probes report the failure.
            None => probe(conn, env, probes).await,
        }
    }

    /// Parse a probe section's output and cache it; the first list's result.
    pub(super) fn store(
        &self,
        target: &str,
        key: &str,
        lists: Vec<Vec<Probe>>,
        all: &[Probe],
        paths: &[String],
        stdout: &[u8],
    ) -> Option<Vec<Observed>> {
        let mut observed = parse_probe_output(all, stdout).ok()?;
        let text = String::from_utf8_lossy(stdout);
        let canon: Vec<&str> = text.lines().skip_while(|l| *l != CANON).skip(1).collect();
        let canonical: HashSet<&str> = if canon.len() == paths.len() {
            paths
                .iter()
                .zip(&canon)
                .filter(|(p, c)| p == c)
                .map(|(p, _)| p.as_str())
                .collect()
        } else {
            HashSet::new()
        };
        let mut cache = self.batch.0.lock().unwrap_or_else(|e| e.into_inner());
        let hc = cache.entry(target.to_string()).or_default();
        hc.canonical.extend(canonical.iter().map(|p| p.to_string()));
        let mut own = None;
        for list in lists {
            let rest = observed.split_off(list.len().min(observed.len()));
            let obs = std::mem::replace(&mut observed, rest);
            let safe = list
                .iter()
                .filter_map(path_of)
                .all(|p| canonical.contains(p));
            if own.is_none() {
                own = Some(obs.clone());
            }
            hc.entries.push(Entry {
                key: key.to_string(),
                probes: list,
                observed: obs,
                safe,
                derived: false,
            });
        }
        let extra = hc.entries.len().saturating_sub(MAX_ENTRIES);
        hc.entries.drain(..extra);
        own
    }

    pub(super) fn index_of(&self, play: usize, task: &Task) -> Option<usize> {
        self.prepared.playbook.plays[play]
            .tasks
            .iter()
            .position(|t| std::ptr::eq(t, task))
    }

    /// Add the file probes of tasks `from..` (prepared now) not yet in
    /// `lists` nor cached.
    pub(super) fn more_lists(
        &self,
        play: usize,
        from: usize,
        host: &str,
        key: &str,
        lists: &mut Vec<Vec<Probe>>,
    ) {
        for p in self.ahead(play, from, host, key) {
            if !lists.contains(&p) && self.batch.lookup(host, key, &p).is_none() {
                lists.push(p);
            }
        }
    }
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
