//! The one place that calls the YAML parser (serde_yaml, archived but
//! working; see PITFALLS). Everything else gets `serde_json::Value`s, which
//! keeps a later move to serde-saphyr small.
//!
//! Besides values, [`line_map`] records the line of every node by its path
//! (`/0/tasks/3`), so that errors found after parsing can still name a line.

use serde_json::{Map, Number, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A YAML error with its location and the offending line.
#[derive(Debug, thiserror::Error, Clone)]
#[error("{file}:{line}:{column}: {message}{context}")]
pub struct YamlError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// The offending line, shown under the message.
    pub context: String,
}

fn error_at(file: &Path, text: &str, e: &serde_yaml::Error) -> YamlError {
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let context = text
        .lines()
        .nth(line.saturating_sub(1))
        .map(|l| format!("\n    {l}\n    {}^", " ".repeat(column.saturating_sub(1))))
        .unwrap_or_default();
    let message = e.to_string();
    let message = match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message,
    };
    YamlError {
        file: file.to_path_buf(),
        line,
        column,
        message,
        context,
    }
}

/// Parse YAML text into a JSON value (merge keys expanded, YAML 1.2 scalars).
pub fn parse_value(text: &str, file: &Path) -> Result<Value, YamlError> {
    let mut v: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| error_at(file, text, &e))?;
    v.apply_merge().map_err(|e| error_at(file, text, &e))?;
    Ok(to_json(v))
}

/// Parse every document of a multi-document YAML stream.
pub fn parse_documents(text: &str, file: &Path) -> Result<Vec<Value>, YamlError> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let mut v: serde_yaml::Value =
            serde::Deserialize::deserialize(doc).map_err(|e| error_at(file, text, &e))?;
        v.apply_merge().map_err(|e| error_at(file, text, &e))?;
        out.push(to_json(v));
    }
    Ok(out)
}

/// Serialize a value as YAML (`to_yaml` helper, `--diff` of structures).
pub fn to_string(v: &Value) -> String {
    serde_yaml::to_string(v).unwrap_or_else(|e| format!("<not representable as YAML: {e}>"))
}

fn key_string(k: serde_yaml::Value) -> String {
    match to_json(k) {
        Value::String(s) => s,
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn to_json(v: serde_yaml::Value) -> Value {
    use serde_yaml::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Number(i.into())
            } else if let Some(u) = n.as_u64() {
                Value::Number(u.into())
            } else {
                n.as_f64()
                    .and_then(Number::from_f64)
                    .map(Value::Number)
                    .unwrap_or_else(|| Value::String(n.to_string()))
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(seq) => Value::Array(seq.into_iter().map(to_json).collect()),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                out.insert(key_string(k), to_json(v));
            }
            Value::Object(out)
        }
        Y::Tagged(t) => to_json(t.value),
    }
}

/// Line (1-based) of every node by its path, e.g. `"/0/tasks/3"`.
pub type LineMap = HashMap<String, usize>;

/// Build the [`LineMap`] of a YAML text (empty on a syntax error, which
/// [`parse_value`] reports with its own location).
pub fn line_map(text: &str) -> LineMap {
    use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
    use yaml_rust2::scanner::Marker;

    enum Frame {
        Seq(usize),
        Map(Option<String>),
    }
    struct Recv {
        stack: Vec<(String, Frame)>,
        map: LineMap,
    }
    impl Recv {
        /// Path of the node starting now; advances the parent. None = a map key.
        fn node_path(&mut self) -> Option<String> {
            match self.stack.last_mut() {
                None => Some(String::new()),
                Some((p, Frame::Seq(i))) => {
                    let path = format!("{p}/{i}");
                    *i += 1;
                    Some(path)
                }
                Some((p, Frame::Map(key))) => key.take().map(|k| format!("{p}/{k}")),
            }
        }
    }
    impl MarkedEventReceiver for Recv {
        fn on_event(&mut self, ev: Event, mark: Marker) {
            let line = mark.line();
            match ev {
                Event::Scalar(s, ..) => match self.node_path() {
                    Some(p) => {
                        self.map.entry(p).or_insert(line);
                    }
                    None => {
                        if let Some((_, Frame::Map(k))) = self.stack.last_mut() {
                            *k = Some(s);
                        }
                    }
                },
                Event::Alias(_) => {
                    if let Some(p) = self.node_path() {
                        self.map.entry(p).or_insert(line);
                    }
                }
                Event::SequenceStart(..) | Event::MappingStart(..) => {
                    let p = self.node_path().unwrap_or_default();
                    self.map.entry(p.clone()).or_insert(line);
                    let f = if matches!(ev, Event::SequenceStart(..)) {
                        Frame::Seq(0)
                    } else {
                        Frame::Map(None)
                    };
                    self.stack.push((p, f));
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    self.stack.pop();
                }
                _ => {}
            }
        }
    }
    let mut r = Recv {
        stack: Vec::new(),
        map: LineMap::new(),
    };
    let mut parser = Parser::new_from_str(text);
    if parser.load(&mut r, false).is_err() {
        return LineMap::new();
    }
    r.map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_merge_keys() {
        let v = parse_value(
            "a: &x {p: 1}\nb:\n  <<: *x\n  q: 0755\nc: yes\n",
            Path::new("f.yml"),
        )
        .unwrap();
        assert_eq!(v["b"]["p"], 1);
        assert_eq!(v["c"], "yes");
        assert!(v["b"]["q"].is_number() || v["b"]["q"].is_string());
    }

    #[test]
    fn error_names_file_line_and_context() {
        let e = parse_value("a: 1\nb: [1, 2\nc: 3\n", Path::new("play.yml")).unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("play.yml:"), "{s}");
        assert!(e.line >= 2, "{s}");
    }

    #[test]
    fn lines_by_path() {
        let t = "- hosts: all\n  tasks:\n    - name: a\n      debug: {}\n    - name: b\n      debug: {}\n";
        let m = line_map(t);
        assert_eq!(m["/0"], 1);
        assert_eq!(m["/0/tasks/0"], 3);
        assert_eq!(m["/0/tasks/1"], 5);
        assert_eq!(m["/0/tasks/1/name"], 5);
    }
}
