//! `command` and `shell` modules: run a program on the host. `command` splits
//! its free form shell-wise into an argument vector and never involves a
//! shell; `shell` hands the line to `/bin/sh -c` (or `executable`). Both honour
//! `creates`/`removes` (globs, relative to `chdir`) by probing first, and
//! otherwise plan one capturing exec whose outcome is unknown until it runs.

use drover_engine::args::{get_bool, get_str, get_str_list};
use drover_engine::connection::script::quote_argv;
use drover_engine::module::{
    Action, Args, Change, Kind, Module, ModuleError, Observed, Param, Plan, Probe, Registry, Step,
    TaskContext,
};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Script for a glob existence probe: `$1` is the pattern. `IFS=` keeps the
/// pattern whole while the shell still expands it as a path pattern.
const GLOB_PROBE: &str =
    "IFS=; for f in $1; do if [ -e \"$f\" ] || [ -L \"$f\" ]; then exit 0; fi; done; exit 1";

pub struct CommandModule;
pub struct ShellModule;

const COMMON: [Param; 7] = [
    Param::new("_raw_params", Kind::Str),
    Param::new("cmd", Kind::Str),
    Param::new("chdir", Kind::Str),
    Param::new("creates", Kind::Str),
    Param::new("removes", Kind::Str),
    Param::new("stdin", Kind::Str),
    Param::new("stdin_add_newline", Kind::Bool),
];

const COMMAND_PARAMS: &[Param] = &[
    COMMON[0],
    COMMON[1],
    COMMON[2],
    COMMON[3],
    COMMON[4],
    COMMON[5],
    COMMON[6],
    Param::new("strip_empty_ends", Kind::Bool),
    Param::new("argv", Kind::List),
];

const SHELL_PARAMS: &[Param] = &[
    COMMON[0],
    COMMON[1],
    COMMON[2],
    COMMON[3],
    COMMON[4],
    COMMON[5],
    COMMON[6],
    Param::new("strip_empty_ends", Kind::Bool),
    Param::new("executable", Kind::Str),
];

impl Module for CommandModule {
    fn name(&self) -> &'static str {
        "command"
    }
    fn params(&self) -> &'static [Param] {
        COMMAND_PARAMS
    }
    fn free_form(&self) -> bool {
        true
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let line = command_line(args)?;
        let argv_arg = get_str_list(args, "argv")?;
        let argv = match (line, argv_arg.is_empty()) {
            (Some(_), false) => {
                return Err(ModuleError::Failed(
                    "only command or argv can be given, not both".into(),
                ))
            }
            (Some(l), true) => shell_words::split(&l).map_err(|e| ModuleError::BadArg {
                name: "cmd".into(),
                value: l.clone(),
                message: format!("cannot split into words: {e}"),
            })?,
            (None, false) => argv_arg,
            (None, true) => return Err(no_command()),
        };
        if argv.first().is_none_or(|a| a.is_empty()) {
            return Err(no_command());
        }
        let display = quote_argv(&argv);
        let cmd = Value::Array(argv.iter().cloned().map(Value::String).collect());
        Ok(Box::new(RunAction::new(args, argv, display, cmd)?))
    }
}

impl Module for ShellModule {
    fn name(&self) -> &'static str {
        "shell"
    }
    fn params(&self) -> &'static [Param] {
        SHELL_PARAMS
    }
    fn free_form(&self) -> bool {
        true
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let line = command_line(args)?.ok_or_else(no_command)?;
        let exe = get_str(args, "executable")?
            .filter(|e| !e.trim().is_empty())
            .unwrap_or_else(|| "/bin/sh".into());
        let argv = vec![exe, "-c".into(), line.clone()];
        Ok(Box::new(RunAction::new(
            args,
            argv,
            line.clone(),
            Value::String(line),
        )?))
    }
}

fn no_command() -> ModuleError {
    ModuleError::Failed("no command given (use the free form, `cmd` or `argv`)".into())
}

/// The command line from the free form or `cmd` (not both); blank = none.
fn command_line(args: &Args) -> Result<Option<String>, ModuleError> {
    let raw = get_str(args, "_raw_params")?.filter(|s| !s.trim().is_empty());
    let cmd = get_str(args, "cmd")?.filter(|s| !s.trim().is_empty());
    match (raw, cmd) {
        (Some(r), Some(c)) => Err(ModuleError::BadArg {
            name: "cmd".into(),
            value: format!("`{c}`"),
            message: format!("given together with the free-form command `{r}`; use one"),
        }),
        (r, c) => Ok(r.or(c)),
    }
}

/// A `creates`/`removes` guard.
#[derive(Debug, Clone)]
struct Guard {
    /// As the user wrote it (for messages).
    given: String,
    /// Resolved against `chdir`.
    path: String,
    /// True for `creates` (skip when it exists), false for `removes`.
    creates: bool,
}

