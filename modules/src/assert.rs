//! `assert`: fail the task unless every condition in `that` holds.

use drover_engine::args::{get_bool, get_str, get_str_list};
use drover_engine::module::{
    Action, Args, Kind, Module, ModuleError, Observed, Param, Plan, Registry, TaskContext,
};
use std::sync::Arc;

pub struct AssertModule;

const PARAMS: &[Param] = &[
    Param::new("that", Kind::List).required(),
    Param::new("fail_msg", Kind::Any).aliases(&["msg"]),
    Param::new("success_msg", Kind::Any),
    Param::new("quiet", Kind::Bool),
];

struct Done(Plan);

impl Action for Done {
    fn plan(&self, _: &[Observed]) -> Result<Plan, ModuleError> {
        Ok(self.0.clone())
    }
}

impl Module for AssertModule {
    fn name(&self) -> &'static str {
        "assert"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn controller_only(&self) -> bool {
        true
    }
    fn prepare(&self, args: &Args, ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let that = match args.get("that") {
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            _ => get_str_list(args, "that")?,
        };
        for cond in &that {
            if !ctx.condition(cond)? {
                let msg = get_str(args, "fail_msg")?
                    .unwrap_or_else(|| format!("Assertion failed: {cond}"));
                return Err(ModuleError::Failed(msg));
            }
        }
        let mut plan = Plan::default();
        if !get_bool(args, "quiet", false)? {
            let msg =
                get_str(args, "success_msg")?.unwrap_or_else(|| "All assertions passed".into());
            plan.result.insert("msg".into(), msg.into());
        }
        Ok(Box::new(Done(plan)))
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(AssertModule));
}
