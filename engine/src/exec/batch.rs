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
use crate::model::{Section, Task};
use crate::module::{Observed, Plan, Probe, Step};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// How many of the next tasks are prepared ahead.
const LOOKAHEAD: usize = 32;
/// Entries kept per host (oldest dropped first).
const MAX_ENTRIES: usize = 128;
const CANON: &str = "@@DROVER-CANON";

/// Cached observations of every host.
#[derive(Default)]
pub(super) struct Caches(Mutex<HashMap<String, HostCache>>);

#[derive(Default)]
struct HostCache {
    entries: Vec<Entry>,
    /// Paths `realpath -m` returned unchanged (no symlink on the way).
    canonical: HashSet<String>,
}

struct Entry {
    key: String,
    probes: Vec<Probe>,
    observed: Vec<Observed>,
    /// All its paths are canonical.
    safe: bool,
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

fn env_key(env: &ExecEnv<'_>) -> String {
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

fn file_probes_only(probes: &[Probe]) -> bool {
    probes.iter().all(|p| path_of(p).is_some())
}

/// `a` is `b` or inside it.
fn within(a: &str, b: &str) -> bool {
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

fn absent(o: &Observed) -> bool {
    matches!(o, Observed::Stat(None) | Observed::Content(None))
}

impl HostCache {
    fn clear(&mut self) {
        self.entries.clear();
        self.canonical.clear();
    }

    /// A path with no symlink on the way, known from an earlier batch: it
    /// or something inside it came back unchanged from `realpath -m`.
    fn known_canonical(&self, q: &str) -> bool {
        self.canonical.contains(q) || self.canonical.iter().any(|p| within(p, q))
    }

    fn forget(&mut self, step: &Step) {
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
        all.get(target)?
            .entries
            .iter()
            .find(|e| e.key == key && e.probes == probes)
            .map(|e| e.observed.clone())
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
            for p in self.ahead(&at, &key) {
                if !lists.contains(&p) && self.batch.lookup(target, &key, &p).is_none() {
                    lists.push(p);
                }
            }
        }
        let all: Vec<Probe> = lists.iter().flatten().cloned().collect();
        let mut paths: Vec<&str> = all.iter().filter_map(path_of).collect();
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
        let req = crate::connection::ExecRequest {
            argv: vec!["/bin/sh".into(), "-c".into(), script],
            env: env.env.clone(),
            become_: env.become_.cloned(),
            timeout: env.timeout,
            ..Default::default()
        };
        let out = conn.exec(req).await?;
        let parsed = match out.status {
            Some(0) => parse_probe_output(&all, &out.stdout).ok(),
            _ => None,
        };
        let Some(mut observed) = parsed else {
            // Let the task's own probes report the failure.
            return probe(conn, env, probes).await;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let canon: Vec<&str> = text.lines().skip_while(|l| *l != CANON).skip(1).collect();
        let canonical: HashSet<&str> = if canon.len() == paths.len() {
            paths
                .iter()
                .zip(&canon)
                .filter(|(p, c)| p == c)
                .map(|(p, _)| *p)
                .collect()
        } else {
            HashSet::new()
        };
        let mut cache = self.batch.0.lock().unwrap_or_else(|e| e.into_inner());
        let hc = cache.entry(target.to_string()).or_default();
        hc.canonical.extend(canonical.iter().map(|p| p.to_string()));
        let mut own = None;
        for list in lists {
            let rest = observed.split_off(list.len());
            let obs = std::mem::replace(&mut observed, rest);
            let safe = list
                .iter()
                .filter_map(path_of)
                .all(|p| canonical.contains(p));
            if own.is_none() {
                own = Some(obs.clone());
            }
            hc.entries.push(Entry {
                key: key.clone(),
                probes: list,
                observed: obs,
                safe,
            });
        }
        let extra = hc.entries.len().saturating_sub(MAX_ENTRIES);
        hc.entries.drain(..extra);
        Ok(own.unwrap_or_default())
    }

    /// File probes of the host's next tasks in the play, prepared now.
    fn ahead(&self, at: &At<'_>, key: &str) -> Vec<Vec<Probe>> {
        let tasks = &self.prepared.playbook.plays[at.play].tasks;
        let Some(i) = tasks.iter().position(|t| std::ptr::eq(t, at.task)) else {
            return vec![];
        };
        let selected = &self.prepared.selected[at.play];
        let mut out = Vec::new();
        for (j, t) in tasks.iter().enumerate().skip(i + 1).take(LOOKAHEAD) {
            if !selected.get(j).copied().unwrap_or(false) {
                continue;
            }
            if let Some((probes, k)) = self.speculate(at.play, t, at.host) {
                if k == key {
                    out.push(probes);
                }
            }
        }
        out
    }

    /// A task's file probes and environment key as it would prepare them now.
    fn speculate(&self, play: usize, t: &Task, host: &str) -> Option<(Vec<Probe>, String)> {
        if t.module == "meta"
            || t.loop_.is_some()
            || t.until.is_some()
            || t.delegate_to.is_some()
            || t.run_once
            || t.blocks.iter().any(|b| b.section == Section::Rescue)
        {
            return None;
        }
        let module = self.prepared.registry.get(&t.module)?.clone();
        if module.controller_only() {
            return None;
        }
        let vars = self.vars_for(play, Some(t), host).ok()?;
        let vars_v = Value::Object(vars);
        if !self.cond_all(&t.when, &vars_v).ok()? {
            return None;
        }
        let tpl = &self.prepared.templater;
        let Ok(Value::Object(args)) = tpl.render_value(&t.args, &vars_v) else {
            return None;
        };
        let args = crate::args::normalize(module.params(), &args).ok()?;
        let ctx = super::ctx::Ctx {
            vars: vars_v,
            templater: self.prepared.templater.clone(),
            host: host.to_string(),
            role_dir: t.role.as_ref().map(|r| r.dir.clone()),
            playbook_dir: self.prepared.playbook.dir.clone(),
        };
        let action = module.prepare(&args, &ctx).ok()?;
        let probes = action.probes();
        if action.on_controller() || probes.is_empty() || !file_probes_only(&probes) {
            return None;
        }
        let Value::Object(vars) = &ctx.vars else {
            return None;
        };
        let become_ = self.become_for(play, t, vars);
        let env_map = self.env_for(t, &ctx.vars);
        let env = ExecEnv {
            become_: become_.as_ref(),
            env: &env_map,
            timeout: None,
        };
        Some((probes, env_key(&env)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::module::{FileKind, FileStat};

    fn st(path: &str) -> Probe {
        Probe::Stat {
            path: path.into(),
            follow: false,
        }
    }

    fn some_stat() -> Observed {
        Observed::Stat(Some(FileStat {
            kind: FileKind::Directory,
            mode: 0o755,
            uid: 0,
            gid: 0,
            owner: "root".into(),
            group: "root".into(),
            size: 4096,
            link_target: None,
            inode: 1,
            dev: 1,
            nlink: 2,
        }))
    }

    fn cache(entries: &[(&str, Observed, bool)]) -> HostCache {
        let mut c = HostCache::default();
        for (p, o, safe) in entries {
            c.entries.push(Entry {
                key: String::new(),
                probes: vec![st(p)],
                observed: vec![o.clone()],
                safe: *safe,
            });
            if *safe {
                c.canonical.insert(p.to_string());
            }
        }
        c
    }

    fn left(c: &HostCache) -> Vec<String> {
        c.entries
            .iter()
            .filter_map(|e| path_of(&e.probes[0]).map(String::from))
            .collect()
    }

    #[test]
    fn a_change_drops_its_path_parents_and_contents() {
        let mut c = cache(&[
            ("/r/d1", Observed::Stat(None), true),
            ("/r/d1/t.conf", Observed::Stat(None), true),
            ("/r/d1/old", some_stat(), true),
            ("/r", some_stat(), true),
            ("/r/d2", Observed::Stat(None), true),
            ("/r/d10", Observed::Stat(None), true),
        ]);
        c.forget(&Step::exec(["mkdir", "-p", "--", "/r/d1"]));
        // Inside a new folder, what was absent stays absent.
        assert_eq!(left(&c), ["/r/d1/t.conf", "/r/d2", "/r/d10"]);
        c.forget(&Step::Write {
            path: "/r/d1/t.conf".into(),
            content: std::sync::Arc::new(vec![]),
            mode: None,
            owner: None,
            group: None,
            validate: None,
            backup: false,
        });
        assert_eq!(left(&c), ["/r/d2", "/r/d10"]);
        c.forget(&Step::exec(["rm", "-rf", "--", "/r"]));
        assert!(left(&c).is_empty());
    }

    #[test]
    fn unknown_steps_symlinks_and_unknown_paths_drop_everything() {
        let base = || {
            cache(&[
                ("/a/x", Observed::Stat(None), true),
                ("/b/y", Observed::Stat(None), true),
            ])
        };
        let mut c = base();
        c.forget(&Step::exec(["systemctl", "restart", "x"]));
        assert!(left(&c).is_empty() && c.canonical.is_empty());
        // A path never seen canonical (it could be an alias of /b/y).
        let mut c = base();
        c.forget(&Step::exec(["touch", "--", "/c/z"]));
        assert!(left(&c).is_empty());
        // A relative path or a chmod without `--` is not understood.
        let mut c = base();
        c.forget(&Step::exec(["chmod", "0644", "/a/x"]));
        assert!(left(&c).is_empty());
        // An entry with a non-canonical path goes with any change.
        let mut c = cache(&[
            ("/a/x", Observed::Stat(None), true),
            ("/l/y", Observed::Stat(None), false),
        ]);
        c.forget(&Step::exec(["chmod", "0644", "--", "/a/x"]));
        assert!(left(&c).is_empty());
        let mut c = base();
        c.forget(&Step::exec(["ln", "-s", "--", "rel/target", "/a/x"]));
        assert_eq!(left(&c), ["/b/y"]);
        assert!(!c.known_canonical("/a/x"));
        let mut c = base();
        c.forget(&Step::Fetch {
            src: "/a/x".into(),
            dest: "/tmp/x".into(),
        });
        assert_eq!(left(&c).len(), 2);
    }
}
