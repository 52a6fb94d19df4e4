//! INI value typing as ansible-core really does it: every value (inline host
//! variable or `[group:vars]` entry) goes through Python's `ast.literal_eval`;
//! when that raises, the raw text is kept as a string. So `6` is an integer,
//! `True` a boolean, `'03'` the string "03", `[1, 2]` a list, and `yes`,
//! `0755` or `1 if x else 2` stay strings. Tuples and sets become lists,
//! bytes become text, complex numbers and `...` become their `str()`.

use super::pytoken::{py_complex_str, py_float_str, tokenize, Tok};
use serde_json::{Map, Number, Value};

/// A Python value that `literal_eval` can produce.
#[derive(Debug, Clone, PartialEq)]
enum Py {
    None,
    Bool(bool),
    Int(Option<i128>, f64),
    Float(f64),
    Complex(f64, f64),
    Str(String),
    Bytes(Vec<u8>),
    Ellipsis,
    List(Vec<Py>),
    Tuple(Vec<Py>),
    Set(Vec<Py>),
    Dict(Vec<(Py, Py)>),
}

/// The typed value of an INI value, as ansible-core's `_parse_value`.
pub(super) fn ini_value(text: &str) -> Value {
    match literal_eval(text) {
        Some(v) => to_json(&v),
        None => Value::String(text.to_string()),
    }
}

