//! The executor: turns a loaded playbook and an inventory into a checked,
//! ready-to-run plan ([`prepare`]: host selection, tags, pre-flight checks,
//! DAG), then runs it ([`Prepared::run`]) on tokio, every ready node at once,
//! bounded by `--forks`, emitting [`crate::event::Event`]s.
//!
//! Files: `preflight` (errors found before any host is touched), `hostvars`
//! (variables of a host at a task), `scheduler` (DAG walking, failure
//! propagation), `task` (one task on one host: when, loop, probes, plan,
//! apply, register), `apply` (steps → commands), `ctx` (what modules see),
//! `magic` (the inventory-sized magic variables, given only where read),
//! `batch` (probes of a host's coming tasks in one exec, and their cache),
//! `ahead` (their steps applied in the current task's exec), `pool` (one
//! connection per host), `reboot` (the reboot step: down, re-dial, new boot id).

mod ahead;
mod apply;
mod batch;
mod ctx;
mod derive;
mod hostvars;
mod magic;
mod pool;
mod predict;
mod preflight;
mod reboot;
mod scheduler;
mod spec;
mod task;

use crate::connection::ssh::SshOptions;
use crate::dag::{Dag, Selection};
use crate::event::HostRecap;
use crate::inventory::Inventory;
use crate::model::Playbook;
use crate::module::Registry;
use crate::template::Templater;
use crate::vars::Vars;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Options of a run (from the CLI).
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub check: bool,
    pub diff: bool,
    pub forks: usize,
    pub extra_vars: Vars,
    pub limit: Option<String>,
    pub tags: Vec<String>,
    pub skip_tags: Vec<String>,
    pub ssh: SshOptions,
    /// `-v` count; `debug` tasks with a higher `verbosity` are skipped.
    pub verbosity: u8,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            check: false,
            diff: false,
            forks: 50,
            extra_vars: Vars::new(),
            limit: None,
            tags: vec![],
            skip_tags: vec![],
            ssh: SshOptions::default(),
            verbosity: 0,
        }
    }
}

/// Errors found before anything runs. Each names file/line, task, host and value.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error(transparent)]
    Dag(#[from] crate::dag::DagError),
    #[error("{origin}: play `{play}`: host pattern `{pattern}`: {reason}")]
    Pattern {
        origin: String,
        play: String,
        pattern: String,
        reason: String,
    },
    #[error("--limit `{pattern}`: {reason}")]
    Limit { pattern: String, reason: String },
    #[error("{origin}: task `{task}`{host}: {message}")]
    Task {
        origin: String,
        task: String,
        host: String,
        message: String,
    },
}

/// The outcome of a whole run.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub recap: BTreeMap<String, HostRecap>,
    pub interrupted: bool,
}

impl Summary {
    /// ansible-playbook's exit codes: 0 ok, 2 a host failed, 4 a host
    /// unreachable, 99 interrupted.
    pub fn exit_code(&self) -> i32 {
        if self.interrupted {
            99
        } else if self.recap.values().any(|r| r.unreachable > 0) {
            4
        } else if self.recap.values().any(|r| r.failed > 0) {
            2
        } else {
            0
        }
    }
}

/// A checked playbook, ready to run.
pub struct Prepared {
    pub playbook: Arc<Playbook>,
    pub inventory: Arc<Inventory>,
    pub registry: Arc<Registry>,
    pub templater: Arc<Templater>,
    pub options: RunOptions,
    pub dag: Dag,
    /// Hosts of each play.
    pub play_hosts: Vec<Vec<String>>,
    /// Selected tasks per play (after tags).
    pub selected: Vec<Vec<bool>>,
}

fn tag_selected(task_tags: &[String], tags: &[String], skip: &[String]) -> bool {
    let has = |t: &str| task_tags.iter().any(|x| x == t);
    if task_tags.iter().any(|t| t == "never") && !tags.iter().any(|t| task_tags.contains(t)) {
        return false;
    }
    let included = tags.is_empty()
        || tags.iter().any(|t| t == "all")
        || tags.iter().any(|t| has(t))
        || (tags.iter().any(|t| t == "tagged") && !task_tags.is_empty())
        || (tags.iter().any(|t| t == "untagged") && task_tags.is_empty());
    let skipped = skip.iter().any(|t| has(t))
        || (skip.iter().any(|t| t == "tagged") && !task_tags.is_empty());
    included && !skipped
        || task_tags.iter().any(|t| t == "always") && !skip.iter().any(|t| t == "always")
}

/// Select hosts and tasks, run the pre-flight checks and build the DAG.
pub fn prepare(
    playbook: Playbook,
    inventory: Inventory,
    registry: Registry,
    options: RunOptions,
) -> Result<Prepared, RunError> {
    let limit = match &options.limit {
        Some(l) => Some(inventory.select(l).map_err(|e| RunError::Limit {
            pattern: l.clone(),
            reason: e.to_string(),
        })?),
        None => None,
    };
    let mut play_hosts = Vec::new();
    let mut selected = Vec::new();
    for play in &playbook.plays {
        let hosts = inventory
            .select(&play.hosts)
            .map_err(|e| RunError::Pattern {
                origin: play.origin.to_string(),
                play: play.name.clone(),
                pattern: play.hosts.clone(),
                reason: e.to_string(),
            })?;
        let hosts: Vec<String> = match &limit {
            Some(l) => hosts.into_iter().filter(|h| l.contains(h)).collect(),
            None => hosts,
        };
        play_hosts.push(hosts);
        selected.push(
            play.tasks
                .iter()
                .map(|t| {
                    t.module == "meta" || tag_selected(&t.tags, &options.tags, &options.skip_tags)
                })
                .collect::<Vec<bool>>(),
        );
    }
    let templater = Arc::new(Templater::new());
    preflight::check(
        &playbook,
        &inventory,
        &registry,
        &templater,
        &options,
        &play_hosts,
        &selected,
    )?;
    let inv_ref = &inventory;
    let sel_ref = &selected;
    let dag = crate::dag::build(
        &playbook,
        &Selection {
            hosts: play_hosts.clone(),
            task_selected: &|p, t| sel_ref[p][t],
            resolve: &|pat| inv_ref.select(pat).map_err(|e| e.to_string()),
        },
    )?;
    Ok(Prepared {
        playbook: Arc::new(playbook),
        inventory: Arc::new(inventory),
        registry: Arc::new(registry),
        templater,
        options,
        dag,
        play_hosts,
        selected,
    })
}

#[cfg(test)]
mod tests {
    use super::tag_selected;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn tags() {
        assert!(tag_selected(&s(&[]), &s(&[]), &s(&[])));
        assert!(tag_selected(&s(&["a"]), &s(&["a"]), &s(&[])));
        assert!(!tag_selected(&s(&["b"]), &s(&["a"]), &s(&[])));
        assert!(!tag_selected(&s(&["a"]), &s(&[]), &s(&["a"])));
        assert!(tag_selected(&s(&["always"]), &s(&["x"]), &s(&[])));
        assert!(!tag_selected(&s(&["never"]), &s(&[]), &s(&[])));
        assert!(tag_selected(&s(&["never", "x"]), &s(&["x"]), &s(&[])));
    }
}
