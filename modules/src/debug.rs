//! `debug`: print a message or a variable. Runs on the controller, never changes.

use drover_engine::args::{get_str, is_template};
use drover_engine::module::{
    Action, Args, Kind, Module, ModuleError, Observed, Param, Plan, Registry, TaskContext,
};
use serde_json::Value;
use std::sync::Arc;

pub struct DebugModule;

const PARAMS: &[Param] = &[
    Param::new("msg", Kind::Any),
    Param::new("var", Kind::Str),
    Param::new("verbosity", Kind::Int),
];

struct DebugAction(Plan);

impl Action for DebugAction {
    fn plan(&self, _: &[Observed]) -> Result<Plan, ModuleError> {
        Ok(self.0.clone())
    }
}

impl Module for DebugModule {
    fn name(&self) -> &'static str {
        "debug"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn controller_only(&self) -> bool {
        true
    }
    fn prepare(&self, args: &Args, ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let mut plan = Plan::default();
        if let Some(var) = get_str(args, "var")? {
            let name = var
                .trim()
                .trim_start_matches("{{")
                .trim_end_matches("}}")
                .trim()
                .to_string();
            let mut cur = Some(ctx.vars());
            for part in name.split('.') {
                cur = cur.and_then(|c| c.get(part));
            }
            let v = cur
                .cloned()
                .unwrap_or_else(|| Value::String("VARIABLE IS NOT DEFINED!".into()));
            plan.result.insert(name, v);
        } else {
            let msg = args
                .get("msg")
                .cloned()
                .unwrap_or_else(|| Value::String("Hello world!".into()));
            if let Value::String(s) = &msg {
                if is_template(s) {
                    return Err(ModuleError::Failed(format!(
                        "msg still holds a template: {s}"
                    )));
                }
            }
            plan.result.insert("msg".into(), msg);
        }
        Ok(Box::new(DebugAction(plan)))
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(DebugModule));
}
