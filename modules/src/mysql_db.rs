//! `mysql_db` module (community.mysql's name): databases present (with
//! `encoding`/`collation`, altered when they differ) or absent; `import`
//! loads a dump (`target`, plain or .gz/.bz2/.xz) into a database that does
//! not exist yet — once: an existing database is left alone, unlike
//! Ansible, which imports on every run; `dump` writes `target` with
//! mysqldump (always a change, as in Ansible). Observes
//! `information_schema.SCHEMATA`; see `sql_common` for the client plumbing.

use crate::sql_common::{col, exec_out, ident, lit, sections, Login};
use crate::sql_params;
use drover_engine::args::{get_str, get_str_list};
use drover_engine::module::{
    Action, Args, Change, Diff, Kind, Module, ModuleError, Observed, Param, Plan, Probe, Registry,
    TaskContext,
};
use serde_json::json;
use std::sync::Arc;

pub struct MysqlDbModule;

const STATES: &[&str] = &["present", "absent", "import", "dump"];

const PARAMS: &[Param] = sql_params![
    Param::new("name", Kind::List).required().aliases(&["db"]),
    Param::new("state", Kind::Str).choices(STATES),
    Param::new("encoding", Kind::Str),
    Param::new("collation", Kind::Str),
    Param::new("target", Kind::Str),
    Param::new("single_transaction", Kind::Bool),
];

/// Decompresses `$2` by its extension into the client (`"$@"` after shift 2).
const IMPORT: &str = "c=$(head -c \"$1\"; echo .); f=$2; shift 2; [ -r \"$f\" ] || { echo \"cannot read $f\" >&2; exit 1; }; case $f in *.gz) z=gzip;; *.bz2) z=bzip2;; *.xz) z=xz;; *) z=cat;; esac; { if [ $z = cat ]; then cat -- \"$f\"; else $z -dc -- \"$f\"; fi; } | { printf %s \"${c%.}\" | \"$@\" 3<&0 0<&4 4<&-; } 4<&0";

/// Writes mysqldump's output to `$2` (0600), gzip'ed for `.gz`.
const DUMP: &str = "c=$(head -c \"$1\"; echo .); f=$2; shift 2; umask 077; case $f in *.gz) printf %s \"${c%.}\" | \"$@\" 3<&0 >\"$f.tmp\" && gzip -c \"$f.tmp\" >\"$f\"; r=$?; rm -f \"$f.tmp\"; exit $r;; *) printf %s \"${c%.}\" | \"$@\" 3<&0 >\"$f\";; esac";

impl Module for MysqlDbModule {
    fn name(&self) -> &'static str {
        "mysql_db"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["community.mysql.mysql_db"]
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let names = get_str_list(args, "name")?;
        if names.is_empty() || names.iter().any(|n| n.is_empty()) {
            return Err(ModuleError::BadArg {
                name: "name".into(),
                value: json!(names).to_string(),
                message: "needs at least one non-empty database name".into(),
            });
        }
        let state = get_str(args, "state")?.unwrap_or_else(|| "present".into());
        if !STATES.contains(&state.as_str()) {
            return Err(ModuleError::BadChoice {
                name: "state".into(),
                value: state,
                choices: STATES.join("|"),
            });
        }
        let target = get_str(args, "target")?;
        if matches!(state.as_str(), "import" | "dump") {
            if target.is_none() {
                return Err(ModuleError::Failed(format!(
                    "state={state} needs `target` (the dump file on the host)"
                )));
            }
            if names.len() != 1 {
                return Err(ModuleError::BadArg {
                    name: "name".into(),
                    value: names.join(","),
                    message: format!("state={state} takes exactly one database"),
                });
            }
        }
        Ok(Box::new(DbAction {
            login: Login::from_args(args)?,
            names,
            state,
            encoding: get_str(args, "encoding")?,
            collation: get_str(args, "collation")?,
            target,
            single_transaction: drover_engine::args::get_bool(args, "single_transaction", false)?,
        }))
    }
}

struct DbAction {
    login: Login,
    names: Vec<String>,
    state: String,
    encoding: Option<String>,
    collation: Option<String>,
    target: Option<String>,
    single_transaction: bool,
}

impl DbAction {
    fn charset_clause(&self) -> String {
        let mut s = String::new();
        if let Some(e) = &self.encoding {
            s.push_str(&format!(" CHARACTER SET {}", lit(e)));
        }
        if let Some(c) = &self.collation {
            s.push_str(&format!(" COLLATE {}", lit(c)));
        }
        s
    }
}