impl Guard {
    fn is_glob(&self) -> bool {
        self.path.contains(['*', '?', '['])
    }
    fn probe(&self) -> Probe {
        if self.is_glob() {
            Probe::Exec {
                argv: vec![
                    "sh".into(),
                    "-c".into(),
                    GLOB_PROBE.into(),
                    "sh".into(),
                    self.path.clone(),
                ],
            }
        } else {
            Probe::Stat {
                path: self.path.clone(),
                follow: false,
            }
        }
    }
    fn exists(&self, o: Option<&Observed>) -> Result<bool, ModuleError> {
        match o {
            Some(Observed::Stat(s)) if !self.is_glob() => Ok(s.is_some()),
            Some(Observed::Exec(out)) if self.is_glob() => match out.status {
                Some(0) => Ok(true),
                Some(1) => Ok(false),
                _ => Err(ModuleError::Probe(format!(
                    "cannot check whether `{}` exists: {}",
                    self.path,
                    out.stderr_str().trim()
                ))),
            },
            other => Err(ModuleError::Probe(format!(
                "expected the check of `{}`, got {other:?}",
                self.path
            ))),
        }
    }
}

/// A prepared command or shell invocation.
struct RunAction {
    argv: Vec<String>,
    display: String,
    cmd: Value,
    cwd: Option<String>,
    stdin: Option<Vec<u8>>,
    guards: Vec<Guard>,
}

impl RunAction {
    fn new(
        args: &Args,
        argv: Vec<String>,
        display: String,
        cmd: Value,
    ) -> Result<Self, ModuleError> {
        let cwd = get_str(args, "chdir")?.filter(|s| !s.is_empty());
        let add_newline = get_bool(args, "stdin_add_newline", true)?;
        get_bool(args, "strip_empty_ends", true)?;
        let stdin = get_str(args, "stdin")?.map(|mut s| {
            if add_newline {
                s.push('\n');
            }
            s.into_bytes()
        });
        let mut guards = Vec::new();
        for (name, creates) in [("creates", true), ("removes", false)] {
            if let Some(given) = get_str(args, name)?.filter(|s| !s.is_empty()) {
                let path = match &cwd {
                    Some(d) if !given.starts_with('/') => {
                        format!("{}/{given}", d.trim_end_matches('/'))
                    }
                    _ => given.clone(),
                };
                guards.push(Guard {
                    given,
                    path,
                    creates,
                });
            }
        }
        Ok(RunAction {
            argv,
            display,
            cmd,
            cwd,
            stdin,
            guards,
        })
    }
}

impl Action for RunAction {
    fn probes(&self) -> Vec<Probe> {
        self.guards.iter().map(Guard::probe).collect()
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        for (i, g) in self.guards.iter().enumerate() {
            let exists = g.exists(observed.get(i))?;
            let skip = match (g.creates, exists) {
                (true, true) => Some("exists"),
                (false, false) => Some("does not exist"),
                _ => None,
            };
            if let Some(why) = skip {
                let msg = format!("Did not run command since '{}' {why}", g.given);
                let stdout = format!("skipped, since {} {why}", g.given);
                let mut result = Map::new();
                result.insert("cmd".into(), self.cmd.clone());
                result.insert("rc".into(), json!(0));
                result.insert("stdout".into(), json!(stdout));
                result.insert("stdout_lines".into(), json!([stdout]));
                result.insert("stderr".into(), json!(""));
                result.insert("stderr_lines".into(), json!([]));
                result.insert("msg".into(), json!(msg));
                return Ok(Plan {
                    reason: Some(msg),
                    result,
                    ..Default::default()
                });
            }
        }
        let step = Step::Exec {
            argv: self.argv.clone(),
            stdin: self.stdin.clone(),
            cwd: self.cwd.clone(),
            env: BTreeMap::new(),
            capture: true,
            allow_fail: false,
        };
        let mut result = Map::new();
        result.insert("cmd".into(), self.cmd.clone());
        Ok(Plan {
            changes: vec![Change::new(format!("run: {}", self.display), vec![step])],
            result,
            unknown_until_run: true,
            ..Default::default()
        })
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(CommandModule));
    r.add(Arc::new(ShellModule));
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_engine::module::{ExecOutput, FileKind, FileStat};

    use crate::test_ctx::NoCtx;

    fn args(v: Value) -> Args {
        v.as_object().cloned().unwrap_or_default()
    }

    fn exec_step(p: &Plan) -> (Vec<String>, Option<Vec<u8>>, Option<String>) {
        match &p.changes[0].steps[0] {
            Step::Exec {
                argv,
                stdin,
                cwd,
                capture,
                ..
            } => {
                assert!(capture);
                (argv.clone(), stdin.clone(), cwd.clone())
            }
            other => panic!("unexpected step {other:?}"),
        }
    }

