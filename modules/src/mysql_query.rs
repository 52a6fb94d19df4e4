//! `mysql_query` module (community.mysql's name; alias `sql`): run SQL
//! statements (`query`, a string or a list) in one client session, in
//! `login_db` if given. Like `command`, the effect is not knowable before
//! running: it always runs (reports changed unless `changed_when` says
//! otherwise) and check mode reports "would run". The client's tab-separated
//! output (with column names) is the result's `stdout`. See `sql_common`.

use crate::sql_common::Login;
use crate::sql_params;
use drover_engine::args::{get_bool, get_str};
use drover_engine::module::{
    Action, Args, Change, Kind, Module, ModuleError, Observed, Param, Plan, Registry, TaskContext,
};
use serde_json::{json, Value};
use std::sync::Arc;

pub struct MysqlQueryModule;

const PARAMS: &[Param] = sql_params![
    Param::new("query", Kind::Any).required(),
    Param::new("login_db", Kind::Str),
    Param::new("single_transaction", Kind::Bool),
];

impl Module for MysqlQueryModule {
    fn name(&self) -> &'static str {
        "mysql_query"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["sql", "community.mysql.mysql_query"]
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let queries: Vec<String> = match args.get("query") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .map(|q| match q {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(ModuleError::BadArg {
                        name: "query".into(),
                        value: other.to_string(),
                        message: "each query must be a string".into(),
                    }),
                })
                .collect::<Result<_, _>>()?,
            other => {
                return Err(ModuleError::BadArg {
                    name: "query".into(),
                    value: other.map(|v| v.to_string()).unwrap_or_default(),
                    message: "expected a string or a list of strings".into(),
                })
            }
        };
        let queries: Vec<String> = queries
            .iter()
            .map(|q| q.trim().trim_end_matches(';').trim().to_string())
            .filter(|q| !q.is_empty())
            .collect();
        if queries.is_empty() {
            return Err(ModuleError::Failed("`query` holds no statement".into()));
        }
        Ok(Box::new(QueryAction {
            login: Login::from_args(args)?,
            queries,
            db: get_str(args, "login_db")?,
            single_transaction: get_bool(args, "single_transaction", false)?,
        }))
    }
}

struct QueryAction {
    login: Login,
    queries: Vec<String>,
    db: Option<String>,
    single_transaction: bool,
}

impl Action for QueryAction {
    fn plan(&self, _observed: &[Observed]) -> Result<Plan, ModuleError> {
        let mut sql = String::new();
        if self.single_transaction {
            sql.push_str("START TRANSACTION;\n");
        }
        for q in &self.queries {
            sql.push_str(q);
            sql.push_str(";\n");
        }
        if self.single_transaction {
            sql.push_str("COMMIT;\n");
        }
        let dbopt = self.db.as_ref().map(|d| format!("--database={d}"));
        let opts: Vec<&str> = dbopt.iter().map(String::as_str).collect();
        let mut plan = Plan {
            unknown_until_run: true,
            ..Default::default()
        };
        plan.result
            .insert("executed_queries".into(), json!(self.queries));
        plan.changes.push(Change::new(
            format!(
                "run {} SQL statement{}{}",
                self.queries.len(),
                if self.queries.len() == 1 { "" } else { "s" },
                self.db
                    .as_ref()
                    .map(|d| format!(" in {d}"))
                    .unwrap_or_default()
            ),
            vec![self.login.raw_step(&sql, &opts, true)],
        ));
        Ok(plan)
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(MysqlQueryModule));
}
