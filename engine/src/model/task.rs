//! Parsing one task mapping (a module call, a block, an include) into
//! flattened [`Task`]s, with keywords inherited from enclosing blocks.

use super::{After, BlockRef, ModelError, Origin, RoleInfo, Section, Task, TASK_KEYWORDS};
use crate::args::truthy;
use crate::module::Registry;
use crate::vars::Vars;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What enclosing blocks, roles and includes pass down to a task.
#[derive(Clone, Default)]
pub(super) struct Inherit {
    pub when: Vec<String>,
    pub tags: Vec<String>,
    pub become_: Option<bool>,
    pub become_user: Option<String>,
    pub ignore_errors: Option<bool>,
    pub no_log: Option<bool>,
    pub run_once: Option<bool>,
    pub check_mode: Option<bool>,
    pub delegate_to: Option<String>,
    pub vars: Vars,
    pub environment: Vars,
    pub blocks: Vec<BlockRef>,
    pub role: Option<Arc<RoleInfo>>,
}

/// Loads an included task file (or `@role:NAME`) with what it inherits.
pub(super) type IncludeFn<'a> =
    dyn FnMut(&Path, &Inherit, &Origin) -> Result<Vec<Task>, ModelError> + 'a;

/// Parsing state shared by one playbook load.
pub(super) struct Parser<'a> {
    pub registry: &'a Registry,
    /// Loader for `import_tasks`/`include_tasks` and roles (file, inherit) → tasks.
    pub include: &'a mut IncludeFn<'a>,
}

/// One file being parsed: its path, line map and the path of the list.
pub(super) struct Src<'a> {
    pub file: &'a Path,
    pub lines: &'a crate::yaml::LineMap,
}

impl Src<'_> {
    pub fn origin(&self, path: &str) -> Origin {
        Origin {
            file: self.file.to_path_buf(),
            line: self.lines.get(path).copied().unwrap_or(0),
        }
    }
    pub fn err(&self, path: &str, message: impl Into<String>) -> ModelError {
        let o = self.origin(path);
        ModelError::At {
            file: o.file,
            line: o.line,
            message: message.into(),
        }
    }
}

/// Strings from a scalar or list (`when`, `tags`, `notify`, …).
pub(super) fn str_list(v: &Value) -> Vec<String> {
    match v {
        Value::Null => vec![],
        Value::Array(a) => a.iter().map(scalar_text).collect(),
        Value::String(s) if s.contains(',') => s.split(',').map(|x| x.trim().to_string()).collect(),
        other => vec![scalar_text(other)],
    }
}

/// A condition list: each item is an expression.
fn cond_list(v: &Value) -> Vec<String> {
    match v {
        Value::Null => vec![],
        Value::Array(a) => a.iter().map(scalar_text).collect(),
        other => vec![scalar_text(other)],
    }
}

pub(super) fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn boolean(src: &Src, path: &str, key: &str, v: &Value) -> Result<bool, ModelError> {
    if let Value::String(s) = v {
        if crate::args::is_template(s) {
            return Err(src.err(
                path,
                format!("`{key}` must be a literal boolean here (got `{s}`)"),
            ));
        }
    }
    truthy(v).ok_or_else(|| src.err(path, format!("`{key}` must be a boolean (got {v})")))
}

fn uint(src: &Src, path: &str, key: &str, v: &Value) -> Result<u64, ModelError> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .ok_or_else(|| {
            src.err(
                path,
                format!("`{key}` must be a non-negative integer (got {v})"),
            )
        })
}

fn object(src: &Src, path: &str, key: &str, v: &Value) -> Result<Vars, ModelError> {
    match v {
        Value::Object(m) => Ok(m.clone()),
        Value::Null => Ok(Vars::new()),
        other => Err(src.err(path, format!("`{key}` must be a mapping (got {other})"))),
    }
}

/// Parse `k=v k2="v 2"` free-form arguments into a map; words without `=`
/// stay in `_raw_params` (command/shell).
pub(super) fn parse_kv(s: &str, free_form: bool) -> Result<Map<String, Value>, String> {
    let words = shell_words::split(s).map_err(|e| format!("cannot split `{s}`: {e}"))?;
    let mut m = Map::new();
    if free_form {
        // Only known command options are taken out; the rest is the command.
        const OPTS: &[&str] = &["chdir", "creates", "removes", "executable", "stdin", "warn"];
        let mut raw = Vec::new();
        for w in shell_words::split(s).map_err(|e| format!("cannot split `{s}`: {e}"))? {
            match w.split_once('=') {
                Some((k, v)) if OPTS.contains(&k) => {
                    m.insert(k.into(), Value::String(v.into()));
                }
                _ => raw.push(w),
            }
        }
        // Keep the original text when no option was taken out (quoting intact).
        let text = if m.is_empty() {
            s.trim().to_string()
        } else {
            shell_words::join(&raw)
        };
        m.insert("_raw_params".into(), Value::String(text));
        return Ok(m);
    }
    for w in words {
        let (k, v) = w
            .split_once('=')
            .ok_or_else(|| format!("expected key=value, got `{w}`"))?;
        m.insert(k.into(), Value::String(v.into()));
    }
    Ok(m)
}

