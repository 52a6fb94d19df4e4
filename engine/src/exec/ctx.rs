//! What a module sees while preparing an action for one host.

use crate::module::{ModuleError, TaskContext};
use crate::template::Templater;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(super) struct Ctx {
    pub vars: Value,
    pub templater: Arc<Templater>,
    pub host: String,
    pub role_dir: Option<PathBuf>,
    pub playbook_dir: PathBuf,
}

/// Find a controller-side file the way Ansible does: absolute as given, else
/// the role's `kind/` folder, the playbook's `kind/` folder, the playbook folder.
pub(super) fn find(
    role_dir: Option<&Path>,
    playbook_dir: &Path,
    kind: &str,
    name: &str,
) -> Result<PathBuf, ModuleError> {
    let p = Path::new(name);
    if p.is_absolute() {
        return if p.exists() {
            Ok(p.to_path_buf())
        } else {
            Err(ModuleError::Failed(format!(
                "{kind} file `{name}` not found"
            )))
        };
    }
    let mut tried = Vec::new();
    if let Some(r) = role_dir {
        tried.push(r.join(kind).join(name));
        tried.push(r.join(name));
    }
    tried.push(playbook_dir.join(kind).join(name));
    tried.push(playbook_dir.join(name));
    tried.iter().find(|c| c.exists()).cloned().ok_or_else(|| {
        ModuleError::Failed(format!(
            "{kind} file `{name}` not found (looked in {})",
            tried
                .iter()
                .map(|t| t.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

impl TaskContext for Ctx {
    fn vars(&self) -> &Value {
        &self.vars
    }
    fn render(&self, template: &str) -> Result<String, ModuleError> {
        self.templater
            .render(template, &self.vars)
            .map_err(|e| ModuleError::Failed(e.to_string()))
    }
    fn condition(&self, expr: &str) -> Result<bool, ModuleError> {
        self.templater
            .condition(expr, &self.vars)
            .map_err(|e| ModuleError::Failed(e.to_string()))
    }
    fn find_file(&self, kind: &str, name: &str) -> Result<PathBuf, ModuleError> {
        find(self.role_dir.as_deref(), &self.playbook_dir, kind, name)
    }
    fn host(&self) -> &str {
        &self.host
    }
    fn playbook_dir(&self) -> Option<PathBuf> {
        Some(self.playbook_dir.clone())
    }
}
