//! The variables a task sees on a host, merged by Ansible's precedence (see
//! [`crate::vars`]), plus the magic variables (`inventory_hostname`,
//! `groups`, `group_names`, `hostvars`, …).
//!
//! Variables written in the playbook or inventory may hold templates
//! (`zk_hosts: "{{ groups.zookeeper }}"`); they are resolved on use, each
//! from the sources it names. Values that came from hosts (facts, registered
//! results) are data and are never templated, and no rendered output is
//! rendered again.

use crate::model::{Play, Task};
use crate::template::Templater;
use crate::vars::Vars;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// Sources of a host's variables at one task.
pub(super) struct Sources<'a> {
    pub inventory: &'a Vars,
    pub facts: Option<&'a Vars>,
    pub runtime: &'a Vars,
    pub play: &'a Play,
    pub task: Option<&'a Task>,
    pub extra: &'a Vars,
    pub magic: Vars,
}

/// Merge the layers and resolve templated configuration values.
pub(super) fn build(src: &Sources, tpl: &Templater) -> Result<Vars, String> {
    let mut all = Vars::new();
    // Keys whose winning value came from a host (facts, register, set_fact).
    let mut data: HashSet<String> = HashSet::new();
    let mut put = |layer: &Vars, is_data: bool| {
        for (k, v) in layer {
            all.insert(k.clone(), v.clone());
            if is_data {
                data.insert(k.clone());
            } else {
                data.remove(k);
            }
        }
    };
    let role = src.task.and_then(|t| t.role.as_ref());
    if let Some(r) = role {
        put(&r.defaults, false);
    }
    put(src.inventory, false);
    if let Some(f) = src.facts {
        put(f, true);
    }
    put(&src.play.vars, false);
    put(&src.play.vars_files, false);
    if let Some(r) = role {
        put(&r.vars, false);
        put(&r.params, false);
    }
    if let Some(t) = src.task {
        put(&t.vars, false);
    }
    put(src.runtime, true);
    put(src.extra, false);
    put(&src.magic, true);
    // Which keys hold configuration (templatable) values.
    let templated: Vec<String> = all
        .iter()
        .filter(|(k, v)| has_template(v) && !data.contains(*k))
        .map(|(k, _)| k.clone())
        .collect();
    if templated.is_empty() {
        return Ok(all);
    }
    let mut resolved: HashMap<String, Value> = HashMap::new();
    let names: HashSet<String> = templated.iter().cloned().collect();
    for k in &templated {
        resolve(k, &all, &names, tpl, &mut resolved, &mut Vec::new())?;
    }
    for (k, v) in resolved {
        all.insert(k, v);
    }
    Ok(all)
}

fn has_template(v: &Value) -> bool {
    match v {
        Value::String(s) => crate::template::has_template(s),
        Value::Array(a) => a.iter().any(has_template),
        Value::Object(m) => m.values().any(has_template),
        _ => false,
    }
}

fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

fn resolve(
    key: &str,
    all: &Vars,
    templated: &HashSet<String>,
    tpl: &Templater,
    done: &mut HashMap<String, Value>,
    stack: &mut Vec<String>,
) -> Result<(), String> {
    if done.contains_key(key) {
        return Ok(());
    }
    if stack.iter().any(|s| s == key) {
        return Err(format!(
            "variable `{key}` refers to itself through {}",
            stack.join(" → ")
        ));
    }
    let Some(v) = all.get(key) else { return Ok(()) };
    stack.push(key.to_string());
    let mut texts = Vec::new();
    strings(v, &mut texts);
    for t in texts {
        let refs = tpl
            .referenced_vars(&t)
            .map_err(|e| format!("variable `{key}`: {e}"))?;
        for r in refs {
            if templated.contains(&r) && r != key {
                resolve(&r, all, templated, tpl, done, stack)?;
            }
        }
    }
    stack.pop();
    let mut ctx = all.clone();
    for (k, v) in done.iter() {
        ctx.insert(k.clone(), v.clone());
    }
    let out = tpl
        .render_value(v, &Value::Object(ctx))
        .map_err(|e| format!("variable `{key}`: {e}"))?;
    done.insert(key.to_string(), out);
    Ok(())
}
