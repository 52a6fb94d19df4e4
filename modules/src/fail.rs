//! `fail`: fail the task with a message.

use drover_engine::args::get_str;
use drover_engine::module::{
    Action, Args, Kind, Module, ModuleError, Param, Registry, TaskContext,
};
use std::sync::Arc;

pub struct FailModule;

const PARAMS: &[Param] = &[Param::new("msg", Kind::Any)];

impl Module for FailModule {
    fn name(&self) -> &'static str {
        "fail"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn controller_only(&self) -> bool {
        true
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        Err(ModuleError::Failed(
            get_str(args, "msg")?.unwrap_or_else(|| "Failed as requested from task".into()),
        ))
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(FailModule));
}
