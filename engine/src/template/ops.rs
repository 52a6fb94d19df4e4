//! Value semantics for helpers and conditions: Ansible truthiness, loose
//! equality and ordering across numbers and numeric strings, lengths,
//! membership, numbers (`int`, `float`, `add`, `sub`, `range`).

use super::helpers::{bad, text, Fail};
use serde_json::{Number, Value};
use std::cmp::Ordering;

/// Ansible truthiness: false, 0, "", "false"/"no"/"off"/"0", empty
/// lists/maps and null are false; everything else is true.
pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "" | "false" | "no" | "off" | "0"
        ),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Equality that lets `1`, `1.0` and `"1"` meet, and `true` meet `"yes"`.
pub(crate) fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Number(_), Value::String(_)) | (Value::String(_), Value::Number(_)) => {
            matches!((number(a), number(b)), (Some(x), Some(y)) if x == y)
        }
        (Value::Bool(x), Value::String(_)) => crate::args::truthy(b) == Some(*x),
        (Value::String(_), Value::Bool(y)) => crate::args::truthy(a) == Some(*y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| loose_eq(x, y))
        }
        _ => a == b,
    }
}

/// Order two values: numerically when both are numbers (or numeric
/// strings), else as strings; anything else is an error.
pub(crate) fn compare(a: &[&Value], test: fn(Ordering) -> bool) -> Result<Value, Fail> {
    let (x, y) = (a[0], a[1]);
    let numeric = matches!(x, Value::Number(_)) || matches!(y, Value::Number(_));
    let ord = match (number(x), number(y), x, y) {
        (Some(p), Some(q), _, _) if numeric => p.partial_cmp(&q),
        (_, _, Value::String(p), Value::String(q)) => Some(p.cmp(q)),
        (_, _, Value::Bool(p), Value::Bool(q)) => Some(p.cmp(q)),
        _ => None,
    };
    match ord {
        Some(o) => Ok(Value::Bool(test(o))),
        None => bad(format!("cannot compare {x} with {y}")),
    }
}

pub(crate) fn length(a: &[&Value]) -> Result<Value, Fail> {
    match a[0] {
        Value::Array(items) => Ok(Value::from(items.len())),
        Value::Object(map) => Ok(Value::from(map.len())),
        Value::String(s) => Ok(Value::from(s.chars().count())),
        other => bad(format!("{other} has no length")),
    }
}

/// Whether `container` (list, string or map keys) holds `item`.
pub(crate) fn contains(container: &Value, item: &Value) -> Result<Value, Fail> {
    let found = match container {
        Value::Array(items) => items.iter().any(|x| loose_eq(x, item)),
        Value::String(s) => s.contains(text(item).as_str()),
        Value::Object(map) => map.contains_key(&text(item)),
        other => return bad(format!("{other} is not a list, string or map")),
    };
    Ok(Value::Bool(found))
}

/// `first` (`front`) or `last` element of a list or character of a string.
pub(crate) fn end(v: &Value, front: bool) -> Result<Value, Fail> {
    let picked = match v {
        Value::Array(items) if front => items.first().cloned(),
        Value::Array(items) => items.last().cloned(),
        Value::String(s) if front => s.chars().next().map(|c| Value::String(c.into())),
        Value::String(s) => s.chars().next_back().map(|c| Value::String(c.into())),
        other => return bad(format!("{other} is not a list or string")),
    };
    picked.map_or_else(|| bad("the list is empty"), Ok)
}

/// Ansible's `int`: numbers truncate, numeric text parses, anything else is 0.
pub(crate) fn int(v: &Value) -> Value {
    let n = match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.trunc() as i64)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().map(|f| f.trunc() as i64))
        }
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    };
    Value::from(n.unwrap_or(0))
}

pub(crate) fn float(a: &[&Value]) -> Result<Value, Fail> {
    let f = match a[0] {
        Value::Bool(b) => f64::from(u8::from(*b)),
        v => number(v).unwrap_or(0.0),
    };
    Number::from_f64(f)
        .map(Value::Number)
        .map_or_else(|| bad(format!("{f} is not a number")), Ok)
}

fn integer(v: &Value) -> Result<i64, Fail> {
    match v {
        Value::Number(n) if n.is_i64() => Ok(n.as_i64().unwrap_or(0)),
        Value::String(s) => s
            .trim()
            .parse()
            .or_else(|_| bad(format!("`{s}` is not an integer"))),
        other => bad(format!("{other} is not an integer")),
    }
}

/// `range(end)`, `range(start, end)`, `range(start, end, step)` like Python.
pub(crate) fn range(a: &[&Value]) -> Result<Value, Fail> {
    const LIMIT: i64 = 100_000;
    let nums = a
        .iter()
        .map(|v| integer(v))
        .collect::<Result<Vec<_>, _>>()?;
    let (start, stop, step) = match nums.as_slice() {
        [stop] => (0, *stop, 1),
        [start, stop] => (*start, *stop, 1),
        [start, stop, step] => (*start, *stop, *step),
        _ => return bad("expected 1 to 3 integers"),
    };
    if step == 0 {
        return bad("step must not be 0");
    }
    let mut out = Vec::new();
    let mut i = start;
    while (step > 0 && i < stop) || (step < 0 && i > stop) {
        if out.len() as i64 >= LIMIT {
            return bad(format!("more than {LIMIT} numbers"));
        }
        out.push(Value::from(i));
        i = i.saturating_add(step);
    }
    Ok(Value::Array(out))
}

