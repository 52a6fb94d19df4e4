//! `mysql_user` module (community.mysql's name): an account `name`@`host`
//! present with a password and privileges (`priv`, `append_privs`), or
//! absent. The password is compared, not reset on every run: the
//! `mysql_native_password` hash (`*` + SHA1(SHA1(pw))) is computed on the
//! controller and compared with `mysql.user.authentication_string`; the
//! server only ever receives the hash (`IDENTIFIED WITH
//! mysql_native_password AS '*…'`), on stdin, so the plain password never
//! leaves the controller. Neither the password nor the hash is shown in a
//! change, a diff or a result.

use crate::mysql_priv::{describe, parse_grants, parse_priv, statements, PrivMap};
use crate::sql_common::{col, exec_out, get_secret, lit, native_hash, sections, Login};
use crate::sql_params;
use drover_engine::args::{get_bool, get_str, req_str};
use drover_engine::module::{
    Action, Args, Change, Diff, Kind, Module, ModuleError, Observed, Param, Plan, Probe, Registry,
    TaskContext,
};
use serde_json::json;
use std::sync::Arc;

pub struct MysqlUserModule;

const STATES: &[&str] = &["present", "absent"];
const UPDATE: &[&str] = &["always", "on_create"];

const PARAMS: &[Param] = sql_params![
    Param::new("name", Kind::Str).required().aliases(&["user"]),
    Param::new("host", Kind::Str),
    Param::new("password", Kind::Str),
    Param::new("encrypted", Kind::Bool),
    Param::new("priv", Kind::Any),
    Param::new("append_privs", Kind::Bool),
    Param::new("state", Kind::Str).choices(STATES),
    Param::new("update_password", Kind::Str).choices(UPDATE),
];

impl Module for MysqlUserModule {
    fn name(&self) -> &'static str {
        "mysql_user"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["community.mysql.mysql_user"]
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let name = req_str(args, "name")?;
        let host = get_str(args, "host")?.unwrap_or_else(|| "localhost".into());
        let state = get_str(args, "state")?.unwrap_or_else(|| "present".into());
        let update = get_str(args, "update_password")?.unwrap_or_else(|| "always".into());
        for (n, v, c) in [
            ("state", &state, STATES),
            ("update_password", &update, UPDATE),
        ] {
            if !c.contains(&v.as_str()) {
                return Err(ModuleError::BadChoice {
                    name: n.into(),
                    value: v.clone(),
                    choices: c.join("|"),
                });
            }
        }
        let hash = match get_secret(args, "password")? {
            None => None,
            Some(p) if get_bool(args, "encrypted", false)? => {
                let ok = p.len() == 41
                    && p.starts_with('*')
                    && p[1..].bytes().all(|b| b.is_ascii_hexdigit());
                if !ok {
                    return Err(ModuleError::BadArg {
                        name: "password".into(),
                        value: "<hidden>".into(),
                        message: "with encrypted: yes it must be a mysql_native_password hash (`*` + 40 hex digits)".into(),
                    });
                }
                Some(p.to_ascii_uppercase())
            }
            Some(p) => Some(native_hash(&p)),
        };
        let privs = match args.get("priv") {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(parse_priv(v)?),
        };
        Ok(Box::new(UserAction {
            login: Login::from_args(args)?,
            account: format!("{}@{}", lit(&name), lit(&host)),
            name,
            host,
            present: state == "present",
            hash,
            on_create: update == "on_create",
            privs,
            append: get_bool(args, "append_privs", false)?,
        }))
    }
}

struct UserAction {
    login: Login,
    name: String,
    host: String,
    account: String,
    present: bool,
    hash: Option<String>,
    on_create: bool,
    privs: Option<PrivMap>,
    append: bool,
}

impl Action for UserAction {
    fn probes(&self) -> Vec<Probe> {
        vec![self.login.probe(&[
            format!(
                "SELECT plugin, authentication_string FROM mysql.user WHERE User={} AND Host={}",
                lit(&self.name),
                lit(&self.host)
            ),
            format!("SHOW GRANTS FOR {}", self.account),
        ])]
    }

