//! Loading a playbook from disk: plays, roles (`roles/NAME/{tasks,handlers,
//! defaults,vars}/main.yml`), `import_playbook`, `import_tasks`/
//! `include_tasks` (expanded statically) and `vars_files`.

use super::task::{scalar_text, str_list, Inherit, Parser, Src};
use super::{ModelError, Origin, Play, Playbook, RoleInfo, Serial, Task};
use crate::args::truthy;
use crate::module::Registry;
use crate::vars::Vars;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const PLAY_KEYS: &[&str] = &[
    "name",
    "hosts",
    "vars",
    "vars_files",
    "gather_facts",
    "become",
    "become_user",
    "become_method",
    "serial",
    "any_errors_fatal",
    "max_fail_percentage",
    "pre_tasks",
    "tasks",
    "post_tasks",
    "handlers",
    "roles",
    "tags",
    "strategy",
    "connection",
    "remote_user",
    "collections",
    "environment",
    "order",
    "ignore_errors",
    "no_log",
    "check_mode",
    "diff",
    "module_defaults",
    "force_handlers",
    "gather_subset",
    "gather_timeout",
    "become_flags",
];

fn read(file: &Path) -> Result<String, ModelError> {
    std::fs::read_to_string(file).map_err(|e| ModelError::Io {
        file: file.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Read a YAML file of variables (a mapping).
pub(crate) fn read_vars_file(file: &Path) -> Result<Vars, ModelError> {
    let text = read(file)?;
    match crate::yaml::parse_value(&text, file)? {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Vars::new()),
        other => Err(ModelError::At {
            file: file.into(),
            line: 1,
            message: format!("expected a mapping of variables, got {other}"),
        }),
    }
}

fn first_existing(dir: &Path, stem: &str) -> Option<PathBuf> {
    ["yml", "yaml"]
        .iter()
        .map(|e| dir.join(format!("{stem}.{e}")))
        .find(|p| p.is_file())
}

struct Loader<'a> {
    registry: &'a Registry,
    dir: PathBuf,
    depth: usize,
}

impl Loader<'_> {
    fn task_file(
        &mut self,
        file: &Path,
        inh: &Inherit,
        from: &Origin,
    ) -> Result<Vec<Task>, ModelError> {
        if self.depth > 20 {
            return Err(ModelError::At {
                file: from.file.clone(),
                line: from.line,
                message: format!("include nesting too deep at {}", file.display()),
            });
        }
        if let Some(role) = file.to_str().and_then(|s| s.strip_prefix("@role:")) {
            let (tasks, _) = self.role(role, &Vars::new(), inh, from)?;
            return Ok(tasks);
        }
        let text = read(file).map_err(|e| match e {
            ModelError::Io { reason, .. } => ModelError::At {
                file: from.file.clone(),
                line: from.line,
                message: format!("cannot read included file {}: {reason}", file.display()),
            },
            other => other,
        })?;
        let value = crate::yaml::parse_value(&text, file)?;
        let lines = crate::yaml::line_map(&text);
        let src = Src {
            file,
            lines: &lines,
        };
        self.depth += 1;
        let r = self.parse_tasks(&src, "", &value, inh);
        self.depth -= 1;
        r
    }

    fn parse_tasks(
        &mut self,
        src: &Src,
        path: &str,
        list: &Value,
        inh: &Inherit,
    ) -> Result<Vec<Task>, ModelError> {
        let registry = self.registry;
        let (dir, depth) = (self.dir.clone(), self.depth);
        let mut include = |f: &Path, i: &Inherit, o: &Origin| -> Result<Vec<Task>, ModelError> {
            Loader {
                registry,
                dir: dir.clone(),
                depth: depth + 1,
            }
            .task_file(f, i, o)
        };
        let mut p = Parser {
            registry,
            include: &mut include,
        };
        p.tasks(src, path, list, inh)
    }

    /// Load a role: (tasks, handlers).
    fn role(
        &mut self,
        name: &str,
        params: &Vars,
        inh: &Inherit,
        from: &Origin,
    ) -> Result<(Vec<Task>, Vec<Task>), ModelError> {
        let candidates = [
            self.dir.join("roles").join(name),
            self.dir.join(name),
            PathBuf::from(name),
        ];
        let dir = candidates
            .iter()
            .find(|d| d.join("tasks").is_dir() || d.join("handlers").is_dir())
            .cloned()
            .ok_or_else(|| ModelError::At {
                file: from.file.clone(),
                line: from.line,
                message: format!(
                    "role `{name}` not found (looked in {})",
                    candidates
                        .iter()
                        .map(|c| c.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        let load_vars = |sub: &str| -> Result<Vars, ModelError> {
            match first_existing(&dir.join(sub), "main") {
                Some(f) => read_vars_file(&f),
                None => Ok(Vars::new()),
            }
        };
        let info = Arc::new(RoleInfo {
            name: name.into(),
            dir: dir.clone(),
            defaults: load_vars("defaults")?,
            vars: load_vars("vars")?,
            params: params.clone(),
        });
        let mut inh = inh.clone();
        inh.role = Some(info);
        let mut tasks = Vec::new();
        if let Some(f) = first_existing(&dir.join("tasks"), "main") {
            tasks = self.task_file(&f, &inh, from)?;
        }
        let mut handlers = Vec::new();
        if let Some(f) = first_existing(&dir.join("handlers"), "main") {
            let mut hinh = Inherit {
                role: inh.role.clone(),
                ..Default::default()
            };
            hinh.vars = inh.vars.clone();
            handlers = self.task_file(&f, &hinh, from)?;
        }
        Ok((tasks, handlers))
    }

    fn play(
        &mut self,
        src: &Src,
        path: &str,
        map: &serde_json::Map<String, Value>,
        out: &mut Vec<Play>,
    ) -> Result<(), ModelError> {
        if let Some(f) = map.get("import_playbook") {
            let base = src.file.parent().map(Path::to_path_buf).unwrap_or_default();
            let pb = load_playbook(&base.join(scalar_text(f)), self.registry)?;
            out.extend(pb.plays);
            return Ok(());
        }
        for k in map.keys() {
            if !PLAY_KEYS.contains(&k.as_str()) {
                let hint = if self.registry.get(k).is_some() {
                    " (a module here? tasks go under `tasks:`)"
                } else {
                    ""
                };
                return Err(src.err(
                    &format!("{path}/{k}"),
                    format!("unknown play keyword `{k}`{hint}"),
                ));
            }
        }
        let hosts = match map.get("hosts") {
            Some(Value::Array(a)) => a.iter().map(scalar_text).collect::<Vec<_>>().join(":"),
            Some(v) => scalar_text(v),
            None => return Err(src.err(path, "play has no `hosts`")),
        };
        let b = |k: &str, d: bool| -> Result<bool, ModelError> {
            match map.get(k) {
                None => Ok(d),
                Some(v) => truthy(v).ok_or_else(|| {
                    src.err(
                        &format!("{path}/{k}"),
                        format!("`{k}` must be a boolean (got {v})"),
                    )
                }),
            }
        };
        let mut play = Play {
            name: map
                .get("name")
                .map(scalar_text)
                .unwrap_or_else(|| hosts.clone()),
            origin: src.origin(path),
            hosts,
            gather_facts: b("gather_facts", true)?,
            become_: b("become", false)?,
            become_user: map.get("become_user").map(scalar_text),
            any_errors_fatal: b("any_errors_fatal", false)?,
            linear: map.get("strategy").map(scalar_text).as_deref() == Some("linear"),
            tags: map.get("tags").map(str_list).unwrap_or_default(),
            dir: self.dir.clone(),
            ..Default::default()
        };
        if let Some(v) = map.get("vars") {
            play.vars = v
                .as_object()
                .cloned()
                .ok_or_else(|| src.err(&format!("{path}/vars"), "`vars` must be a mapping"))?;
        }
        for f in map.get("vars_files").map(str_list).unwrap_or_default() {
            let file = self.dir.join(&f);
            crate::vars::merge_into(&mut play.vars_files, &read_vars_file(&file)?);
        }
        if let Some(v) = map.get("serial") {
            let items = match v {
                Value::Array(a) => a.clone(),
                o => vec![o.clone()],
            };
            for i in items {
                let s = scalar_text(&i);
                let bad = || src.err(&format!("{path}/serial"), format!("bad serial value `{s}`"));
                play.serial.push(match s.strip_suffix('%') {
                    Some(p) => Serial::Percent(p.trim().parse().map_err(|_| bad())?),
                    None => Serial::Count(s.trim().parse().map_err(|_| bad())?),
                });
            }
        }
        if let Some(v) = map.get("max_fail_percentage") {
            play.max_fail_percentage = Some(
                v.as_f64()
                    .or_else(|| scalar_text(v).parse().ok())
                    .ok_or_else(|| {
                        src.err(
                            &format!("{path}/max_fail_percentage"),
                            format!("bad max_fail_percentage {v}"),
                        )
                    })?,
            );
        }
        let inh = Inherit {
            tags: play.tags.clone(),
            ..Default::default()
        };
        let flush = |origin: &Origin| Task {
            name: "meta: flush_handlers".into(),
            module: "meta".into(),
            args: serde_json::json!({"_raw_params": "flush_handlers"}),
            origin: origin.clone(),
            loop_var: "item".into(),
            ..Default::default()
        };
        let mut tasks = self.parse_tasks(
            src,
            &format!("{path}/pre_tasks"),
            map.get("pre_tasks").unwrap_or(&Value::Null),
            &inh,
        )?;
        if !tasks.is_empty() {
            tasks.push(flush(&play.origin));
        }
        let mut handlers = Vec::new();
        for (i, r) in map
            .get("roles")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let rp = format!("{path}/roles/{i}");
            let (name, mut params) = match r {
                Value::Object(m) => {
                    let n = m
                        .get("role")
                        .or_else(|| m.get("name"))
                        .map(scalar_text)
                        .ok_or_else(|| src.err(&rp, "role entry needs `role`"))?;
                    (n, m.clone())
                }
                other => (scalar_text(other), serde_json::Map::new()),
            };
            let mut rinh = inh.clone();
            for k in ["role", "name"] {
                params.remove(k);
            }
            if let Some(w) = params.remove("when") {
                rinh.when.extend(str_list(&w));
            }
            if let Some(t) = params.remove("tags") {
                rinh.tags.extend(str_list(&t));
            }
            if let Some(Value::Object(v)) = params.remove("vars") {
                params.extend(v);
            }
            let (t, h) = self.role(&name, &params, &rinh, &src.origin(&rp))?;
            tasks.extend(t);
            handlers.extend(h);
        }
        tasks.extend(self.parse_tasks(
            src,
            &format!("{path}/tasks"),
            map.get("tasks").unwrap_or(&Value::Null),
            &inh,
        )?);
        tasks.push(flush(&play.origin));
        let post = self.parse_tasks(
            src,
            &format!("{path}/post_tasks"),
            map.get("post_tasks").unwrap_or(&Value::Null),
            &inh,
        )?;
        if !post.is_empty() {
            tasks.extend(post);
            tasks.push(flush(&play.origin));
        }
        handlers.extend(self.parse_tasks(
            src,
            &format!("{path}/handlers"),
            map.get("handlers").unwrap_or(&Value::Null),
            &Inherit::default(),
        )?);
        play.tasks = tasks;
        play.handlers = handlers;
        out.push(play);
        Ok(())
    }
}

/// Load a playbook file and everything it refers to.
pub fn load_playbook(file: &Path, registry: &Registry) -> Result<Playbook, ModelError> {
    let text = read(file)?;
    let value = crate::yaml::parse_value(&text, file)?;
    let lines = crate::yaml::line_map(&text);
    let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    let src = Src {
        file,
        lines: &lines,
    };
    let Value::Array(plays) = &value else {
        return Err(src.err("", "a playbook must be a list of plays"));
    };
    let mut loader = Loader {
        registry,
        dir: dir.clone(),
        depth: 0,
    };
    let mut out = Vec::new();
    for (i, p) in plays.iter().enumerate() {
        let Value::Object(m) = p else {
            return Err(src.err(
                &format!("/{i}"),
                format!("a play must be a mapping, got {p}"),
            ));
        };
        loader.play(&src, &format!("/{i}"), m, &mut out)?;
    }
    Ok(Playbook {
        file: file.to_path_buf(),
        dir,
        plays: out,
    })
}
