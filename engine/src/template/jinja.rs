//! Jinja-isms in template text: finds the `{{ ... }}` tags and has their
//! expressions rewritten (see [`super::expr`]), and reports what handlebars
//! cannot do with a useful hint (`| filter` → the helper to use, `{% if %}` →
//! `{{#if}}`). Also finds the expression of a string that is exactly one
//! `{{ ... }}`. Does not render anything.

use super::expr::{jinja_literal, rewrite_expr, split_outside_quotes, wrap};
use super::TemplateError;

/// Jinja filters that have a helper of the same meaning: (filter, helper).
const FILTER_HELPERS: &[(&str, &str)] = &[
    ("default", "default"),
    ("d", "default"),
    ("join", "join"),
    ("to_json", "to_json"),
    ("from_json", "from_json"),
    ("to_nice_json", "to_nice_json"),
    ("to_yaml", "to_yaml"),
    ("to_nice_yaml", "to_yaml"),
    ("upper", "upper"),
    ("lower", "lower"),
    ("trim", "trim"),
    ("replace", "replace"),
    ("split", "split"),
    ("int", "int"),
    ("float", "float"),
    ("bool", "bool"),
    ("b64encode", "b64encode"),
    ("b64decode", "b64decode"),
    ("hash", "hash"),
    ("regex_replace", "regex_replace"),
    ("basename", "basename"),
    ("dirname", "dirname"),
    ("length", "length"),
    ("count", "length"),
    ("first", "first"),
    ("last", "last"),
    ("quote", "quote"),
];

/// Jinja statement keywords that may follow `{%`.
const STATEMENTS: &[&str] = &[
    "if",
    "elif",
    "else",
    "endif",
    "for",
    "endfor",
    "set",
    "endset",
    "macro",
    "endmacro",
    "raw",
    "endraw",
    "include",
    "import",
    "from",
    "block",
    "endblock",
    "extends",
    "call",
    "endcall",
    "filter",
    "endfilter",
    "with",
    "endwith",
    "do",
    "break",
    "continue",
];

/// Prepare a template text for handlebars: reject Jinja statements and
/// filters, rewrite Jinja subscripts inside `{{ }}`. Text outside of
/// expressions is copied unchanged.
pub(crate) fn prepare(template: &str) -> Result<String, TemplateError> {
    check_statements(template)?;
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        let escaped = rest[..i].ends_with('\\');
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if escaped {
            out.push_str("{{");
            rest = &rest[2..];
            continue;
        }
        // Raw blocks and comments are copied as they are.
        let verbatim_end = if rest.starts_with("{{{{") {
            Some("}}}}")
        } else if rest.starts_with("{{!--") {
            Some("--}}")
        } else if rest.starts_with("{{!") {
            Some("}}")
        } else {
            None
        };
        if let Some(end) = verbatim_end {
            let stop = rest[2..]
                .find(end)
                .map(|j| j + 2 + end.len())
                .unwrap_or(rest.len());
            out.push_str(&rest[..stop]);
            rest = &rest[stop..];
            continue;
        }
        let triple = rest[2..].trim_start_matches('~').starts_with('{');
        let close = if triple { "}}}" } else { "}}" };
        let Some(len) = find_outside_quotes(&rest[2..], close) else {
            // Unclosed: let handlebars report the syntax error.
            out.push_str(rest);
            return Ok(out);
        };
        let inner = &rest[2..2 + len];
        out.push_str("{{");
        out.push_str(&rewrite_tag(inner, template)?);
        out.push_str(close);
        rest = &rest[2 + len + close.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `{% if ... %}` and friends: an error that names the handlebars blocks.
fn check_statements(template: &str) -> Result<(), TemplateError> {
    let mut rest = template;
    while let Some(i) = rest.find("{%") {
        rest = &rest[i + 2..];
        let body = rest.trim_start_matches(['-', '+']).trim_start();
        let word: String = body
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        if STATEMENTS.contains(&word.as_str()) {
            return Err(TemplateError::Syntax {
                template: template.to_string(),
                message: format!(
                    "Jinja statements (`{{% {word} ... %}}`) are not supported; use handlebars \
                     blocks: {{{{#if cond}}}}...{{{{else}}}}...{{{{/if}}}}, \
                     {{{{#each list}}}}{{{{this}}}}{{{{/each}}}}"
                ),
            });
        }
    }
    Ok(())
}

/// Byte offset of `pat` in `s`, skipping quoted strings.
fn find_outside_quotes(s: &str, pat: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if s[i..].starts_with(pat) => return Some(i),
            None => {}
        }
    }
    None
}

/// Rewrite the inside of one `{{ ... }}` tag.
fn rewrite_tag(inner: &str, template: &str) -> Result<String, TemplateError> {
    let body = inner.trim_start_matches('~');
    let lead = &inner[..inner.len() - body.len()];
    let sigil_len = body
        .char_indices()
        .find(|(_, c)| !matches!(c, '#' | '^' | '&' | '{' | '*' | '>' | '/'))
        .map(|(i, _)| i)
        .unwrap_or(body.len());
    let (sigil, expr) = body.split_at(sigil_len);
    if sigil.contains('>') || sigil.contains('/') {
        return Ok(inner.to_string());
    }
    // Block params (`as |x i|`) use `|` legitimately.
    let (expr, tail) = match expr.find(" as |") {
        Some(i) if sigil.contains('#') => expr.split_at(i),
        _ => (expr, ""),
    };
    if let Some(bar) = find_outside_quotes(expr, "|") {
        return Err(filter_error(expr, bar, template));
    }
    Ok(format!("{lead}{sigil}{}{tail}", rewrite_expr(expr)))
}