fn state_diff(name: &str, before: &str, after: &str) -> Diff {
    Diff {
        label: format!("database {name}"),
        before: format!("{before}\n"),
        after: format!("{after}\n"),
    }
}

impl Action for DbAction {
    fn probes(&self) -> Vec<Probe> {
        let list: Vec<String> = self.names.iter().map(|n| lit(n)).collect();
        let mut p = vec![self.login.probe(&[format!(
            "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ({})",
            list.join(",")
        )])];
        if let ("import", Some(t)) = (self.state.as_str(), &self.target) {
            p.push(Probe::Stat {
                path: t.clone(),
                follow: true,
            });
        }
        p
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        let secs = sections(exec_out(observed, 0)?, 1, false)?;
        let found: Vec<(String, String, String)> = secs[0]
            .iter()
            .map(|r| (col(r, 0).into(), col(r, 1).into(), col(r, 2).into()))
            .collect();
        let cur = |n: &str| found.iter().find(|f| f.0 == n);
        let mut plan = Plan::default();
        plan.result.insert("db".into(), json!(self.names.join(",")));
        plan.result.insert("db_list".into(), json!(self.names));
        let l = &self.login;
        for n in &self.names {
            match (self.state.as_str(), cur(n)) {
                ("present" | "import", None) => {
                    let sql = format!("CREATE DATABASE {}{}", ident(n), self.charset_clause());
                    let mut steps = vec![l.step(std::slice::from_ref(&sql), &[])];
                    let mut summary = sql.clone();
                    if self.state == "import" {
                        let t = self.target.as_deref().unwrap_or_default();
                        if !matches!(observed.get(1), Some(Observed::Stat(Some(_)))) {
                            return Err(ModuleError::Failed(format!(
                                "dump file {t} not found on the host"
                            )));
                        }
                        steps.push(l.script_step(
                            IMPORT,
                            &[t],
                            "mysql",
                            &[&format!("--database={n}")],
                        ));
                        summary = format!("{sql}; import {t}");
                    }
                    plan.changes.push(
                        Change::new(summary, steps).with_diff(state_diff(n, "absent", "present")),
                    );
                }
                ("present", Some((_, cs, co))) => {
                    let enc_bad = self
                        .encoding
                        .as_ref()
                        .is_some_and(|e| !e.eq_ignore_ascii_case(cs));
                    let col_bad = self
                        .collation
                        .as_ref()
                        .is_some_and(|c| !c.eq_ignore_ascii_case(co));
                    if enc_bad || col_bad {
                        let sql = format!("ALTER DATABASE {}{}", ident(n), self.charset_clause());
                        plan.changes.push(
                            Change::new(sql.clone(), vec![l.step(&[sql], &[])]).with_diff(Diff {
                                label: format!("database {n}"),
                                before: format!("{cs} {co}\n"),
                                after: format!(
                                    "{} {}\n",
                                    self.encoding.as_deref().unwrap_or(cs),
                                    self.collation.as_deref().unwrap_or("(default)")
                                ),
                            }),
                        );
                    }
                }
                ("absent", Some(_)) => {
                    let sql = format!("DROP DATABASE {}", ident(n));
                    plan.changes.push(
                        Change::new(sql.clone(), vec![l.step(&[sql], &[])])
                            .with_diff(state_diff(n, "present", "absent")),
                    );
                }
                ("dump", _) => {
                    let t = self.target.as_deref().unwrap_or_default();
                    let mut opts = vec!["--routines", "--events"];
                    if self.single_transaction {
                        opts.push("--single-transaction");
                    }
                    opts.push("--");
                    opts.push(n);
                    plan.changes.push(Change::new(
                        format!("dump database {n} to {t}"),
                        vec![l.script_step(DUMP, &[t], "mysqldump", &opts)],
                    ));
                }
                _ => {}
            }
        }
        if plan.changes.is_empty() {
            plan.reason = Some(match self.state.as_str() {
                "absent" => format!("database {} absent", self.names.join(", ")),
                "import" => format!(
                    "database {} exists; the dump is imported only into a new database",
                    self.names.join(", ")
                ),
                _ => format!("database {} present", self.names.join(", ")),
            });
        }
        Ok(plan)
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(MysqlDbModule));
}
