//! `user` module: make a local user account present or absent, as Ansible's
//! `user` (uid, primary `group`, supplementary `groups` with `append`, home,
//! shell, comment, system, create_home and a pre-crypted `password`).
//! Observes `getent passwd`, `id -Gn` and (only with a password) `getent
//! shadow`; applies one `useradd`, `usermod` or `userdel`. The password hash
//! never appears in summaries, diffs or results.

use crate::acct_common::{check_name, exec_at, get_id, passwd_of};
use drover_engine::args::{get_bool, get_str, get_str_list, req_str};
use drover_engine::module::{
    Action, Args, Change, Diff, Kind, Module, ModuleError, Observed, Param, Plan, Probe, Registry,
    Step, TaskContext,
};
use serde_json::json;
use std::sync::Arc;

pub struct UserModule;

const STATES: &[&str] = &["present", "absent"];
const UPDATE: &[&str] = &["always", "on_create"];

const PARAMS: &[Param] = &[
    Param::new("name", Kind::Str).required().aliases(&["user"]),
    Param::new("state", Kind::Str).choices(STATES),
    Param::new("uid", Kind::Int),
    Param::new("group", Kind::Str),
    Param::new("groups", Kind::List),
    Param::new("append", Kind::Bool),
    Param::new("home", Kind::Str),
    Param::new("shell", Kind::Str),
    Param::new("system", Kind::Bool),
    Param::new("create_home", Kind::Bool).aliases(&["createhome"]),
    Param::new("comment", Kind::Str),
    Param::new("password", Kind::Str),
    Param::new("update_password", Kind::Str).choices(UPDATE),
    Param::new("remove", Kind::Bool),
    Param::new("force", Kind::Bool),
    Param::new("non_unique", Kind::Bool),
];

impl Module for UserModule {
    fn name(&self) -> &'static str {
        "user"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let name = req_str(args, "name")?;
        check_name("name", &name)?;
        let choice = |p: &str, default: &str, ok: &[&str]| -> Result<String, ModuleError> {
            let v = get_str(args, p)?.unwrap_or_else(|| default.into());
            if ok.contains(&v.as_str()) {
                Ok(v)
            } else {
                Err(ModuleError::BadChoice {
                    name: p.into(),
                    value: v,
                    choices: ok.join("|"),
                })
            }
        };
        let state = choice("state", "present", STATES)?;
        let update = choice("update_password", "always", UPDATE)?;
        let group = get_str(args, "group")?;
        if let Some(g) = &group {
            check_name("group", g)?;
        }
        // `groups: ""` means "no supplementary groups" in Ansible.
        let groups = match args.get("groups") {
            None | Some(serde_json::Value::Null) => None,
            Some(_) => {
                let g = get_str_list(args, "groups")?;
                for x in &g {
                    check_name("groups", x)?;
                }
                Some(g)
            }
        };
        let password = get_str(args, "password")?;
        if password
            .as_deref()
            .is_some_and(|p| p.contains(':') || p.contains('\n'))
        {
            return Err(ModuleError::BadArg {
                name: "password".into(),
                value: "(hidden)".into(),
                message: "must be a crypted hash without `:` or newlines".into(),
            });
        }
        for p in ["home", "shell", "comment"] {
            if get_str(args, p)?.is_some_and(|v| v.contains(':') || v.contains('\n')) {
                return Err(ModuleError::BadArg {
                    name: p.into(),
                    value: get_str(args, p)?.unwrap_or_default(),
                    message: "must not contain `:` or newlines".into(),
                });
            }
        }
        Ok(Box::new(UserAction {
            name,
            present: state == "present",
            uid: get_id(args, "uid")?,
            group,
            groups,
            append: get_bool(args, "append", false)?,
            home: get_str(args, "home")?,
            shell: get_str(args, "shell")?,
            system: get_bool(args, "system", false)?,
            create_home: get_bool(args, "create_home", true)?,
            comment: get_str(args, "comment")?,
            password,
            update_always: update == "always",
            remove: get_bool(args, "remove", false)?,
            force: get_bool(args, "force", false)?,
            non_unique: get_bool(args, "non_unique", false)?,
        }))
    }
}