fn literal_eval(text: &str) -> Option<Py> {
    let toks = tokenize(text.trim_start_matches([' ', '\t']))?;
    let mut p = Parser { toks, pos: 0 };
    let v = p.expr_list(true)?;
    if p.pos != p.toks.len() {
        return None;
    }
    Some(v)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

/// Parsed operand before `literal_eval`'s checks: a value, or a signed number
/// built from unary/binary `+`/`-` that must still pass those checks.
enum Node {
    Val(Py),
    Unary(bool, Box<Node>),
    Bin(bool, Box<Node>, Box<Node>),
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn eat(&mut self, op: char) -> bool {
        if self.peek() == Some(&Tok::Op(op)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// `a, b, c` (a tuple when there is a comma) or a single expression.
    fn expr_list(&mut self, top: bool) -> Option<Py> {
        let first = self.expr()?;
        if self.peek() != Some(&Tok::Op(',')) {
            return Some(first);
        }
        let mut items = vec![first];
        while self.eat(',') {
            if self.at_end_of_list(top) {
                break;
            }
            items.push(self.expr()?);
        }
        Some(Py::Tuple(items))
    }

    fn at_end_of_list(&self, top: bool) -> bool {
        match self.peek() {
            None => top,
            Some(Tok::Op(c)) => matches!(c, ')' | ']' | '}'),
            _ => false,
        }
    }

    /// One expression, checked the way `literal_eval`'s `_convert` does.
    fn expr(&mut self) -> Option<Py> {
        let node = self.sum()?;
        convert(node)
    }

    fn sum(&mut self) -> Option<Node> {
        let mut left = self.unary()?;
        loop {
            let sub = if self.eat('+') {
                false
            } else if self.eat('-') {
                true
            } else {
                return Some(left);
            };
            let right = self.unary()?;
            left = Node::Bin(sub, Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Option<Node> {
        if self.eat('-') {
            return Some(Node::Unary(true, Box::new(self.unary()?)));
        }
        if self.eat('+') {
            return Some(Node::Unary(false, Box::new(self.unary()?)));
        }
        Some(Node::Val(self.atom()?))
    }

    fn atom(&mut self) -> Option<Py> {
        let tok = self.toks.get(self.pos)?.clone();
        self.pos += 1;
        Some(match tok {
            Tok::Int(v, approx) => Py::Int(v, approx),
            Tok::Float(f) => Py::Float(f),
            Tok::Imag(f) => Py::Complex(0.0, f),
            Tok::Ellipsis => Py::Ellipsis,
            Tok::Str(mut s) => {
                while let Some(Tok::Str(more)) = self.peek() {
                    s.push_str(more);
                    self.pos += 1;
                }
                if matches!(self.peek(), Some(Tok::Bytes(_))) {
                    return None;
                }
                Py::Str(s)
            }
            Tok::Bytes(mut b) => {
                while let Some(Tok::Bytes(more)) = self.peek() {
                    b.extend_from_slice(more);
                    self.pos += 1;
                }
                if matches!(self.peek(), Some(Tok::Str(_))) {
                    return None;
                }
                Py::Bytes(b)
            }
            Tok::Name(n) => match n.as_str() {
                "True" => Py::Bool(true),
                "False" => Py::Bool(false),
                "None" => Py::None,
                "set" if self.eat('(') && self.eat(')') => Py::Set(Vec::new()),
                _ => return None,
            },
            Tok::Op('(') => {
                if self.eat(')') {
                    return Some(Py::Tuple(Vec::new()));
                }
                let v = self.expr_list(false)?;
                if !self.eat(')') {
                    return None;
                }
                v
            }
            Tok::Op('[') => Py::List(self.items(']')?),
            Tok::Op('{') => self.brace()?,
            Tok::Op(_) => return None,
        })
    }

    /// Comma-separated expressions up to `close` (trailing comma allowed).
    fn items(&mut self, close: char) -> Option<Vec<Py>> {
        let mut items = Vec::new();
        while !self.eat(close) {
            items.push(self.expr()?);
            if !self.eat(',') {
                return self.eat(close).then_some(items);
            }
        }
        Some(items)
    }

    /// `{...}`: a dict or a set.
    fn brace(&mut self) -> Option<Py> {
        if self.eat('}') {
            return Some(Py::Dict(Vec::new()));
        }
        let first = self.expr()?;
        if !self.eat(':') {
            let mut items = vec![first];
            if self.eat(',') {
                items.extend(self.items('}')?);
            } else if !self.eat('}') {
                return None;
            }
            let mut set: Vec<Py> = Vec::new();
            for it in items {
                hashable(&it)?;
                if !set.iter().any(|s| py_eq(s, &it)) {
                    set.push(it);
                }
            }
            return Some(Py::Set(set));
        }
        let mut pairs: Vec<(Py, Py)> = Vec::new();
        let mut key = first;
        loop {
            let val = self.expr()?;
            hashable(&key)?;
            match pairs.iter_mut().find(|(k, _)| py_eq(k, &key)) {
                Some(slot) => slot.1 = val,
                None => pairs.push((key, val)),
            }
            if !self.eat(',') || self.peek() == Some(&Tok::Op('}')) {
                break;
            }
            key = self.expr()?;
            if !self.eat(':') {
                return None;
            }
        }
        self.eat('}').then_some(Py::Dict(pairs))
    }
}

/// `literal_eval`'s rules for `+`/`-`: one sign on a number, and `a ± bj`
/// where `a` is a (signed) real and `b` imaginary.
fn convert(node: Node) -> Option<Py> {
    match node {
        Node::Val(v) => Some(v),
        Node::Unary(..) => signed_num(node),
        Node::Bin(sub, left, right) => {
            let l = signed_num(*left)?;
            let r = match *right {
                Node::Val(v @ (Py::Int(..) | Py::Float(_) | Py::Complex(..))) => v,
                _ => return None,
            };
            let re = match l {
                Py::Int(_, f) | Py::Float(f) => f,
                _ => return None,
            };
            let Py::Complex(_, im) = r else { return None };
            Some(Py::Complex(re, if sub { -im } else { im }))
        }
    }
}

fn signed_num(node: Node) -> Option<Py> {
    match node {
        Node::Val(v @ (Py::Int(..) | Py::Float(_) | Py::Complex(..))) => Some(v),
        Node::Unary(neg, inner) => match *inner {
            Node::Val(v) if !neg => {
                matches!(v, Py::Int(..) | Py::Float(_) | Py::Complex(..)).then_some(v)
            }
            Node::Val(Py::Int(v, f)) => Some(Py::Int(v.map(|i| -i), -f)),
            Node::Val(Py::Float(f)) => Some(Py::Float(-f)),
            Node::Val(Py::Complex(re, im)) => Some(Py::Complex(-re, -im)),
            _ => None,
        },
        _ => None,
    }
}

/// Python refuses unhashable dict keys and set members (a `TypeError`, which
/// ansible-core does not catch; treating it as "not a literal" is close enough).
fn hashable(v: &Py) -> Option<()> {
    match v {
        Py::List(_) | Py::Dict(_) | Py::Set(_) => None,
        Py::Tuple(items) => items.iter().try_for_each(hashable),
        _ => Some(()),
    }
}

/// Python equality for keys: `1 == 1.0 == True`.
fn py_eq(a: &Py, b: &Py) -> bool {
    let num = |v: &Py| match v {
        Py::Bool(b) => Some((f64::from(u8::from(*b)), 0.0)),
        Py::Int(_, f) | Py::Float(f) => Some((*f, 0.0)),
        Py::Complex(re, im) => Some((*re, *im)),
        _ => None,
    };
    match (num(a), num(b)) {
        (Some(x), Some(y)) => match (a, b) {
            (Py::Int(Some(i), _), Py::Int(Some(j), _)) => i == j,
            _ => x == y,
        },
        _ => match (a, b) {
            (Py::Tuple(x), Py::Tuple(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q))
            }
            _ => a == b,
        },
    }
}

fn to_json(v: &Py) -> Value {
    match v {
        Py::None => Value::Null,
        Py::Bool(b) => Value::Bool(*b),
        Py::Int(Some(i), f) => i64::try_from(*i)
            .map(Value::from)
            .or_else(|_| u64::try_from(*i).map(Value::from))
            .unwrap_or_else(|_| float(*f)),
        Py::Int(None, f) => float(*f),
        Py::Float(f) => float(*f),
        Py::Complex(re, im) => Value::String(py_complex_str(*re, *im)),
        Py::Str(s) => Value::String(s.clone()),
        Py::Bytes(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        Py::Ellipsis => Value::String("...".into()),
        Py::List(items) | Py::Tuple(items) | Py::Set(items) => {
            Value::Array(items.iter().map(to_json).collect())
        }
        Py::Dict(pairs) => {
            let mut m = Map::new();
            for (k, v) in pairs {
                m.insert(json_key(k), to_json(v));
            }
            Value::Object(m)
        }
    }
}

fn float(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// How Python's `json.dumps` writes a non-string dict key.
fn json_key(k: &Py) -> String {
    match k {
        Py::Str(s) => s.clone(),
        Py::None => "null".into(),
        Py::Bool(b) => b.to_string(),
        Py::Int(Some(i), _) => i.to_string(),
        Py::Int(None, f) | Py::Float(f) => py_float_str(*f, false),
        other => match to_json(other) {
            Value::String(s) => s,
            v => v.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::ini_value as v;
    use serde_json::json;

    #[test]
    fn scalars_like_ansible_core() {
        assert_eq!(v("6"), json!(6));
        assert_eq!(v("6 # comment"), json!(6));
        assert_eq!(v("True"), json!(true));
        assert_eq!(v("true"), json!("true"));
        assert_eq!(v("yes"), json!("yes"));
        assert_eq!(v("yes # c"), json!("yes # c"));
        assert_eq!(v("None"), json!(null));
        assert_eq!(v("0755"), json!("0755"));
        assert_eq!(v("00"), json!(0));
        assert_eq!(v("1.5"), json!(1.5));
        assert_eq!(v("1e3"), json!(1000.0));
        assert_eq!(v("- 1"), json!(-1));
        assert_eq!(v("--1"), json!("--1"));
        assert_eq!(v("'03'"), json!("03"));
        assert_eq!(v("\"a\" 'b'"), json!("ab"));
        assert_eq!(v("'a' b'c'"), json!("'a' b'c'"));
        assert_eq!(v(""), json!(""));
        assert_eq!(v("inf"), json!("inf"));
        assert_eq!(v("..."), json!("..."));
        assert_eq!(v("1j"), json!("1j"));
        assert_eq!(v("-1+2j"), json!("(-1+2j)"));
        assert_eq!(v("12345678901234567890"), json!(12345678901234567890u64));
        assert_eq!(v("1 if 1 else 2"), json!("1 if 1 else 2"));
        assert_eq!(v("/usr/bin/python3"), json!("/usr/bin/python3"));
        assert_eq!(v("10.0.0.1"), json!("10.0.0.1"));
    }

    #[test]
    fn containers() {
        assert_eq!(v("[1, 2,]"), json!([1, 2]));
        assert_eq!(v("(1,2)"), json!([1, 2]));
        assert_eq!(v("1, 2"), json!([1, 2]));
        assert_eq!(v("('a')"), json!("a"));
        assert_eq!(v("()"), json!([]));
        assert_eq!(v("set()"), json!([]));
        assert_eq!(v("{1,2,2}"), json!([1, 2]));
        assert_eq!(v("{'a':[1,(2,3)]}"), json!({"a": [1, [2, 3]]}));
        assert_eq!(v("{'a': 1, 'a': 2}"), json!({"a": 2}));
        assert_eq!(
            v("{1: 'a', True: 2, None: 3, 1.5: 4}"),
            json!({"1": 2, "null": 3, "1.5": 4})
        );
        assert_eq!(v("[1,"), json!("[1,"));
        assert_eq!(v("{[1]: 2}"), json!("{[1]: 2}"));
    }
}
