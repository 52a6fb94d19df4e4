//! A host's inventory variables, merged in ansible-core's order
//! (`VARIABLE_PRECEDENCE` defaults, then host vars):
//! `all` group vars < other group vars (sorted by depth, priority, name) <
//! inventory `group_vars/all` < playbook `group_vars/all` < inventory
//! `group_vars/<group>` < playbook `group_vars/<group>` < host vars from the
//! inventory file < inventory `host_vars/<host>` < playbook `host_vars/<host>`.
//! Merging replaces whole top-level keys (`hash_behaviour = replace`).
//! Also the magic variables that come from the inventory.

use super::data::ALL;
use super::hostrange::is_ip;
use super::sources::VarsLayer;
use super::{Inventory, LOCALHOST};
use serde_json::{Map, Value};

/// Variables ansible-inventory never prints (`C.INTERNAL_STATIC_VARS`).
pub(super) const INTERNAL: &[&str] = &[
    "ansible_async_path",
    "ansible_collection_name",
    "ansible_config_file",
    "ansible_dependent_role_names",
    "ansible_diff_mode",
    "ansible_facts",
    "ansible_forks",
    "ansible_inventory_sources",
    "ansible_limit",
    "ansible_play_batch",
    "ansible_play_hosts",
    "ansible_play_hosts_all",
    "ansible_play_role_names",
    "ansible_playbook_python",
    "ansible_role_name",
    "ansible_role_names",
    "ansible_run_tags",
    "ansible_skip_tags",
    "ansible_verbosity",
    "ansible_version",
    "inventory_dir",
    "inventory_file",
    "inventory_hostname",
    "inventory_hostname_short",
    "groups",
    "group_names",
    "hostvars",
    "playbook_dir",
    "play_hosts",
    "role_name",
    "role_names",
    "role_path",
    "role_uuid",
];

fn combine(out: &mut Map<String, Value>, add: Option<&Map<String, Value>>) {
    if let Some(add) = add {
        for (k, v) in add {
            out.insert(k.clone(), v.clone());
        }
    }
}

impl Inventory {
    /// Merged variables of `host` (None when it is neither an inventory host
    /// nor an implicit localhost name).
    pub(super) fn merged_vars(&self, host: &str) -> Option<Map<String, Value>> {
        let d = &self.data;
        let alias = d.host(host).or_else(|| {
            LOCALHOST
                .contains(&host)
                .then(|| d.localhost_alias())
                .flatten()
        });
        let (groups, own) = match alias {
            Some(h) => {
                let groups: Vec<usize> =
                    d.host_groups(h).into_iter().filter(|&g| g != ALL).collect();
                (d.sort_groups(&groups), d.hosts[h].vars.clone())
            }
            None if LOCALHOST.contains(&host) => {
                let mut own = Map::new();
                own.insert("ansible_connection".into(), Value::from("local"));
                (Vec::new(), own)
            }
            None => return None,
        };
        let names: Vec<&str> = groups.iter().map(|&g| d.groups[g].name.as_str()).collect();
        let group_layer = |out: &mut Map<String, Value>, layers: &[VarsLayer], name: &str| {
            for l in layers {
                combine(out, l.groups.get(name));
            }
        };
        let mut out = Map::new();
        combine(&mut out, Some(&d.groups[ALL].vars));
        for &g in &groups {
            combine(&mut out, Some(&d.groups[g].vars));
        }
        group_layer(&mut out, &self.inventory_vars, "all");
        group_layer(&mut out, &self.playbook_vars, "all");
        for layers in [&self.inventory_vars, &self.playbook_vars] {
            for l in layers.iter() {
                for name in &names {
                    combine(&mut out, l.groups.get(*name));
                }
            }
        }
        combine(&mut out, Some(&own));
        let name = alias.map_or(host, |h| d.hosts[h].name.as_str());
        for l in self.inventory_vars.iter().chain(&self.playbook_vars) {
            combine(&mut out, l.hosts.get(name));
        }
        Some(out)
    }

    /// The magic variables the inventory defines for a host:
    /// `inventory_hostname`, `inventory_hostname_short`, `group_names`,
    /// `inventory_file` and `inventory_dir` (null for implicit hosts).
    pub fn magic_vars(&self, host: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("inventory_hostname".into(), Value::from(host));
        let short = if is_ip(host) {
            host
        } else {
            host.split('.').next().unwrap_or(host)
        };
        m.insert("inventory_hostname_short".into(), Value::from(short));
        m.insert("group_names".into(), Value::from(self.group_names(host)));
        let source = self
            .data
            .host(host)
            .and_then(|h| self.data.hosts[h].source.clone());
        let file = source
            .as_ref()
            .map(|s| Value::from(s.to_string_lossy().into_owned()));
        let dir = source
            .as_ref()
            .and_then(|s| s.parent())
            .map(|p| Value::from(p.to_string_lossy().into_owned()));
        m.insert("inventory_file".into(), file.unwrap_or(Value::Null));
        m.insert("inventory_dir".into(), dir.unwrap_or(Value::Null));
        m
    }
}