    #[test]
    fn command_splits_like_shlex_and_keeps_quotes_whole() {
        let a = CommandModule
            .prepare(
                &args(json!({"_raw_params": "echo 'a b' \"c d\" e\\ f"})),
                &NoCtx,
            )
            .unwrap();
        let p = a.plan(&[]).unwrap();
        let (argv, stdin, cwd) = exec_step(&p);
        assert_eq!(argv, ["echo", "a b", "c d", "e f"]);
        assert_eq!((stdin, cwd), (None, None));
        assert_eq!(p.changes[0].summary, "run: echo 'a b' 'c d' 'e f'");
        assert_eq!(p.result["cmd"], json!(["echo", "a b", "c d", "e f"]));
        assert!(p.unknown_until_run);
    }

    #[test]
    fn stdin_newline_and_chdir() {
        let a = ShellModule
            .prepare(
                &args(json!({"cmd": "cat", "stdin": "hi", "chdir": "/tmp"})),
                &NoCtx,
            )
            .unwrap();
        let (argv, stdin, cwd) = exec_step(&a.plan(&[]).unwrap());
        assert_eq!(argv, ["/bin/sh", "-c", "cat"]);
        assert_eq!(stdin.as_deref(), Some(&b"hi\n"[..]));
        assert_eq!(cwd.as_deref(), Some("/tmp"));
        let a = ShellModule
            .prepare(
                &args(json!({"cmd": "cat", "stdin": "hi", "stdin_add_newline": "no"})),
                &NoCtx,
            )
            .unwrap();
        assert_eq!(
            exec_step(&a.plan(&[]).unwrap()).1.as_deref(),
            Some(&b"hi"[..])
        );
    }

    #[test]
    fn creates_relative_to_chdir_and_glob_probe() {
        let a = CommandModule
            .prepare(
                &args(json!({"cmd": "make", "chdir": "/src/", "creates": "out/*.o"})),
                &NoCtx,
            )
            .unwrap();
        let probes = a.probes();
        assert!(
            matches!(&probes[..], [Probe::Exec { argv }] if argv[4] == "/src/out/*.o"),
            "{probes:?}"
        );
        let found = Observed::Exec(ExecOutput {
            status: Some(0),
            ..Default::default()
        });
        let p = a.plan(&[found]).unwrap();
        assert!(!p.is_change());
        assert_eq!(
            p.result["msg"],
            "Did not run command since 'out/*.o' exists"
        );
        let broken = Observed::Exec(ExecOutput {
            status: None,
            ..Default::default()
        });
        assert!(a.plan(&[broken]).is_err());
    }

    #[test]
    fn glob_probe_script_works_with_real_sh() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a b.o"), "").unwrap();
        let run = |pat: &str| {
            std::process::Command::new("sh")
                .args(["-c", GLOB_PROBE, "sh"])
                .arg(dir.path().join(pat))
                .status()
                .unwrap()
                .code()
        };
        assert_eq!(run("*.o"), Some(0));
        assert_eq!(run("a b.o"), Some(0));
        assert_eq!(run("*.c"), Some(1));
        assert_eq!(run("a"), Some(1));
    }

    #[test]
    fn removes_runs_when_present() {
        let a = CommandModule
            .prepare(
                &args(json!({"argv": ["rm", "/x"], "removes": "/x"})),
                &NoCtx,
            )
            .unwrap();
        let st = FileStat {
            kind: FileKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            owner: "root".into(),
            group: "root".into(),
            size: 0,
            link_target: None,
            inode: 1,
            dev: 1,
            nlink: 1,
        };
        let p = a.plan(&[Observed::Stat(Some(st))]).unwrap();
        assert_eq!(p.changes[0].summary, "run: rm /x");
        let p = a.plan(&[Observed::Stat(None)]).unwrap();
        assert_eq!(
            p.reason.as_deref(),
            Some("Did not run command since '/x' does not exist")
        );
    }

    #[test]
    fn argument_errors() {
        let e = |m: &dyn Module, v: Value| m.prepare(&args(v), &NoCtx).err().unwrap().to_string();
        assert!(e(&CommandModule, json!({})).contains("no command given"));
        assert!(e(&CommandModule, json!({"cmd": "ls", "argv": ["ls"]})).contains("not both"));
        assert!(e(&CommandModule, json!({"cmd": "echo 'open"})).contains("echo 'open"));
        assert!(e(&ShellModule, json!({"_raw_params": "a", "cmd": "b"})).contains("`b`"));
        assert!(e(
            &ShellModule,
            json!({"cmd": "a", "stdin_add_newline": "perhaps"})
        )
        .contains("perhaps"));
    }
}
