//! `when:` expressions written with Jinja operators (`a == 1`, `x is
//! defined`, `a and not b`, `x in list`): translated into the handlebars
//! expression with the same meaning, which the error then suggests.

use super::expr::{jinja_literal, rewrite_expr, top_level_tokens};
use super::helpers::is_helper;
use super::TemplateError;

const COMPARISONS: &[(&str, &str)] = &[
    ("==", "eq"),
    ("!=", "ne"),
    ("<", "lt"),
    (">", "gt"),
    ("<=", "le"),
    (">=", "ge"),
];

/// Whether a token list uses Jinja operators (infix words or symbols).
fn has_operator(tokens: &[&str]) -> bool {
    tokens.iter().enumerate().any(|(i, t)| {
        COMPARISONS.iter().any(|(op, _)| op == t)
            || (i > 0 && matches!(*t, "and" | "or" | "is" | "in" | "not"))
    })
}

/// Reject Jinja operators in a `when:` expression with the handlebars
/// expression to write instead.
pub(crate) fn check_condition(expr: &str) -> Result<(), TemplateError> {
    let tokens = top_level_tokens(expr);
    if !has_operator(&tokens) {
        return Ok(());
    }
    let hint = translate(expr)
        .unwrap_or_else(|_| "(eq a 1), (and a (not b)), (defined x), (in x list)".into());
    Err(TemplateError::Syntax {
        template: expr.to_string(),
        message: format!(
            "Jinja operators (==, and, or, not, is, in) are not supported in conditions; \
             write a handlebars expression: {hint}"
        ),
    })
}

/// The handlebars expression for a Jinja condition.
pub(crate) fn translate(expr: &str) -> Result<String, String> {
    let tokens = top_level_tokens(expr);
    let mut p = Parser {
        tokens: &tokens,
        pos: 0,
    };
    let out = p.or()?;
    match p.tokens.get(p.pos) {
        None => Ok(out),
        Some(t) => Err(format!("unexpected `{t}`")),
    }
}

struct Parser<'a> {
    tokens: &'a [&'a str],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.pos).copied()
    }

    fn next(&mut self) -> Result<&str, String> {
        let t = self
            .tokens
            .get(self.pos)
            .copied()
            .ok_or("expression ends too early")?;
        self.pos += 1;
        Ok(t)
    }

    fn list(
        &mut self,
        word: &str,
        sub: fn(&mut Self) -> Result<String, String>,
    ) -> Result<String, String> {
        let mut parts = vec![sub(self)?];
        while self.peek() == Some(word) {
            self.pos += 1;
            parts.push(sub(self)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            format!("({word} {})", parts.join(" "))
        })
    }

    fn or(&mut self) -> Result<String, String> {
        self.list("or", Self::and)
    }

    fn and(&mut self) -> Result<String, String> {
        self.list("and", Self::not)
    }

    fn not(&mut self) -> Result<String, String> {
        if self.peek() == Some("not") {
            self.pos += 1;
            return Ok(format!("(not {})", self.not()?));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<String, String> {
        let a = self.atom()?;
        let op = match self.peek() {
            Some(op) => op,
            None => return Ok(a),
        };
        if let Some((_, helper)) = COMPARISONS.iter().find(|(o, _)| *o == op) {
            self.pos += 1;
            return Ok(format!("({helper} {a} {})", self.atom()?));
        }
        match op {
            "in" => {
                self.pos += 1;
                Ok(format!("(in {a} {})", self.atom()?))
            }
            "not" if self.tokens.get(self.pos + 1) == Some(&"in") => {
                self.pos += 2;
                Ok(format!("(not (in {a} {}))", self.atom()?))
            }
            "is" => {
                self.pos += 1;
                let negate = self.peek() == Some("not");
                if negate {
                    self.pos += 1;
                }
                let test = match self.next()? {
                    "defined" => format!("(defined {a})"),
                    "undefined" => format!("(not (defined {a}))"),
                    "none" | "None" => format!("(eq {a} null)"),
                    "true" | "sameas true" => format!("(eq {a} true)"),
                    "false" => format!("(eq {a} false)"),
                    other => return Err(format!("no helper for the test `is {other}`")),
                };
                Ok(if negate {
                    format!("(not {test})")
                } else {
                    test
                })
            }
            _ => Ok(a),
        }
    }

    fn atom(&mut self) -> Result<String, String> {
        let t = self.next()?;
        let Some(inner) = t.strip_prefix('(').and_then(|t| t.strip_suffix(')')) else {
            return Ok(jinja_literal(t));
        };
        let tokens = top_level_tokens(inner);
        let handlebars = tokens.first().is_some_and(|h| is_helper(h)) && !has_operator(&tokens);
        if handlebars {
            Ok(rewrite_expr(t))
        } else {
            translate(inner)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::translate;
    use crate::template::Templater;
    use serde_json::json;

    fn tr(e: &str) -> String {
        translate(e).unwrap_or_else(|err| panic!("{e}: {err}"))
    }

    #[test]
    fn translates_jinja_conditions() {
        assert_eq!(tr("zk_id == 1"), "(eq zk_id 1)");
        assert_eq!(tr("a == 1 and b"), "(and (eq a 1) b)");
        assert_eq!(tr("a or b and not c"), "(or a (and b (not c)))");
        assert_eq!(tr("x is defined"), "(defined x)");
        assert_eq!(
            tr("x is not defined or x == 'y'"),
            "(or (not (defined x)) (eq x \"y\"))"
        );
        assert_eq!(
            tr("inventory_hostname in groups['zk']"),
            "(in inventory_hostname groups.[zk])"
        );
        assert_eq!(tr("x not in xs"), "(not (in x xs))");
        assert_eq!(tr("(a or b) and (gt n 2)"), "(and (or a b) (gt n 2))");
        assert_eq!(
            tr("ansible_memtotal_mb >= 2048"),
            "(ge ansible_memtotal_mb 2048)"
        );
        assert!(translate("a ==").is_err());
        assert!(translate("x is odd").is_err());
    }

    #[test]
    fn jinja_conditions_error_with_the_translation() {
        let t = Templater::new();
        let e = t
            .condition("a == 1 and not b", &json!({}))
            .map_err(|e| e.to_string());
        assert!(
            e.is_err_and(|m| m.contains("write a handlebars expression: (and (eq a 1) (not b))"))
        );
        // Words inside strings and leading `not` are not Jinja operators.
        assert!(t
            .condition(r#"(eq a "x and y")"#, &json!({"a": "x and y"}))
            .unwrap_or(false));
        assert!(t.condition("not a", &json!({"a": false})).unwrap_or(false));
    }
}
