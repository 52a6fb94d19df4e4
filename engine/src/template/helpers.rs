//! The handlebars helpers drover registers: how a helper is called (strict
//! about undefined arguments unless it is `default`/`defined`), the table of
//! all helpers, `if`/`unless` with Ansible truthiness, `default`/`defined`.
//! The bodies of the others live in [`super::strings`] (text, encoding, paths,
//! lookups) and [`super::ops`] (comparison, logic, numbers, lists). Every
//! helper returns a JSON value, so it composes in subexpressions and keeps
//! its type in `render_value`.

use super::{ops, strings};
use base64::Engine as _;
use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, Output, RenderContext, RenderError,
    RenderErrorReason, Renderable, ScopedJson,
};
use serde_json::Value;

/// Why a helper failed.
pub(crate) enum Fail {
    /// An undefined variable (or key), by name.
    Missing(String),
    /// Anything else, with a message.
    Bad(String),
}

pub(crate) fn bad<T>(msg: impl Into<String>) -> Result<T, Fail> {
    Err(Fail::Bad(msg.into()))
}

type StrictFn = fn(&[&Value]) -> Result<Value, Fail>;
type LenientFn = fn(&[Option<&Value>]) -> Result<Value, Fail>;

#[derive(Clone, Copy)]
enum Body {
    /// Every argument must be defined.
    Strict(StrictFn),
    /// Undefined arguments come in as `None` (`default`, `defined`).
    Lenient(LenientFn),
}

/// One helper: name, accepted argument count and body.
#[derive(Clone, Copy)]
struct Fun {
    name: &'static str,
    min: usize,
    max: usize,
    body: Body,
}

impl HelperDef for Fun {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let params = h.params();
        if params.len() < self.min || params.len() > self.max {
            let want = if self.min == self.max {
                self.min.to_string()
            } else if self.max == usize::MAX {
                format!("at least {}", self.min)
            } else {
                format!("{} to {}", self.min, self.max)
            };
            return Err(other(format!(
                "helper `{}` takes {want} argument(s), got {}",
                self.name,
                params.len()
            )));
        }
        let result = match self.body {
            Body::Strict(f) => {
                if let Some(p) = params.iter().find(|p| p.is_value_missing()) {
                    let name = p.relative_path().cloned().unwrap_or_else(|| "?".into());
                    return Err(RenderErrorReason::MissingVariable(Some(name)).into());
                }
                let values: Vec<&Value> = params.iter().map(|p| p.value()).collect();
                f(&values)
            }
            Body::Lenient(f) => {
                let values: Vec<Option<&Value>> = params
                    .iter()
                    .map(|p| (!p.is_value_missing()).then(|| p.value()))
                    .collect();
                f(&values)
            }
        };
        match result {
            Ok(v) => Ok(ScopedJson::Derived(v)),
            Err(Fail::Missing(name)) => Err(RenderErrorReason::MissingVariable(Some(name)).into()),
            Err(Fail::Bad(msg)) => Err(other(format!("helper `{}`: {msg}", self.name))),
        }
    }
}

fn other(msg: String) -> RenderError {
    RenderErrorReason::Other(msg).into()
}

const fn strict(name: &'static str, min: usize, max: usize, f: StrictFn) -> Fun {
    Fun {
        name,
        min,
        max,
        body: Body::Strict(f),
    }
}

const MANY: usize = usize::MAX;

/// The internal helper `render_value`/`condition` wrap one expression in:
/// it prints its argument as JSON so the type survives.
pub(crate) const VALUE_HELPER: &str = "__value";

