//! Reading module arguments: Ansible's truthiness, modes, lists, aliases, and
//! the pre-flight check of a task's raw arguments against a module's declared
//! [`Param`]s (unknown names, missing required ones, literal values of the
//! wrong kind or outside `choices`), done before any host is touched.

use crate::module::{Args, Kind, ModuleError, Param};
use serde_json::Value;

/// True when a string still holds a template (checked only after rendering).
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

/// Ansible's truthiness for boolean arguments (YAML 1.1 words included).
pub fn truthy(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_f64().map(|f| f != 0.0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "yes" | "y" | "true" | "t" | "on" | "1" => Some(true),
            "no" | "n" | "false" | "f" | "off" | "0" | "" => Some(false),
            _ => None,
        },
        Value::Null => Some(false),
        _ => None,
    }
}

/// A file mode argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Permission bits, e.g. 0o644.
    Octal(u32),
    /// Symbolic, as chmod takes it (`u+rwx,g-w`).
    Symbolic(String),
}

impl Mode {
    /// Parse a mode. Numbers are read as octal digits (`0755`, `755`, and a
    /// YAML 1.1 octal `0755` read as decimal 755 all mean rwxr-xr-x).
    pub fn parse(v: &Value) -> Result<Mode, String> {
        let s = match v {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.trim().to_string(),
            other => return Err(format!("not a mode: {other}")),
        };
        let digits = s.strip_prefix("0o").unwrap_or(&s);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            let m = u32::from_str_radix(digits, 8)
                .map_err(|_| format!("`{s}` is not an octal mode"))?;
            if m > 0o7777 {
                return Err(format!("`{s}` is larger than 07777"));
            }
            return Ok(Mode::Octal(m));
        }
        let re_ok = s.split(',').all(|part| {
            let p = part.trim_start_matches(['u', 'g', 'o', 'a']);
            let mut chars = p.chars();
            matches!(chars.next(), Some('+' | '-' | '='))
                && chars.all(|c| "rwxXstugo+-=".contains(c))
        });
        if re_ok {
            Ok(Mode::Symbolic(s))
        } else {
            Err(format!("`{s}` is neither an octal nor a symbolic mode"))
        }
    }

    /// The resulting permission bits given current ones (symbolic modes are
    /// applied as chmod would, with umask 0 for `a`-less clauses).
    pub fn apply(&self, current: u32, is_dir: bool) -> u32 {
        match self {
            Mode::Octal(m) => *m,
            Mode::Symbolic(s) => {
                let mut mode = current;
                for clause in s.split(',') {
                    let who_end = clause.find(['+', '-', '=']).unwrap_or(0);
                    let who = &clause[..who_end];
                    let mut mask = 0u32;
                    for c in if who.is_empty() {
                        "a".chars()
                    } else {
                        who.chars()
                    } {
                        mask |= match c {
                            'u' => 0o4700,
                            'g' => 0o2070,
                            'o' => 0o1007,
                            _ => 0o7777,
                        };
                    }
                    let rest = &clause[who_end..];
                    let mut op = ' ';
                    let mut bits = 0u32;
                    let flush = |op: char, bits: u32, mode: &mut u32| match op {
                        '+' => *mode |= bits & mask,
                        '-' => *mode &= !(bits & mask),
                        '=' => *mode = (*mode & !(mask & 0o777)) | (bits & mask),
                        _ => {}
                    };
                    for c in rest.chars() {
                        match c {
                            '+' | '-' | '=' => {
                                flush(op, bits, &mut mode);
                                op = c;
                                bits = 0;
                            }
                            'r' => bits |= 0o444,
                            'w' => bits |= 0o222,
                            'x' => bits |= 0o111,
                            'X' if is_dir || current & 0o111 != 0 => bits |= 0o111,
                            's' => bits |= 0o6000,
                            't' => bits |= 0o1000,
                            _ => {}
                        }
                    }
                    flush(op, bits, &mut mode);
                }
                mode
            }
        }
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A string argument (numbers and booleans are stringified).
pub fn get_str(args: &Args, name: &str) -> Result<Option<String>, ModuleError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(value_text(v))),
        Some(v) => Err(bad(name, v, "expected a string")),
    }
}

/// A required string argument.
pub fn req_str(args: &Args, name: &str) -> Result<String, ModuleError> {
    get_str(args, name)?.ok_or_else(|| ModuleError::MissingArg(name.into()))
}

/// A boolean argument with Ansible truthiness.
pub fn get_bool(args: &Args, name: &str, default: bool) -> Result<bool, ModuleError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => truthy(v).ok_or_else(|| bad(name, v, "expected a boolean (yes/no, true/false)")),
    }
}

/// An integer argument.
pub fn get_int(args: &Args, name: &str) -> Result<Option<i64>, ModuleError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
        Some(v @ Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| bad(name, v, "expected an integer")),
        Some(v) => Err(bad(name, v, "expected an integer")),
    }
}

/// A mode argument.
pub fn get_mode(args: &Args, name: &str) -> Result<Option<Mode>, ModuleError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => Mode::parse(v).map(Some).map_err(|m| bad(name, v, &m)),
    }
}

/// A list argument; a string is split on commas, any other scalar is one item.
pub fn get_list(args: &Args, name: &str) -> Result<Vec<Value>, ModuleError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(a)) => Ok(a.clone()),
        Some(Value::String(s)) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(|x| Value::String(x.into()))
            .collect()),
        Some(Value::Object(_)) => Err(bad(name, &args[name], "expected a list")),
        Some(v) => Ok(vec![v.clone()]),
    }
}