struct UserAction {
    name: String,
    present: bool,
    uid: Option<u32>,
    group: Option<String>,
    groups: Option<Vec<String>>,
    append: bool,
    home: Option<String>,
    shell: Option<String>,
    system: bool,
    create_home: bool,
    comment: Option<String>,
    password: Option<String>,
    update_always: bool,
    remove: bool,
    force: bool,
    non_unique: bool,
}

fn state_diff(before: &str, after: &str) -> Diff {
    Diff {
        label: "state".into(),
        before: format!("{before}\n"),
        after: format!("{after}\n"),
    }
}

impl UserAction {
    /// `useradd`; `own_group` = a group named like the user already exists,
    /// so (as Ansible) `-N` keeps useradd from trying to create it.
    fn create(&self, own_group: bool) -> Change {
        let mut a: Vec<String> = vec!["useradd".into()];
        let mut opt = |f: &str, v: &Option<String>| {
            if let Some(v) = v {
                a.extend([f.to_string(), v.clone()]);
            }
        };
        opt("-u", &self.uid.map(|u| u.to_string()));
        opt("-g", &self.group);
        opt(
            "-G",
            &self
                .groups
                .as_ref()
                .filter(|g| !g.is_empty())
                .map(|g| g.join(",")),
        );
        opt("-d", &self.home);
        opt("-s", &self.shell);
        opt("-c", &self.comment);
        opt("-p", &self.password);
        if self.uid.is_some() && self.non_unique {
            a.push("-o".into());
        }
        if self.group.is_none() && own_group {
            a.push("-N".into());
        }
        if self.system {
            a.push("-r".into());
        }
        a.push(if self.create_home { "-m" } else { "-M" }.into());
        a.extend(["--".into(), self.name.clone()]);
        Change::new(format!("create user {}", self.name), vec![Step::exec(a)])
            .with_diff(state_diff("absent", "present"))
    }
}

