//! `stat` module: report facts about a path as Ansible's `stat` does
//! (`result.stat` with `exists`, `mode`, `isdir`, `isreg`, `islnk`, owner,
//! size, link target and, for readable regular files, a checksum). It only
//! observes: one stat probe plus, with `get_checksum`, one checksum probe
//! that refuses anything but a regular file. Never changes anything.

use drover_engine::args::{get_bool, get_str, req_str};
use drover_engine::module::{
    Action, Args, FileKind, FileStat, Kind, Module, ModuleError, Observed, Param, Plan, Probe,
    Registry, TaskContext,
};
use serde_json::{json, Map, Value};
use std::sync::Arc;

const ALGORITHMS: &[&str] = &["md5", "sha1", "sha224", "sha256", "sha384", "sha512"];

/// Checksum probe: `$1` path, `$2` tool, `$3` "follow" or not. Only regular
/// files (not symlinks unless following) are read, so FIFOs never block.
const CHECKSUM_PROBE: &str =
    "[ -f \"$1\" ] || exit 3; [ \"$3\" = follow ] || [ ! -L \"$1\" ] || exit 3; exec \"$2\" -- \"$1\"";

pub struct StatModule;

const PARAMS: &[Param] = &[
    Param::new("path", Kind::Str)
        .required()
        .aliases(&["dest", "name"]),
    Param::new("follow", Kind::Bool),
    Param::new("get_checksum", Kind::Bool),
    Param::new("checksum_algorithm", Kind::Str)
        .choices(ALGORITHMS)
        .aliases(&["checksum", "checksum_algo"]),
    Param::new("get_mime", Kind::Bool).aliases(&["mime", "mime_type", "mime-type"]),
    Param::new("get_attributes", Kind::Bool).aliases(&["attr", "attributes"]),
];

impl Module for StatModule {
    fn name(&self) -> &'static str {
        "stat"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let path = req_str(args, "path")?;
        if path.is_empty() {
            return Err(ModuleError::BadArg {
                name: "path".into(),
                value: "\"\"".into(),
                message: "must not be empty".into(),
            });
        }
        let follow = get_bool(args, "follow", false)?;
        let algorithm = get_str(args, "checksum_algorithm")?.unwrap_or_else(|| "sha1".into());
        if !ALGORITHMS.contains(&algorithm.as_str()) {
            return Err(ModuleError::BadChoice {
                name: "checksum_algorithm".into(),
                value: algorithm,
                choices: ALGORITHMS.join("|"),
            });
        }
        get_bool(args, "get_mime", false)?;
        get_bool(args, "get_attributes", false)?;
        let checksum = get_bool(args, "get_checksum", true)?.then_some(algorithm);
        Ok(Box::new(StatAction {
            path,
            follow,
            checksum,
        }))
    }
}

struct StatAction {
    path: String,
    follow: bool,
    /// Checksum algorithm, when wanted.
    checksum: Option<String>,
}

impl Action for StatAction {
    fn probes(&self) -> Vec<Probe> {
        let mut p = vec![Probe::Stat {
            path: self.path.clone(),
            follow: self.follow,
        }];
        if let Some(alg) = &self.checksum {
            p.push(Probe::Exec {
                argv: vec![
                    "sh".into(),
                    "-c".into(),
                    CHECKSUM_PROBE.into(),
                    "sh".into(),
                    self.path.clone(),
                    format!("{alg}sum"),
                    if self.follow { "follow" } else { "nofollow" }.into(),
                ],
            });
        }
        p
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        let st = match observed.first() {
            Some(Observed::Stat(s)) => s.as_ref(),
            other => {
                return Err(ModuleError::Probe(format!(
                    "expected a stat of {}, got {other:?}",
                    self.path
                )))
            }
        };
        let Some(st) = st else {
            let mut result = Map::new();
            result.insert("stat".into(), json!({"exists": false}));
            return Ok(Plan {
                reason: Some(format!("{} does not exist", self.path)),
                result,
                ..Default::default()
            });
        };
        let mut stat = describe(&self.path, st);
        if let (Some(alg), FileKind::File) = (&self.checksum, st.kind) {
            match observed.get(1) {
                Some(Observed::Exec(out)) if out.success() => {
                    let text = out.stdout_str();
                    // GNU prefixes the line with `\` when the name needed escaping.
                    let sum = text.trim_start_matches('\\').split_whitespace().next();
                    match sum {
                        Some(s) if s.bytes().all(|b| b.is_ascii_hexdigit()) => {
                            stat.insert("checksum".into(), json!(s.to_ascii_lowercase()));
                        }
                        _ => {
                            return Err(ModuleError::Probe(format!(
                                "{alg}sum of {} printed `{}`",
                                self.path,
                                text.trim()
                            )))
                        }
                    }
                }
                // Unreadable, or replaced between the probes: no checksum, as Ansible.
                Some(Observed::Exec(_)) => {}
                other => {
                    return Err(ModuleError::Probe(format!(
                        "expected the checksum of {}, got {other:?}",
                        self.path
                    )))
                }
            }
        }
        let mut result = Map::new();
        result.insert("stat".into(), Value::Object(stat));
        Ok(Plan {
            reason: Some(format!("{} exists", self.path)),
            result,
            ..Default::default()
        })
    }
}

