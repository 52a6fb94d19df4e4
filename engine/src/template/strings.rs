//! String, encoding, path and lookup helpers: `join`, `split`,
//! `b64decode`, `hash`, `regex_replace` (Python replacement syntax),
//! `basename`/`dirname` (Python semantics) and `lookup` (Ansible's `env` and
//! `file`, or handlebars' map/list lookup).

use super::helpers::{bad, text, Fail};
use base64::Engine as _;
use serde_json::Value;

pub(crate) fn join(a: &[&Value]) -> Result<Value, Fail> {
    let sep = a.get(1).map(|s| text(s)).unwrap_or_default();
    match a[0] {
        Value::Array(items) => Ok(Value::String(
            items.iter().map(text).collect::<Vec<_>>().join(&sep),
        )),
        Value::String(s) => Ok(Value::String(s.clone())),
        other => bad(format!("expected a list, got {other}")),
    }
}

pub(crate) fn split(a: &[&Value]) -> Result<Value, Fail> {
    let s = text(a[0]);
    let parts: Vec<Value> = match a.get(1).map(|s| text(s)) {
        Some(sep) if !sep.is_empty() => s.split(sep.as_str()).map(Value::from).collect(),
        _ => s.split_whitespace().map(Value::from).collect(),
    };
    Ok(Value::Array(parts))
}

pub(crate) fn b64decode(a: &[&Value]) -> Result<Value, Fail> {
    let s = text(a[0]);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .or_else(|e| bad(format!("`{s}` is not base64: {e}")))?;
    String::from_utf8(bytes)
        .map(Value::String)
        .or_else(|_| bad(format!("`{s}` does not decode to UTF-8 text")))
}

pub(crate) fn hash(a: &[&Value]) -> Result<Value, Fail> {
    use sha2::Digest as _;
    let data = text(a[0]);
    let bytes: Vec<u8> = match text(a[1]).to_ascii_lowercase().as_str() {
        "sha256" => sha2::Sha256::digest(data.as_bytes()).to_vec(),
        "sha224" => sha2::Sha224::digest(data.as_bytes()).to_vec(),
        "sha384" => sha2::Sha384::digest(data.as_bytes()).to_vec(),
        "sha512" => sha2::Sha512::digest(data.as_bytes()).to_vec(),
        "md5" => md5::Md5::digest(data.as_bytes()).to_vec(),
        other => {
            return bad(format!(
                "unknown hash `{other}` (use sha256, sha224, sha384, sha512 or md5)"
            ));
        }
    };
    Ok(Value::String(
        bytes.iter().map(|b| format!("{b:02x}")).collect(),
    ))
}

/// Python's `re.sub` replacement syntax (`\1`, `\g<name>`) in Rust's (`${1}`).
fn python_replacement(repl: &str) -> String {
    let mut out = String::with_capacity(repl.len());
    let mut chars = repl.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek().copied()) {
            ('$', _) => out.push_str("$$"),
            ('\\', Some(d)) if d.is_ascii_digit() => {
                let mut num = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    num.push(d);
                    chars.next();
                }
                out.push_str(&format!("${{{num}}}"));
            }
            ('\\', Some('g')) => {
                chars.next();
                let rest: String = chars.by_ref().take_while(|c| *c != '>').collect();
                out.push_str(&format!("${{{}}}", rest.trim_start_matches('<')));
            }
            ('\\', Some('\\')) => {
                chars.next();
                out.push('\\');
            }
            _ => out.push(c),
        }
    }
    out
}

pub(crate) fn regex_replace(a: &[&Value]) -> Result<Value, Fail> {
    let pattern = text(a[1]);
    let re = regex::Regex::new(&pattern)
        .or_else(|e| bad(format!("bad regular expression `{pattern}`: {e}")))?;
    let repl = python_replacement(&text(a[2]));
    Ok(Value::String(
        re.replace_all(&text(a[0]), repl.as_str()).into_owned(),
    ))
}

/// Python's `os.path.basename`.
pub(crate) fn basename(p: &str) -> &str {
    p.rsplit_once('/').map(|(_, b)| b).unwrap_or(p)
}

/// Python's `os.path.dirname`.
pub(crate) fn dirname(p: &str) -> String {
    match p.rfind('/') {
        None => String::new(),
        Some(i) => {
            let head = &p[..=i];
            let trimmed = head.trim_end_matches('/');
            if trimmed.is_empty() {
                head.to_string()
            } else {
                trimmed.to_string()
            }
        }
    }
}

