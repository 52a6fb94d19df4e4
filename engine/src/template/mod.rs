//! Templating and `when:` conditions with handlebars, strict (an undefined
//! variable is an error) and without HTML escaping. Owns [`Templater`] (one
//! per run, shared across hosts, caching compiled templates by their text
//! and rendering each with only the variables it reads), the helpers
//! (`helpers`, `strings`, `ops`), the Jinja-isms it accepts or explains
//! (`jinja`, `expr`, `cond`) and the pre-flight variable analysis
//! (`analysis`). It does not decide variable precedence (see `vars`) nor
//! read template files.

mod analysis;
mod cond;
mod expr;
mod helpers;
mod jinja;
mod ops;
mod strings;

use handlebars::{Context, Handlebars, RenderError, RenderErrorReason, Template};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::RwLock;

/// A template that cannot be rendered.
#[derive(thiserror::Error, Debug, Clone)]
pub enum TemplateError {
    #[error("undefined variable `{variable}` in `{}`", short(template))]
    Undefined { variable: String, template: String },
    #[error("template syntax error in `{}`: {message}", short(template))]
    Syntax { template: String, message: String },
    #[error(
        "Jinja filter `{filter}` is not supported; {} (in `{}`)",
        advice(suggestion),
        short(template)
    )]
    JinjaFilter {
        filter: String,
        template: String,
        suggestion: String,
    },
    #[error("cannot render `{}`: {message}", short(template))]
    Render { template: String, message: String },
}

/// A template shortened for messages.
fn short(t: &str) -> String {
    const MAX: usize = 160;
    if t.chars().count() <= MAX {
        return t.to_string();
    }
    let head: String = t.chars().take(MAX).collect();
    format!("{head}…")
}

fn advice(suggestion: &str) -> String {
    if suggestion.starts_with("{{") {
        format!("use the helper: {suggestion}")
    } else {
        suggestion.to_string()
    }
}

/// True when a string holds a template expression.
pub fn has_template(s: &str) -> bool {
    s.contains("{{")
}

