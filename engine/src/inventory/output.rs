//! What `ansible-inventory` prints: `--list` (groups with their direct
//! hosts and children, empty groups left out, `_meta.hostvars` for hosts
//! with variables), `--graph [group]` and `--host HOST`.

use super::data::ALL;
use super::pattern::{evaluate, Hit};
use super::vars::INTERNAL;
use super::{Inventory, InventoryError};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet};

impl Inventory {
    /// Variables as `ansible-inventory --host` shows them (internal magic
    /// variables removed).
    pub(super) fn shown_vars(&self, host: &str) -> Map<String, Value> {
        let mut vars = self.merged_vars(host).unwrap_or_default();
        vars.retain(|k, _| !INTERNAL.contains(&k.as_str()));
        let mut sorted: Vec<(String, Value)> = vars.into_iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        sorted.into_iter().collect()
    }

    /// Exactly what `ansible-inventory -i X --list` prints, as a JSON value.
    pub fn list_json(&self) -> Value {
        let d = &self.data;
        let available: Vec<usize> = d.group_hosts(ALL);
        let avail_set: HashSet<usize> = available.iter().copied().collect();
        let mut out: BTreeMap<String, Value> = BTreeMap::new();
        let mut seen: HashSet<usize> = HashSet::new();
        self.format_group(ALL, &avail_set, &mut seen, &mut out);
        let mut hostvars: BTreeMap<String, Value> = BTreeMap::new();
        for h in available {
            let vars = self.shown_vars(&d.hosts[h].name);
            if !vars.is_empty() {
                hostvars.insert(d.hosts[h].name.clone(), Value::Object(vars));
            }
        }
        let mut meta = Map::new();
        meta.insert(
            "hostvars".into(),
            Value::Object(hostvars.into_iter().collect()),
        );
        meta.insert("profile".into(), Value::from("inventory_legacy"));
        out.insert("_meta".into(), Value::Object(meta));
        Value::Object(out.into_iter().collect())
    }

    fn format_group(
        &self,
        g: usize,
        avail: &HashSet<usize>,
        seen: &mut HashSet<usize>,
        out: &mut BTreeMap<String, Value>,
    ) {
        let group = &self.data.groups[g];
        let mut entry = Map::new();
        let children: Vec<Value> = group
            .children
            .iter()
            .map(|&c| Value::from(self.data.groups[c].name.clone()))
            .collect();
        if !children.is_empty() {
            entry.insert("children".into(), Value::Array(children));
        }
        if g != ALL {
            let hosts: Vec<Value> = group
                .hosts
                .iter()
                .filter(|h| avail.contains(h))
                .map(|&h| Value::from(self.data.hosts[h].name.clone()))
                .collect();
            if !hosts.is_empty() {
                entry.insert("hosts".into(), Value::Array(hosts));
            }
        }
        if !entry.is_empty() {
            out.insert(group.name.clone(), Value::Object(entry));
        }
        for &c in &group.children {
            if !seen.contains(&c) {
                self.format_group(c, avail, seen, out);
                seen.insert(c);
            }
        }
    }

    /// Like `ansible-inventory --graph [group]` (without `--vars`).
    pub fn graph(&self, group: Option<&str>) -> Result<String, InventoryError> {
        let name = group.unwrap_or("all");
        let g = self
            .data
            .group(name)
            .ok_or_else(|| InventoryError::UnknownGroup {
                group: name.to_string(),
            })?;
        let mut lines = Vec::new();
        self.graph_group(g, 0, &mut lines);
        Ok(lines.join("\n"))
    }

    fn graph_group(&self, g: usize, depth: usize, lines: &mut Vec<String>) {
        let indent = |name: String, depth: usize| {
            if depth == 0 {
                name
            } else {
                format!("{}--{name}", "  |".repeat(depth))
            }
        };
        let group = &self.data.groups[g];
        lines.push(indent(format!("@{}:", group.name), depth));
        for &c in &group.children {
            self.graph_group(c, depth + 1, lines);
        }
        if g != ALL {
            for &h in &group.hosts {
                lines.push(indent(self.data.hosts[h].name.clone(), depth + 1));
            }
        }
    }

    /// Like `ansible-inventory --host PATTERN`: the pattern must select
    /// exactly one host (the implicit localhost included).
    pub fn host_json(&self, host: &str) -> Result<Value, InventoryError> {
        let hits = evaluate(&self.data, host)?;
        let [hit] = &hits[..] else {
            return Err(InventoryError::NotSingleHost {
                pattern: host.to_string(),
                count: hits.len(),
            });
        };
        let name = match hit {
            Hit::Host(h) => self.data.hosts[*h].name.clone(),
            Hit::Implicit(n) => n.clone(),
        };
        Ok(Value::Object(self.shown_vars(&name)))
    }
}
