//! `set_fact`: set host variables for the rest of the run. Never "changed".

use drover_engine::module::{
    Action, Args, Kind, Module, ModuleError, Observed, Param, Plan, Registry, TaskContext,
};
use std::sync::Arc;

pub struct SetFactModule;

const PARAMS: &[Param] = &[
    Param::new("cacheable", Kind::Bool),
    Param::new("*", Kind::Any),
];

struct SetFact(Plan);

impl Action for SetFact {
    fn plan(&self, _: &[Observed]) -> Result<Plan, ModuleError> {
        Ok(self.0.clone())
    }
}

impl Module for SetFactModule {
    fn name(&self) -> &'static str {
        "set_fact"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn controller_only(&self) -> bool {
        true
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let mut plan = Plan::default();
        for (k, v) in args {
            if k != "cacheable" {
                plan.facts.insert(k.clone(), v.clone());
            }
        }
        if plan.facts.is_empty() {
            return Err(ModuleError::Failed(
                "set_fact needs at least one key=value".into(),
            ));
        }
        plan.result.insert(
            "ansible_facts".into(),
            serde_json::Value::Object(plan.facts.clone()),
        );
        Ok(Box::new(SetFact(plan)))
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(SetFactModule));
}
