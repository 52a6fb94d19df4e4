//! `mysql_table` module (drover's own; Ansible has none): a table declared by
//! its columns (`db`, `name`, `columns: [{name, type, primary_key, null}]`,
//! optional `engine`, `encoding`). Observes `information_schema.COLUMNS`;
//! creates a missing table, adds missing columns, and never drops or alters
//! an existing column: a column whose type, nullability or key differs fails
//! the task, naming the column. Columns the server has beyond the list are
//! reported in the result (`extra_columns`), not removed.

use crate::sql_common::{col, exec_out, ident, lit, sections, Login};
use crate::sql_params;
use drover_engine::args::{get_str, req_str};
use drover_engine::module::{
    Action, Args, Change, Diff, Kind, Module, ModuleError, Observed, Param, Plan, Probe, Registry,
    TaskContext,
};
use serde_json::{json, Value};
use std::sync::Arc;

pub struct MysqlTableModule;

const PARAMS: &[Param] = sql_params![
    Param::new("db", Kind::Str).required(),
    Param::new("name", Kind::Str).required().aliases(&["table"]),
    Param::new("columns", Kind::Any).required(),
    Param::new("engine", Kind::Str),
    Param::new("encoding", Kind::Str),
];

#[derive(Debug, Clone)]
struct Column {
    name: String,
    ty: String,
    primary: bool,
    null: bool,
}

impl Column {
    fn sql(&self) -> String {
        format!(
            "{} {}{}",
            ident(&self.name),
            self.ty,
            if self.null { " NULL" } else { " NOT NULL" }
        )
    }
}

fn bad(value: &str, message: String) -> ModuleError {
    ModuleError::BadArg {
        name: "columns".into(),
        value: value.into(),
        message,
    }
}

fn parse_columns(v: &Value) -> Result<Vec<Column>, ModuleError> {
    let list = v.as_array().filter(|a| !a.is_empty()).ok_or_else(|| {
        bad(
            &v.to_string(),
            "expected a non-empty list of {name, type}".into(),
        )
    })?;
    let mut out: Vec<Column> = Vec::new();
    for c in list {
        let m = c
            .as_object()
            .ok_or_else(|| bad(&c.to_string(), "each column is a mapping".into()))?;
        for k in m.keys() {
            if !["name", "type", "primary_key", "null"].contains(&k.as_str()) {
                return Err(bad(
                    &c.to_string(),
                    format!("unknown column key `{k}` (name, type, primary_key, null)"),
                ));
            }
        }
        let s = |k: &str| {
            m.get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .unwrap_or("")
        };
        let b = |k: &str, d: bool| {
            m.get(k)
                .map(|v| {
                    drover_engine::args::truthy(v)
                        .ok_or_else(|| bad(&c.to_string(), format!("`{k}` must be a boolean")))
                })
                .unwrap_or(Ok(d))
        };
        let (name, ty) = (s("name"), s("type"));
        if name.is_empty() || ty.is_empty() {
            return Err(bad(
                &c.to_string(),
                "a column needs `name` and `type`".into(),
            ));
        }
        // The type goes into the SQL as written: no statement separators,
        // comments or quoting tricks.
        if ty.contains([';', '`', '#', '\\']) || ty.contains("--") || ty.contains("/*") {
            return Err(bad(ty, format!("column `{name}`: not a column type")));
        }
        if out.iter().any(|o| o.name.eq_ignore_ascii_case(name)) {
            return Err(bad(name, "column named twice".into()));
        }
        let primary = b("primary_key", false)?;
        out.push(Column {
            name: name.into(),
            ty: ty.into(),
            primary,
            null: b("null", !primary)?,
        });
    }
    Ok(out)
}

/// Canonical form of a type for comparison: lower case, single spaces,
/// synonyms resolved, integer display widths dropped (`int(11)` = `int`).
fn norm_type(t: &str) -> String {
    let t = t.to_ascii_lowercase();
    let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
    let t = t.replace(" (", "(").replace(", ", ",");
    let (base, rest) = match t.find(['(', ' ']) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t.as_str(), ""),
    };
    let base = match base {
        "integer" => "int",
        "bool" | "boolean" => return "tinyint".into(),
        "dec" | "numeric" | "fixed" => "decimal",
        "real" => "double",
        "character" => "char",
        b => b,
    };
    let mut rest = rest.to_string();
    if ["tinyint", "smallint", "mediumint", "int", "bigint"].contains(&base)
        && rest.starts_with('(')
    {
        rest = rest
            .split_once(')')
            .map(|x| x.1.to_string())
            .unwrap_or_default();
    }
    if base == "char" && rest.is_empty() {
        rest = "(1)".into();
    }
    format!("{base}{rest}")
}

impl Module for MysqlTableModule {
    fn name(&self) -> &'static str {
        "mysql_table"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let columns = parse_columns(args.get("columns").unwrap_or(&Value::Null))?;
        for (k, v) in [
            ("engine", get_str(args, "engine")?),
            ("encoding", get_str(args, "encoding")?),
        ] {
            if let Some(v) = v {
                crate::sql_common::check_word(k, &v)?;
            }
        }
        Ok(Box::new(TableAction {
            login: Login::from_args(args)?,
            db: req_str(args, "db")?,
            table: req_str(args, "name")?,
            columns,
            engine: get_str(args, "engine")?,
            encoding: get_str(args, "encoding")?,
        }))
    }
}

