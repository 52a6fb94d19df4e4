//! Preparing a host's coming tasks before their turn (for `batch` and
//! `ahead`): a task's `when`, arguments, module `prepare`, `become` and
//! environment, with the variables it would see now. Only tasks whose
//! preparation cannot depend on what runs in between are prepared: no
//! `meta`, loop, `until`, `delegate_to`, `run_once`, rescue section, or
//! controller-only module; only actions with file probes (`Stat`, `Read`).
//! Pure: nothing runs on a host.

use super::apply::ExecEnv;
use super::batch::{env_key, file_probes_only};
use super::scheduler::Runtime;
use crate::model::{Section, Task};
use crate::module::Probe;
use serde_json::Value;

const LOOKAHEAD: usize = 32;

/// A task prepared ahead of its turn.
pub(super) struct Spec {
    pub action: Box<dyn crate::module::Action>,
    pub probes: Vec<Probe>,
    pub key: String,
}

impl Runtime {
    /// File probes of the host's tasks `from..` in the play, prepared now.
    pub(super) fn ahead(&self, play: usize, from: usize, host: &str, key: &str) -> Vec<Vec<Probe>> {
        let tasks = &self.prepared.playbook.plays[play].tasks;
        let selected = &self.prepared.selected[play];
        let mut out = Vec::new();
        for (j, t) in tasks.iter().enumerate().skip(from).take(LOOKAHEAD) {
            if !selected.get(j).copied().unwrap_or(false) {
                continue;
            }
            if let Some(sp) = self.speculate(play, t, host) {
                if sp.key == key {
                    out.push(sp.probes);
                }
            }
        }
        out
    }

    /// A task's action, file probes and environment key as it would
    /// prepare them now.
    pub(super) fn speculate(&self, play: usize, t: &Task, host: &str) -> Option<Spec> {
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
        let key = env_key(&env);
        Some(Spec {
            action,
            probes,
            key,
        })
    }
}