impl Parser<'_> {
    /// Parse a list of tasks at `path` of `src`.
    pub fn tasks(
        &mut self,
        src: &Src,
        path: &str,
        list: &Value,
        inh: &Inherit,
    ) -> Result<Vec<Task>, ModelError> {
        let items = match list {
            Value::Null => return Ok(vec![]),
            Value::Array(a) => a,
            other => return Err(src.err(path, format!("expected a list of tasks, got {other}"))),
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let p = format!("{path}/{i}");
            let Value::Object(map) = item else {
                return Err(src.err(&p, format!("a task must be a mapping, got {item}")));
            };
            out.extend(self.task(src, &p, map, inh)?);
        }
        Ok(out)
    }

    fn task(
        &mut self,
        src: &Src,
        path: &str,
        map: &Map<String, Value>,
        inh: &Inherit,
    ) -> Result<Vec<Task>, ModelError> {
        let mut t = Task {
            loop_var: "item".into(),
            origin: src.origin(path),
            ..Default::default()
        };
        let mut inh = inh.clone();
        let mut module: Option<(String, Value)> = None;
        for (k, v) in map {
            let kp = format!("{path}/{k}");
            match k.as_str() {
                "name" => t.name = scalar_text(v),
                "id" => t.id = Some(scalar_text(v)),
                "after" => t.after = after_list(src, &kp, v)?,
                "when" => inh.when.extend(cond_list(v)),
                "loop" | "with_items" | "with_list" => t.loop_ = Some(v.clone()),
                "loop_control" => {
                    let lc = object(src, &kp, k, v)?;
                    for (lk, lv) in &lc {
                        match lk.as_str() {
                            "loop_var" => t.loop_var = scalar_text(lv),
                            "index_var" => t.index_var = Some(scalar_text(lv)),
                            "label" => t.loop_label = Some(scalar_text(lv)),
                            "pause" | "extended" => {}
                            other => {
                                return Err(
                                    src.err(&kp, format!("unknown loop_control key `{other}`"))
                                )
                            }
                        }
                    }
                }
                "register" => t.register = Some(scalar_text(v)),
                "notify" => t.notify = str_list(v),
                "listen" => t.listen = str_list(v),
                "tags" => inh.tags.extend(str_list(v)),
                "changed_when" => t.changed_when = Some(cond_list(v)),
                "failed_when" => t.failed_when = Some(cond_list(v)),
                "ignore_errors" => inh.ignore_errors = Some(boolean(src, &kp, k, v)?),
                "retries" => t.retries = Some(uint(src, &kp, k, v)? as u32),
                "until" => t.until = Some(cond_list(v)),
                "delay" => t.delay = uint(src, &kp, k, v)?,
                "delegate_to" => inh.delegate_to = Some(scalar_text(v)),
                "run_once" => inh.run_once = Some(boolean(src, &kp, k, v)?),
                "become" => inh.become_ = Some(boolean(src, &kp, k, v)?),
                "become_user" => inh.become_user = Some(scalar_text(v)),
                "become_flags" => t.become_flags = Some(scalar_text(v)),
                "check_mode" => inh.check_mode = Some(boolean(src, &kp, k, v)?),
                "diff" => t.diff = Some(boolean(src, &kp, k, v)?),
                "no_log" => inh.no_log = Some(boolean(src, &kp, k, v)?),
                "timeout" => t.timeout = Some(uint(src, &kp, k, v)?),
                "vars" => crate::vars::merge_into(&mut inh.vars, &object(src, &kp, k, v)?),
                "environment" => {
                    crate::vars::merge_into(&mut inh.environment, &object(src, &kp, k, v)?)
                }
                "args" => {}
                "become_method" => {
                    if scalar_text(v) != "sudo" {
                        return Err(src.err(
                            &kp,
                            format!(
                                "become_method `{}` is not supported (only sudo)",
                                scalar_text(v)
                            ),
                        ));
                    }
                }
                "block" | "rescue" | "always" => {}
                "debugger" | "any_errors_fatal" | "connection" | "remote_user" | "throttle"
                | "collections" | "module_defaults" | "ignore_unreachable" | "delegate_facts" => {}
                _ => {
                    if let Some(prev) = &module {
                        return Err(src.err(&kp, format!(
                            "task has two actions: `{}` and `{k}` (a task calls one module; if `{k}` is a keyword, check its spelling)",
                            prev.0
                        )));
                    }
                    module = Some((k.clone(), v.clone()));
                }
            }
        }
        if map.contains_key("block") {
            if let Some((m, _)) = module {
                return Err(src.err(path, format!("a block cannot also call module `{m}`")));
            }
            return self.block(src, path, map, inh);
        }
        let Some((mname, margs)) = module else {
            return Err(src.err(
                path,
                "task has no module (expected one of the modules, `block`, `import_tasks` …)",
            ));
        };
        let short = mname
            .strip_prefix("ansible.builtin.")
            .or_else(|| mname.strip_prefix("ansible.legacy."))
            .unwrap_or(&mname);
        match short {
            "import_tasks" | "include_tasks" | "include" => {
                if t.loop_.is_some() {
                    return Err(src.err(path, format!("`{short}` with a loop is not supported; loop inside the included tasks")));
                }
                let file = match &margs {
                    Value::Object(m) => m.get("file").map(scalar_text),
                    other => Some(scalar_text(other)),
                }
                .ok_or_else(|| src.err(path, format!("`{short}` needs a file name")))?;
                let base = inh
                    .role
                    .as_ref()
                    .map(|r| r.dir.join("tasks"))
                    .unwrap_or_else(|| {
                        src.file.parent().map(Path::to_path_buf).unwrap_or_default()
                    });
                let origin = src.origin(path);
                return (self.include)(&base.join(file), &inh, &origin);
            }
            "import_role" | "include_role" => {
                let name = margs
                    .get("name")
                    .map(scalar_text)
                    .ok_or_else(|| src.err(path, format!("`{short}` needs `name`")))?;
                let origin = src.origin(path);
                return (self.include)(&PathBuf::from(format!("@role:{name}")), &inh, &origin);
            }
            _ => {}
        }
        let module = self
            .registry
            .get(short)
            .map(|m| m.name().to_string())
            .or_else(|| (short == "meta").then(|| "meta".to_string()))
            .ok_or_else(|| {
                src.err(
                    &format!("{path}/{mname}"),
                    format!("unknown module `{mname}`{}", suggest(short, self.registry)),
                )
            })?;
        let free_form = self
            .registry
            .get(short)
            .map(|m| m.free_form())
            .unwrap_or(module == "meta");
        let mut args = match margs {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            Value::String(s) => parse_kv(&s, free_form).map_err(|e| src.err(path, e))?,
            other => {
                let mut m = Map::new();
                m.insert("_raw_params".into(), Value::String(scalar_text(&other)));
                m
            }
        };
        if let Some(Value::Object(extra)) = map.get("args") {
            for (k, v) in extra {
                args.insert(k.clone(), v.clone());
            }
        }
        if t.name.is_empty() {
            t.name = module.clone();
        }
        t.module = module;
        t.args = Value::Object(args);
        apply_inherit(&mut t, inh);
        Ok(vec![t])
    }

    fn block(
        &mut self,
        src: &Src,
        path: &str,
        map: &Map<String, Value>,
        inh: Inherit,
    ) -> Result<Vec<Task>, ModelError> {
        static NEXT_BLOCK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let id = NEXT_BLOCK.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let has_rescue = map.get("rescue").is_some_and(|v| !v.is_null());
        let mut out = Vec::new();
        for (key, section) in [
            ("block", Section::Main),
            ("rescue", Section::Rescue),
            ("always", Section::Always),
        ] {
            if let Some(list) = map.get(key) {
                let mut i = inh.clone();
                i.blocks.push(BlockRef {
                    id,
                    section,
                    has_rescue,
                });
                out.extend(self.tasks(src, &format!("{path}/{key}"), list, &i)?);
            }
        }
        Ok(out)
    }
}

