//! `fail` module: fail the task with `msg` (default "Failed as requested
//! from task"). Runs on the controller only.

use drover_engine::module::{
    Action, Args, Kind, Module, ModuleError, Observed, Param, Plan, Registry, TaskContext,
};
use serde_json::Value;
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
        let msg = match args.get("msg") {
            None | Some(Value::Null) => "Failed as requested from task".to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        Ok(Box::new(FailAction(msg)))
    }
}

struct FailAction(String);

impl Action for FailAction {
    fn plan(&self, _observed: &[Observed]) -> Result<Plan, ModuleError> {
        Err(ModuleError::Failed(self.0.clone()))
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(FailModule));
}
