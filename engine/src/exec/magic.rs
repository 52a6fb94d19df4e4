//! The magic variables whose size grows with the inventory (`groups`,
//! `ansible_play_hosts`, `ansible_play_hosts_all`, `play_hosts`,
//! `hostvars`). Copying them into every (task, host)'s variables made a run
//! O(hosts²) in time and memory, so they are built once per run (per play)
//! and given only to the tasks that can read them: a task whose text (its
//! arguments, conditions, loop, environment, `vars:`, and for `template` the
//! template file) names them, or every task when any variable source of the
//! run (inventory, play, role, extra vars) names them — a templated variable
//! may read them on a task's behalf. A `lookup` anywhere gives a task all of
//! them (it may render another file). False positives only cost time.

use crate::model::{Playbook, Task};
use crate::vars::Vars;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// Which of the big magic variables a task may read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Needs {
    pub groups: bool,
    pub play_hosts: bool,
    pub hostvars: bool,
}

impl Needs {
    pub const ALL: Needs = Needs {
        groups: true,
        play_hosts: true,
        hostvars: true,
    };

    fn scan(&mut self, text: &str) {
        if text.contains("lookup") {
            *self = Needs::ALL;
            return;
        }
        self.groups |= text.contains("groups");
        self.play_hosts |= text.contains("play_hosts");
        self.hostvars |= text.contains("hostvars");
    }

    fn or(self, o: Needs) -> Needs {
        Needs {
            groups: self.groups || o.groups,
            play_hosts: self.play_hosts || o.play_hosts,
            hostvars: self.hostvars || o.hostvars,
        }
    }
}

/// Needs of every task and handler of a playbook, by the task's address
/// (the playbook is shared, never mutated, while a run lasts).
pub(super) struct TaskNeeds {
    by_task: HashMap<usize, Needs>,
}

fn key(t: &Task) -> usize {
    t as *const Task as usize
}

fn scan_vars(n: &mut Needs, v: &Vars) {
    for (k, x) in v {
        n.scan(k);
        n.scan(&x.to_string());
    }
}

fn task_text(t: &Task) -> String {
    let mut s = t.args.to_string();
    let mut add = |x: &str| {
        s.push('\n');
        s.push_str(x);
    };
    t.when.iter().for_each(|w| add(w));
    if let Some(l) = &t.loop_ {
        add(&l.to_string());
    }
    for c in [&t.changed_when, &t.failed_when, &t.until]
        .into_iter()
        .flatten()
    {
        c.iter().for_each(|w| add(w));
    }
    for x in [
        &t.delegate_to,
        &t.loop_label,
        &t.become_user,
        &t.become_flags,
    ]
    .into_iter()
    .flatten()
    {
        add(x);
    }
    add(&Value::Object(t.environment.clone()).to_string());
    add(&Value::Object(t.vars.clone()).to_string());
    s
}

/// The template file a `template` task renders, read from the controller;
/// None when it cannot be known before the run (templated `src`, missing).
fn template_text(t: &Task, playbook_dir: &Path) -> Option<String> {
    let src = t.args.get("src")?.as_str()?;
    if crate::template::has_template(src) {
        return None;
    }
    let role_dir = t.role.as_ref().map(|r| r.dir.as_path());
    let p = super::ctx::find(role_dir, playbook_dir, "templates", src).ok()?;
    std::fs::read_to_string(p).ok()
}

impl TaskNeeds {
    /// `var_sources`: every variable layer of the run outside the tasks
    /// (inventory vars of every host, extra vars).
    pub fn new<'a>(pb: &Playbook, var_sources: impl IntoIterator<Item = &'a Vars>) -> Self {
        let mut global = Needs::default();
        for v in var_sources {
            scan_vars(&mut global, v);
        }
        for p in &pb.plays {
            scan_vars(&mut global, &p.vars);
            scan_vars(&mut global, &p.vars_files);
            for t in p.tasks.iter().chain(&p.handlers) {
                if let Some(r) = &t.role {
                    scan_vars(&mut global, &r.defaults);
                    scan_vars(&mut global, &r.vars);
                    scan_vars(&mut global, &r.params);
                }
            }
        }
        let mut by_task = HashMap::new();
        for p in &pb.plays {
            for t in p.tasks.iter().chain(&p.handlers) {
                let mut n = Needs::default();
                n.scan(&task_text(t));
                if t.module == "template" || t.module == "ansible.builtin.template" {
                    match template_text(t, &pb.dir) {
                        Some(text) => n.scan(&text),
                        None => n = Needs::ALL,
                    }
                }
                by_task.insert(key(t), n.or(global));
            }
        }
        TaskNeeds { by_task }
    }

    /// What `task` may read (everything for a task not seen at the start).
    pub fn of(&self, task: Option<&Task>) -> Needs {
        task.and_then(|t| self.by_task.get(&key(t)).copied())
            .unwrap_or(Needs::ALL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task(module: &str, args: Value) -> Task {
        Task {
            module: module.into(),
            args,
            ..Default::default()
        }
    }

    #[test]
    fn only_tasks_that_name_them_get_the_big_variables() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("templates")).unwrap();
        std::fs::write(dir.path().join("templates/plain.j2"), "x={{ value }}\n").unwrap();
        std::fs::write(dir.path().join("templates/hv.j2"), "{{ hostvars.h1.ip }}\n").unwrap();
        let mut pb = Playbook {
            dir: dir.path().into(),
            ..Default::default()
        };
        let mut play = crate::model::Play {
            tasks: vec![
                task("file", json!({"path": "/x"})),
                task("template", json!({"src": "plain.j2", "dest": "/y"})),
                task("template", json!({"src": "hv.j2", "dest": "/y"})),
                task("debug", json!({"var": "groups"})),
                task("template", json!({"src": "{{ name }}.j2", "dest": "/y"})),
                task("template", json!({"src": "missing.j2", "dest": "/y"})),
            ],
            ..Default::default()
        };
        play.tasks[0].when = vec!["(eq ansible_play_hosts.0 inventory_hostname)".into()];
        pb.plays.push(play);
        let n = TaskNeeds::new(&pb, std::iter::empty());
        let t = &pb.plays[0].tasks;
        assert_eq!(
            n.of(Some(&t[0])),
            Needs {
                play_hosts: true,
                ..Default::default()
            }
        );
        assert_eq!(n.of(Some(&t[1])), Needs::default());
        assert!(n.of(Some(&t[2])).hostvars && !n.of(Some(&t[2])).groups);
        assert!(n.of(Some(&t[3])).groups && !n.of(Some(&t[3])).hostvars);
        assert_eq!(n.of(Some(&t[4])), Needs::ALL);
        assert_eq!(n.of(Some(&t[5])), Needs::ALL);
        assert_eq!(n.of(None), Needs::ALL);
        // A variable of the inventory that reads `groups` gives it to every task.
        let inv = json!({"zk": "{{ groups.zk }}"})
            .as_object()
            .unwrap()
            .clone();
        let n = TaskNeeds::new(&pb, [&inv]);
        assert!(n.of(Some(&t[1])).groups && !n.of(Some(&t[1])).hostvars);
    }
}
