//! The inventory's only door to the YAML parser: text → `serde_json::Value`
//! (merge keys applied, non-string keys written as Python's `json.dumps`
//! would). Kept in one function so that it can move to the engine's shared
//! `crate::yaml::parse_value` without touching the rest of the inventory.

use super::InventoryError;
use serde_json::{Map, Number, Value};
use std::path::Path;

/// Parse YAML (or JSON) `text` read from `file`.
pub(super) fn yaml_to_json(text: &str, file: &Path) -> Result<Value, InventoryError> {
    let mut v: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| InventoryError::Yaml {
            file: file.to_path_buf(),
            message: e.to_string(),
        })?;
    v.apply_merge().map_err(|e| InventoryError::Yaml {
        file: file.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(convert(v))
}

fn convert(v: serde_yaml::Value) -> Value {
    use serde_yaml::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(Number::from_f64)
                    .map_or(Value::Null, Value::Number)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(convert).collect()),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match convert(k) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                out.insert(key, convert(v));
            }
            Value::Object(out)
        }
        Y::Tagged(t) => convert(t.value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_and_reports_lines() {
        let v = yaml_to_json(
            "a: 1\nb: [x, 2.5]\n3: null\nbase: &b {k: 1}\nm:\n  <<: *b\n  j: 2\n",
            Path::new("f.yml"),
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"a": 1, "b": ["x", 2.5], "3": null, "base": {"k": 1}, "m": {"k": 1, "j": 2}})
        );
        assert_eq!(yaml_to_json("", Path::new("f.yml")).unwrap(), Value::Null);
        let e = yaml_to_json("a: [1\n", Path::new("f.yml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f.yml") && e.contains("line"), "{e}");
    }
}
