//! One task on one host: `when`, `loop`, argument rendering, the module's
//! probes (one round trip) and plan, applying the plan (outside check mode),
//! `retries`/`until`, `changed_when`/`failed_when`, `register`, `notify`,
//! `set_fact`, and the reported result. Also handler flushing.

use super::ahead::Ahead;
use super::apply::{remote_probes, run_remote, run_step, ExecEnv, StepError};
use super::batch::At;
use super::ctx::Ctx;
use super::scheduler::{Outcome, Runtime};
use crate::connection::Become;
use crate::event::{DiffText, Event, Status, TaskResult};
use crate::model::Task;
use crate::module::{ModuleError, Step};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The result of one loop item (or of a task without loop).
#[derive(Default)]
struct ItemResult {
    changed: bool,
    failed: bool,
    skipped: bool,
    unreachable: bool,
    would_run: bool,
    changes: Vec<String>,
    diffs: Vec<DiffText>,
    msg: Option<String>,
    result: Map<String, Value>,
    facts: Map<String, Value>,
}

fn fail(msg: impl Into<String>) -> ItemResult {
    let msg = msg.into();
    let mut r = ItemResult {
        failed: true,
        msg: Some(msg.clone()),
        ..Default::default()
    };
    r.result.insert("msg".into(), Value::String(msg));
    r
}

/// `rc`, `stdout`, `stderr` and their `_lines` in a result, as Ansible's
/// command module returns them (trailing newlines stripped).
fn command_output(result: &mut Map<String, Value>, o: &crate::module::ExecOutput) {
    result.insert("rc".into(), json!(o.status));
    result.insert(
        "stdout".into(),
        json!(o.stdout_str().trim_end_matches(['\r', '\n'])),
    );
    result.insert(
        "stderr".into(),
        json!(o.stderr_str().trim_end_matches(['\r', '\n'])),
    );
    result.insert("stdout_lines".into(), lines(&o.stdout));
    result.insert("stderr_lines".into(), lines(&o.stderr));
}

fn lines(b: &[u8]) -> Value {
    Value::Array(
        String::from_utf8_lossy(b)
            .lines()
            .map(|l| Value::String(l.into()))
            .collect(),
    )
}

impl Runtime {
    pub(super) fn become_for(
        &self,
        play: usize,
        task: &Task,
        vars: &Map<String, Value>,
    ) -> Option<Become> {
        let p = &self.prepared.playbook.plays[play];
        let on = task
            .become_
            .or_else(|| vars.get("ansible_become").and_then(crate::args::truthy))
            .unwrap_or(p.become_);
        if !on {
            return None;
        }
        let s = |k: &str| vars.get(k).and_then(|v| v.as_str()).map(String::from);
        let user = task
            .become_user
            .clone()
            .or_else(|| p.become_user.clone())
            .or_else(|| s("ansible_become_user"))
            .unwrap_or_else(|| "root".into());
        let flags = task
            .become_flags
            .clone()
            .or_else(|| s("ansible_become_flags"))
            .unwrap_or_default();
        Some(Become {
            user,
            flags: shell_words::split(&flags).unwrap_or_default(),
            password: s("ansible_become_password").or_else(|| s("ansible_become_pass")),
        })
    }