fn after_list(src: &Src, path: &str, v: &Value) -> Result<Vec<After>, ModelError> {
    let items = match v {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    items
        .iter()
        .map(|i| match i {
            Value::String(s) => Ok(After::Task(s.clone())),
            Value::Object(m) => {
                let task = m
                    .get("task")
                    .map(scalar_text)
                    .ok_or_else(|| src.err(path, "`after` entry needs `task`"))?;
                match m.get("hosts") {
                    Some(h) => Ok(After::Hosts {
                        task,
                        hosts: scalar_text(h),
                    }),
                    None => Ok(After::Task(task)),
                }
            }
            other => Err(src.err(path, format!("bad `after` entry {other}"))),
        })
        .collect()
}

pub(super) fn apply_inherit(t: &mut Task, inh: Inherit) {
    t.when = inh.when;
    t.tags = inh.tags;
    t.become_ = inh.become_;
    t.become_user = inh.become_user;
    t.ignore_errors = inh.ignore_errors.unwrap_or(false);
    t.no_log = inh.no_log.unwrap_or(false);
    t.run_once = inh.run_once.unwrap_or(false);
    t.check_mode = inh.check_mode;
    t.delegate_to = inh.delegate_to;
    t.vars = inh.vars;
    t.environment = inh.environment;
    t.blocks = inh.blocks;
    t.role = inh.role;
}

fn suggest(name: &str, reg: &Registry) -> String {
    let best = reg
        .names()
        .filter(|n| !n.starts_with("ansible."))
        .map(|n| (strsim(name, n), n))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d);
    match best {
        Some((_, n)) => format!(" (did you mean `{n}`?)"),
        None if TASK_KEYWORDS.iter().any(|k| strsim(name, k) <= 2) => {
            let k = TASK_KEYWORDS
                .iter()
                .min_by_key(|k| strsim(name, k))
                .copied()
                .unwrap_or_default();
            format!(" (or a misspelled keyword: did you mean `{k}`?)")
        }
        None => String::new(),
    }
}

/// Edit distance with transpositions (optimal string alignment), for "did you mean".
fn strsim(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}
