//! `pause` module: wait `seconds` or `minutes` on the controller. The wait
//! happens in check mode too, so the module plans no change: it puts the
//! duration in `result.pause_seconds` and the engine sleeps. Waiting for
//! keyboard input (no duration, or `prompt` alone) is not supported.

use drover_engine::args::{get_bool, get_int, get_str};
use drover_engine::module::{
    Action, Args, Kind, Module, ModuleError, Observed, Param, Plan, Registry, TaskContext,
};
use serde_json::{json, Map, Value};
use std::sync::Arc;

pub struct PauseModule;

const PARAMS: &[Param] = &[
    Param::new("seconds", Kind::Int),
    Param::new("minutes", Kind::Int),
    Param::new("prompt", Kind::Str),
    Param::new("echo", Kind::Bool),
];

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
        get_bool(args, "echo", true)?;
        let seconds = get_int(args, "seconds")?;
        let minutes = get_int(args, "minutes")?;
        let (total, unit_text) = match (seconds, minutes) {
            (Some(_), Some(_)) => {
                return Err(ModuleError::Failed(
                    "parameters are mutually exclusive: minutes|seconds".into(),
                ))
            }
            (Some(s), None) => (s, format!("{s} seconds")),
            (None, Some(m)) => (m.saturating_mul(60), format!("{m} minutes")),
            (None, None) => {
                let what = get_str(args, "prompt")?.map_or(String::new(), |p| format!(" ({p:?})"));
                return Err(ModuleError::Failed(format!(
                    "pause without `seconds` or `minutes` waits for keyboard input{what}, \
                     which drover does not support; give a duration"
                )));
            }
        };
        if total < 0 {
            return Err(ModuleError::BadArg {
                name: if seconds.is_some() {
                    "seconds"
                } else {
                    "minutes"
                }
                .into(),
                value: seconds.or(minutes).unwrap_or_default().to_string(),
                message: "must not be negative".into(),
            });
        }
        let mut result = Map::new();
        result.insert("pause_seconds".into(), json!(total));
        result.insert("stdout".into(), json!(format!("Paused for {unit_text}")));
        result.insert("user_input".into(), json!(""));
        if let Some(p) = get_str(args, "prompt")? {
            result.insert("prompt".into(), Value::String(p));
        }
        Ok(Box::new(PauseAction(result)))
    }
}

struct PauseAction(Map<String, Value>);

impl Action for PauseAction {
    fn plan(&self, _observed: &[Observed]) -> Result<Plan, ModuleError> {
        Ok(Plan {
            result: self.0.clone(),
            ..Default::default()
        })
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(PauseModule));
}
