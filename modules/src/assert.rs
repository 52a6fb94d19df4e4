//! `assert` module: evaluate each `that` condition (a string or a list of
//! `when:`-style expressions) for the host; the first false one fails the
//! task with `fail_msg` (alias `msg`) or "Assertion failed: <expr>", and
//! success reports `success_msg` (default "All assertions passed").
//! Runs on the controller only.

use drover_engine::args::get_bool;
use drover_engine::module::{
    Action, Args, Kind, Module, ModuleError, Observed, Param, Plan, Registry, TaskContext,
};
use serde_json::{json, Map, Value};
use std::sync::Arc;

pub struct AssertModule;

const PARAMS: &[Param] = &[
    Param::new("that", Kind::List).required(),
    Param::new("fail_msg", Kind::Any).aliases(&["msg"]),
    Param::new("success_msg", Kind::Any),
    Param::new("quiet", Kind::Bool),
];

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
        get_bool(args, "quiet", false)?;
        // Not `get_list`: a condition may itself contain commas.
        let that = match args.get("that") {
            None | Some(Value::Null) => return Err(ModuleError::MissingArg("that".into())),
            Some(Value::Array(a)) => a.clone(),
            Some(v @ Value::Object(_)) => {
                return Err(ModuleError::BadArg {
                    name: "that".into(),
                    value: v.to_string(),
                    message: "expected a condition or a list of conditions".into(),
                })
            }
            Some(v) => vec![v.clone()],
        };
        if that.is_empty() {
            return Err(ModuleError::BadArg {
                name: "that".into(),
                value: "[]".into(),
                message: "needs at least one condition".into(),
            });
        }
        let mut failed = None;
        for cond in &that {
            let expr = match cond {
                Value::String(s) => s.clone(),
                Value::Bool(_) | Value::Number(_) => cond.to_string(),
                other => {
                    return Err(ModuleError::BadArg {
                        name: "that".into(),
                        value: other.to_string(),
                        message: "each condition must be a string".into(),
                    })
                }
            };
            if !ctx.condition(&expr)? {
                failed = Some(expr);
                break;
            }
        }
        let text = |k: &str| match args.get(k) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        };
        let outcome = match failed {
            Some(expr) => Err(text("fail_msg").unwrap_or(format!("Assertion failed: {expr}"))),
            None => Ok(args
                .get("success_msg")
                .filter(|v| !v.is_null())
                .cloned()
                .unwrap_or_else(|| json!("All assertions passed"))),
        };
        Ok(Box::new(AssertAction(outcome)))
    }
}

/// Success message, or the failure message.
struct AssertAction(Result<Value, String>);

impl Action for AssertAction {
    fn plan(&self, _observed: &[Observed]) -> Result<Plan, ModuleError> {
        match &self.0 {
            Ok(msg) => {
                let mut result = Map::new();
                result.insert("msg".into(), msg.clone());
                Ok(Plan {
                    result,
                    ..Default::default()
                })
            }
            Err(msg) => Err(ModuleError::Failed(msg.clone())),
        }
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(AssertModule));
}
