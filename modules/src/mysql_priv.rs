//! Privilege specs of `mysql_user`: Ansible's `priv` (string
//! `db.*:ALL,GRANT/db2.t:SELECT,INSERT` or a mapping), the grants a server
//! reports (`SHOW GRANTS` lines), and the REVOKE/GRANT statements between.

use crate::sql_common::ident;
use drover_engine::module::ModuleError;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Privileges on one target (`db.*`, `db.table`, `*.*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Privs {
    pub privs: BTreeSet<String>,
    pub grant_option: bool,
}

impl Privs {
    pub fn text(&self) -> String {
        let mut v: Vec<String> = self.privs.iter().cloned().collect();
        if self.grant_option {
            v.push("GRANT".into());
        }
        if v.is_empty() {
            "USAGE".into()
        } else {
            v.join(",")
        }
    }
}

/// Target (unquoted database, table) → privileges.
pub type PrivMap = BTreeMap<(String, String), Privs>;

fn bad(value: &str, message: &str) -> ModuleError {
    ModuleError::BadArg {
        name: "priv".into(),
        value: value.into(),
        message: message.into(),
    }
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2 && s.starts_with('`') && s.ends_with('`') {
        s[1..s.len() - 1].replace("``", "`")
    } else {
        s.to_string()
    }
}

/// Split `db.table` (each part maybe backticked) into its two parts.
fn split_target(t: &str) -> Option<(String, String)> {
    let t = t.trim();
    let mut in_q = false;
    for (i, c) in t.char_indices() {
        match c {
            '`' => in_q = !in_q,
            '.' if !in_q => return Some((unquote(&t[..i]), unquote(&t[i + 1..]))),
            _ => {}
        }
    }
    None
}

fn key(db: &str, table: &str) -> (String, String) {
    (db.to_string(), table.to_string())
}

/// SQL target (`*.*`, `` `db`.* ``, `` `db`.`t` ``).
pub fn sql_target(k: &(String, String)) -> String {
    let part = |p: &str| if p == "*" { "*".into() } else { ident(p) };
    format!("{}.{}", part(&k.0), part(&k.1))
}

fn parse_list(target: &str, list: &str) -> Result<Privs, ModuleError> {
    let mut p = Privs::default();
    for w in list.split(',') {
        let w = w.trim().to_ascii_uppercase();
        let w = w.split_whitespace().collect::<Vec<_>>().join(" ");
        if w.is_empty() {
            continue;
        }
        if w == "GRANT" || w == "GRANT OPTION" {
            p.grant_option = true;
        } else if w == "ALL" || w == "ALL PRIVILEGES" {
            p.privs.insert("ALL".into());
        } else if w == "USAGE" {
            continue;
        } else if w
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b' ' || b == b'_')
        {
            p.privs.insert(w);
        } else {
            return Err(bad(
                &format!("{target}:{list}"),
                &format!("`{w}` is not a privilege name"),
            ));
        }
    }
    Ok(p)
}

fn add(map: &mut PrivMap, target: &str, list: &str) -> Result<(), ModuleError> {
    let (db, t) = split_target(target)
        .ok_or_else(|| bad(target, "a target is `db.table`, `db.*` or `*.*`"))?;
    if db.is_empty() || t.is_empty() {
        return Err(bad(target, "a target is `db.table`, `db.*` or `*.*`"));
    }
    let p = parse_list(target, list)?;
    let e = map.entry(key(&db, &t)).or_default();
    e.privs.extend(p.privs);
    e.grant_option |= p.grant_option;
    Ok(())
}

