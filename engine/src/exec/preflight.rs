//! Checks made before any host is touched: every task's module arguments
//! (names, literal values), template syntax and Jinja-isms, variables that no
//! source could define for a host, handlers that are notified but do not
//! exist, and controller-side files (`template`/`copy` `src`) that are missing.
//! Each error names the file and line, the task, the host and the value.

use super::{RunError, RunOptions};
use crate::inventory::Inventory;
use crate::model::{Play, Playbook, Task};
use crate::module::Registry;
use crate::template::Templater;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// Variables the engine provides or that hosts may provide at run time.
const MAGIC: &[&str] = &[
    "inventory_hostname",
    "inventory_hostname_short",
    "groups",
    "group_names",
    "hostvars",
    "play_hosts",
    "ansible_play_hosts",
    "ansible_play_hosts_all",
    "ansible_check_mode",
    "ansible_diff_mode",
    "playbook_dir",
    "role_name",
    "role_path",
    "ansible_facts",
    "omit",
    "item",
    "this",
];

fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

fn err(task: &Task, host: &str, message: String) -> RunError {
    RunError::Task {
        origin: task.origin.to_string(),
        task: task.name.clone(),
        host: if host.is_empty() {
            String::new()
        } else {
            format!(", host {host}")
        },
        message,
    }
}

/// Names set at run time anywhere in the playbook (register, set_fact, loop vars).
fn dynamic_names(pb: &Playbook) -> (HashSet<String>, bool) {
    let mut names: HashSet<String> = MAGIC.iter().map(|s| s.to_string()).collect();
    let mut facts = false;
    for p in &pb.plays {
        facts |= p.gather_facts;
        for t in p.tasks.iter().chain(p.handlers.iter()) {
            if let Some(r) = &t.register {
                names.insert(r.clone());
            }
            if t.module == "set_fact" {
                if let Value::Object(m) = &t.args {
                    names.extend(m.keys().cloned());
                }
            }
            names.insert(t.loop_var.clone());
            if let Some(i) = &t.index_var {
                names.insert(i.clone());
            }
        }
    }
    (names, facts)
}

/// The template strings of a task: (field, text, is_condition).
fn templates(t: &Task) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    let mut s = Vec::new();
    strings(&t.args, &mut s);
    out.extend(s.into_iter().map(|x| ("args".to_string(), x, false)));
    if let Some(l) = &t.loop_ {
        let mut s = Vec::new();
        strings(l, &mut s);
        out.extend(s.into_iter().map(|x| ("loop".to_string(), x, false)));
    }
    for (f, list) in [
        ("when", Some(&t.when)),
        ("changed_when", t.changed_when.as_ref()),
        ("failed_when", t.failed_when.as_ref()),
        ("until", t.until.as_ref()),
    ] {
        for c in list.into_iter().flatten() {
            out.push((f.to_string(), c.clone(), true));
        }
    }
    if let Some(d) = &t.delegate_to {
        out.push(("delegate_to".into(), d.clone(), false));
    }
    out
}

fn condition_refs(tpl: &Templater, c: &str) -> Result<Vec<String>, String> {
    let e = c.trim();
    let e = e
        .strip_prefix("{{")
        .and_then(|x| x.strip_suffix("}}"))
        .unwrap_or(e)
        .trim();
    if crate::args::truthy(&Value::String(e.into())).is_some() {
        return Ok(vec![]);
    }
    tpl.condition_required_vars(c).map_err(|x| x.to_string())
}