    /// Run one task (or handler) for a host; returns the outcome.
    pub(super) async fn run_task(
        &self,
        play: usize,
        task: &Task,
        host: &str,
        run_once_for: &[String],
    ) -> Outcome {
        let start = Instant::now();
        let play_name = self.prepared.playbook.plays[play].name.clone();
        let report = |status: Status, r: &ItemResult, item: Option<Value>, ignored: bool| {
            let no_log = task.no_log;
            let mut output = if r.result.is_empty() {
                None
            } else {
                Some(Value::Object(r.result.clone()))
            };
            let mut msg = r.msg.clone();
            let mut diffs = if self.prepared.options.diff || task.diff == Some(true) {
                r.diffs.clone()
            } else {
                vec![]
            };
            if task.diff == Some(false) {
                diffs.clear();
            }
            if no_log {
                output = None;
                diffs.clear();
                msg = Some("the output has been hidden due to the fact that 'no_log: true' was specified for this result".into());
            }
            self.emit(Event::TaskDone(Box::new(TaskResult {
                play: play_name.clone(),
                task: task.name.clone(),
                host: host.to_string(),
                status,
                check: self.check_for(task),
                would_run: r.would_run,
                item,
                changes: if no_log { vec![] } else { r.changes.clone() },
                diffs,
                msg,
                ignored,
                elapsed_ms: start.elapsed().as_millis(),
                output,
            })));
        };
        let vars = match self.vars_for(play, Some(task), host) {
            Ok(v) => v,
            Err(e) => {
                let r = fail(e);
                report(Status::Failed, &r, None, false);
                return self.finish_failure(play, task, host);
            }
        };
        if task.module == "meta" {
            return self.run_meta(play, task, host).await;
        }
        // Loop items (None = no loop).
        let items: Option<Vec<Value>> = match &task.loop_ {
            None => None,
            Some(l) => match self
                .prepared
                .templater
                .render_value(l, &Value::Object(vars.clone()))
            {
                Ok(Value::Array(a)) => Some(a),
                Ok(Value::Null) => Some(vec![]),
                Ok(other) => {
                    let r = fail(format!("loop must be a list, got {other}"));
                    report(Status::Failed, &r, None, false);
                    return self.finish_failure(play, task, host);
                }
                Err(e) => {
                    let r = fail(format!("loop: {e}"));
                    report(Status::Failed, &r, None, false);
                    return self.finish_failure(play, task, host);
                }
            },
        };
        let mut results = Vec::new();
        let iter: Vec<Option<(usize, Value)>> = match &items {
            None => vec![None],
            Some(a) => a.iter().cloned().enumerate().map(Some).collect(),
        };
        for it in iter {
            let mut v = vars.clone();
            if let Some((i, item)) = &it {
                v.insert(task.loop_var.clone(), item.clone());
                if let Some(iv) = &task.index_var {
                    v.insert(iv.clone(), json!(i));
                }
            }
            let r = self.run_item(play, task, host, v).await;
            let stop = r.failed && !task.ignore_errors;
            results.push((it.map(|(_, x)| x), r));
            if stop && items.is_none() {
                break;
            }
        }
        // Aggregate.
        let agg = if items.is_none() {
            results.pop().map(|(_, r)| r).unwrap_or_default()
        } else {
            let mut a = ItemResult {
                skipped: !results.is_empty(),
                ..Default::default()
            };
            let mut list = Vec::new();
            for (item, r) in &results {
                a.changed |= r.changed;
                a.failed |= r.failed;
                a.unreachable |= r.unreachable;
                a.skipped &= r.skipped;
                a.would_run |= r.would_run;
                a.changes.extend(r.changes.iter().cloned());
                a.diffs.extend(r.diffs.iter().cloned());
                a.facts.extend(r.facts.clone());
                if r.failed && a.msg.is_none() {
                    a.msg = r.msg.clone();
                }
                let mut m = r.result.clone();
                // As Ansible's per-item results: changed/failed/skipped.
                m.insert("changed".into(), json!(r.changed));
                m.insert("failed".into(), json!(r.failed));
                if r.skipped {
                    m.insert("skipped".into(), json!(true));
                }
                m.insert(task.loop_var.clone(), item.clone().unwrap_or(Value::Null));
                m.insert("item".into(), item.clone().unwrap_or(Value::Null));
                list.push(Value::Object(m));
            }
            if results.is_empty() {
                a.skipped = true;
                a.msg = Some("no items in the loop".into());
            }
            a.result.insert("results".into(), Value::Array(list));
            a.result.insert("changed".into(), json!(a.changed));
            a.result.insert("failed".into(), json!(a.failed));
            if a.failed {
                a.result
                    .insert("msg".into(), json!("One or more items failed"));
            }
            a
        };
        // register, set_fact, notify
        let targets: Vec<String> = if run_once_for.is_empty() {
            vec![host.to_string()]
        } else {
            run_once_for.to_vec()
        };
        for h in &targets {
            self.with_host(h, |st| {
                if let Some(reg) = &task.register {
                    let mut m = agg.result.clone();
                    m.insert("changed".into(), json!(agg.changed));
                    m.insert("failed".into(), json!(agg.failed));
                    if agg.skipped {
                        m.insert("skipped".into(), json!(true));
                    }
                    st.runtime.insert(reg.clone(), Value::Object(m));
                }
                for (k, v) in &agg.facts {
                    st.runtime.insert(k.clone(), v.clone());
                }
                if agg.changed && !agg.failed {
                    for n in &task.notify {
                        if !st.notified.contains(n) {
                            st.notified.push(n.clone());
                        }
                    }
                }
            });
        }
        let item_of = |r: &[(Option<Value>, ItemResult)]| {
            if items.is_some() {
                Some(Value::Array(
                    r.iter().filter_map(|(i, _)| i.clone()).collect(),
                ))
            } else {
                None
            }
        };
        if agg.unreachable {
            report(Status::Unreachable, &agg, None, false);
            self.with_host(host, |st| {
                st.unreachable = true;
                st.recap.unreachable += 1;
            });
            return Outcome::Unreachable;
        }
        if agg.failed {
            if task.ignore_errors {
                report(Status::Failed, &agg, item_of(&results), true);
                self.with_host(host, |st| {
                    st.recap.ignored += 1;
                    st.recap.ok += 1;
                });
                return Outcome::Ok;
            }
            report(Status::Failed, &agg, item_of(&results), false);
            return self.finish_failure(play, task, host);
        }
        if agg.skipped {
            report(Status::Skipped, &agg, None, false);
            self.with_host(host, |st| st.recap.skipped += 1);
            return Outcome::Skipped;
        }
        let status = if agg.changed {
            Status::Changed
        } else {
            Status::Ok
        };
        report(status, &agg, item_of(&results), false);
        self.with_host(host, |st| {
            st.recap.ok += 1;
            if agg.changed {
                st.recap.changed += 1;
            }
        });
        if agg.changed {
            Outcome::Changed
        } else {
            Outcome::Ok
        }
    }

