//! Shared observe/plan of `copy` and `template`: the wanted bytes are known
//! on the controller; the host's `dest` is probed (and `dest/<basename>`,
//! for when `dest` turns out to be a directory), then one `Step::Write` or
//! attribute changes are planned. `force: no` leaves an existing file alone.

use crate::fs_content::{content_at, plan_write, require_file, stat_at, WriteSpec};
use drover_engine::module::{Action, FileKind, ModuleError, Observed, Plan, Probe, Step};
use serde_json::Value;

/// A prepared copy of known bytes to a host path.
#[derive(Debug, Clone)]
pub struct CopyAction {
    /// Where the content goes (`dest` as given).
    pub spec: WriteSpec,
    pub content: Vec<u8>,
    /// Basename of `src`, for a directory `dest`; `None` for `content:`.
    pub basename: Option<String>,
    pub force: bool,
    /// Extra result fields (e.g. `src`).
    pub result: serde_json::Map<String, Value>,
}

impl CopyAction {
    fn inner(&self) -> Option<String> {
        self.basename
            .as_ref()
            .map(|b| format!("{}/{b}", self.spec.path.trim_end_matches('/')))
    }
}

impl Action for CopyAction {
    fn probes(&self) -> Vec<Probe> {
        let dest = self.spec.path.trim_end_matches('/').to_string();
        let dest = if dest.is_empty() {
            "/".to_string()
        } else {
            dest
        };
        let mut p = vec![
            Probe::Stat {
                path: dest.clone(),
                follow: true,
            },
            Probe::Read { path: dest },
        ];
        if let Some(inner) = self.inner() {
            p.push(Probe::Stat {
                path: inner.clone(),
                follow: true,
            });
            p.push(Probe::Read { path: inner });
        }
        p
    }

    fn plan(&self, obs: &[Observed]) -> Result<Plan, ModuleError> {
        let dest_st = stat_at(obs, 0)?;
        let dir_dest =
            self.spec.path.ends_with('/') || dest_st.is_some_and(|s| s.kind == FileKind::Directory);
        let (spec, st, before, mut pre) = if dir_dest {
            let inner = self.inner().ok_or_else(|| {
                ModuleError::Failed(format!(
                    "dest {} is a directory (can not use content with a dir as dest); give the file's path",
                    self.spec.path
                ))
            })?;
            let mut pre = Vec::new();
            if dest_st.is_none() {
                pre.push(Step::exec(["mkdir", "-p", "--", self.spec.path.as_str()]));
            }
            let spec = WriteSpec {
                path: inner,
                ..self.spec.clone()
            };
            (spec, stat_at(obs, 2)?, content_at(obs, 3)?, pre)
        } else {
            (self.spec.clone(), dest_st, content_at(obs, 1)?, Vec::new())
        };
        require_file(&spec.path, st)?;
        let mut plan = if st.is_some() && !self.force {
            Plan::unchanged(format!("{} exists and force=no", spec.path))
        } else {
            let mut changes = plan_write(&spec, st, before, self.content.clone());
            if let Some(first) = changes.first_mut() {
                pre.append(&mut first.steps);
                first.steps = pre;
            }
            let reason = changes.is_empty().then(|| {
                format!(
                    "{} already has the wanted content and attributes",
                    spec.path
                )
            });
            Plan {
                changes,
                reason,
                ..Default::default()
            }
        };
        plan.result = self.result.clone();
        plan.result
            .insert("dest".into(), Value::String(spec.path.clone()));
        plan.result
            .insert("size".into(), Value::from(self.content.len()));
        Ok(plan)
    }
}
