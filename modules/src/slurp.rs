//! `slurp` module: read a file on the host (one Read probe) and return its
//! bytes base64-encoded in `content`, with `encoding: base64` and `source`,
//! as Ansible's. Read-only: never a change, runs under `--check` too.

use crate::sys_common::content_at;
use base64::Engine;
use drover_engine::args::req_str;
use drover_engine::module::{
    Action, Args, Kind, Module, ModuleError, Observed, Param, Plan, Probe, Registry, TaskContext,
};
use serde_json::json;
use std::sync::Arc;

const PARAMS: &[Param] = &[Param::new("src", Kind::Str).required().aliases(&["path"])];

pub struct SlurpModule;

pub fn register(r: &mut Registry) {
    r.add(Arc::new(SlurpModule));
}

impl Module for SlurpModule {
    fn name(&self) -> &'static str {
        "slurp"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let src = req_str(args, "src")?;
        if src.is_empty() {
            return Err(crate::sys_common::bad("src", &src, "must not be empty"));
        }
        Ok(Box::new(SlurpAction { src }))
    }
}

struct SlurpAction {
    src: String,
}

impl Action for SlurpAction {
    fn probes(&self) -> Vec<Probe> {
        vec![Probe::Read {
            path: self.src.clone(),
        }]
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        let bytes = content_at(observed, 0)?
            .ok_or_else(|| ModuleError::Failed(format!("file not found: {}", self.src)))?;
        let mut plan = Plan::unchanged(format!("read {} ({} bytes)", self.src, bytes.len()));
        plan.result.insert(
            "content".into(),
            json!(base64::engine::general_purpose::STANDARD.encode(bytes)),
        );
        plan.result.insert("encoding".into(), json!("base64"));
        plan.result.insert("source".into(), json!(self.src));
        Ok(plan)
    }
}