/// Parse Ansible's `priv` argument.
pub fn parse_priv(v: &Value) -> Result<PrivMap, ModuleError> {
    let mut map = PrivMap::new();
    match v {
        Value::String(s) => {
            for item in s.split('/').map(str::trim).filter(|i| !i.is_empty()) {
                let (t, l) = item
                    .rsplit_once(':')
                    .ok_or_else(|| bad(item, "expected `db.table:PRIV,PRIV`"))?;
                add(&mut map, t, l)?;
            }
        }
        Value::Object(m) => {
            for (t, l) in m {
                let l = match l {
                    Value::String(s) => s.clone(),
                    Value::Array(a) => a
                        .iter()
                        .map(|x| x.as_str().unwrap_or_default().to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                    other => {
                        return Err(bad(
                            &other.to_string(),
                            "privileges must be a string or list",
                        ))
                    }
                };
                add(&mut map, t, &l)?;
            }
        }
        other => return Err(bad(&other.to_string(), "expected a string or a mapping")),
    }
    Ok(map)
}

/// Parse `SHOW GRANTS` lines (PROXY and role grants are ignored).
pub fn parse_grants(lines: &[String]) -> PrivMap {
    let mut map = PrivMap::new();
    for l in lines {
        let Some(rest) = l.strip_prefix("GRANT ") else {
            continue;
        };
        let Some(on) = rest.find(" ON ") else {
            continue;
        };
        let privs = &rest[..on];
        if privs == "PROXY" {
            continue;
        }
        let after = &rest[on + 4..];
        let Some(to) = after.find(" TO ") else {
            continue;
        };
        let target = &after[..to];
        let Some((db, t)) = split_target(target) else {
            continue;
        };
        // Column lists `SELECT (`a`, `b`)` are kept whole as one privilege.
        let mut p = Privs::default();
        let mut depth = 0;
        let mut cur = String::new();
        for c in privs.chars().chain(std::iter::once(',')) {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if c == ',' && depth == 0 {
                let w = cur.trim().to_string();
                match w.as_str() {
                    "ALL PRIVILEGES" | "ALL" => {
                        p.privs.insert("ALL".into());
                    }
                    "USAGE" | "" => {}
                    _ => {
                        p.privs.insert(w);
                    }
                }
                cur.clear();
            } else {
                cur.push(c);
            }
        }
        p.grant_option = l.ends_with(" WITH GRANT OPTION");
        let e = map.entry(key(&db, &t)).or_default();
        e.privs.extend(p.privs);
        e.grant_option |= p.grant_option;
    }
    map
}

/// Statements that take `current` to `desired` for `user` (`'u'@'h'`).
pub fn statements(current: &PrivMap, desired: &PrivMap, append: bool, user: &str) -> Vec<String> {
    let mut out = Vec::new();
    let empty = Privs::default();
    for (k, want) in desired {
        let have = current.get(k).unwrap_or(&empty);
        let t = sql_target(k);
        let grant = |privs: &BTreeSet<String>, opt: bool| {
            let list = if privs.is_empty() {
                "USAGE".to_string()
            } else if privs.contains("ALL") {
                "ALL PRIVILEGES".to_string()
            } else {
                privs.iter().cloned().collect::<Vec<_>>().join(", ")
            };
            let wg = if opt { " WITH GRANT OPTION" } else { "" };
            format!("GRANT {list} ON {t} TO {user}{wg}")
        };
        if append {
            let missing: BTreeSet<String> = if have.privs.contains("ALL") {
                BTreeSet::new()
            } else {
                want.privs.difference(&have.privs).cloned().collect()
            };
            if !missing.is_empty() || (want.grant_option && !have.grant_option) {
                out.push(grant(&missing, want.grant_option && !have.grant_option));
            }
        } else if have != want {
            if !have.privs.is_empty() {
                out.push(format!("REVOKE ALL PRIVILEGES ON {t} FROM {user}"));
            }
            if have.grant_option {
                out.push(format!("REVOKE GRANT OPTION ON {t} FROM {user}"));
            }
            if !want.privs.is_empty() || want.grant_option || k.0 == "*" {
                out.push(grant(&want.privs, want.grant_option));
            }
        }
    }
    if !append {
        for (k, have) in current {
            if desired.contains_key(k) {
                continue;
            }
            let t = sql_target(k);
            if !have.privs.is_empty() {
                out.push(format!("REVOKE ALL PRIVILEGES ON {t} FROM {user}"));
            }
            if have.grant_option {
                out.push(format!("REVOKE GRANT OPTION ON {t} FROM {user}"));
            }
        }
    }
    out
}

/// One line per target, for diffs.
pub fn describe(m: &PrivMap) -> String {
    m.iter()
        .filter(|(_, p)| !p.privs.is_empty() || p.grant_option)
        .map(|(k, p)| format!("{}.{}:{}\n", k.0, k.1, p.text()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ansible_priv_string_and_grants() {
        let want = parse_priv(&json!(
            "ccnet_db.*:ALL/seafile_db.*:ALL,GRANT/db2.t:select, insert"
        ))
        .unwrap();
        assert_eq!(want[&key("db2", "t")].privs.len(), 2);
        assert!(want[&key("seafile_db", "*")].grant_option);
        let have = parse_grants(&[
            "GRANT USAGE ON *.* TO `seafile`@`%` IDENTIFIED BY PASSWORD '*AB'".into(),
            "GRANT ALL PRIVILEGES ON `ccnet_db`.* TO `seafile`@`%`".into(),
            "GRANT SELECT, INSERT ON `old`.* TO `seafile`@`%`".into(),
        ]);
        let s = statements(&have, &want, false, "'seafile'@'%'");
        assert_eq!(
            s,
            vec![
                "GRANT INSERT, SELECT ON `db2`.`t` TO 'seafile'@'%'",
                "GRANT ALL PRIVILEGES ON `seafile_db`.* TO 'seafile'@'%' WITH GRANT OPTION",
                "REVOKE ALL PRIVILEGES ON `old`.* FROM 'seafile'@'%'",
            ]
        );
        assert!(statements(&have, &want, true, "u")
            .iter()
            .all(|s| s.starts_with("GRANT")));
        assert!(parse_priv(&json!("db.*:SELECT; DROP")).is_err());
        assert_eq!(sql_target(&key("a`b", "*")), "`a``b`.*");
        let g = parse_grants(&["GRANT SELECT ON `a``b`.`t.x` TO `u`@`h`".into()]);
        assert!(g.contains_key(&key("a`b", "t.x")));
    }
}