/// A list of strings.
pub fn get_str_list(args: &Args, name: &str) -> Result<Vec<String>, ModuleError> {
    get_list(args, name)?
        .iter()
        .map(|v| match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(_) | Value::Bool(_) => Ok(value_text(v)),
            other => Err(bad(name, other, "expected a list of strings")),
        })
        .collect()
}

fn bad(name: &str, v: &Value, msg: &str) -> ModuleError {
    ModuleError::BadArg {
        name: name.into(),
        value: v.to_string(),
        message: msg.into(),
    }
}

/// A parameter named `*` accepts any other name (set_fact).
/// Rename aliases to canonical names, then check names, required arguments
/// and literal values. Values still holding a template are checked for
/// names only (their value is known after rendering, when `prepare` checks it).
pub fn normalize(params: &[Param], args: &Args) -> Result<Args, ModuleError> {
    let mut out = Args::new();
    let any = params.iter().any(|p| p.name == "*");
    for (k, v) in args {
        if any
            && !params
                .iter()
                .any(|p| p.name == k || p.aliases.contains(&k.as_str()))
        {
            out.insert(k.clone(), v.clone());
            continue;
        }
        let p = params
            .iter()
            .find(|p| p.name == k || p.aliases.contains(&k.as_str()))
            .ok_or_else(|| ModuleError::UnknownArg {
                name: k.clone(),
                accepted: params.iter().map(|p| p.name).collect::<Vec<_>>().join(", "),
            })?;
        if let Value::String(s) = v {
            if is_template(s) {
                out.insert(p.name.into(), v.clone());
                continue;
            }
        }
        check_kind(p, v)?;
        out.insert(p.name.into(), v.clone());
    }
    for p in params.iter().filter(|p| p.required) {
        if !out.contains_key(p.name) {
            return Err(ModuleError::MissingArg(p.name.into()));
        }
    }
    Ok(out)
}

fn check_kind(p: &Param, v: &Value) -> Result<(), ModuleError> {
    if v.is_null() {
        return Ok(());
    }
    let ok = match p.kind {
        Kind::Str => !matches!(v, Value::Array(_) | Value::Object(_)),
        Kind::Bool => truthy(v).is_some(),
        Kind::Int => v.is_i64() || v.as_str().is_some_and(|s| s.trim().parse::<i64>().is_ok()),
        Kind::Mode => Mode::parse(v).is_ok(),
        Kind::List => !v.is_object(),
        Kind::Map => v.is_object(),
        Kind::Any => true,
    };
    if !ok {
        let what = match p.kind {
            Kind::Str => "expected a string".to_string(),
            Kind::Bool => "expected a boolean (yes/no, true/false)".into(),
            Kind::Int => "expected an integer".into(),
            Kind::Mode => Mode::parse(v).err().unwrap_or_default(),
            Kind::List => "expected a list".into(),
            Kind::Map => "expected a mapping".into(),
            Kind::Any => String::new(),
        };
        return Err(bad(p.name, v, &what));
    }
    if !p.choices.is_empty() {
        let s = value_text(v);
        if !p.choices.contains(&s.as_str()) {
            return Err(ModuleError::BadChoice {
                name: p.name.into(),
                value: s,
                choices: p.choices.join("|"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn modes() {
        assert_eq!(Mode::parse(&json!("0644")).unwrap(), Mode::Octal(0o644));
        assert_eq!(Mode::parse(&json!(755)).unwrap(), Mode::Octal(0o755));
        assert_eq!(Mode::parse(&json!("0o700")).unwrap(), Mode::Octal(0o700));
        assert!(Mode::parse(&json!("0999")).is_err());
        assert!(Mode::parse(&json!("rwx")).is_err());
        let m = Mode::parse(&json!("u+x,go-w")).unwrap();
        assert_eq!(m.apply(0o666, false), 0o744);
        assert_eq!(
            Mode::parse(&json!("u=rw,go=r"))
                .unwrap()
                .apply(0o777, false),
            0o644
        );
    }

    #[test]
    fn truthiness() {
        assert_eq!(truthy(&json!("yes")), Some(true));
        assert_eq!(truthy(&json!("Off")), Some(false));
        assert_eq!(truthy(&json!(1)), Some(true));
        assert_eq!(truthy(&json!("maybe")), None);
    }

    #[test]
    fn normalize_checks() {
        const P: &[Param] = &[
            Param::new("path", Kind::Str)
                .required()
                .aliases(&["dest", "name"]),
            Param::new("state", Kind::Str).choices(&["file", "absent"]),
            Param::new("mode", Kind::Mode),
        ];
        let a = json!({"dest": "/x", "state": "absent"});
        let n = normalize(P, a.as_object().unwrap()).unwrap();
        assert_eq!(n["path"], "/x");
        let e = normalize(P, json!({"path": "/x", "stat": 1}).as_object().unwrap()).unwrap_err();
        assert!(matches!(e, ModuleError::UnknownArg { .. }));
        let e = normalize(
            P,
            json!({"path": "/x", "state": "absnt"}).as_object().unwrap(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("absnt"));
        let e = normalize(
            P,
            json!({"path": "/x", "mode": "0999"}).as_object().unwrap(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("0999"));
        assert!(normalize(P, json!({"state": "file"}).as_object().unwrap()).is_err());
        assert!(normalize(
            P,
            json!({"path": "/x", "state": "{{ s }}"})
                .as_object()
                .unwrap()
        )
        .is_ok());
    }
}