/// Numbers add; strings and lists concatenate.
pub(crate) fn add(a: &[&Value]) -> Result<Value, Fail> {
    match (a[0], a[1]) {
        (Value::String(x), Value::String(y)) => Ok(Value::String(format!("{x}{y}"))),
        (Value::Array(x), Value::Array(y)) => Ok(Value::Array([x.clone(), y.clone()].concat())),
        (x, y) => arith(x, y, i64::checked_add, |p, q| p + q),
    }
}

pub(crate) fn sub(a: &[&Value]) -> Result<Value, Fail> {
    arith(a[0], a[1], i64::checked_sub, |p, q| p - q)
}

fn arith(
    x: &Value,
    y: &Value,
    int_op: fn(i64, i64) -> Option<i64>,
    float_op: fn(f64, f64) -> f64,
) -> Result<Value, Fail> {
    let int = |v: &Value| v.as_i64().or_else(|| text(v).trim().parse().ok());
    let ints = (int(x), int(y));
    if let (Some(p), Some(q)) = ints {
        return int_op(p, q)
            .map(Value::from)
            .map_or_else(|| bad("integer overflow"), Ok);
    }
    match (number(x), number(y)) {
        (Some(p), Some(q)) => float(&[&Value::from(float_op(p, q))]),
        _ => bad(format!("cannot do arithmetic on {x} and {y}")),
    }
}

#[cfg(test)]
mod tests {
    use super::truthy;
    use crate::template::Templater;
    use serde_json::json;

    fn r(t: &str, vars: serde_json::Value) -> String {
        match Templater::new().render(t, &vars) {
            Ok(s) => s,
            Err(e) => panic!("{t}: {e}"),
        }
    }

    #[test]
    fn truthiness_is_ansibles() {
        for v in [
            json!(false),
            json!(0),
            json!(""),
            json!("False"),
            json!("no"),
            json!("off"),
        ] {
            assert!(!truthy(&v), "{v}");
        }
        for v in [json!([]), json!({}), json!(null), json!(0.0)] {
            assert!(!truthy(&v), "{v}");
        }
        for v in [
            json!(true),
            json!(2),
            json!("yes"),
            json!("x"),
            json!([0]),
            json!({"a": 1}),
        ] {
            assert!(truthy(&v), "{v}");
        }
    }

    #[test]
    fn comparisons_on_numbers_and_strings() {
        let v = json!({"n": 3, "s": "3", "f": 2.5, "name": "b"});
        assert_eq!(
            r("{{eq n 3}} {{eq n s}} {{eq n 3.0}} {{ne n 4}}", v.clone()),
            "true true true true"
        );
        assert_eq!(
            r("{{gt n f}} {{lt f n}} {{ge n 3}} {{le n 2}}", v.clone()),
            "true true true false"
        );
        assert_eq!(
            r(r#"{{gt s 10}} {{gt name "a"}} {{lt "10" "9"}}"#, v.clone()),
            "false true true"
        );
        assert_eq!(
            r(
                r#"{{eq name "b"}} {{eq true "yes"}} {{eq 1 "x"}}"#,
                v.clone()
            ),
            "true true false"
        );
        let e = Templater::new().render("{{gt n (split name)}}", &v);
        assert!(e.is_err_and(|e| e.to_string().contains("cannot compare 3 with [\"b\"]")));
    }

    #[test]
    fn logic_helpers_use_ansible_truthiness() {
        let v = json!({"a": "yes", "b": "no", "z": 0});
        assert_eq!(
            r("{{and a (not b)}} {{or b z}} {{not z}} {{and a b z}}", v),
            "true false true false"
        );
    }

    #[test]
    fn list_helpers() {
        let v = json!({"xs": [3, 1, 2], "s": "abc", "m": {"k": 1}});
        assert_eq!(
            r("{{len xs}} {{length s}} {{length m}}", v.clone()),
            "3 3 1"
        );
        assert_eq!(
            r(
                r#"{{contains xs 1}} {{contains s "bc"}} {{in "k" m}} {{in 9 xs}}"#,
                v.clone()
            ),
            "true true true false"
        );
        assert_eq!(
            r("{{first xs}} {{last xs}} {{first s}} {{last s}}", v.clone()),
            "3 2 a c"
        );
        assert_eq!(
            r("{{to_json (range 3)}} {{to_json (range 1 7 3)}}", v.clone()),
            "[0,1,2] [1,4]"
        );
        let e = Templater::new().render("{{first (range 0)}}", &v);
        assert!(e.is_err_and(|e| e.to_string().contains("empty")));
    }

    #[test]
    fn number_helpers() {
        let v = json!({"s": " 42 ", "f": "2.9", "x": "abc"});
        assert_eq!(
            r("{{int s}} {{int f}} {{int x}} {{int true}}", v.clone()),
            "42 2 0 1"
        );
        assert_eq!(
            r("{{float s}} {{bool \"yes\"}} {{bool \"no\"}}", v.clone()),
            "42.0 true false"
        );
        assert_eq!(
            r(
                r#"{{add 2 s}} {{sub 2 1}} {{add 1 0.5}} {{add "a" "b"}}"#,
                v.clone()
            ),
            "44 1 1.5 ab"
        );
        assert_eq!(r("{{to_json (add (range 1) (range 1))}}", v), "[0,0]");
    }
}