/// The `stat` mapping of an existing path, with Ansible's field names.
fn describe(path: &str, st: &FileStat) -> Map<String, Value> {
    let m = st.mode;
    let bit = |b: u32| Value::Bool(m & b != 0);
    let mut s = Map::new();
    s.insert("exists".into(), json!(true));
    s.insert("path".into(), json!(path));
    s.insert("mode".into(), json!(format!("{m:04o}")));
    s.insert("isdir".into(), json!(st.kind == FileKind::Directory));
    s.insert("isreg".into(), json!(st.kind == FileKind::File));
    s.insert("islnk".into(), json!(st.kind == FileKind::Link));
    s.insert("uid".into(), json!(st.uid));
    s.insert("gid".into(), json!(st.gid));
    s.insert("pw_name".into(), json!(st.owner));
    s.insert("gr_name".into(), json!(st.group));
    s.insert("size".into(), json!(st.size));
    s.insert("inode".into(), json!(st.inode));
    s.insert("dev".into(), json!(st.dev));
    s.insert("nlink".into(), json!(st.nlink));
    for (name, b) in [
        ("rusr", 0o400),
        ("wusr", 0o200),
        ("xusr", 0o100),
        ("rgrp", 0o040),
        ("wgrp", 0o020),
        ("xgrp", 0o010),
        ("roth", 0o004),
        ("woth", 0o002),
        ("xoth", 0o001),
        ("isuid", 0o4000),
        ("isgid", 0o2000),
    ] {
        s.insert(name.into(), bit(b));
    }
    if let Some(t) = &st.link_target {
        s.insert("lnk_target".into(), json!(t));
    }
    s
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(StatModule));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_probe_with_real_sh() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("-f x");
        std::fs::write(&f, "hello\n").unwrap();
        let l = dir.path().join("link");
        std::os::unix::fs::symlink(&f, &l).unwrap();
        let run = |p: &std::path::Path, follow: &str| {
            std::process::Command::new("sh")
                .args(["-c", CHECKSUM_PROBE, "sh"])
                .arg(p)
                .args(["sha1sum", follow])
                .output()
                .unwrap()
        };
        let o = run(&f, "nofollow");
        assert!(o.status.success());
        assert!(String::from_utf8_lossy(&o.stdout)
            .starts_with("f572d396fae9206628714fb2ce00f72e94f2258f "));
        assert_eq!(run(&l, "nofollow").status.code(), Some(3));
        assert!(run(&l, "follow").status.success());
        assert_eq!(run(dir.path(), "follow").status.code(), Some(3));
    }

    #[test]
    fn escaped_name_checksum_is_parsed() {
        let a = StatAction {
            path: "/a\\b".into(),
            follow: false,
            checksum: Some("md5".into()),
        };
        let st = FileStat {
            kind: FileKind::File,
            mode: 0o4755,
            uid: 0,
            gid: 0,
            owner: "root".into(),
            group: "root".into(),
            size: 6,
            link_target: None,
            inode: 1,
            dev: 1,
            nlink: 1,
        };
        let out = drover_engine::module::ExecOutput {
            status: Some(0),
            stdout: b"\\B1946AC92492D2347C6235B4D2611184  /a\\\\b\n".to_vec(),
            stderr: vec![],
        };
        let p = a
            .plan(&[Observed::Stat(Some(st)), Observed::Exec(out)])
            .unwrap();
        assert_eq!(
            p.result["stat"]["checksum"],
            "b1946ac92492d2347c6235b4d2611184"
        );
        assert_eq!(p.result["stat"]["mode"], "4755");
        assert_eq!(p.result["stat"]["isuid"], true);
        assert!(!p.is_change());
    }
}
