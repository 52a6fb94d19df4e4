//! `unarchive` module: unpack a tar, tar.gz/tgz archive into an existing
//! `dest` folder with the host's `tar`. The archive is a controller file
//! (`src`, looked up under `files/`), streamed to `tar -x` on stdin (no temp
//! copy), or with `remote_src: yes` a file on the host. `creates` skips the
//! task when that path exists. Otherwise it is compared: a controller
//! archive is listed on the controller (tar/flate2) and every member is
//! stat'ed under `dest` (kind and size); a remote one is checked with GNU
//! `tar --compare`. Only a difference plans the unpacking.

use crate::sys_common::{bad, exec_at, exec_step, sh, stat_at};
use drover_engine::args::{get_bool, get_str, req_str};
use drover_engine::module::{
    Action, Args, Change, FileKind, Kind, Module, ModuleError, Observed, Param, Plan, Probe,
    Registry, TaskContext,
};
use serde_json::json;
use std::io::Read;
use std::sync::Arc;

const PARAMS: &[Param] = &[
    Param::new("src", Kind::Str).required(),
    Param::new("dest", Kind::Str).required(),
    Param::new("remote_src", Kind::Bool),
    Param::new("creates", Kind::Str),
];

/// Members of an archive compared one by one; beyond, it is unpacked.
const MAX_MEMBERS: usize = 2000;

pub struct UnarchiveModule;

pub fn register(r: &mut Registry) {
    r.add(Arc::new(UnarchiveModule));
}

/// One archive member: relative path, kind, size.
#[derive(Debug, Clone)]
struct Member {
    path: String,
    kind: FileKind,
    size: u64,
}

fn list_members(bytes: &[u8], gz: bool) -> Result<Vec<Member>, String> {
    let reader: Box<dyn Read + '_> = if gz {
        Box::new(flate2::read::GzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    };
    let mut ar = tar::Archive::new(reader);
    let mut out = Vec::new();
    for e in ar.entries().map_err(|e| e.to_string())? {
        let e = e.map_err(|e| e.to_string())?;
        let path = e.path().map_err(|e| e.to_string())?;
        let path = path.to_string_lossy().trim_end_matches('/').to_string();
        let path = path.trim_start_matches("./").to_string();
        if path.is_empty() || path == "." {
            continue;
        }
        let kind = match e.header().entry_type() {
            tar::EntryType::Directory => FileKind::Directory,
            tar::EntryType::Symlink => FileKind::Link,
            tar::EntryType::Regular | tar::EntryType::Continuous => FileKind::File,
            _ => FileKind::Other,
        };
        out.push(Member {
            path,
            kind,
            size: e.header().size().unwrap_or(0),
        });
    }
    Ok(out)
}

impl Module for UnarchiveModule {
    fn name(&self) -> &'static str {
        "unarchive"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let src = req_str(args, "src")?;
        let dest = req_str(args, "dest")?;
        if !dest.starts_with('/') {
            return Err(bad("dest", &dest, "must be an absolute path on the host"));
        }
        let dest = if dest.len() > 1 {
            dest.trim_end_matches('/').to_string()
        } else {
            dest
        };
        let creates = get_str(args, "creates")?.filter(|c| !c.is_empty());
        let remote = get_bool(args, "remote_src", false)?;
        let lower = src.to_lowercase();
        let gz = lower.ends_with(".tar.gz") || lower.ends_with(".tgz");
        if !(gz || lower.ends_with(".tar")) {
            return Err(bad(
                "src",
                &src,
                "only .tar, .tar.gz and .tgz archives are supported",
            ));
        }
        let source = if remote {
            if !src.starts_with('/') {
                return Err(bad(
                    "src",
                    &src,
                    "with remote_src, must be an absolute path",
                ));
            }
            Source::Remote(src.clone())
        } else {
            let local = ctx.find_file("files", &src)?;
            let bytes = std::fs::read(&local).map_err(|e| {
                ModuleError::Failed(format!("cannot read {}: {e}", local.display()))
            })?;
            let gz = bytes.starts_with(&[0x1f, 0x8b]);
            let members = list_members(&bytes, gz).map_err(|e| {
                ModuleError::Failed(format!(
                    "{} is not a readable tar archive: {e}",
                    local.display()
                ))
            })?;
            Source::Local {
                bytes: Arc::new(bytes),
                gz,
                members,
            }
        };
        Ok(Box::new(UnarchiveAction {
            src,
            dest,
            creates,
            source,
        }))
    }
}

enum Source {
    Local {
        bytes: Arc<Vec<u8>>,
        gz: bool,
        members: Vec<Member>,
    },
    Remote(String),
}

struct UnarchiveAction {
    src: String,
    dest: String,
    creates: Option<String>,
    source: Source,
}

