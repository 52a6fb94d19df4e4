//! `debug` module: print a message (`msg`, default "Hello world!") or the
//! value of a variable (`var`, a name or dotted/indexed path) on the
//! controller. Never touches the host and never changes anything. Whether
//! the output is shown for `verbosity` is the engine's decision.

use drover_engine::args::get_int;
use drover_engine::module::{
    Action, Args, Kind, Module, ModuleError, Observed, Param, Plan, Registry, TaskContext,
};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Ansible's placeholder for an undefined `var`.
pub const NOT_DEFINED: &str = "VARIABLE IS NOT DEFINED!";

pub struct DebugModule;

const PARAMS: &[Param] = &[
    Param::new("msg", Kind::Any),
    Param::new("var", Kind::Str),
    Param::new("verbosity", Kind::Int),
];

impl Module for DebugModule {
    fn name(&self) -> &'static str {
        "debug"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn controller_only(&self) -> bool {
        true
    }
    fn prepare(&self, args: &Args, ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        if let Some(v) = get_int(args, "verbosity")? {
            if v < 0 {
                return Err(ModuleError::BadArg {
                    name: "verbosity".into(),
                    value: v.to_string(),
                    message: "must be 0 or more".into(),
                });
            }
        }
        let msg = args.get("msg").filter(|v| !v.is_null());
        let var = args.get("var").filter(|v| !v.is_null());
        let mut result = Map::new();
        match (msg, var) {
            (Some(_), Some(_)) => {
                return Err(ModuleError::Failed(
                    "parameters are mutually exclusive: msg|var".into(),
                ))
            }
            (Some(m), None) => {
                result.insert("msg".into(), m.clone());
            }
            (None, Some(v)) => {
                let name = match v {
                    Value::String(s) => s.trim().to_string(),
                    other => other.to_string(),
                };
                let value = lookup(&name, ctx)?.unwrap_or_else(|| json!(NOT_DEFINED));
                result.insert(name, value);
            }
            (None, None) => {
                result.insert("msg".into(), json!("Hello world!"));
            }
        }
        Ok(Box::new(DebugAction(result)))
    }
}

/// The value of `var`: a path through the variables (`a.b[0]['c']`), or,
/// for anything more complex, the rendered expression. `None` = undefined.
fn lookup(expr: &str, ctx: &dyn TaskContext) -> Result<Option<Value>, ModuleError> {
    if let Some(path) = parse_path(expr) {
        let mut v = ctx.vars();
        for seg in &path {
            let next = match (seg, v) {
                (Seg::Key(k), Value::Object(m)) => m.get(k),
                (Seg::Index(i), Value::Array(a)) => a.get(*i),
                _ => None,
            };
            match next {
                Some(n) => v = n,
                None => return Ok(None),
            }
        }
        return Ok(Some(v.clone()));
    }
    match ctx.render(&format!("{{{{ {expr} }}}}")) {
        Ok(s) => Ok(Some(Value::String(s))),
        Err(e) if e.to_string().to_ascii_lowercase().contains("undefined") => Ok(None),
        Err(e) => Err(e),
    }
}

#[derive(Debug, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Parse `name(.key|[N]|['key']|["key"])*`; None when it is anything else.
fn parse_path(s: &str) -> Option<Vec<Seg>> {
    let ident_end = |t: &str| {
        t.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(t.len())
    };
    let mut out = Vec::new();
    let n = ident_end(s);
    if n == 0 || s.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    out.push(Seg::Key(s[..n].to_string()));
    let mut rest = &s[n..];
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let n = ident_end(r);
            if n == 0 {
                return None;
            }
            out.push(Seg::Key(r[..n].to_string()));
            rest = &r[n..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']')?;
            let inner = r[..close].trim();
            let quoted = inner
                .strip_prefix('\'')
                .and_then(|x| x.strip_suffix('\''))
                .or_else(|| inner.strip_prefix('"').and_then(|x| x.strip_suffix('"')));
            match quoted {
                Some(k) => out.push(Seg::Key(k.to_string())),
                None => out.push(Seg::Index(inner.parse().ok()?)),
            }
            rest = &r[close + 1..];
        } else {
            return None;
        }
    }
    Some(out)
}

struct DebugAction(Map<String, Value>);

impl Action for DebugAction {
    fn plan(&self, _observed: &[Observed]) -> Result<Plan, ModuleError> {
        Ok(Plan {
            result: self.0.clone(),
            ..Default::default()
        })
    }
}

pub fn register(r: &mut Registry) {
    r.add(Arc::new(DebugModule));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            parse_path("a.b[2]['c d'][\"e\"]"),
            Some(vec![
                Seg::Key("a".into()),
                Seg::Key("b".into()),
                Seg::Index(2),
                Seg::Key("c d".into()),
                Seg::Key("e".into()),
            ])
        );
        assert_eq!(parse_path("a | length"), None);
        assert_eq!(parse_path("1a"), None);
        assert_eq!(parse_path("a."), None);
        assert_eq!(parse_path("a[x]"), None);
    }
}
