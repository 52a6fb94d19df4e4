//! `mysql_variables` module (community.mysql's name): a global server
//! variable (`variable`) set to `value` with `SET GLOBAL` (`mode: global`,
//! the default) or `SET PERSIST` / `SET PERSIST_ONLY` (MySQL 8 only;
//! MariaDB has no PERSIST and the server says so). Observes
//! `SELECT @@GLOBAL.<variable>`; ON/OFF, TRUE/FALSE and 1/0 are the same
//! value, numbers compare numerically, words case-insensitively.

use crate::sql_common::{check_word, col, exec_out, lit, sections, Login};
use crate::sql_params;
use drover_engine::args::{get_str, req_str};
use drover_engine::module::{
    Action, Args, Change, Diff, Kind, Module, ModuleError, Observed, Param, Plan, Probe, Registry,
    TaskContext,
};
use serde_json::json;
use std::sync::Arc;

pub struct MysqlVariablesModule;

const MODES: &[&str] = &["global", "persist", "persist_only"];

const PARAMS: &[Param] = sql_params![
    Param::new("variable", Kind::Str).required(),
    Param::new("value", Kind::Str),
    Param::new("mode", Kind::Str).choices(MODES),
];

impl Module for MysqlVariablesModule {
    fn name(&self) -> &'static str {
        "mysql_variables"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["community.mysql.mysql_variables"]
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let variable = req_str(args, "variable")?;
        check_word("variable", &variable)?;
        let mode = get_str(args, "mode")?.unwrap_or_else(|| "global".into());
        if !MODES.contains(&mode.as_str()) {
            return Err(ModuleError::BadChoice {
                name: "mode".into(),
                value: mode,
                choices: MODES.join("|"),
            });
        }
        Ok(Box::new(VarAction {
            login: Login::from_args(args)?,
            variable,
            value: get_str(args, "value")?,
            mode,
        }))
    }
}

struct VarAction {
    login: Login,
    variable: String,
    value: Option<String>,
    mode: String,
}

/// Canonical text of a value for comparison.
fn canon(v: &str) -> String {
    let t = v.trim();
    match t.to_ascii_uppercase().as_str() {
        "ON" | "TRUE" | "YES" => return "1".into(),
        "OFF" | "FALSE" | "NO" => return "0".into(),
        _ => {}
    }
    if let Ok(f) = t.parse::<f64>() {
        return format!("{f}");
    }
    t.to_ascii_lowercase()
}

/// The value as SQL: numbers and ON/OFF bare, anything else a literal.
fn sql_value(v: &str) -> String {
    let t = v.trim();
    let word = t.to_ascii_uppercase();
    if t.parse::<f64>().is_ok() || matches!(word.as_str(), "ON" | "OFF" | "DEFAULT") {
        word
    } else {
        lit(t)
    }
}

impl Action for VarAction {
    fn probes(&self) -> Vec<Probe> {
        vec![self
            .login
            .probe(&[format!("SELECT @@GLOBAL.{}", self.variable)])]
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        let secs = sections(exec_out(observed, 0)?, 1, false)?;
        let cur = secs[0]
            .first()
            .map(|r| col(r, 0).to_string())
            .unwrap_or_default();
        let mut plan = Plan::default();
        plan.result.insert(self.variable.clone(), json!(cur));
        let Some(want) = &self.value else {
            plan.reason = Some(format!("{} is {cur}", self.variable));
            return Ok(plan);
        };
        if canon(&cur) == canon(want) {
            plan.reason = Some(format!("{} is already {cur}", self.variable));
            return Ok(plan);
        }
        let sql = format!(
            "SET {} {} = {}",
            self.mode.to_ascii_uppercase(),
            self.variable,
            sql_value(want)
        );
        plan.result.insert("queries".into(), json!([sql]));
        plan.changes.push(
            Change::new(
                format!("{sql} (was {cur})"),
                vec![self.login.step(std::slice::from_ref(&sql), &[])],
            )
            .with_diff(Diff {
                label: format!("variable {}", self.variable),
                before: format!("{cur}\n"),
                after: format!("{want}\n"),
            }),
        );
        Ok(plan)
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(MysqlVariablesModule));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_compare_by_meaning() {
        assert_eq!(canon("ON"), canon("1"));
        assert_eq!(canon("500"), canon("500.0"));
        assert_ne!(canon("ROW"), canon("MIXED"));
        assert_eq!(sql_value("row"), "'row'");
        assert_eq!(sql_value("on"), "ON");
        assert_eq!(sql_value("it's"), r"'it\'s'");
    }
}
