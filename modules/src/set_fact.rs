//! `set_fact` module: every argument except `cacheable` becomes a host fact
//! (`plan.facts`), with Ansible's conversion of the strings
//! yes/no/true/false to booleans and its check of variable names. Runs on
//! the controller only and never reports a change.
//!
//! It declares no parameters: the keys are the user's. The engine must not
//! reject them in its pre-flight `normalize` (see [`SetFactModule::params`]).

use drover_engine::args::truthy;
use drover_engine::module::{
    Action, Args, Kind, Module, ModuleError, Observed, Param, Plan, Registry, TaskContext,
};
use serde_json::{Map, Value};
use std::sync::Arc;

pub struct SetFactModule;

impl Module for SetFactModule {
    fn name(&self) -> &'static str {
        "set_fact"
    }
    /// Empty: any key is accepted by `prepare`, which checks the names.
    fn params(&self) -> &'static [Param] {
        // `*`: any variable name is accepted (see `args::normalize`).
        const P: &[Param] = &[
            Param::new("cacheable", Kind::Bool),
            Param::new("*", Kind::Any),
        ];
        P
    }
    fn controller_only(&self) -> bool {
        true
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        if let Some(c) = args.get("cacheable") {
            if truthy(c).is_none() {
                return Err(ModuleError::BadArg {
                    name: "cacheable".into(),
                    value: c.to_string(),
                    message: "expected a boolean (yes/no, true/false)".into(),
                });
            }
        }
        let mut facts = Map::new();
        for (k, v) in args.iter().filter(|(k, _)| *k != "cacheable") {
            if !is_identifier(k) {
                return Err(ModuleError::BadArg {
                    name: k.clone(),
                    value: v.to_string(),
                    message: format!(
                        "the variable name '{k}' is not valid: variables must start with a \
                         letter or underscore and contain only letters, numbers and underscores"
                    ),
                });
            }
            let v = match v {
                Value::String(s)
                    if matches!(
                        s.to_ascii_lowercase().as_str(),
                        "yes" | "no" | "true" | "false"
                    ) =>
                {
                    truthy(v).map_or_else(|| v.clone(), Value::Bool)
                }
                other => other.clone(),
            };
            facts.insert(k.clone(), v);
        }
        if facts.is_empty() {
            return Err(ModuleError::Failed(
                "No key/value pairs provided, at least one is required for this action to succeed"
                    .into(),
            ));
        }
        Ok(Box::new(SetFactAction(facts)))
    }
}

fn is_identifier(k: &str) -> bool {
    let mut c = k.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

struct SetFactAction(Map<String, Value>);

impl Action for SetFactAction {
    fn plan(&self, _observed: &[Observed]) -> Result<Plan, ModuleError> {
        let mut result = Map::new();
        result.insert("ansible_facts".into(), Value::Object(self.0.clone()));
        Ok(Plan {
            result,
            facts: self.0.clone(),
            ..Default::default()
        })
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(SetFactModule));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::test_ctx::NoCtx;

    fn run(v: Value) -> Result<Plan, ModuleError> {
        let args = v.as_object().cloned().unwrap_or_default();
        SetFactModule.prepare(&args, &NoCtx)?.plan(&[])
    }

    #[test]
    fn facts_from_all_args_but_cacheable() {
        let p = run(json!({"a": 1, "b": "Yes", "c": "yess", "d": {"x": [1]}, "cacheable": true}))
            .unwrap();
        assert_eq!(
            Value::Object(p.facts.clone()),
            json!({"a": 1, "b": true, "c": "yess", "d": {"x": [1]}})
        );
        assert!(!p.is_change());
        assert_eq!(p.result["ansible_facts"]["a"], 1);
    }

    #[test]
    fn bad_input() {
        assert!(run(json!({"9lives": 1}))
            .unwrap_err()
            .to_string()
            .contains("9lives"));
        assert!(run(json!({"a-b": 1}))
            .unwrap_err()
            .to_string()
            .contains("a-b"));
        assert!(run(json!({}))
            .unwrap_err()
            .to_string()
            .contains("No key/value"));
        assert!(run(json!({"cacheable": true})).is_err());
        assert!(run(json!({"a": 1, "cacheable": "maybe"}))
            .unwrap_err()
            .to_string()
            .contains("maybe"));
    }
}