    fn check_for(&self, task: &Task) -> bool {
        task.check_mode.unwrap_or(self.prepared.options.check)
    }

    /// The task's `environment:`, rendered.
    pub(super) fn env_for(&self, task: &Task, vars: &Value) -> BTreeMap<String, String> {
        let mut env_map = BTreeMap::new();
        if let Ok(Value::Object(m)) = self
            .prepared
            .templater
            .render_value(&Value::Object(task.environment.clone()), vars)
        {
            for (k, v) in m {
                env_map.insert(
                    k,
                    v.as_str()
                        .map(String::from)
                        .unwrap_or_else(|| v.to_string()),
                );
            }
        }
        env_map
    }

    pub(super) fn cond_all(&self, conds: &[String], vars: &Value) -> Result<bool, String> {
        for c in conds {
            if !self
                .prepared
                .templater
                .condition(c, vars)
                .map_err(|e| format!("condition `{c}`: {e}"))?
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn run_item(
        &self,
        play: usize,
        task: &Task,
        host: &str,
        vars: Map<String, Value>,
    ) -> ItemResult {
        let tpl = &self.prepared.templater;
        let vars_v = Value::Object(vars.clone());
        match self.cond_all(&task.when, &vars_v) {
            Ok(true) => {}
            Ok(false) => {
                let mut r = ItemResult {
                    skipped: true,
                    msg: Some("conditional result was false".into()),
                    ..Default::default()
                };
                r.result
                    .insert("skip_reason".into(), json!("Conditional result was False"));
                return r;
            }
            Err(e) => return fail(e),
        }
        if task.module == "debug" {
            let v = task.args.get("verbosity").and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            });
            if v.is_some_and(|v| v > u64::from(self.prepared.options.verbosity)) {
                return ItemResult {
                    skipped: true,
                    msg: Some("verbosity threshold not met".into()),
                    ..Default::default()
                };
            }
        }
        let Some(module) = self.prepared.registry.get(&task.module).cloned() else {
            return fail(format!("unknown module `{}`", task.module));
        };
        let args = match tpl.render_value(&task.args, &vars_v) {
            Ok(Value::Object(m)) => m,
            Ok(other) => return fail(format!("arguments must be a mapping, got {other}")),
            Err(e) => return fail(format!("arguments: {e}")),
        };
        let args = match crate::args::normalize(module.params(), &args) {
            Ok(a) => a,
            Err(e) => return fail(e.to_string()),
        };
        let ctx = Ctx {
            vars: vars_v.clone(),
            templater: self.prepared.templater.clone(),
            host: host.to_string(),
            role_dir: task.role.as_ref().map(|r| r.dir.clone()),
            playbook_dir: self.prepared.playbook.dir.clone(),
        };
        let action = match module.prepare(&args, &ctx) {
            Ok(a) => a,
            Err(e) => return fail(e.to_string()),
        };
        // The host whose observations the probes make (None on the controller).
        let mut target: Option<String> = None;
        let conn = if module.controller_only() {
            None
        } else if action.on_controller() {
            Some(
                std::sync::Arc::new(crate::connection::local::LocalConnection::new("localhost"))
                    as std::sync::Arc<dyn crate::connection::Connection>,
            )
        } else {
            let t = match &task.delegate_to {
                Some(d) => match tpl.render(d, &vars_v) {
                    Ok(d) => d,
                    Err(e) => return fail(format!("delegate_to: {e}")),
                },
                None => host.to_string(),
            };
            let conn = self.connection(&t).await;
            target = Some(t);
            match conn {
                Ok(c) => Some(c),
                Err(e) => {
                    let mut r = fail(e.to_string());
                    r.unreachable = e.is_unreachable();
                    return r;
                }
            }
        };
        let become_ = self
            .become_for(play, task, &vars)
            .filter(|_| !action.on_controller());
        let env_map = self.env_for(task, &vars_v);
        let env = ExecEnv {
            become_: become_.as_ref(),
            env: &env_map,
            timeout: task.timeout.map(Duration::from_secs),
        };
        let check = self.check_for(task);
        let attempts = task
            .until
            .as_ref()
            .map(|_| task.retries.unwrap_or(3) + 1)
            .unwrap_or(1)
            .max(1);
        let mut out = ItemResult::default();
        for attempt in 1..=attempts {
            out = ItemResult::default();
            let probes = action.probes();
            let mut observed = match &conn {
                Some(c) => match self
                    .probe_batched(
                        c.as_ref(),
                        &env,
                        &probes,
                        At {
                            play,
                            task,
                            host,
                            target: target.as_deref(),
                            fresh: attempt > 1,
                        },
                    )
                    .await
                {
                    Ok(o) => o,
                    Err(e) => return step_failure(e),
                },
                None => vec![],
            };
            let remote = action.remote_probes();
            if let (Some(c), false) = (&conn, remote.is_empty()) {
                match remote_probes(c.as_ref(), &remote).await {
                    Ok(o) => observed.extend(o),
                    Err(e) => return step_failure(e),
                }
            }
            if check {
                self.with_host(host, |st| {
                    super::predict::overlay(&st.predicted, &probes, &mut observed)
                });
            }
            let plan = match action.plan(&observed) {
                Ok(p) => p,
                Err(ModuleError::Failed(m)) => return fail(m),
                Err(ModuleError::Absent(m))
                    if check && self.with_host(host, |st| st.recap.changed > 0) =>
                {
                    return ItemResult {
                        changed: true,
                        would_run: true,
                        msg: Some(format!(
                            "{m}; assuming an earlier change on this host provides it"
                        )),
                        ..Default::default()
                    };
                }
                Err(e) => return fail(e.to_string()),
            };
            out.result = plan.result.clone();
            out.facts = plan.facts.clone();
            out.msg = plan
                .result
                .get("msg")
                .and_then(|m| m.as_str())
                .map(String::from)
                .or(plan.reason.clone());
            if let Some(secs) = plan.result.get("pause_seconds").and_then(Value::as_f64) {
                tokio::time::sleep(Duration::from_secs_f64(secs.max(0.0))).await;
            }
            if let Some(m) = &plan.failed {
                out.failed = true;
                out.msg = Some(m.clone());
                out.result.insert("msg".into(), json!(m));
            }
            out.changed = plan.is_change() && !out.failed;
            out.would_run = plan.unknown_until_run && check && out.changed;
            for c in &plan.changes {
                out.changes.push(c.summary.clone());
                if let Some(d) = &c.diff {
                    out.diffs.push(DiffText {
                        label: d.label.clone(),
                        before: d.before.clone(),
                        after: d.after.clone(),
                    });
                }
            }
            if out.changed && check {
                self.with_host(host, |st| super::predict::record(&mut st.predicted, &plan));
            }
            if out.changed && !check {
                let Some(mut c) = conn.clone() else {
                    return fail("a controller-only module planned host changes");
                };
                let t0 = Instant::now();
                // Steps already run (by an earlier task's batch, or in this
                // task's own batch); see `ahead`.
                let mut skip = 0usize;
                let pre = target.as_deref().is_some_and(|t| {
                    attempt == 1 && self.pre_applied(t, &env, &probes, &plan.changes)
                });
                if pre {
                    skip = usize::MAX;
                } else if let Some(t) = &target {
                    self.batch.forget(t, &plan);
                    let at = At {
                        play,
                        task,
                        host,
                        target: Some(t),
                        fresh: attempt > 1,
                    };
                    let seen = (&probes[..], &observed[..probes.len().min(observed.len())]);
                    match self.apply_ahead(c.as_ref(), &env, &at, &plan, seen).await {
                        Ok(Ahead::No) => {}
                        Ok(Ahead::Done) => skip = usize::MAX,
                        Ok(Ahead::FailedAt(k)) => skip = k,
                        Err(e) => return step_failure(e),
                    }
                }
                // Remote steps may report that they changed nothing (a wait).
                let (mut remote_ran, mut effect) = (false, skip > 0);
                let mut captured = Vec::new();
                let mut index = 0usize;
                for ch in &plan.changes {
                    for step in &ch.steps {
                        index += 1;
                        if index <= skip {
                            continue;
                        }
                        let done = match step {
                            Step::Remote(r) => run_remote(c.as_ref(), r).await.map(|o| {
                                (remote_ran, effect) = (true, effect || o.changed);
                                out.result.extend(o.result);
                                None
                            }),
                            Step::Reboot(spec) => {
                                effect = true;
                                super::reboot::reboot(
                                    self,
                                    target.as_deref().unwrap_or("localhost"),
                                    &c,
                                    &env,
                                    spec,
                                )
                                .await
                                .map(|(new, r)| {
                                    c = new;
                                    out.result.extend(r);
                                    None
                                })
                            }
                            _ => {
                                effect = true;
                                run_step(c.as_ref(), &env, step).await
                            }
                        };
                        match done {
                            Ok(Some(o)) => {
                                command_output(&mut out.result, &o);
                                captured.push(o);
                            }
                            Ok(None) => {}
                            Err(StepError::Failed { message, output }) => {
                                if let Some(o) = output {
                                    command_output(&mut out.result, &o);
                                }
                                out.failed = true;
                                out.msg = Some(message.clone());
                                out.result.insert("msg".into(), json!(message));
                            }
                            Err(e) => return step_failure(e),
                        }
                        if out.failed {
                            break;
                        }
                    }
                    if out.failed {
                        break;
                    }
                }
                if remote_ran && !effect && !out.failed {
                    out.changed = false;
                }
                if !out.failed {
                    if let Err(e) = action.after_apply(&captured, &mut out.result) {
                        let message = match e {
                            ModuleError::Failed(m) => m,
                            e => e.to_string(),
                        };
                        out.failed = true;
                        out.msg = Some(message.clone());
                        out.result.insert("msg".into(), json!(message));
                    } else if let Some(m) = out.result.get("msg").and_then(Value::as_str) {
                        out.msg = Some(m.to_string());
                    }
                }
                out.result
                    .insert("delta".into(), json!(format!("{:?}", t0.elapsed())));
            }
            // changed_when / failed_when / until see the result under the register name.
            let mut v2 = vars.clone();
            let mut reg = out.result.clone();
            reg.insert("changed".into(), json!(out.changed));
            reg.insert("failed".into(), json!(out.failed));
            if let Some(name) = &task.register {
                v2.insert(name.clone(), Value::Object(reg.clone()));
            }
            let v2 = Value::Object(v2);
            let evaluable = !(check && plan.unknown_until_run);
            if let (Some(cw), true) = (&task.changed_when, evaluable) {
                match self.cond_all(cw, &v2) {
                    Ok(b) => out.changed = b,
                    Err(e) => return fail(format!("changed_when: {e}")),
                }
            }
            if let (Some(fw), true) = (&task.failed_when, evaluable) {
                match self.cond_all(fw, &v2) {
                    Ok(b) => {
                        out.failed = b;
                        if b && out.msg.is_none() {
                            out.msg = Some(format!("failed_when: {}", fw.join(" and ")));
                        }
                    }
                    Err(e) => return fail(format!("failed_when: {e}")),
                }
            }
            if let (Some(until), true) = (&task.until, evaluable) {
                match self.cond_all(until, &v2) {
                    Ok(true) => break,
                    Ok(false) if attempt < attempts => {
                        tokio::time::sleep(Duration::from_secs(task.delay)).await;
                        continue;
                    }
                    Ok(false) => {
                        out.failed = true;
                        out.msg = Some(format!("`until` still false after {attempts} attempts"));
                    }
                    Err(e) => return fail(format!("until: {e}")),
                }
            }
            break;
        }
        out
    }

