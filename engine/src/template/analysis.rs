//! Static analysis of a compiled template: the root variables it refers to
//! (for the pre-flight undefined-variable check), unknown helpers and
//! partials. Paths inside `{{#each}}`/`{{#with}}` bodies are relative to the
//! item and are not root variables; `this`, `@index`, block params and `../`
//! paths are skipped; `@root.x` counts as `x`.

use super::helpers::is_helper;
use handlebars::template::{BlockParam, HelperTemplate, Parameter, TemplateElement};
use handlebars::{Path, PathSeg, Template};

/// What a template refers to.
#[derive(Debug, Default)]
pub(crate) struct Refs {
    /// Every root variable, in order of first use.
    pub all: Vec<String>,
    /// Those not only guarded by `default`/`defined`.
    pub required: Vec<String>,
    /// The template reads the whole context (`{{this}}` at the top, `../x`),
    /// so rendering cannot be given just the variables in `all`.
    pub whole: bool,
    /// Every static path read from the root (`a.b.[0]` → `["a", "b", "0"]`);
    /// rendering needs only the values at these paths.
    pub paths: Vec<Vec<String>>,
}

#[derive(Clone, Default)]
struct Scope {
    /// Inside a block that changes the context (`each`, `with`).
    nested: bool,
    /// Block param names in force (`as |x i|`).
    params: Vec<String>,
    /// Walking the first argument of `default`/`defined`.
    guarded: bool,
}

pub(crate) fn analyze(t: &Template) -> Result<Refs, String> {
    let mut refs = Refs::default();
    walk(t, &Scope::default(), &mut refs)?;
    Ok(refs)
}

fn walk(t: &Template, scope: &Scope, refs: &mut Refs) -> Result<(), String> {
    for e in &t.elements {
        element(e, scope, refs)?;
    }
    Ok(())
}

fn element(e: &TemplateElement, scope: &Scope, refs: &mut Refs) -> Result<(), String> {
    match e {
        TemplateElement::Expression(ht) | TemplateElement::HtmlExpression(ht) => {
            expression(ht, scope, refs)
        }
        TemplateElement::HelperBlock(ht) => {
            let name = helper_name(&ht.name)?;
            args(&name, ht, scope, refs)?;
            let mut inner = scope.clone();
            if matches!(name.as_str(), "each" | "with") {
                inner.nested = true;
            }
            if let Some(bp) = &ht.block_param {
                inner.params.extend(block_params(bp));
            }
            if let Some(t) = &ht.template {
                walk(t, &inner, refs)?;
            }
            if let Some(t) = &ht.inverse {
                walk(t, scope, refs)?;
            }
            Ok(())
        }
        TemplateElement::PartialExpression(_) | TemplateElement::PartialBlock(_) => {
            Err("partials (`{{> name}}`) are not supported".into())
        }
        TemplateElement::DecoratorExpression(_) | TemplateElement::DecoratorBlock(_) => {
            Err("decorators (`{{* name}}`) are not supported".into())
        }
        _ => Ok(()),
    }
}

fn expression(ht: &HelperTemplate, scope: &Scope, refs: &mut Refs) -> Result<(), String> {
    if ht.params.is_empty() && ht.hash.is_empty() {
        // `{{x}}`: a helper call without arguments, or a value.
        match &ht.name {
            Parameter::Name(n) if is_helper(n) => return Ok(()),
            Parameter::Path(Path::Relative((segs, _))) if is_name_helper(segs) => return Ok(()),
            p => return param(p, scope, refs),
        }
    }
    let name = helper_name(&ht.name)?;
    args(&name, ht, scope, refs)
}

fn is_name_helper(segs: &[PathSeg]) -> bool {
    matches!(segs, [PathSeg::Named(n)] if is_helper(n))
}

fn helper_name(p: &Parameter) -> Result<String, String> {
    let name = match p {
        Parameter::Name(n) => n.clone(),
        Parameter::Path(Path::Relative((_, raw))) => raw.clone(),
        other => return Err(format!("unexpected helper name {other:?}")),
    };
    if is_helper(&name) {
        Ok(name)
    } else {
        Err(format!("unknown helper `{name}`"))
    }
}

fn args(name: &str, ht: &HelperTemplate, scope: &Scope, refs: &mut Refs) -> Result<(), String> {
    for (i, p) in ht.params.iter().enumerate() {
        let mut s = scope.clone();
        s.guarded = scope.guarded || (i == 0 && matches!(name, "default" | "defined"));
        param(p, &s, refs)?;
    }
    for p in ht.hash.values() {
        param(p, scope, refs)?;
    }
    Ok(())
}

