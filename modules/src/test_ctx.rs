//! Unit-test helper: a `TaskContext` with no variables, where rendering is
//! the identity, every condition holds and files are found as named.

use drover_engine::module::{ModuleError, TaskContext};
use serde_json::Value;
use std::path::PathBuf;

pub struct NoCtx;

impl TaskContext for NoCtx {
    fn vars(&self) -> &Value {
        &Value::Null
    }
    fn render(&self, t: &str) -> Result<String, ModuleError> {
        Ok(t.into())
    }
    fn condition(&self, _: &str) -> Result<bool, ModuleError> {
        Ok(true)
    }
    fn find_file(&self, _: &str, n: &str) -> Result<PathBuf, ModuleError> {
        Ok(n.into())
    }
    fn host(&self) -> &str {
        "h"
    }
}