const HELPERS: &[Fun] = &[
    Fun {
        name: "default",
        min: 2,
        max: 3,
        body: Body::Lenient(default),
    },
    Fun {
        name: "defined",
        min: 1,
        max: 1,
        body: Body::Lenient(defined),
    },
    strict(VALUE_HELPER, 1, 1, |a| Ok(Value::String(a[0].to_string()))),
    strict("join", 1, 2, strings::join),
    strict("to_json", 1, 1, |a| Ok(Value::String(a[0].to_string()))),
    // Text → value, for lists and maps a playbook can only build as text
    // (`{{#each}}`): `reals: "{{ from_json json_text }}"` keeps the list.
    strict("from_json", 1, 1, |a| {
        serde_json::from_str(&text(a[0])).or_else(|e| bad(format!("from_json: {e}")))
    }),
    strict("to_nice_json", 1, 1, |a| {
        serde_json::to_string_pretty(a[0])
            .map(Value::String)
            .or_else(|e| bad(e.to_string()))
    }),
    strict("to_yaml", 1, 1, |a| {
        to_yaml_string(a[0]).map(Value::String).or_else(bad)
    }),
    strict("upper", 1, 1, |a| {
        Ok(Value::String(text(a[0]).to_uppercase()))
    }),
    strict("lower", 1, 1, |a| {
        Ok(Value::String(text(a[0]).to_lowercase()))
    }),
    strict("trim", 1, 1, |a| {
        Ok(Value::String(text(a[0]).trim().to_string()))
    }),
    strict("quote", 1, 1, |a| {
        Ok(Value::String(shell_words::quote(&text(a[0])).into_owned()))
    }),
    strict("replace", 3, 3, |a| {
        Ok(Value::String(text(a[0]).replace(&text(a[1]), &text(a[2]))))
    }),
    strict("split", 1, 2, strings::split),
    strict("b64encode", 1, 1, |a| {
        Ok(Value::String(
            base64::engine::general_purpose::STANDARD.encode(text(a[0])),
        ))
    }),
    strict("b64decode", 1, 1, strings::b64decode),
    strict("hash", 2, 2, strings::hash),
    strict("regex_replace", 3, 3, strings::regex_replace),
    strict("basename", 1, 1, |a| {
        Ok(Value::String(strings::basename(&text(a[0])).to_string()))
    }),
    strict("dirname", 1, 1, |a| {
        Ok(Value::String(strings::dirname(&text(a[0]))))
    }),
    strict("lookup", 2, 2, strings::lookup),
    strict("eq", 2, 2, |a| Ok(Value::Bool(ops::loose_eq(a[0], a[1])))),
    strict("ne", 2, 2, |a| Ok(Value::Bool(!ops::loose_eq(a[0], a[1])))),
    strict("gt", 2, 2, |a| ops::compare(a, |o| o.is_gt())),
    strict("lt", 2, 2, |a| ops::compare(a, |o| o.is_lt())),
    strict("ge", 2, 2, |a| ops::compare(a, |o| o.is_ge())),
    strict("le", 2, 2, |a| ops::compare(a, |o| o.is_le())),
    strict("gte", 2, 2, |a| ops::compare(a, |o| o.is_ge())),
    strict("lte", 2, 2, |a| ops::compare(a, |o| o.is_le())),
    strict("and", 1, MANY, |a| {
        Ok(Value::Bool(a.iter().all(|v| ops::truthy(v))))
    }),
    strict("or", 1, MANY, |a| {
        Ok(Value::Bool(a.iter().any(|v| ops::truthy(v))))
    }),
    strict("not", 1, 1, |a| Ok(Value::Bool(!ops::truthy(a[0])))),
    strict("len", 1, 1, ops::length),
    strict("length", 1, 1, ops::length),
    strict("contains", 2, 2, |a| ops::contains(a[0], a[1])),
    strict("in", 2, 2, |a| ops::contains(a[1], a[0])),
    strict("first", 1, 1, |a| ops::end(a[0], true)),
    strict("last", 1, 1, |a| ops::end(a[0], false)),
    strict("int", 1, 1, |a| Ok(ops::int(a[0]))),
    strict("float", 1, 1, ops::float),
    strict("bool", 1, 1, |a| {
        Ok(Value::Bool(crate::args::truthy(a[0]).unwrap_or(false)))
    }),
    strict("range", 1, 3, ops::range),
    strict("add", 2, 2, ops::add),
    strict("sub", 2, 2, ops::sub),
];

