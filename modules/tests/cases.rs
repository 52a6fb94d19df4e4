//! Data-driven module fixtures: every `*.yaml` under `modules/tests/cases/**`
//! is one case (raw args + canned observations → expected plan). The format
//! is documented in /work/notes/MODULES.md; this runner adds a few optional
//! `expect` keys on top of it:
//!
//! - `reason: "substring"` — `plan.reason` must contain it;
//! - `failed: "substring"` — the plan observed a failure (`plan.failed`,
//!   which keeps `result`) containing it; without it `plan.failed` must be unset;
//! - `unknown_until_run: true|false`;
//! - `writes: {PATH: "content"}` — exact bytes of each `Step::Write` to PATH;
//! - `diffs: [{label, before, after}]` — exact diffs of the changes, in order
//!   (changes without a diff are skipped);
//! - `stdin_has: [..]` / `stdin_lacks: [..]` — substrings that the stdin of
//!   the Exec steps (all of them, concatenated) must / must not contain.
//!
//! Steps render as `exec: ARGV...`, `write: PATH[ mode=0NNN][ owner=U]
//! [ group=G][ validate=CMD][ backup]`, `sleep: SECSs` and `remote: DESCRIBE`.
//! An observation `remote: <any JSON>` is the result of a remote probe
//! (they come after the shell probes).
//! Templates render with the engine's `Templater` and the case's `vars`.
//! Set `DROVER_CASE=substring` to run only the cases whose path contains it.