    fn plan(&self, observed: &[Observed]) -> Result<Plan, ModuleError> {
        // SHOW GRANTS fails for a missing account: tolerated, the first
        // section says whether it exists.
        let secs = sections(exec_out(observed, 0)?, 2, true)?;
        let exists = secs[0]
            .first()
            .map(|r| (col(r, 0).to_string(), col(r, 1).to_string()));
        if exists.is_some() && !exec_out(observed, 0)?.success() {
            sections(exec_out(observed, 0)?, 2, false)?;
        }
        let grants: Vec<String> = secs[1].iter().map(|r| col(r, 0).to_string()).collect();
        let current = parse_grants(&grants);
        let acct = format!("'{}'@'{}'", self.name, self.host);
        let mut plan = Plan::default();
        plan.result.insert("user".into(), json!(self.name));
        plan.result.insert("host".into(), json!(self.host));
        let l = &self.login;
        let auth = |h: &str| format!(" IDENTIFIED WITH mysql_native_password AS {}", lit(h));
        match (self.present, &exists) {
            (false, None) => {
                return Ok(Plan {
                    reason: Some(format!("user {acct} absent")),
                    ..plan
                })
            }
            (false, Some(_)) => {
                let sql = format!("DROP USER {}", self.account);
                plan.changes.push(
                    Change::new(sql.clone(), vec![l.step(&[sql], &[])]).with_diff(Diff {
                        label: format!("user {acct}"),
                        before: format!("present\n{}", describe(&current)),
                        after: "absent\n".into(),
                    }),
                );
                return Ok(plan);
            }
            (true, None) => {
                let sql = format!(
                    "CREATE USER {}{}",
                    self.account,
                    self.hash.as_deref().map(auth).unwrap_or_default()
                );
                let shown = format!(
                    "CREATE USER {}{}",
                    self.account,
                    if self.hash.is_some() {
                        " IDENTIFIED BY <password>"
                    } else {
                        ""
                    }
                );
                plan.changes.push(
                    Change::new(shown, vec![l.step(&[sql], &[])]).with_diff(Diff {
                        label: format!("user {acct}"),
                        before: "absent\n".into(),
                        after: "present\n".into(),
                    }),
                );
            }
            (true, Some((plugin, stored))) => {
                if let (Some(h), false) = (&self.hash, self.on_create) {
                    if plugin != "mysql_native_password" || !stored.eq_ignore_ascii_case(h) {
                        let sql = format!("ALTER USER {}{}", self.account, auth(h));
                        plan.changes.push(
                            Change::new(
                                format!("ALTER USER {} IDENTIFIED BY <password>", self.account),
                                vec![l.step(&[sql], &[])],
                            )
                            .with_diff(Diff {
                                label: format!("password of {acct}"),
                                before: "(another password)\n".into(),
                                after: "(the given password)\n".into(),
                            }),
                        );
                    }
                }
            }
        }
        if let Some(want) = &self.privs {
            let stmts = statements(&current, want, self.append, &self.account);
            if !stmts.is_empty() {
                let mut after = current.clone();
                for (k, p) in want {
                    let e = after.entry(k.clone()).or_default();
                    if self.append {
                        e.privs.extend(p.privs.iter().cloned());
                        e.grant_option |= p.grant_option;
                    } else {
                        *e = p.clone();
                    }
                }
                if !self.append {
                    after.retain(|k, _| want.contains_key(k));
                }
                plan.changes.push(
                    Change::new(stmts.join("; "), vec![l.step(&stmts, &[])]).with_diff(Diff {
                        label: format!("privileges of {acct}"),
                        before: describe(&current),
                        after: describe(&after),
                    }),
                );
            }
        }
        if plan.changes.is_empty() {
            plan.reason = Some(format!("user {acct} present as wanted"));
        }
        Ok(plan)
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(MysqlUserModule));
}
