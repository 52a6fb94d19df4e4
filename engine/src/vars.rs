//! Variables: JSON values merged by Ansible's precedence. Lower layers are
//! merged first and higher layers replace whole top-level keys (Ansible's
//! default `hash_behaviour=replace`).
//!
//! Order used (low → high): role defaults, inventory (group vars from `all`
//! to the most specific group, then host vars, each with its `group_vars/` /
//! `host_vars/` files, see [`crate::inventory`]), facts, play `vars`, play
//! `vars_files`, role `vars`, block `vars`, task `vars`, `set_fact` and
//! `register`, loop variables, extra vars (`-e`).

use serde_json::{Map, Value};

pub type Vars = Map<String, Value>;

/// Merge `upper` over `lower`, replacing whole top-level keys.
pub fn merge_into(lower: &mut Vars, upper: &Vars) {
    for (k, v) in upper {
        lower.insert(k.clone(), v.clone());
    }
}

/// Merge several layers, lowest first.
pub fn layered<'a>(layers: impl IntoIterator<Item = &'a Vars>) -> Vars {
    let mut out = Vars::new();
    for l in layers {
        merge_into(&mut out, l);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn higher_layer_replaces_whole_key() {
        let a = json!({"x": 1, "m": {"a": 1, "b": 2}})
            .as_object()
            .unwrap()
            .clone();
        let b = json!({"m": {"a": 3}}).as_object().unwrap().clone();
        let c = json!({"x": 9}).as_object().unwrap().clone();
        let v = layered([&a, &b, &c]);
        assert_eq!(Value::Object(v), json!({"x": 9, "m": {"a": 3}}));
    }
}
