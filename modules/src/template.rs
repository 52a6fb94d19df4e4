//! `template` module: renders a controller template (`src`, looked up under
//! `templates/`) with the task's variables and puts the result at `dest` on
//! the host, with `mode`/`owner`/`group`, `backup`, `force` and `validate`.
//! Observe/plan are shared with `copy` (see `fs_copy`); `dest` must be
//! the file's path (a directory `dest` is an error).

use crate::fs_attrs;
use crate::fs_content::WriteSpec;
use crate::fs_copy::CopyAction;
use drover_engine::args::{get_bool, req_str};
use drover_engine::module::{
    Action, Args, Kind, Module, ModuleError, Param, Registry, TaskContext,
};
use serde_json::Value;

const PARAMS: &[Param] = &[
    Param::new("src", Kind::Str).required(),
    Param::new("dest", Kind::Str).required(),
    Param::new("backup", Kind::Bool),
    Param::new("force", Kind::Bool),
    Param::new("validate", Kind::Str),
    fs_attrs::PARAMS[0],
    fs_attrs::PARAMS[1],
    fs_attrs::PARAMS[2],
];

/// The `template` module.
pub struct TemplateModule;

pub fn register(r: &mut Registry) {
    r.add(std::sync::Arc::new(TemplateModule));
}

impl Module for TemplateModule {
    fn name(&self) -> &'static str {
        "template"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let src = req_str(args, "src")?;
        let dest = req_str(args, "dest")?;
        let local = ctx.find_file("templates", &src)?;
        let text = std::fs::read_to_string(&local).map_err(|e| {
            ModuleError::Failed(format!("cannot read template {}: {e}", local.display()))
        })?;
        let rendered = ctx
            .render(&text)
            .map_err(|e| ModuleError::Failed(format!("template {src}: {e}")))?;
        let mut result = serde_json::Map::new();
        result.insert("src".into(), Value::String(src));
        Ok(Box::new(CopyAction {
            spec: WriteSpec::from_args(dest, args)?,
            content: rendered.into_bytes(),
            basename: None,
            force: get_bool(args, "force", true)?,
            result,
        }))
    }
}