/// The JinjaFilter error for `value | f(args) | g ...`, with the helper
/// call that does the same.
fn filter_error(expr: &str, bar: usize, template: &str) -> TemplateError {
    let expr = expr.trim_end_matches('~');
    let mut call = rewrite_expr(expr[..bar].trim());
    let mut parts = split_outside_quotes(&expr[bar + 1..], '|').into_iter();
    let mut first_filter = None;
    let mut missing = None;
    for part in parts.by_ref() {
        let part = part.trim();
        let name: String = part
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        first_filter.get_or_insert_with(|| name.clone());
        let args = part[name.len()..].trim();
        let args = args
            .strip_prefix('(')
            .and_then(|a| a.strip_suffix(')'))
            .unwrap_or("");
        let args: Vec<String> = split_outside_quotes(args, ',')
            .into_iter()
            .map(|a| jinja_literal(a.trim()))
            .filter(|a| !a.is_empty())
            .collect();
        match (
            name.as_str(),
            FILTER_HELPERS.iter().find(|(f, _)| *f == name),
        ) {
            ("string" | "mandatory" | "list", _) => {}
            (_, Some((_, helper))) => {
                let mut words = vec![helper.to_string(), wrap(&call)];
                words.extend(args);
                call = format!("({})", words.join(" "));
            }
            (_, None) => {
                missing = Some(name);
                break;
            }
        }
    }
    let filter = missing.clone().or(first_filter).unwrap_or_default();
    let suggestion = match missing {
        Some(_) => "there is no helper for it; compute the value in vars or with \
                    {{#each}}/{{#if}} blocks"
            .to_string(),
        None => {
            let bare = call
                .strip_prefix('(')
                .and_then(|c| c.strip_suffix(')'))
                .unwrap_or(&call);
            format!("{{{{{bare}}}}}")
        }
    };
    TemplateError::JinjaFilter {
        filter,
        template: template.to_string(),
        suggestion,
    }
}

/// The expression of a string that is exactly one `{{ ... }}` (not a block,
/// comment or partial), trimmed, with triple-stash braces and `~` removed.
pub(crate) fn single_expression(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") {
        return None;
    }
    let mut inner = inner.trim().trim_matches('~').trim();
    if let Some(i) = inner.strip_prefix('{').and_then(|i| i.strip_suffix('}')) {
        inner = i.trim();
    }
    let first = inner.chars().next()?;
    if matches!(first, '#' | '/' | '^' | '!' | '>' | '&' | '*' | '{') || inner == "else" {
        return None;
    }
    Some(inner)
}

#[cfg(test)]
mod tests {
    use super::{prepare, single_expression};
    use crate::template::TemplateError;

    fn p(t: &str) -> String {
        prepare(t).unwrap_or_else(|e| panic!("{t}: {e}"))
    }

    #[test]
    fn rewrites_only_inside_tags() {
        assert_eq!(p("a['b'] {{ a['b'] }} c[0]"), "a['b'] {{ a.[b] }} c[0]");
        assert_eq!(
            p("{{#each groups['zk'] as |h|}}{{h}}{{/each}}"),
            "{{#each groups.[zk] as |h|}}{{h}}{{/each}}"
        );
        assert_eq!(
            p("{{{ x[0] }}} {{~ y['z'] ~}}"),
            "{{{ x.[0] }}} {{~ y.[z] ~}}"
        );
        assert_eq!(
            p("{{! x['a'] | f }} {{!-- {{ y | g }} --}} \\{{ z | h }}"),
            "{{! x['a'] | f }} {{!-- {{ y | g }} --}} \\{{ z | h }}"
        );
    }

    #[test]
    fn filters_and_statements_are_errors() {
        let e = prepare("ok {{ name | upper }}");
        assert!(
            matches!(e, Err(TemplateError::JinjaFilter { filter, suggestion, .. })
            if filter == "upper" && suggestion == "{{upper name}}")
        );
        let e = prepare("{{ p | basename | d('x') }}");
        assert!(
            matches!(e, Err(TemplateError::JinjaFilter { suggestion, .. })
            if suggestion == "{{default (basename p) \"x\"}}")
        );
        assert!(matches!(
            prepare("{%- for x in xs %}"),
            Err(TemplateError::Syntax { .. })
        ));
        assert_eq!(p("awk '{%s}' 5{%}"), "awk '{%s}' 5{%}");
    }

    #[test]
    fn single_expressions() {
        assert_eq!(single_expression("{{ x }}"), Some("x"));
        assert_eq!(
            single_expression("{{(split s \",\")}}"),
            Some("(split s \",\")")
        );
        assert_eq!(single_expression("{{{ x }}}"), Some("x"));
        assert_eq!(single_expression("{{ x }} "), None);
        assert_eq!(single_expression("{{ a }}{{ b }}"), None);
        assert_eq!(single_expression("{{#if a}}"), None);
        assert_eq!(single_expression("{{! note }}"), None);
    }
}