fn needs_work(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

/// Renders templates and evaluates conditions. Build one per run and share
/// it (e.g. in an `Arc`); compiled templates are cached by their text.
pub struct Templater {
    cache: RwLock<Cache>,
}

/// Compiled templates (registered in `hb` under their text) and the
/// variable paths each reads (`None`: the whole context), so that a render
/// copies only those values into the handlebars context (not all of
/// `hostvars` for `{{ hostvars.h1.ip }}`).
struct Cache {
    hb: Handlebars<'static>,
    paths: HashMap<String, Option<Vec<Vec<String>>>>,
}

impl Default for Templater {
    fn default() -> Self {
        Self::new()
    }
}

/// A `when:` expression after the literal shortcut.
enum Cond {
    Literal(bool),
    /// A template printing the expression's value as JSON.
    Wrapper(String),
}

impl Templater {
    pub fn new() -> Self {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(handlebars::no_escape);
        helpers::register(&mut hb);
        Templater {
            cache: RwLock::new(Cache {
                hb,
                paths: HashMap::new(),
            }),
        }
    }

    /// Render a template to text.
    pub fn render(&self, template: &str, vars: &Value) -> Result<String, TemplateError> {
        if !needs_work(template) {
            return Ok(template.to_string());
        }
        self.run(template, template, vars, &mut None)
    }

    /// Render every string inside a JSON value (maps, lists) recursively. A
    /// string that is exactly one expression (`"{{ x }}"`, `"{{ (helper args) }}"`)
    /// keeps the value's type. Map keys are not templated. Rendered output is
    /// never re-templated.
    pub fn render_value(&self, v: &Value, vars: &Value) -> Result<Value, TemplateError> {
        let mut ctx = None;
        self.value(v, vars, &mut ctx)
    }

    fn value(
        &self,
        v: &Value,
        vars: &Value,
        ctx: &mut Option<Context>,
    ) -> Result<Value, TemplateError> {
        match v {
            Value::String(s) if needs_work(s) => {
                let prepared = jinja::prepare(s)?;
                match jinja::single_expression(&prepared) {
                    Some(inner) => {
                        let wrapper = wrap_value(inner);
                        let json = self.run(&wrapper, s, vars, ctx)?;
                        serde_json::from_str(&json).map_err(|e| TemplateError::Render {
                            template: s.clone(),
                            message: format!("value is not JSON: {e}"),
                        })
                    }
                    None => self.run(s, s, vars, ctx).map(Value::String),
                }
            }
            Value::Array(items) => items
                .iter()
                .map(|x| self.value(x, vars, ctx))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            Value::Object(map) => {
                let mut out = serde_json::Map::with_capacity(map.len());
                for (k, x) in map {
                    out.insert(k.clone(), self.value(x, vars, ctx)?);
                }
                Ok(Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    /// Evaluate a `when:` condition (a handlebars expression such as
    /// `(eq zk_id 1)` or `is_primary`, optionally wrapped in `{{ }}`) with
    /// Ansible truthiness.
    pub fn condition(&self, expr: &str, vars: &Value) -> Result<bool, TemplateError> {
        match condition_wrapper(expr)? {
            Cond::Literal(b) => Ok(b),
            Cond::Wrapper(w) => {
                let json = self.run(&w, expr, vars, &mut None)?;
                let v: Value = serde_json::from_str(&json).map_err(|e| TemplateError::Render {
                    template: expr.to_string(),
                    message: format!("value is not JSON: {e}"),
                })?;
                Ok(ops::truthy(&v))
            }
        }
    }

    /// Root variable names a template refers to, in order of first use.
    pub fn referenced_vars(&self, template: &str) -> Result<Vec<String>, TemplateError> {
        refs(template, template).map(|r| r.all)
    }

    /// Like [`Self::referenced_vars`], leaving out variables used only as the
    /// first argument of `default` or `defined` (they may be undefined).
    pub fn required_vars(&self, template: &str) -> Result<Vec<String>, TemplateError> {
        refs(template, template).map(|r| r.required)
    }

    /// Root variable names a `when:` expression refers to.
    pub fn condition_vars(&self, expr: &str) -> Result<Vec<String>, TemplateError> {
        match condition_wrapper(expr)? {
            Cond::Literal(_) => Ok(Vec::new()),
            Cond::Wrapper(w) => refs(&w, expr).map(|r| r.all),
        }
    }

    /// Like [`Self::condition_vars`], leaving out variables only tested by
    /// `defined` or defaulted by `default`.
    pub fn condition_required_vars(&self, expr: &str) -> Result<Vec<String>, TemplateError> {
        match condition_wrapper(expr)? {
            Cond::Literal(_) => Ok(Vec::new()),
            Cond::Wrapper(w) => refs(&w, expr).map(|r| r.required),
        }
    }

    /// Render `source` (compiled once, cached under its text) with the
    /// variables it reads; `full` keeps a whole-context copy for reuse.
    /// Errors name `shown`, the text the user wrote.
    fn run(
        &self,
        source: &str,
        shown: &str,
        vars: &Value,
        full: &mut Option<Context>,
    ) -> Result<String, TemplateError> {
        let cached = {
            let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
            cache.paths.contains_key(source)
        };
        if !cached {
            let (tpl, refs) = compile(source, shown)?;
            let paths = (!refs.whole).then_some(refs.paths);
            let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
            cache.hb.register_template(source, tpl);
            cache.paths.insert(source.to_string(), paths);
        }
        let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
        let pruned;
        let ctx = match (cache.paths.get(source), vars) {
            (Some(Some(paths)), Value::Object(map)) => {
                let mut picked = serde_json::Map::new();
                for path in paths {
                    copy_path(&mut picked, map, path);
                }
                pruned = Context::from(Value::Object(picked));
                &pruned
            }
            _ => full.get_or_insert_with(|| Context::from(vars.clone())),
        };
        cache
            .hb
            .render_with_context(source, ctx)
            .map_err(|e| render_error(&e, shown, vars))
    }
}

/// Copy the value at `path` from `src` into `out`, creating only the maps
/// on the way; a list or scalar on the way is copied whole.
fn copy_path(
    out: &mut serde_json::Map<String, Value>,
    src: &serde_json::Map<String, Value>,
    path: &[String],
) {
    let Some((head, rest)) = path.split_first() else {
        return;
    };
    let Some(v) = src.get(head) else {
        return;
    };
    match (rest.is_empty(), v) {
        (false, Value::Object(inner)) => {
            let entry = out
                .entry(head.clone())
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
            if let Value::Object(into) = entry {
                copy_path(into, inner, rest);
            }
        }
        _ => {
            out.insert(head.clone(), v.clone());
        }
    }
}

/// `{{__value EXPR}}`, with a multi-word expression (`split s ","`) made a
/// subexpression.
fn wrap_value(inner: &str) -> String {
    let tokens = expr::top_level_tokens(inner);
    let helper = helpers::VALUE_HELPER;
    if tokens.len() == 1 {
        format!("{{{{{helper} {inner}}}}}")
    } else {
        format!("{{{{{helper} ({inner})}}}}")
    }
}

fn condition_wrapper(expr: &str) -> Result<Cond, TemplateError> {
    let trimmed = expr.trim();
    let inner = if trimmed.starts_with("{{") {
        jinja::single_expression(trimmed).ok_or_else(|| TemplateError::Syntax {
            template: expr.to_string(),
            message: "a condition must be one expression, e.g. (eq a 1)".into(),
        })?
    } else {
        trimmed
    };
    match inner.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => return Ok(Cond::Literal(true)),
        "false" | "no" | "off" | "" => return Ok(Cond::Literal(false)),
        _ => {}
    }
    cond::check_condition(inner)?;
    let prepared = jinja::prepare(&format!("{{{{{inner}}}}}")).map_err(|e| match e {
        TemplateError::JinjaFilter {
            filter, suggestion, ..
        } => TemplateError::JinjaFilter {
            filter,
            suggestion,
            template: expr.to_string(),
        },
        other => other,
    })?;
    let rewritten = jinja::single_expression(&prepared).unwrap_or(inner);
    Ok(Cond::Wrapper(wrap_value(rewritten)))
}

/// Prepare (Jinja rewrites and checks), compile and analyze a template.
fn compile(source: &str, shown: &str) -> Result<(Template, analysis::Refs), TemplateError> {
    let prepared = jinja::prepare(source)?;
    let syntax = |message: String| TemplateError::Syntax {
        template: shown.to_string(),
        message,
    };
    let tpl = Template::compile(&prepared).map_err(|e| syntax(compile_message(&e, &prepared)))?;
    let refs = analysis::analyze(&tpl).map_err(syntax)?;
    Ok((tpl, refs))
}

fn refs(source: &str, shown: &str) -> Result<analysis::Refs, TemplateError> {
    if !needs_work(source) {
        return Ok(analysis::Refs::default());
    }
    compile(source, shown).map(|(_, refs)| refs)
}

fn compile_message(e: &handlebars::TemplateError, source: &str) -> String {
    let last = source.lines().count().max(1);
    let last_len = source.lines().last().map_or(0, |l| l.chars().count());
    if let Some((line, col)) = e.pos() {
        if line >= last && col > last_len {
            return "unexpected end of template: a block such as {{#if ...}} or {{#each ...}} \
                    is not closed with {{/if}} or {{/each}}"
                .into();
        }
    }
    let reason = e.reason().to_string();
    let reason = reason
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('='))
        .map_or_else(
            || reason.lines().next().unwrap_or_default().to_string(),
            |l| l.trim_start().trim_start_matches('=').trim().to_string(),
        );
    match e.pos() {
        Some((line, col)) => format!("{reason} at line {line}, column {col}"),
        None => reason,
    }
}

fn render_error(e: &RenderError, shown: &str, vars: &Value) -> TemplateError {
    let template = shown.to_string();
    match e.reason() {
        RenderErrorReason::MissingVariable(Some(v)) => TemplateError::Undefined {
            variable: v.clone(),
            template,
        },
        RenderErrorReason::MissingVariable(None) => {
            let variable = refs(shown, shown)
                .ok()
                .and_then(|r| r.required.into_iter().find(|v| vars.get(v).is_none()))
                .unwrap_or_else(|| "?".into());
            TemplateError::Undefined { variable, template }
        }
        RenderErrorReason::HelperNotFound(h) => TemplateError::Render {
            template,
            message: format!("unknown helper `{h}`"),
        },
        RenderErrorReason::TemplateError(t) => TemplateError::Syntax {
            template,
            message: compile_message(t, shown),
        },
        other => TemplateError::Render {
            template,
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests;