struct TableAction {
    login: Login,
    db: String,
    table: String,
    columns: Vec<Column>,
    engine: Option<String>,
    encoding: Option<String>,
}

impl Action for TableAction {
    fn probes(&self) -> Vec<Probe> {
        vec![self.login.probe(&[format!(
            "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY FROM information_schema.COLUMNS WHERE TABLE_SCHEMA={} AND TABLE_NAME={} ORDER BY ORDINAL_POSITION",
            lit(&self.db),
            lit(&self.table)
        )])]
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        let secs = sections(exec_out(observed, 0)?, 1, false)?;
        let have: Vec<(String, String, bool, bool)> = secs[0]
            .iter()
            .map(|r| {
                (
                    col(r, 0).into(),
                    col(r, 1).into(),
                    col(r, 2) == "YES",
                    col(r, 3) == "PRI",
                )
            })
            .collect();
        let full = format!("{}.{}", ident(&self.db), ident(&self.table));
        let shown = format!("{}.{}", self.db, self.table);
        let mut plan = Plan::default();
        plan.result.insert("db".into(), json!(self.db));
        plan.result.insert("table".into(), json!(self.table));
        let schema = |cols: &[Column]| -> String {
            cols.iter()
                .map(|c| {
                    format!(
                        "{} {}{}{}\n",
                        c.name,
                        c.ty,
                        if c.null { "" } else { " NOT NULL" },
                        if c.primary { " PRIMARY KEY" } else { "" }
                    )
                })
                .collect()
        };
        if have.is_empty() {
            let mut defs: Vec<String> = self.columns.iter().map(Column::sql).collect();
            let pk: Vec<String> = self
                .columns
                .iter()
                .filter(|c| c.primary)
                .map(|c| ident(&c.name))
                .collect();
            if !pk.is_empty() {
                defs.push(format!("PRIMARY KEY ({})", pk.join(", ")));
            }
            let mut sql = format!("CREATE TABLE {full} ({})", defs.join(", "));
            if let Some(e) = &self.engine {
                sql.push_str(&format!(" ENGINE={e}"));
            }
            if let Some(e) = &self.encoding {
                sql.push_str(&format!(" DEFAULT CHARSET={e}"));
            }
            plan.changes.push(
                Change::new(sql.clone(), vec![self.login.step(&[sql], &[])]).with_diff(Diff {
                    label: format!("table {shown}"),
                    before: String::new(),
                    after: schema(&self.columns),
                }),
            );
            return Ok(plan);
        }
        let mut add = Vec::new();
        for c in &self.columns {
            match have.iter().find(|h| h.0.eq_ignore_ascii_case(&c.name)) {
                None if c.primary => {
                    return Err(ModuleError::Failed(format!(
                        "table {shown}: primary key column `{}` is missing; drover adds plain columns only",
                        c.name
                    )))
                }
                None => add.push(c.clone()),
                Some((_, ty, null, pri)) => {
                    let mut diffs = Vec::new();
                    if norm_type(ty) != norm_type(&c.ty) {
                        diffs.push(format!("type is {ty}, the task wants {}", c.ty));
                    }
                    if *null != c.null {
                        diffs.push(format!("it is {}NULL, the task wants {}NULL", if *null { "" } else { "NOT " }, if c.null { "" } else { "NOT " }));
                    }
                    if *pri != c.primary {
                        diffs.push(format!("primary key on the server: {pri}, in the task: {}", c.primary));
                    }
                    if !diffs.is_empty() {
                        return Err(ModuleError::Failed(format!(
                            "table {shown}: column `{}` differs ({}); drover does not alter or drop existing columns",
                            c.name,
                            diffs.join("; ")
                        )));
                    }
                }
            }
        }
        let extra: Vec<String> = have
            .iter()
            .filter(|h| {
                !self
                    .columns
                    .iter()
                    .any(|c| c.name.eq_ignore_ascii_case(&h.0))
            })
            .map(|h| h.0.clone())
            .collect();
        plan.result.insert("extra_columns".into(), json!(extra));
        if add.is_empty() {
            plan.reason = Some(format!("table {shown} has every column"));
            return Ok(plan);
        }
        let parts: Vec<String> = add
            .iter()
            .map(|c| format!("ADD COLUMN {}", c.sql()))
            .collect();
        let sql = format!("ALTER TABLE {full} {}", parts.join(", "));
        let before: String = have.iter().map(|h| format!("{} {}\n", h.0, h.1)).collect();
        let after = before.clone()
            + &add
                .iter()
                .map(|c| format!("{} {}\n", c.name, c.ty))
                .collect::<String>();
        plan.changes.push(
            Change::new(sql.clone(), vec![self.login.step(&[sql], &[])]).with_diff(Diff {
                label: format!("table {shown}"),
                before,
                after,
            }),
        );
        Ok(plan)
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(MysqlTableModule));
}

#[cfg(test)]
mod tests {
    use super::norm_type;

    #[test]
    fn types_compare_by_meaning() {
        assert_eq!(norm_type("INTEGER"), norm_type("int(11)"));
        assert_eq!(norm_type("CHAR(32)"), "char(32)");
        assert_eq!(norm_type("decimal(10, 2)"), norm_type("DECIMAL(10,2)"));
        assert_eq!(norm_type("int unsigned"), norm_type("int(10) unsigned"));
        assert_ne!(norm_type("text"), norm_type("mediumtext"));
        assert_eq!(norm_type("char"), "char(1)");
    }
}