    /// `meta:` tasks.
    async fn run_meta(&self, play: usize, task: &Task, host: &str) -> Outcome {
        let what = task
            .args
            .get("_raw_params")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .to_string();
        match what.as_str() {
            "flush_handlers" => self.flush_handlers(play, host).await,
            "noop" | "" => Outcome::Ok,
            "end_host" | "end_play" => {
                self.with_host(host, |st| st.ended_play = Some(play));
                Outcome::Ok
            }
            "clear_facts" => {
                self.with_host(host, |st| st.facts = None);
                Outcome::Ok
            }
            "clear_host_errors" | "refresh_inventory" | "reset_connection" => Outcome::Ok,
            other => {
                let r = fail(format!("unknown meta action `{other}`"));
                let _ = r;
                self.emit_simple(
                    play,
                    &task.name,
                    host,
                    Status::Failed,
                    Some(format!("unknown meta action `{other}`")),
                );
                self.finish_failure(play, task, host)
            }
        }
    }

    /// Run the notified handlers of a host, in the order they are defined.
    pub(super) async fn flush_handlers(&self, play: usize, host: &str) -> Outcome {
        let handlers = &self.prepared.playbook.plays[play].handlers;
        loop {
            let notified = self.with_host(host, |st| std::mem::take(&mut st.notified));
            if notified.is_empty() {
                return Outcome::Ok;
            }
            for h in handlers {
                let hit = notified
                    .iter()
                    .any(|n| n == &h.name || h.listen.contains(n));
                if !hit {
                    continue;
                }
                if self.host_is_out(host, play) {
                    return Outcome::Skipped;
                }
                let o = Box::pin(self.run_task(play, h, host, &[])).await;
                if matches!(o, Outcome::Failed { .. } | Outcome::Unreachable) {
                    return o;
                }
            }
        }
    }
}

fn step_failure(e: StepError) -> ItemResult {
    match e {
        StepError::Conn(c) => {
            let mut r = fail(c.to_string());
            r.unreachable = c.is_unreachable();
            r
        }
        StepError::Failed { message, .. } => fail(message),
    }
}