/// `(lookup "env" "HOME")`, `(lookup "file" "/etc/hostname")`, or
/// handlebars' own `(lookup map key)` / `(lookup list index)`.
pub(crate) fn lookup(a: &[&Value]) -> Result<Value, Fail> {
    match (a[0], a[1]) {
        (Value::String(kind), name) if kind == "env" => {
            Ok(Value::String(std::env::var(text(name)).unwrap_or_default()))
        }
        (Value::String(kind), path) if kind == "file" => {
            let path = text(path);
            std::fs::read_to_string(&path)
                .map(|s| Value::String(s.trim_end().to_string()))
                .or_else(|e| bad(format!("cannot read `{path}`: {e}")))
        }
        (Value::String(kind), _) => bad(format!(
            "unknown lookup `{kind}` (supported: \"env\", \"file\")"
        )),
        (Value::Object(map), key) => map
            .get(&text(key))
            .cloned()
            .ok_or_else(|| Fail::Missing(format!("[{}]", text(key)))),
        (Value::Array(items), key) => {
            let index = text(key).trim().parse::<usize>().ok();
            index
                .and_then(|i| items.get(i).cloned())
                .ok_or_else(|| Fail::Missing(format!("[{}]", text(key))))
        }
        (other, _) => bad(format!("cannot look up a key in {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::{basename, dirname};
    use crate::template::Templater;
    use serde_json::json;

    fn r(t: &str, vars: serde_json::Value) -> String {
        match Templater::new().render(t, &vars) {
            Ok(s) => s,
            Err(e) => panic!("{t}: {e}"),
        }
    }

    #[test]
    fn string_helpers() {
        let v = json!({"s": "Hello World", "xs": ["a", 1, true]});
        assert_eq!(r(r#"{{join xs ", "}}"#, v.clone()), "a, 1, true");
        assert_eq!(
            r("{{upper s}} {{lower s}}", v.clone()),
            "HELLO WORLD hello world"
        );
        assert_eq!(r(r#"{{replace s "o" "0"}}"#, v.clone()), "Hell0 W0rld");
        assert_eq!(r(r#"{{join (split "a,b,c" ",") "+"}}"#, v.clone()), "a+b+c");
        assert_eq!(
            r(r#"{{trim "  x "}}|{{quote "a b"}}"#, v.clone()),
            "x|'a b'"
        );
        assert_eq!(r("{{to_json xs}}", v.clone()), r#"["a",1,true]"#);
        assert_eq!(r("{{to_yaml xs}}", v), "- a\n- 1\n- true\n");
    }

    #[test]
    fn encoding_and_hash_helpers() {
        let v = json!({});
        assert_eq!(r(r#"{{b64encode "drover"}}"#, v.clone()), "ZHJvdmVy");
        assert_eq!(r(r#"{{b64decode "ZHJvdmVy"}}"#, v.clone()), "drover");
        assert_eq!(
            r(r#"{{hash "abc" "sha256"}}"#, v.clone()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            r(r#"{{hash "abc" "md5"}}"#, v.clone()),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        let e = Templater::new().render(r#"{{hash "abc" "crc"}}"#, &v);
        assert!(e.is_err_and(|e| e.to_string().contains("unknown hash `crc`")));
    }

    #[test]
    fn regex_and_path_helpers() {
        let v = json!({"p": "/etc/nginx/nginx.conf"});
        assert_eq!(
            r(r#"{{regex_replace "a1b22" "(\d+)" "<\1>"}}"#, v.clone()),
            "a<1>b<22>"
        );
        assert_eq!(
            r(r#"{{ regex_replace "a.b" '\.' '\\' }}"#, v.clone()),
            "a\\b"
        );
        assert_eq!(r(r#"{{regex_replace "x" "x" "$5"}}"#, v.clone()), "$5");
        assert_eq!(
            r("{{basename p}} {{dirname p}}", v),
            "nginx.conf /etc/nginx"
        );
        assert_eq!(dirname("/a"), "/");
        assert_eq!(dirname("a"), "");
        assert_eq!(basename("/a/b/"), "");
    }

    #[test]
    fn lookup_helper() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("f.txt");
        std::fs::write(&file, "content\n").unwrap_or_else(|e| panic!("{e}"));
        let v = json!({"f": file.to_string_lossy(), "m": {"k": 1}, "key": "k"});
        assert_eq!(r(r#"{{lookup "file" f}}"#, v.clone()), "content");
        let path = std::env::var("PATH").unwrap_or_default();
        assert_eq!(r(r#"{{lookup "env" "PATH"}}"#, v.clone()), path);
        assert_eq!(r("{{lookup m key}}", v.clone()), "1");
        let e = Templater::new().render(r#"{{lookup m "nope"}}"#, &v);
        assert!(matches!(
            e,
            Err(crate::template::TemplateError::Undefined { .. })
        ));
    }
}
