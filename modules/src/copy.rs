//! `copy` module: puts controller bytes (`src`, looked up under `files/`) or
//! inline `content` at `dest` on the host, with `mode`/`owner`/`group`,
//! `backup`, `force` and `validate`. A directory `dest` receives the file
//! under `src`'s basename. Copying a directory `src` is not supported yet.

use crate::fs_attrs;
use crate::fs_content::WriteSpec;
use crate::fs_copy::CopyAction;
use drover_engine::args::{get_bool, get_str, req_str};
use drover_engine::module::{
    Action, Args, Kind, Module, ModuleError, Param, Registry, TaskContext,
};
use serde_json::Value;

const PARAMS: &[Param] = &[
    Param::new("dest", Kind::Str).required(),
    Param::new("src", Kind::Str),
    Param::new("content", Kind::Any),
    Param::new("backup", Kind::Bool),
    Param::new("force", Kind::Bool).aliases(&["thirsty"]),
    Param::new("validate", Kind::Str),
    fs_attrs::PARAMS[0],
    fs_attrs::PARAMS[1],
    fs_attrs::PARAMS[2],
];

/// The `copy` module.
pub struct CopyModule;

pub fn register(r: &mut Registry) {
    r.add(std::sync::Arc::new(CopyModule));
}

/// Inline `content`: strings as they are, other values as JSON (as Ansible).
fn content_bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::String(s) => s.clone().into_bytes(),
        other => other.to_string().into_bytes(),
    }
}

impl Module for CopyModule {
    fn name(&self) -> &'static str {
        "copy"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let dest = req_str(args, "dest")?;
        if dest.is_empty() {
            return Err(ModuleError::BadArg {
                name: "dest".into(),
                value: String::new(),
                message: "must not be empty".into(),
            });
        }
        let src = get_str(args, "src")?;
        let content = args.get("content").filter(|v| !v.is_null());
        let mut result = serde_json::Map::new();
        let (bytes, basename) = match (src, content) {
            (Some(_), Some(_)) => {
                return Err(ModuleError::Failed(
                    "src and content are mutually exclusive".into(),
                ))
            }
            (None, None) => return Err(ModuleError::MissingArg("src (or content)".into())),
            (None, Some(c)) => (content_bytes(c), None),
            (Some(src), None) => {
                let local = ctx.find_file("files", &src)?;
                if src.ends_with('/') || local.is_dir() {
                    return Err(ModuleError::Failed(format!(
                        "copy: src `{src}` is a directory; copying directories is not supported yet"
                    )));
                }
                let bytes = std::fs::read(&local).map_err(|e| {
                    ModuleError::Failed(format!("cannot read {}: {e}", local.display()))
                })?;
                let base = local
                    .file_name()
                    .map(|b| b.to_string_lossy().into_owned())
                    .ok_or_else(|| ModuleError::Failed(format!("src `{src}` has no file name")))?;
                result.insert("src".into(), Value::String(src));
                (bytes, Some(base))
            }
        };
        Ok(Box::new(CopyAction {
            spec: WriteSpec::from_args(dest, args)?,
            content: bytes,
            basename,
            force: get_bool(args, "force", true)?,
            result,
        }))
    }
}