/// Run every check; the first error wins.
pub(super) fn check(
    pb: &Playbook,
    inv: &Inventory,
    registry: &Registry,
    tpl: &Templater,
    opts: &RunOptions,
    play_hosts: &[Vec<String>],
    selected: &[Vec<bool>],
) -> Result<(), RunError> {
    let (dynamic, gathers) = dynamic_names(pb);
    let mut host_keys: HashMap<String, HashSet<String>> = HashMap::new();
    for (pi, play) in pb.plays.iter().enumerate() {
        let handler_names: HashSet<&String> = play
            .handlers
            .iter()
            .flat_map(|h| std::iter::once(&h.name).chain(h.listen.iter()))
            .collect();
        let tasks = play
            .tasks
            .iter()
            .enumerate()
            .filter(|(i, _)| selected[pi][*i])
            .map(|(_, t)| t)
            .chain(play.handlers.iter());
        for t in tasks {
            check_args(t, registry)?;
            for n in &t.notify {
                if !handler_names.contains(n) {
                    return Err(err(
                        t,
                        "",
                        format!("notifies handler `{n}`, which is not defined in this play"),
                    ));
                }
            }
            let mut refs: Vec<(String, String)> = Vec::new();
            for (field, text, cond) in templates(t) {
                let r = if cond {
                    condition_refs(tpl, &text)
                } else {
                    tpl.required_vars(&text).map_err(|e| e.to_string())
                };
                let r = r.map_err(|e| err(t, "", format!("{field}: {e}")))?;
                refs.extend(r.into_iter().map(|v| (field.clone(), v)));
            }
            refs.extend(file_refs(t, play, tpl)?);
            if refs.is_empty() {
                continue;
            }
            let static_keys = play_keys(play, t, opts);
            for host in &play_hosts[pi] {
                let hk = host_keys
                    .entry(host.clone())
                    .or_insert_with(|| inv.host_vars(host).keys().cloned().collect());
                for (field, v) in &refs {
                    let known = dynamic.contains(v)
                        || static_keys.contains(v)
                        || hk.contains(v)
                        || (gathers && v.starts_with("ansible_"));
                    if !known {
                        return Err(err(t, host, format!("{field}: undefined variable `{v}`")));
                    }
                }
            }
        }
    }
    Ok(())
}

fn play_keys(play: &Play, t: &Task, opts: &RunOptions) -> HashSet<String> {
    let mut k: HashSet<String> = play
        .vars
        .keys()
        .chain(play.vars_files.keys())
        .chain(t.vars.keys())
        .chain(opts.extra_vars.keys())
        .cloned()
        .collect();
    if let Some(r) = &t.role {
        k.extend(
            r.defaults
                .keys()
                .chain(r.vars.keys())
                .chain(r.params.keys())
                .cloned(),
        );
    }
    k
}

fn check_args(t: &Task, registry: &Registry) -> Result<(), RunError> {
    if t.module == "meta" {
        let a = t
            .args
            .get("_raw_params")
            .and_then(Value::as_str)
            .unwrap_or("");
        const OK: &[&str] = &[
            "flush_handlers",
            "noop",
            "end_host",
            "end_play",
            "clear_facts",
            "clear_host_errors",
            "refresh_inventory",
            "reset_connection",
        ];
        if !OK.contains(&a.trim()) {
            return Err(err(
                t,
                "",
                format!("unknown meta action `{a}` (one of {})", OK.join(", ")),
            ));
        }
        return Ok(());
    }
    let Some(m) = registry.get(&t.module) else {
        return Err(err(t, "", format!("unknown module `{}`", t.module)));
    };
    if m.name() == "set_fact" {
        return Ok(());
    }
    let args = t.args.as_object().cloned().unwrap_or_default();
    if args.contains_key("_raw_params") && !m.free_form() {
        return Err(err(
            t,
            "",
            format!(
                "module `{}` does not take free-form arguments (got `{}`); use key: value",
                t.module, args["_raw_params"]
            ),
        ));
    }
    crate::args::normalize(m.params(), &args)
        .map_err(|e| err(t, "", format!("module `{}`: {e}", t.module)))?;
    Ok(())
}

/// Controller files a task names literally must exist; template files are
/// checked for syntax and variables like task fields.
fn file_refs(t: &Task, play: &Play, tpl: &Templater) -> Result<Vec<(String, String)>, RunError> {
    let kind = match t.module.as_str() {
        "template" => "templates",
        "copy" => "files",
        _ => return Ok(vec![]),
    };
    let Some(src) = t.args.get("src").and_then(Value::as_str) else {
        return Ok(vec![]);
    };
    if crate::template::has_template(src) {
        return Ok(vec![]);
    }
    let role_dir = t.role.as_ref().map(|r| r.dir.as_path());
    let path = super::ctx::find(role_dir, &play.dir, kind, src)
        .map_err(|e| err(t, "", format!("src: {e}")))?;
    if kind != "templates" {
        return Ok(vec![]);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| {
        err(
            t,
            "",
            format!("cannot read template {}: {e}", path.display()),
        )
    })?;
    let r = tpl
        .required_vars(&text)
        .map_err(|e| err(t, "", format!("template {}: {e}", path.display())))?;
    Ok(r.into_iter()
        .map(|v| (format!("template {}", path.display()), v))
        .collect())
}
