//! The YAML inventory format, read as ansible-core's `yaml` plugin reads it:
//! top-level keys are groups; each group may hold `vars`, `children` (nested
//! groups, recursively) and `hosts` (patterns with ranges and `:port`, each
//! mapped to its variables), in the order written. Keys of the wrong shape
//! are skipped as ansible-core skips them (it only warns).

use super::data::Data;
use super::hostrange::{expand, parse_address};
use super::InventoryError;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// Why a YAML file is not a YAML inventory.
pub(super) enum YamlInvError {
    /// Not an inventory at all (empty, not a mapping, a plugin config): the
    /// caller may still try it as INI.
    NotInventory(InventoryError),
    /// A YAML inventory with a structural error.
    Invalid(InventoryError),
}

/// Python's type name, for messages.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Python truthiness of a parsed YAML value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Load a parsed YAML document from `file` into `data`.
pub(super) fn parse(doc: &Value, file: &Path, data: &mut Data) -> Result<(), YamlInvError> {
    let structure = |message: String| InventoryError::Structure {
        file: file.to_path_buf(),
        message,
    };
    if !truthy(doc) {
        return Err(YamlInvError::NotInventory(structure(
            "Parsed empty YAML file".into(),
        )));
    }
    let Value::Object(groups) = doc else {
        return Err(YamlInvError::NotInventory(structure(format!(
            "YAML inventory has invalid structure, it should be a dictionary, got: {}",
            type_name(doc)
        ))));
    };
    if let Some(plugin) = groups.get("plugin").filter(|p| truthy(p)) {
        // ansible-core would hand this to the `auto` plugin (and its INI
        // fallback could only fail on `plugin:`), so report it directly.
        return Err(YamlInvError::Invalid(InventoryError::Unsupported {
            file: file.to_path_buf(),
            what: format!("inventory plugin configuration (plugin: {plugin})"),
        }));
    }
    let mut p = YamlParser {
        data,
        file: file.to_path_buf(),
    };
    for (name, group_data) in groups {
        p.group(name, group_data)
            .map_err(|m| YamlInvError::Invalid(structure(m)))?;
    }
    Ok(())
}

struct YamlParser<'a> {
    data: &'a mut Data,
    file: PathBuf,
}

impl YamlParser<'_> {
    /// `_parse_group`: returns the group's index, or None when skipped.
    fn group(&mut self, name: &str, group_data: &Value) -> Result<Option<usize>, String> {
        let body = match group_data {
            Value::Null => None,
            Value::Object(m) => Some(m),
            _ => return Ok(None),
        };
        let g = self.data.add_group(name);
        let Some(body) = body else { return Ok(Some(g)) };
        let mut sections: Map<String, Value> = body.clone();
        for section in ["vars", "children", "hosts"] {
            match sections.get(section) {
                Some(Value::String(s)) => {
                    let mut m = Map::new();
                    m.insert(s.clone(), Value::Null);
                    sections.insert(section.to_string(), Value::Object(m));
                }
                Some(Value::Object(_) | Value::Null) | None => {}
                Some(other) => {
                    return Err(format!(
                        "Invalid \"{section}\" entry for \"{name}\" group, requires a dictionary, found \"{}\" instead.",
                        type_name(other)
                    ))
                }
            }
        }
        for (key, value) in &sections {
            let Value::Object(entries) = value else {
                continue;
            };
            match key.as_str() {
                "vars" => {
                    for (k, v) in entries {
                        self.data.set_group_var(g, k, v.clone())?;
                    }
                }
                "children" => {
                    for (sub, sub_data) in entries {
                        if let Some(c) = self.group(sub, sub_data)? {
                            self.data.add_child(g, c)?;
                        } else if let Some(c) = self.data.group(sub) {
                            self.data.add_child(g, c)?;
                        } else if let Some(h) = self.data.host(sub) {
                            self.data.add_host_to_group(g, h);
                        } else {
                            return Err(format!("{sub} is not a known host nor group"));
                        }
                    }
                }
                "hosts" => {
                    for (pattern, vars) in entries {
                        self.hosts(g, pattern, vars)?;
                    }
                }
                _ => {}
            }
        }
        Ok(Some(g))
    }

    fn hosts(&mut self, g: usize, pattern: &str, vars: &Value) -> Result<(), String> {
        let (base, port) =
            parse_address(pattern, true).unwrap_or_else(|| (pattern.to_string(), None));
        let names = expand(&base)?;
        let empty = Map::new();
        let vars = match vars {
            Value::Object(m) => m,
            v if !truthy(v) => &empty,
            v => {
                return Err(format!(
                    "Invalid data from file, expected dictionary and got:\n\n{v}"
                ))
            }
        };
        let source = Some(self.file.clone());
        for name in names {
            if name.is_empty() {
                return Err(format!("Invalid empty host name provided: {pattern:?}"));
            }
            let h = self.data.add_host(&name, Some(g), port, source.as_ref());
            for (k, v) in vars {
                self.data.hosts[h].vars.insert(k.clone(), v.clone());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn load(doc: Value) -> Result<Data, String> {
        let mut d = Data::new();
        parse(&doc, Path::new("inv.yml"), &mut d).map_err(|e| match e {
            YamlInvError::NotInventory(e) | YamlInvError::Invalid(e) => e.to_string(),
        })?;
        d.reconcile();
        Ok(d)
    }

    #[test]
    fn groups_children_hosts_vars() {
        let d = load(json!({"all": {
            "hosts": {"solo": null},
            "vars": {"env": "prod"},
            "children": {"web": {"hosts": {"web[1:2]:8022": {"role": "fe"}}, "vars": {"ansible_group_priority": 5}},
                         "db": {"hosts": "db1"}}}}))
        .unwrap();
        let w2 = &d.hosts[d.host("web2").unwrap()];
        assert_eq!(w2.vars["ansible_port"], json!(8022));
        assert_eq!(w2.vars["role"], json!("fe"));
        assert_eq!(d.groups[d.group("web").unwrap()].priority, 5);
        assert!(d.host("db1").is_some());
        assert_eq!(
            d.groups[d.group("ungrouped").unwrap()].hosts,
            [d.host("solo").unwrap()]
        );
    }

    #[test]
    fn structural_errors() {
        assert!(load(json!({"g": {"hosts": ["a"]}}))
            .unwrap_err()
            .contains("Invalid \"hosts\" entry for \"g\""));
        assert!(load(json!({"g": {"hosts": {"a": 5}}}))
            .unwrap_err()
            .contains("expected dictionary"));
        assert!(load(json!(["a"]))
            .unwrap_err()
            .contains("should be a dictionary"));
        assert!(load(json!({"plugin": "constructed"}))
            .unwrap_err()
            .contains("not supported"));
        assert!(load(json!({})).unwrap_err().contains("empty"));
    }
}