/// `{{#if x}}`/`{{#unless x}}` with Ansible truthiness (`"false"`, `"no"`
/// are false), strict about an undefined `x` (use `(defined x)`).
#[derive(Clone, Copy)]
struct IfBlock {
    positive: bool,
}

impl HelperDef for IfBlock {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let name = if self.positive { "if" } else { "unless" };
        let p = h
            .param(0)
            .ok_or(RenderErrorReason::ParamNotFoundForIndex(name, 0))?;
        if p.is_value_missing() {
            let var = p.relative_path().cloned();
            return Err(RenderErrorReason::MissingVariable(var).into());
        }
        let branch = if ops::truthy(p.value()) == self.positive {
            h.template()
        } else {
            h.inverse()
        };
        match branch {
            Some(t) => t.render(r, ctx, rc, out),
            None => Ok(()),
        }
    }
}

/// Register drover's helpers (replacing handlebars' own `if`, `eq`, `len`, …).
pub(crate) fn register(hb: &mut Handlebars<'static>) {
    for f in HELPERS {
        hb.register_helper(f.name, Box::new(*f));
    }
    hb.register_helper("if", Box::new(IfBlock { positive: true }));
    hb.register_helper("unless", Box::new(IfBlock { positive: false }));
}

/// Every helper name a template may call (ours and handlebars' blocks).
pub(crate) fn is_helper(name: &str) -> bool {
    matches!(name, "if" | "unless" | "each" | "with" | "raw" | "log")
        || HELPERS.iter().any(|f| f.name == name)
}

/// A value as text: strings as they are, everything else as JSON.
pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The one YAML writer (to move into engine/src/yaml.rs later).
pub(crate) fn to_yaml_string(v: &Value) -> Result<String, String> {
    serde_yaml::to_string(v).map_err(|e| e.to_string())
}

fn default(a: &[Option<&Value>]) -> Result<Value, Fail> {
    let fallback = a[1].ok_or_else(|| Fail::Missing("default's fallback".into()))?;
    let falsy_too = a.get(2).copied().flatten().is_some_and(ops::truthy);
    Ok(match a[0] {
        Some(v) if !falsy_too || ops::truthy(v) => v.clone(),
        _ => fallback.clone(),
    })
}

fn defined(a: &[Option<&Value>]) -> Result<Value, Fail> {
    Ok(Value::Bool(a[0].is_some()))
}

#[cfg(test)]
mod tests {
    use crate::template::Templater;
    use serde_json::json;

    fn r(t: &str, vars: serde_json::Value) -> String {
        match Templater::new().render(t, &vars) {
            Ok(s) => s,
            Err(e) => panic!("{t}: {e}"),
        }
    }

    #[test]
    fn default_and_defined_tolerate_undefined() {
        assert_eq!(r(r#"{{default y "z"}}"#, json!({})), "z");
        assert_eq!(r(r#"{{default y "z"}}"#, json!({"y": "set"})), "set");
        assert_eq!(r(r#"{{default y "z" true}}"#, json!({"y": ""})), "z");
        assert_eq!(r(r#"{{default y "z"}}"#, json!({"y": ""})), "");
        assert_eq!(
            r("{{defined y}}/{{defined x}}", json!({"x": null})),
            "false/true"
        );
        assert_eq!(
            r(
                "{{#if (defined a.b)}}yes{{else}}no{{/if}}",
                json!({"a": {}})
            ),
            "no"
        );
    }

    #[test]
    fn wrong_argument_count_is_an_error() {
        let e = Templater::new().render("{{upper}}", &json!({}));
        assert!(e.is_err_and(|e| e.to_string().contains("helper `upper` takes 1 argument(s)")));
    }
}
