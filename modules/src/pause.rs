//! `pause`: wait a number of seconds or minutes (the engine sleeps, in check
//! mode too). Interactive prompts are not supported.

use drover_engine::args::get_int;
use drover_engine::module::{
    Action, Args, Kind, Module, ModuleError, Observed, Param, Plan, Registry, TaskContext,
};
use std::sync::Arc;

pub struct PauseModule;

const PARAMS: &[Param] = &[
    Param::new("seconds", Kind::Int),
    Param::new("minutes", Kind::Int),
    Param::new("prompt", Kind::Str),
    Param::new("echo", Kind::Bool),
];

struct Pause(Plan);

impl Action for Pause {
    fn plan(&self, _: &[Observed]) -> Result<Plan, ModuleError> {
        Ok(self.0.clone())
    }
}

impl Module for PauseModule {
    fn name(&self) -> &'static str {
        "pause"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn controller_only(&self) -> bool {
        true
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let secs =
            get_int(args, "seconds")?.unwrap_or(0) + 60 * get_int(args, "minutes")?.unwrap_or(0);
        if args.contains_key("prompt") && secs == 0 {
            return Err(ModuleError::Failed("pause with a prompt is not supported (drover runs unattended); give seconds or minutes".into()));
        }
        if secs < 0 {
            return Err(ModuleError::BadArg {
                name: "seconds".into(),
                value: secs.to_string(),
                message: "must not be negative".into(),
            });
        }
        let mut plan = Plan::default();
        plan.result.insert("pause_seconds".into(), secs.into());
        Ok(Box::new(Pause(plan)))
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(PauseModule));
}
