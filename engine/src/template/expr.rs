//! Jinja expression syntax rewritten into handlebars expression syntax:
//! subscripts (`x['k']` → `x.[k]`, `x[0]` → `x.[0]`, `x[var]` →
//! `(lookup x var)`), calls (`lookup('env', 'HOME')` → `(lookup "env" "HOME")`,
//! `s.split(',')` → `(split s ",")`), Python string escapes; plus the
//! quote-aware scanning helpers the other template files use.

/// Parenthesize a helper argument that holds spaces (a call).
pub(crate) fn wrap(arg: &str) -> String {
    if arg.starts_with('(') || top_level_tokens(arg).len() <= 1 {
        arg.to_string()
    } else {
        format!("({arg})")
    }
}

/// A Jinja argument as a handlebars parameter: `'a'` → `"a"`, `True` → `true`.
pub(crate) fn jinja_literal(arg: &str) -> String {
    match arg {
        "True" => return "true".into(),
        "False" => return "false".into(),
        "None" => return "null".into(),
        _ => {}
    }
    if let Some(inner) = arg.strip_prefix('\'').and_then(|a| a.strip_suffix('\'')) {
        return serde_json::Value::String(inner.to_string()).to_string();
    }
    rewrite_expr(arg)
}

/// Split on `sep` outside quotes and brackets.
pub(crate) fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut quote, mut depth, mut start) = (None, 0i32, 0);
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(' | '[') => depth += 1,
            (None, ')' | ']') => depth -= 1,
            (None, _) if c == sep && depth == 0 => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Whitespace-separated tokens outside quotes and brackets.
pub(crate) fn top_level_tokens(s: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    let (mut quote, mut depth, mut start) = (None, 0i32, None);
    for (i, c) in s.char_indices() {
        if quote.is_none() && depth == 0 && c.is_whitespace() {
            if let Some(st) = start.take() {
                tokens.push(&s[st..i]);
            }
            continue;
        }
        start.get_or_insert(i);
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(' | '[') => depth += 1,
            (None, ')' | ']') => depth -= 1,
            _ => {}
        }
    }
    if let Some(st) = start {
        tokens.push(&s[st..]);
    }
    tokens
}

fn is_path_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '$' | ':' | '@' | '.' | '/')
}

/// Rewrite Jinja subscripts in an expression; quoted strings, literals and
/// handlebars syntax pass unchanged.
pub(crate) fn rewrite_expr(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut chars = expr.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '"' || c == '\'' {
            let end = string_end(expr, i, c);
            out.push_str(&fix_escapes(&expr[i..end], c));
            while chars.peek().is_some_and(|(j, _)| *j < end) {
                chars.next();
            }
        } else if is_path_char(c) {
            let mut end = path_token_end(expr, i);
            let tok = &expr[i..end];
            let call = expr[end..]
                .starts_with('(')
                .then(|| matching_bracket(expr, end))
                .flatten()
                .and_then(|close| Some((close, jinja_call(tok, &expr[end + 1..close])?)));
            match call {
                Some((close, call)) => {
                    out.push_str(&call);
                    end = close + 1;
                }
                None => out.push_str(&convert_path(tok)),
            }
            while chars.peek().is_some_and(|(j, _)| *j < end) {
                chars.next();
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// End (exclusive) of the string literal opened by `quote` at `start`.
fn string_end(s: &str, start: usize, quote: char) -> usize {
    let mut escaped = false;
    for (i, c) in s[start + 1..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            _ if c == quote => return start + 1 + i + 1,
            _ => {}
        }
    }
    s.len()
}

/// Keep unknown escapes such as `\d` literally, as Python/Jinja do, instead
/// of failing on them as handlebars' JSON-style literals would.
fn fix_escapes(lit: &str, quote: char) -> String {
    let mut out = String::with_capacity(lit.len());
    let mut chars = lit.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '\\' {
            match chars.next() {
                Some(n)
                    if n == quote
                        || matches!(n, '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't' | 'u') =>
                {
                    out.push(n)
                }
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        }
    }
    out
}

/// End of the path token starting at `start` (path chars and attached `[...]`).
fn path_token_end(s: &str, start: usize) -> usize {
    let mut i = start;
    while i < s.len() {
        let c = s[i..].chars().next().unwrap_or(' ');
        if c == '[' {
            match matching_bracket(s, i) {
                Some(j) => i = j + 1,
                None => return s.len(),
            }
        } else if is_path_char(c) {
            i += c.len_utf8();
        } else {
            break;
        }
    }
    i
}

/// Index of the `]` (or `)`) closing the `[` (or `(`) at `open`, skipping
/// quotes and nesting.
fn matching_bracket(s: &str, open: usize) -> Option<usize> {
    let (mut depth, mut quote) = (0, None);
    let (left, right) = if s[open..].starts_with('(') {
        ('(', ')')
    } else {
        ('[', ']')
    };
    for (i, c) in s[open..].char_indices() {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, _) if c == left => depth += 1,
            (None, _) if c == right => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Python string methods that have a helper: (method, helper).
const METHODS: &[(&str, &str)] = &[
    ("split", "split"),
    ("upper", "upper"),
    ("lower", "lower"),
    ("replace", "replace"),
    ("strip", "trim"),
];

/// A Jinja call as a handlebars subexpression: `lookup('env', 'HOME')` →
/// `(lookup "env" "HOME")`, `x.split(',')` → `(split x ",")`. `None` when
/// there is no helper for it.
fn jinja_call(tok: &str, args: &str) -> Option<String> {
    let args: Vec<String> = split_outside_quotes(args, ',')
        .into_iter()
        .map(|a| jinja_literal(a.trim()))
        .filter(|a| !a.is_empty())
        .map(|a| wrap(&a))
        .collect();
    let (helper, mut words) = if super::helpers::is_helper(tok) {
        (tok, Vec::new())
    } else {
        let (base, method) = tok.rsplit_once('.')?;
        let (_, helper) = METHODS.iter().find(|(m, _)| *m == method)?;
        (*helper, vec![convert_path(base)])
    };
    words.extend(args);
    if words.is_empty() {
        return None;
    }
    Some(format!("({helper} {})", words.join(" ")))
}

enum Seg {
    /// A fixed key; `true` when it was written `[...]` (keep brackets).
    Key(String, bool),
    /// A key computed from an expression (already rewritten).
    Dynamic(String),
}

/// `a['b'][0]` → `a.[b].[0]`; `a[k].c` → `(lookup (lookup a k) "c")`.
fn convert_path(tok: &str) -> String {
    let jinja_bracket = tok
        .char_indices()
        .any(|(i, c)| c == '[' && i > 0 && !tok[..i].ends_with(['.', '/']));
    if !jinja_bracket {
        return tok.to_string();
    }
    let mut segs: Vec<Seg> = Vec::new();
    let mut name = String::new();
    let mut i = 0;
    while i < tok.len() {
        let c = tok[i..].chars().next().unwrap_or('.');
        if c == '[' {
            let end = matching_bracket(tok, i).unwrap_or(tok.len() - 1);
            if !name.is_empty() {
                segs.push(Seg::Key(std::mem::take(&mut name), false));
            }
            let explicit = tok[..i].ends_with('.');
            let inner = tok[i + 1..end].trim();
            segs.push(bracket_seg(inner, explicit));
            i = end + 1;
        } else if c == '.' {
            if !name.is_empty() {
                segs.push(Seg::Key(std::mem::take(&mut name), false));
            }
            i += 1;
        } else {
            name.push(c);
            i += c.len_utf8();
        }
    }
    if !name.is_empty() {
        segs.push(Seg::Key(name, false));
    }
    let mut out = String::new();
    let mut dynamic = false;
    for seg in segs {
        match seg {
            Seg::Key(k, bracketed) if !dynamic => {
                if !out.is_empty() {
                    out.push('.');
                }
                let plain = !k.is_empty() && k.chars().all(|c| is_path_char(c) && c != '.');
                if bracketed || (!plain && !out.is_empty()) {
                    out.push_str(&format!("[{k}]"));
                } else {
                    out.push_str(&k);
                }
            }
            Seg::Key(k, _) => {
                let key = if !k.is_empty() && k.chars().all(|c| c.is_ascii_digit()) {
                    k
                } else {
                    serde_json::Value::String(k).to_string()
                };
                out = format!("(lookup {out} {key})");
            }
            Seg::Dynamic(e) => {
                dynamic = true;
                out = format!("(lookup {out} {})", wrap(&e));
            }
        }
    }
    out
}

fn bracket_seg(inner: &str, explicit: bool) -> Seg {
    if explicit {
        return Seg::Key(inner.to_string(), true);
    }
    for q in ['\'', '"'] {
        if let Some(k) = inner.strip_prefix(q).and_then(|k| k.strip_suffix(q)) {
            return Seg::Key(k.to_string(), true);
        }
    }
    if !inner.is_empty() && inner.chars().all(|c| c.is_ascii_digit()) {
        return Seg::Key(inner.to_string(), true);
    }
    Seg::Dynamic(rewrite_expr(inner))
}

#[cfg(test)]
mod tests {
    use super::{rewrite_expr, split_outside_quotes, top_level_tokens};

    #[test]
    fn subscripts_become_path_segments() {
        assert_eq!(rewrite_expr(" hostvars['h']['x'] "), " hostvars.[h].[x] ");
        assert_eq!(
            rewrite_expr("hostvars[\"web-1.example.com\"].ip"),
            "hostvars.[web-1.example.com].ip"
        );
        assert_eq!(rewrite_expr("groups['zk'][0]"), "groups.[zk].[0]");
        assert_eq!(rewrite_expr("x[0]"), "x.[0]");
        assert_eq!(
            rewrite_expr("hostvars[inventory_hostname]['x']"),
            "(lookup (lookup hostvars inventory_hostname) \"x\")"
        );
        assert_eq!(rewrite_expr("xs[i][0]"), "(lookup (lookup xs i) 0)");
    }

    #[test]
    fn handlebars_syntax_passes_unchanged() {
        for e in [
            "a.b.[c d]",
            "x.[0]",
            "../up",
            "@root.x",
            "@index",
            "(eq a 1)",
            "join xs \",\"",
            "[1, 2]",
            "'it''s'",
            "each xs as |x i|",
            "k=v",
        ] {
            assert_eq!(rewrite_expr(e), e);
        }
        // Brackets inside strings are not subscripts.
        assert_eq!(
            rewrite_expr(r#"replace s "a[0]" 'b['"#),
            r#"replace s "a[0]" 'b['"#
        );
    }

    #[test]
    fn calls_and_escapes() {
        assert_eq!(
            rewrite_expr("lookup('env', 'HOME')"),
            "(lookup \"env\" \"HOME\")"
        );
        assert_eq!(rewrite_expr("s.split(',')"), "(split s \",\")");
        assert_eq!(rewrite_expr("default(x.y, 'z')"), "(default x.y \"z\")");
        assert_eq!(rewrite_expr("s.center(9)"), "s.center(9)");
        assert_eq!(
            rewrite_expr(r#"regex_replace s '\d' "\n""#),
            r#"regex_replace s '\\d' "\n""#
        );
    }

    #[test]
    fn scanning_respects_quotes_and_brackets() {
        assert_eq!(
            top_level_tokens(r#" eq a "b c" (d e) "#),
            ["eq", "a", "\"b c\"", "(d e)"]
        );
        assert_eq!(
            split_outside_quotes("a, 'b,c', f(d, e)", ','),
            ["a", " 'b,c'", " f(d, e)"]
        );
    }
}