fn param(p: &Parameter, scope: &Scope, refs: &mut Refs) -> Result<(), String> {
    match p {
        Parameter::Name(n) => {
            let path: Vec<String> = n.split(['.', '/']).map(str::to_string).collect();
            add(&path, scope, refs)
        }
        Parameter::Path(Path::Relative((segs, raw))) => {
            let root = raw.starts_with("@root");
            let up = !root && segs.iter().any(|s| matches!(s, PathSeg::Ruled(_)));
            let named: Vec<String> = segs
                .iter()
                .filter_map(|s| match s {
                    PathSeg::Named(n) => Some(n.clone()),
                    _ => None,
                })
                .collect();
            let first = (!named.is_empty()).then_some(named.as_slice());
            match first {
                Some(n) if root => add(
                    n,
                    &Scope {
                        nested: false,
                        ..scope.clone()
                    },
                    refs,
                ),
                Some(n) if !up => add(n, scope, refs),
                None if !up && scope.nested => Ok(()),
                _ => {
                    refs.whole = true;
                    Ok(())
                }
            }
        }
        Parameter::Subexpression(se) => match se.as_element() {
            TemplateElement::Expression(ht) => expression(ht, scope, refs),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Record the root variable of `path` (and the path itself).
fn add(path: &[String], scope: &Scope, refs: &mut Refs) -> Result<(), String> {
    let Some(name) = path.first() else {
        return Ok(());
    };
    if scope.nested || scope.params.iter().any(|p| p == name) {
        return Ok(());
    }
    if !refs.paths.iter().any(|p| p == path) {
        refs.paths.push(path.to_vec());
    }
    if !refs.all.iter().any(|v| v == name) {
        refs.all.push(name.to_string());
    }
    if !scope.guarded && !refs.required.iter().any(|v| v == name) {
        refs.required.push(name.to_string());
    }
    Ok(())
}

fn block_params(bp: &BlockParam) -> Vec<String> {
    let name = |p: &Parameter| match p {
        Parameter::Name(n) => Some(n.clone()),
        Parameter::Path(Path::Relative((_, raw))) => Some(raw.clone()),
        _ => None,
    };
    match bp {
        BlockParam::Single(p) => name(p).into_iter().collect(),
        BlockParam::Pair((a, b)) => name(a).into_iter().chain(name(b)).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use crate::template::{TemplateError, Templater};

    fn vars(t: &str) -> Vec<String> {
        Templater::new()
            .referenced_vars(t)
            .unwrap_or_else(|e| panic!("{t}: {e}"))
    }

    #[test]
    fn root_variables_in_order() {
        assert_eq!(
            vars(r#"{{ a.b }} {{#each xs}}{{this}}{{/each}} {{default y "z"}}"#),
            ["a", "xs", "y"]
        );
        assert_eq!(
            vars("{{ hostvars['h']['x'] }} {{ groups.zk.[0] }} {{a}}{{a.c}}"),
            ["hostvars", "groups", "a"]
        );
        assert_eq!(vars("{{upper (join (split s \",\") n)}}"), ["s", "n"]);
        assert_eq!(
            vars("{{ lookup hostvars[inventory_hostname] 'x' }}"),
            ["hostvars", "inventory_hostname"]
        );
        assert_eq!(
            vars("{{#if (eq a 1)}}{{b}}{{else}}{{c}}{{/if}}"),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn skips_item_paths_block_params_and_locals() {
        assert_eq!(
            vars("{{#each users as |u i|}}{{u.name}}{{i}}{{@index}}{{name}}{{../top}}{{@root.r}}{{/each}}"),
            ["users", "r"]
        );
        assert_eq!(
            vars("{{#with srv}}{{port}}{{/with}}{{this.x}}"),
            ["srv", "x"]
        );
        assert!(vars("plain text, no templates").is_empty());
    }

    #[test]
    fn whole_context_readers_are_flagged() {
        let whole = |t: &str| {
            let tpl = handlebars::Template::compile(t).unwrap_or_else(|e| panic!("{e}"));
            super::analyze(&tpl)
                .map(|r| r.whole)
                .unwrap_or_else(|e| panic!("{e}"))
        };
        assert!(!whole(
            "{{a}} {{#each xs}}{{this}}{{name}}{{@index}}{{/each}}"
        ));
        assert!(whole("{{to_json this}}"));
        assert!(whole("{{#each xs}}{{../sep}}{{/each}}"));
        let tpl =
            handlebars::Template::compile("{{a.b}} {{a.[c d].[0]}} {{len a}} {{@root.e}} {{a.b}}");
        let refs = tpl
            .map_err(|e| e.to_string())
            .and_then(|t| super::analyze(&t));
        let paths = refs.map(|r| r.paths).unwrap_or_default();
        assert_eq!(
            paths,
            [vec!["a", "b"], vec!["a", "c d", "0"], vec!["a"], vec!["e"]]
        );
    }

    #[test]
    fn required_vars_leave_out_guarded_ones() {
        let t = Templater::new();
        let req = t.required_vars(r#"{{default y "z"}} {{#if (defined w)}}{{w}}{{/if}} {{q}}"#);
        assert_eq!(req.unwrap_or_default(), ["w", "q"]);
    }

    #[test]
    fn errors_found_before_rendering() {
        let t = Templater::new();
        assert!(matches!(
            t.referenced_vars("{{ x | upper }}"),
            Err(TemplateError::JinjaFilter { .. })
        ));
        assert!(matches!(
            t.referenced_vars("{{#if x}}"),
            Err(TemplateError::Syntax { .. })
        ));
        assert!(matches!(
            t.referenced_vars("{% if x %}y{% endif %}"),
            Err(TemplateError::Syntax { .. })
        ));
        let e = t
            .referenced_vars("{{frobnicate x}}")
            .map_err(|e| e.to_string());
        assert!(e.is_err_and(|e| e.contains("unknown helper `frobnicate`")));
        let e = t.referenced_vars("{{> other}}").map_err(|e| e.to_string());
        assert!(e.is_err_and(|e| e.contains("partials")));
    }

    #[test]
    fn condition_vars() {
        let t = Templater::new();
        let v = |e: &str| {
            t.condition_vars(e)
                .unwrap_or_else(|err| panic!("{e}: {err}"))
        };
        assert_eq!(v("(eq zk_id 1)"), ["zk_id"]);
        assert_eq!(v("is_primary"), ["is_primary"]);
        assert_eq!(v("{{ (and a (not b)) }}"), ["a", "b"]);
        assert_eq!(v("not c"), ["c"]);
        assert!(v("true").is_empty());
        let req = t.condition_required_vars("(and (defined x) (eq x 1) (not y))");
        assert_eq!(req.unwrap_or_default(), ["x", "y"]);
        let req = t.condition_required_vars("(or (not (defined x)) (eq z 1))");
        assert_eq!(req.unwrap_or_default(), ["z"]);
    }
}