use drover_engine::args::normalize;
use drover_engine::module::{
    ExecOutput, FileKind, FileStat, ModuleError, Observed, Plan, Step, TaskContext,
};
use drover_engine::template::Templater;
use serde_json::{Map, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

struct Ctx {
    templater: Templater,
    vars: Value,
    dir: PathBuf,
}

impl TaskContext for Ctx {
    fn vars(&self) -> &Value {
        &self.vars
    }
    fn render(&self, template: &str) -> Result<String, ModuleError> {
        self.templater
            .render(template, &self.vars)
            .map_err(|e| ModuleError::Failed(e.to_string()))
    }
    fn condition(&self, expr: &str) -> Result<bool, ModuleError> {
        self.templater
            .condition(expr, &self.vars)
            .map_err(|e| ModuleError::Failed(e.to_string()))
    }
    fn find_file(&self, kind: &str, name: &str) -> Result<PathBuf, ModuleError> {
        let p = if Path::new(name).is_absolute() {
            PathBuf::from(name)
        } else {
            self.dir.join(name)
        };
        if p.exists() {
            Ok(p)
        } else {
            Err(ModuleError::Failed(format!(
                "could not find {kind} file `{name}`"
            )))
        }
    }
    fn host(&self) -> &str {
        "testhost"
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn num(m: &Map<String, Value>, k: &str, default: u64) -> Result<u64, String> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => text(v)
            .parse()
            .map_err(|_| format!("stat field `{k}` is not a number: {v}")),
    }
}

fn parse_stat(v: &Value) -> Result<Option<FileStat>, String> {
    let m = match v {
        Value::Null => return Ok(None),
        Value::Object(m) => m,
        other => return Err(format!("`stat:` must be null or a mapping, got {other}")),
    };
    let kind = match m.get("kind").map(text).as_deref().unwrap_or("file") {
        "file" => FileKind::File,
        "directory" => FileKind::Directory,
        "link" => FileKind::Link,
        "other" => FileKind::Other,
        k => return Err(format!("unknown stat kind `{k}`")),
    };
    let default_mode = match kind {
        FileKind::Directory => 0o755,
        FileKind::Link => 0o777,
        _ => 0o644,
    };
    let mode = match m.get("mode") {
        None | Some(Value::Null) => default_mode,
        Some(v) => u32::from_str_radix(text(v).trim_start_matches("0o"), 8)
            .map_err(|_| format!("stat mode `{v}` is not octal"))?,
    };
    Ok(Some(FileStat {
        kind,
        mode,
        uid: num(m, "uid", 0)? as u32,
        gid: num(m, "gid", 0)? as u32,
        owner: m.get("owner").map(text).unwrap_or_else(|| "root".into()),
        group: m.get("group").map(text).unwrap_or_else(|| "root".into()),
        size: num(m, "size", 0)?,
        link_target: m.get("link_target").filter(|v| !v.is_null()).map(text),
        inode: num(m, "inode", 0)?,
        dev: num(m, "dev", 0)?,
        nlink: num(m, "nlink", 1)?,
    }))
}

fn parse_observed(v: &Value) -> Result<Observed, String> {
    let m = v
        .as_object()
        .filter(|m| m.len() == 1)
        .ok_or_else(|| format!("observed entry must have one key (stat/content/exec): {v}"))?;
    let (k, val) = m.iter().next().ok_or("empty observed entry")?;
    match k.as_str() {
        "stat" => parse_stat(val).map(Observed::Stat),
        "remote" => Ok(Observed::Remote(val.clone())),
        "content" => Ok(Observed::Content(match val {
            Value::Null => None,
            other => Some(text(other).into_bytes()),
        })),
        "exec" => {
            let e = val.as_object().cloned().unwrap_or_default();
            let status = match e.get("rc") {
                None => Some(0),
                Some(Value::Null) => None,
                Some(v) => Some(
                    text(v)
                        .parse()
                        .map_err(|_| format!("exec rc is not a number: {v}"))?,
                ),
            };
            let s = |k: &str| e.get(k).map(text).unwrap_or_default().into_bytes();
            Ok(Observed::Exec(ExecOutput {
                status,
                stdout: s("stdout"),
                stderr: s("stderr"),
            }))
        }
        other => Err(format!("unknown observed kind `{other}`")),
    }
}

/// One step as the fixtures write it.
pub fn render_step(s: &Step) -> String {
    match s {
        Step::Exec { argv, .. } => format!("exec: {}", argv.join(" ")),
        Step::Write {
            path,
            mode,
            owner,
            group,
            validate,
            backup,
            ..
        } => {
            let mut out = format!("write: {path}");
            if let Some(m) = mode {
                let _ = write!(out, " mode={m:04o}");
            }
            if let Some(o) = owner {
                let _ = write!(out, " owner={o}");
            }
            if let Some(g) = group {
                let _ = write!(out, " group={g}");
            }
            if let Some(v) = validate {
                let _ = write!(out, " validate={v}");
            }
            if *backup {
                out.push_str(" backup");
            }
            out
        }
        Step::Sleep(d) => format!("sleep: {}s", d.as_secs_f64()),
        Step::Fetch { src, dest } => format!("fetch: {src} -> {}", dest.display()),
        Step::Reboot(r) => format!(
            "reboot: {} (boot id: {}; test: {}; timeout {}s)",
            r.command.join(" "),
            r.boot_id_command.join(" "),
            r.test_command.join(" "),
            r.timeout.as_secs()
        ),
        Step::Remote(r) => format!("remote: {}", r.0.describe()),
    }
}

fn subset(what: &str, want: &Value, got: &Map<String, Value>, errs: &mut Vec<String>) {
    if let Some(w) = want.as_object() {
        for (k, v) in w {
            if got.get(k) != Some(v) {
                errs.push(format!(
                    "{what}.{k}: want {v}, got {}",
                    got.get(k).map_or("<missing>".into(), |g| g.to_string())
                ));
            }
        }
    }
}

fn check_plan(plan: &Plan, expect: &Map<String, Value>, errs: &mut Vec<String>) {
    let summaries: Vec<String> = plan.changes.iter().map(|c| c.summary.clone()).collect();
    let steps: Vec<String> = plan
        .changes
        .iter()
        .flat_map(|c| c.steps.iter().map(render_step))
        .collect();
    if let Some(want) = expect.get("changes") {
        let want: Vec<String> = want
            .as_array()
            .map(|a| a.iter().map(text).collect())
            .unwrap_or_default();
        if want != summaries {
            errs.push(format!("changes: want {want:#?}\n got {summaries:#?}"));
        }
    }
    if let Some(want) = expect.get("steps") {
        let want: Vec<String> = want
            .as_array()
            .map(|a| a.iter().map(text).collect())
            .unwrap_or_default();
        if want != steps {
            errs.push(format!("steps: want {want:#?}\n got {steps:#?}"));
        }
    }
    if let Some(want) = expect.get("reason") {
        let w = text(want);
        if !plan.reason.as_deref().unwrap_or("").contains(&w) {
            errs.push(format!(
                "reason: want substring {w:?}, got {:?}",
                plan.reason
            ));
        }
    }
    match (expect.get("failed").map(text), &plan.failed) {
        (Some(w), Some(got)) if got.contains(&w) => {}
        (None, None) => {}
        (w, got) => errs.push(format!("failed: want {w:?}, got {got:?}")),
    }
    if let Some(want) = expect.get("unknown_until_run") {
        if Some(plan.unknown_until_run) != want.as_bool() {
            errs.push(format!(
                "unknown_until_run: want {want}, got {}",
                plan.unknown_until_run
            ));
        }
    }
    if let Some(want) = expect.get("result") {
        subset("result", want, &plan.result, errs);
    }
    if let Some(want) = expect.get("facts") {
        subset("facts", want, &plan.facts, errs);
    }
    if let Some(Value::Object(want)) = expect.get("writes") {
        for (path, content) in want {
            let got: Vec<String> = plan
                .changes
                .iter()
                .flat_map(|c| &c.steps)
                .filter_map(|s| match s {
                    Step::Write {
                        path: p, content, ..
                    } if p == path => Some(String::from_utf8_lossy(content).into_owned()),
                    _ => None,
                })
                .collect();
            match got.as_slice() {
                [one] if *one == text(content) => {}
                _ => errs.push(format!(
                    "writes[{path}]: want {:?}\n got {got:?}",
                    text(content)
                )),
            }
        }
    }
    let stdin: String = plan
        .changes
        .iter()
        .flat_map(|c| &c.steps)
        .filter_map(|s| match s {
            Step::Exec { stdin: Some(b), .. } => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        })
        .collect();
    for (k, must) in [("stdin_has", true), ("stdin_lacks", false)] {
        for w in expect
            .get(k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if stdin.contains(&text(w)) != must {
                errs.push(format!("{k}: {w} in stdin {stdin:?}"));
            }
        }
    }
    if let Some(want) = expect.get("diffs") {
        let got: Vec<Value> = plan
            .changes
            .iter()
            .filter_map(|c| c.diff.as_ref())
            .map(|d| serde_json::json!({"label": d.label, "before": d.before, "after": d.after}))
            .collect();
        if want.as_array() != Some(&got) {
            errs.push(format!(
                "diffs: want {want:#}\n got {:#}",
                Value::Array(got)
            ));
        }
    }
}

/// Run one case; returns the list of mismatches.
fn run_case(path: &Path) -> Result<Vec<String>, String> {
    let raw = std::fs::read_to_string(path).map_err(|e| format!("read: {e}"))?;
    let case = drover_engine::yaml::parse_value(&raw, path).map_err(|e| e.to_string())?;
    let case = case.as_object().ok_or("case is not a mapping")?;
    let module_name = case.get("module").map(text).ok_or("missing `module`")?;
    let args = match case.get("args") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => return Err(format!("`args` must be a mapping, got {other}")),
    };
    let expect = match case.get("expect") {
        Some(Value::Object(m)) => m.clone(),
        _ => return Err("missing `expect` mapping".into()),
    };
    let want_error = expect.get("error").map(text);
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    if let Some(Value::Object(files)) = case.get("files") {
        for (name, content) in files {
            let p = dir.path().join(name);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(|e| format!("mkdir: {e}"))?;
            }
            std::fs::write(&p, text(content)).map_err(|e| format!("write {name}: {e}"))?;
        }
    }
    let ctx = Ctx {
        templater: Templater::new(),
        vars: case
            .get("vars")
            .cloned()
            .filter(|v| !v.is_null())
            .unwrap_or(Value::Object(Map::new())),
        dir: dir.path().to_path_buf(),
    };
    let registry = drover_modules::registry();
    let module = registry
        .get(&module_name)
        .ok_or_else(|| format!("module `{module_name}` is not registered"))?;
    let observed: Vec<Observed> = match case.get("observed") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(a)) => a.iter().map(parse_observed).collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("`observed` must be a list, got {other}")),
    };
    let outcome = (|| -> Result<(usize, Plan), ModuleError> {
        let args = normalize(module.params(), &args)?;
        let action = module.prepare(&args, &ctx)?;
        let probes = action.probes().len() + action.remote_probes().len();
        if probes != observed.len() {
            return Err(ModuleError::Probe(format!(
                "fixture gives {} observations for {probes} probes",
                observed.len()
            )));
        }
        Ok((probes, action.plan(&observed)?))
    })();
    let mut errs = Vec::new();
    match (outcome, want_error) {
        (Err(e), Some(w)) if e.to_string().contains(&w) => {}
        (Err(e), Some(w)) => errs.push(format!(
            "error: want substring {w:?}, got {:?}",
            e.to_string()
        )),
        (Err(e), None) => errs.push(format!("unexpected error: {e}")),
        (Ok((_, plan)), Some(w)) => errs.push(format!(
            "expected error containing {w:?}, got a plan with changes {:?}",
            plan.changes.iter().map(|c| &c.summary).collect::<Vec<_>>()
        )),
        (Ok((probes, plan)), None) => {
            if let Some(want) = expect.get("probes") {
                if want.as_u64() != Some(probes as u64) {
                    errs.push(format!("probes: want {want}, got {probes}"));
                }
            }
            check_plan(&plan, &expect, &mut errs);
        }
    }
    Ok(errs)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in rd.flatten() {
        let p = entry.path();
        if p.is_dir() {
            collect(&p, out);
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            out.push(p);
        }
    }
}

#[test]
fn module_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut files = Vec::new();
    collect(&root, &mut files);
    files.sort();
    let filter = std::env::var("DROVER_CASE").unwrap_or_default();
    let mut failures = Vec::new();
    let mut ran = 0;
    for f in files
        .iter()
        .filter(|f| f.to_string_lossy().contains(&filter))
    {
        ran += 1;
        let rel = f.strip_prefix(&root).unwrap_or(f).display().to_string();
        match run_case(f) {
            Ok(errs) if errs.is_empty() => {}
            Ok(errs) => failures.push(format!("{rel}:\n  {}", errs.join("\n  "))),
            Err(e) => failures.push(format!("{rel}: bad fixture: {e}")),
        }
    }
    assert!(
        filter.is_empty() || ran > 0,
        "no case matches DROVER_CASE={filter}"
    );
    assert!(
        failures.is_empty(),
        "{} of {ran} cases failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
