//! `fetch` module: copy a file from the host to the controller. `dest` is a
//! controller folder receiving `dest/<inventory_hostname>/<src path>` (as
//! Ansible), or with `flat: yes` the file itself (`dest/` + src's basename
//! when `dest` ends in `/`). Relative `dest` is taken from the playbook's
//! folder. The host side is probed (stat + `sha1sum`); the controller copy
//! is hashed while preparing; a differing or missing copy plans one
//! `Step::Fetch`, which the engine applies on the controller (never in
//! check mode). Equal checksums: no change.

use crate::sys_common::{bad, exec_at, stat_at};
use drover_engine::args::{get_bool, req_str};
use drover_engine::module::{
    Action, Args, Change, FileKind, Kind, Module, ModuleError, Observed, Param, Plan, Probe,
    Registry, Step, TaskContext,
};
use serde_json::json;
use sha1::{Digest, Sha1};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const PARAMS: &[Param] = &[
    Param::new("src", Kind::Str).required(),
    Param::new("dest", Kind::Str).required(),
    Param::new("flat", Kind::Bool),
    Param::new("fail_on_missing", Kind::Bool),
];

pub struct FetchModule;

pub fn register(r: &mut Registry) {
    r.add(Arc::new(FetchModule));
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Where the file lands on the controller.
pub fn local_dest(dest: &str, src: &str, host: &str, flat: bool, base: Option<&Path>) -> PathBuf {
    let d = Path::new(dest);
    let d = match base {
        Some(b) if d.is_relative() => b.join(d),
        _ => d.to_path_buf(),
    };
    let name = src.rsplit('/').next().unwrap_or(src);
    if flat {
        if dest.ends_with('/') {
            d.join(name)
        } else {
            d
        }
    } else {
        d.join(host).join(src.trim_start_matches('/'))
    }
}

impl Module for FetchModule {
    fn name(&self) -> &'static str {
        "fetch"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let src = req_str(args, "src")?;
        if src.is_empty() || src.ends_with('/') || src.contains('\n') {
            return Err(bad("src", &src, "must be the path of a file on the host"));
        }
        let dest = req_str(args, "dest")?;
        if dest.is_empty() {
            return Err(bad("dest", &dest, "must not be empty"));
        }
        if src.split('/').any(|c| c == "..") {
            return Err(bad("src", &src, "must not contain `..`"));
        }
        let flat = get_bool(args, "flat", false)?;
        let local = local_dest(&dest, &src, ctx.host(), flat, ctx.playbook_dir().as_deref());
        let local_sum = match std::fs::read(&local) {
            Ok(b) => Some(hex(&Sha1::digest(&b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(ModuleError::Failed(format!(
                    "cannot read {} on the controller: {e}",
                    local.display()
                )))
            }
        };
        if local.is_dir() {
            return Err(ModuleError::Failed(format!(
                "dest {} is a directory on the controller; use flat: no or a file name",
                local.display()
            )));
        }
        Ok(Box::new(FetchAction {
            src,
            local,
            local_sum,
            fail_on_missing: get_bool(args, "fail_on_missing", true)?,
        }))
    }
}

struct FetchAction {
    src: String,
    local: PathBuf,
    local_sum: Option<String>,
    fail_on_missing: bool,
}

impl Action for FetchAction {
    fn probes(&self) -> Vec<Probe> {
        vec![
            Probe::Stat {
                path: self.src.clone(),
                follow: true,
            },
            Probe::Exec {
                argv: vec!["sha1sum".into(), "--".into(), self.src.clone()],
            },
        ]
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        let dest = self.local.display().to_string();
        let mut plan = Plan::default();
        plan.result.insert("file".into(), json!(self.src));
        plan.result.insert("dest".into(), json!(dest));
        match stat_at(observed, 0)? {
            None if self.fail_on_missing => {
                return Err(ModuleError::Failed(format!(
                    "the remote file does not exist: {}",
                    self.src
                )))
            }
            None => {
                plan.reason = Some(format!("{} does not exist on the host", self.src));
                plan.result.insert(
                    "msg".into(),
                    json!("the remote file does not exist, not transferring, ignored"),
                );
                return Ok(plan);
            }
            Some(st) if st.kind == FileKind::Directory => {
                return Err(ModuleError::Failed(format!(
                    "remote file {} is a directory, fetch cannot work on directories",
                    self.src
                )))
            }
            Some(_) => {}
        }
        let o = exec_at(observed, 1, "sha1sum")?;
        if !o.success() {
            return Err(ModuleError::Failed(format!(
                "cannot read {} on the host: {}",
                self.src,
                o.stderr_str().trim()
            )));
        }
        let remote = o
            .stdout_str()
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        plan.result.insert("remote_checksum".into(), json!(remote));
        plan.result.insert("checksum".into(), json!(remote));
        if self.local_sum.as_deref() == Some(remote.as_str()) {
            plan.reason = Some(format!(
                "{dest} already has the same content (sha1 {remote})"
            ));
            return Ok(plan);
        }
        plan.changes.push(Change::new(
            format!("fetch {} to {dest}", self.src),
            vec![Step::Fetch {
                src: self.src.clone(),
                dest: self.local.clone(),
            }],
        ));
        Ok(plan)
    }
}