impl Action for UserAction {
    fn probes(&self) -> Vec<Probe> {
        let e = |v: &[&str]| Probe::Exec {
            argv: v.iter().map(|s| s.to_string()).collect(),
        };
        let n = self.name.as_str();
        let mut p = vec![e(&["getent", "passwd", n])];
        if self.present {
            p.push(e(&["id", "-Gn", n]));
            if self.group.is_none() {
                p.push(e(&["getent", "group", n]));
            }
            if self.password.is_some() {
                p.push(e(&["getent", "shadow", n]));
            }
        }
        p
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        let n = &self.name;
        let cur = passwd_of(exec_at(observed, 0, "getent passwd")?, n)?;
        let mut plan = Plan::default();
        plan.result.insert("name".into(), json!(n));
        plan.result.insert(
            "state".into(),
            json!(if self.present { "present" } else { "absent" }),
        );
        let Some(cur) = cur else {
            if self.present {
                let own_group = match self.group {
                    None => exec_at(observed, 2, "getent group")?.success(),
                    Some(_) => false,
                };
                plan.changes.push(self.create(own_group));
            } else {
                plan.reason = Some(format!("user {n} does not exist"));
            }
            return Ok(plan);
        };
        if !self.present {
            let mut a = vec!["userdel".to_string()];
            if self.remove {
                a.push("-r".into());
            }
            if self.force {
                a.push("-f".into());
            }
            a.extend(["--".into(), n.clone()]);
            plan.changes.push(
                Change::new(format!("remove user {n}"), vec![Step::exec(a)])
                    .with_diff(state_diff("present", "absent")),
            );
            return Ok(plan);
        }
        let ids = exec_at(observed, 1, "id -Gn")?;
        if !ids.success() {
            return Err(ModuleError::Probe(format!(
                "id -Gn {n} failed: {}",
                ids.stderr_str().trim()
            )));
        }
        let names: Vec<String> = ids
            .stdout_str()
            .split_whitespace()
            .map(String::from)
            .collect();
        let primary = names.first().cloned().unwrap_or_default();
        let supplementary: Vec<&String> = names.iter().skip(1).filter(|g| **g != primary).collect();

        let mut m = Mods {
            argv: vec!["usermod".into()],
            what: Vec::new(),
        };
        m.set(
            "-u",
            "uid",
            &self.uid.map(|u| u.to_string()),
            cur.uid.to_string(),
            true,
        );
        if let Some(g) = &self.group {
            let same = if g.bytes().all(|b| b.is_ascii_digit()) {
                *g == cur.gid.to_string()
            } else {
                *g == primary
            };
            if !same {
                m.argv.extend(["-g".to_string(), g.clone()]);
                m.what.push(format!("group {g} (was {primary})"));
            }
        }
        if let Some(want) = &self.groups {
            let missing: Vec<&String> = want.iter().filter(|g| !names.contains(g)).collect();
            let extra = supplementary.iter().any(|g| !want.contains(g));
            if self.append && !missing.is_empty() {
                let add: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
                m.argv.extend(["-a".into(), "-G".into(), add.join(",")]);
                m.what.push(format!("add to groups {}", add.join(",")));
            } else if !self.append && (!missing.is_empty() || extra) {
                m.argv.extend(["-G".into(), want.join(",")]);
                let was: Vec<&str> = supplementary.iter().map(|s| s.as_str()).collect();
                m.what
                    .push(format!("groups {} (was {})", want.join(","), was.join(",")));
            }
        }
        m.set("-d", "home", &self.home, cur.home.clone(), true);
        m.set("-s", "shell", &self.shell, cur.shell.clone(), true);
        m.set("-c", "comment", &self.comment, cur.comment.clone(), true);
        if self.update_always {
            if let Some(pw) = &self.password {
                let idx = if self.group.is_none() { 3 } else { 2 };
                let sh = exec_at(observed, idx, "getent shadow")?;
                if !sh.success() {
                    return Err(ModuleError::Probe(format!(
                        "getent shadow {n} failed (needs root): {}",
                        sh.stderr_str().trim()
                    )));
                }
                let text = sh.stdout_str();
                let have = text.lines().next().and_then(|l| l.split(':').nth(1));
                m.set(
                    "-p",
                    "password",
                    &Some(pw.clone()),
                    have.unwrap_or("").into(),
                    false,
                );
            }
        }
        let target = |p: &mut Plan| {
            p.result
                .insert("uid".into(), json!(self.uid.unwrap_or(cur.uid)));
            p.result.insert(
                "home".into(),
                json!(self.home.as_ref().unwrap_or(&cur.home)),
            );
            p.result.insert(
                "shell".into(),
                json!(self.shell.as_ref().unwrap_or(&cur.shell)),
            );
        };
        target(&mut plan);
        if m.what.is_empty() {
            plan.reason = Some(format!("user {n} is as wanted"));
        } else {
            m.argv.extend(["--".into(), n.clone()]);
            plan.changes.push(Change::new(
                format!("modify user {n}: {}", m.what.join(", ")),
                vec![Step::exec(m.argv)],
            ));
        }
        Ok(plan)
    }
}

/// The flags of one `usermod` and what they change.
struct Mods {
    argv: Vec<String>,
    what: Vec<String>,
}

impl Mods {
    /// Add `flag want` when `want` is given and differs from `have`; `show`
    /// false keeps the values out of the summary (password).
    fn set(&mut self, flag: &str, label: &str, want: &Option<String>, have: String, show: bool) {
        if let Some(w) = want {
            if *w != have {
                self.argv.extend([flag.to_string(), w.clone()]);
                self.what.push(if show {
                    format!("{label} {w} (was {have})")
                } else {
                    label.to_string()
                });
            }
        }
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(UserModule));
}