impl Action for UnarchiveAction {
    fn probes(&self) -> Vec<Probe> {
        let mut p = vec![
            Probe::Stat {
                path: self.dest.clone(),
                follow: true,
            },
            Probe::Stat {
                path: self.creates.clone().unwrap_or_else(|| "/".into()),
                follow: false,
            },
        ];
        match &self.source {
            Source::Remote(src) => {
                p.push(Probe::Stat {
                    path: src.clone(),
                    follow: true,
                });
                // A missing dest (check mode: created by an earlier task) differs.
                p.push(Probe::Exec {
                    argv: sh(
                        "[ -d \"$2\" ] || { echo \"$2 is missing\"; exit 1; }; exec tar --compare -f \"$1\" -C \"$2\"",
                        "drover-unarchive",
                        &[src.clone(), self.dest.clone()],
                    ),
                });
            }
            Source::Local { members, .. } if members.len() <= MAX_MEMBERS => {
                for m in members {
                    p.push(Probe::Stat {
                        path: format!("{}/{}", self.dest.trim_end_matches('/'), m.path),
                        follow: false,
                    });
                }
            }
            Source::Local { .. } => {}
        }
        p
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        let mut plan = Plan::default();
        plan.result.insert("dest".into(), json!(self.dest));
        plan.result.insert("src".into(), json!(self.src));
        let handler = if self.src.to_lowercase().ends_with(".tar") {
            "TarArchive"
        } else {
            "TgzArchive"
        };
        plan.result.insert("handler".into(), json!(handler));
        if let Some(c) = &self.creates {
            if stat_at(observed, 1)?.is_some() {
                plan.reason = Some(format!("skipped, since {c} exists"));
                return Ok(plan);
            }
        }
        match stat_at(observed, 0)? {
            Some(st) if st.kind == FileKind::Directory => {}
            _ => {
                return Err(ModuleError::Failed(format!(
                    "dest '{}' must be an existing dir",
                    self.dest
                )))
            }
        }
        let (same, step) = match &self.source {
            Source::Remote(src) => {
                if stat_at(observed, 2)?.is_none() {
                    return Err(ModuleError::Failed(format!(
                        "Source '{src}' does not exist"
                    )));
                }
                let o = exec_at(observed, 3, "tar --compare")?;
                if o.status == Some(2) {
                    return Err(ModuleError::Failed(format!(
                        "cannot read {src} as a tar archive: {}",
                        o.stderr_str().trim()
                    )));
                }
                let argv = ["tar", "-x", "-f", src, "-C", &self.dest];
                (
                    o.success(),
                    exec_step(
                        argv.iter().map(|s| s.to_string()).collect(),
                        None,
                        false,
                        false,
                    ),
                )
            }
            Source::Local { bytes, gz, members } => {
                let same = members.len() <= MAX_MEMBERS
                    && members
                        .iter()
                        .enumerate()
                        .all(|(i, m)| match observed.get(2 + i) {
                            Some(Observed::Stat(Some(st))) => {
                                st.kind == m.kind && (m.kind != FileKind::File || st.size == m.size)
                            }
                            _ => false,
                        });
                let mut argv = vec!["tar".to_string(), "-x".into()];
                if *gz {
                    argv.push("-z".into());
                }
                argv.extend(["-f".into(), "-".into(), "-C".into(), self.dest.clone()]);
                (
                    same,
                    exec_step(argv, Some(bytes.as_ref().clone()), false, false),
                )
            }
        };
        if same {
            plan.reason = Some(format!("{} is already unpacked in {}", self.src, self.dest));
            return Ok(plan);
        }
        plan.changes.push(Change::new(
            format!("unpack {} into {}", self.src, self.dest),
            vec![step],
        ));
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_engine::module::FileStat;

    fn tgz() -> Vec<u8> {
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::default(),
        ));
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        h.set_mode(0o755);
        b.append_data(&mut h, "app/", &[][..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(6);
        h.set_mode(0o644);
        b.append_data(&mut h, "app/VERSION", &b"1.2.3\n"[..])
            .unwrap();
        b.into_inner().unwrap().finish().unwrap()
    }

    fn st(kind: FileKind, size: u64) -> Observed {
        Observed::Stat(Some(FileStat {
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            owner: "root".into(),
            group: "root".into(),
            size,
            link_target: None,
            inode: 1,
            dev: 1,
            nlink: 1,
        }))
    }

    #[test]
    fn controller_archive_is_compared_member_by_member() {
        let bytes = tgz();
        let members = list_members(&bytes, true).unwrap();
        let names: Vec<&str> = members.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(names, ["app", "app/VERSION"]);
        let a = UnarchiveAction {
            src: "app.tgz".into(),
            dest: "/opt/x".into(),
            creates: None,
            source: Source::Local {
                bytes: Arc::new(bytes),
                gz: true,
                members,
            },
        };
        let probes = a.probes();
        assert_eq!(probes.len(), 4);
        assert_eq!(
            probes[3],
            Probe::Stat {
                path: "/opt/x/app/VERSION".into(),
                follow: false
            }
        );
        let dir = st(FileKind::Directory, 4096);
        // Unpacked already: same kinds and sizes.
        let same = [dir.clone(), dir.clone(), dir.clone(), st(FileKind::File, 6)];
        assert!(!a.plan(&same).unwrap().is_change());
        // A file of another size is unpacked again, streamed on stdin.
        let other = [dir.clone(), dir.clone(), dir.clone(), st(FileKind::File, 9)];
        let plan = a.plan(&other).unwrap();
        match &plan.changes[0].steps[0] {
            drover_engine::module::Step::Exec { argv, stdin, .. } => {
                assert_eq!(argv.join(" "), "tar -x -z -f - -C /opt/x");
                assert!(stdin.as_ref().is_some_and(|s| s.starts_with(&[0x1f, 0x8b])));
            }
            s => panic!("{s:?}"),
        }
        // A missing member too.
        let missing = [dir.clone(), dir.clone(), dir, Observed::Stat(None)];
        assert!(a.plan(&missing).unwrap().is_change());
    }
}
