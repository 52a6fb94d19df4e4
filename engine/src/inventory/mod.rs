//! Inventory: reads Ansible inventories (INI, YAML, directories of them,
//! host lists) plus the `group_vars/`/`host_vars/` beside them and beside
//! the playbook, and answers what the executor and CLI ask: which hosts a
//! pattern selects, each host's merged inventory variables, the `groups` and
//! `group_names` magic variables, and `ansible-inventory`'s three views.
//! Behaviour follows ansible-core itself (checked against `ansible-inventory`
//! by `tests/inventory_compat.rs`), not its docs. It does not template
//! variables, run inventory scripts or plugins, or read vaults.
//!
//! Files: [`data`] the group/host graph, [`ini`] and [`yaml_inv`] the two
//! formats ([`shlex`], [`pyliteral`]/[`pytoken`] and [`hostrange`] are their
//! helpers), [`sources`] files/directories/vars dirs, [`pattern`] host
//! patterns, [`vars`] precedence, [`output`] the `ansible-inventory` views,
//! [`yaml_src`] the only call into the YAML parser.

mod data;
mod hostrange;
mod ini;
mod output;
mod pattern;
mod pyliteral;
mod pytoken;
mod shlex;
mod sources;
mod vars;
mod yaml_inv;
mod yaml_src;

use data::{Data, ALL};
use pattern::Hit;
use sources::VarsLayer;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Names that mean the implicit localhost when the inventory lacks them.
const LOCALHOST: [&str; 3] = ["127.0.0.1", "localhost", "::1"];

/// A loaded inventory.
#[derive(Clone, Debug)]
pub struct Inventory {
    data: Data,
    inventory_vars: Vec<VarsLayer>,
    playbook_vars: Vec<VarsLayer>,
}

/// Everything that can go wrong reading an inventory or matching patterns.
#[derive(thiserror::Error, Debug)]
pub enum InventoryError {
    #[error("inventory source {} does not exist", .path.display())]
    NotFound { path: PathBuf },
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", .file.display())]
    Ini {
        file: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}: YAML syntax error: {message}", .file.display())]
    Yaml { file: PathBuf, message: String },
    #[error("{}: {message}", .file.display())]
    Structure { file: PathBuf, message: String },
    #[error("{}: a variables file must hold a mapping, found {found}", .file.display())]
    VarsFile { file: PathBuf, found: String },
    #[error("{}: {what} is not supported (drover reads static INI and YAML inventories)", .file.display())]
    Unsupported { file: PathBuf, what: String },
    #[error("no group or host matches the pattern {pattern:?}")]
    NoMatch { pattern: String },
    #[error("no hosts matched the subscripted pattern {pattern:?}")]
    BadSubscript { pattern: String },
    #[error("invalid host pattern {pattern:?}: {message}")]
    BadPattern { pattern: String, message: String },
    #[error("the pattern {pattern:?} selects {count} hosts, exactly one is needed")]
    NotSingleHost { pattern: String, count: usize },
    #[error("no group named {group:?} in the inventory")]
    UnknownGroup { group: String },
}

impl Inventory {
    /// Read inventory sources in order: INI or YAML files, directories of
    /// them, or comma-separated host lists; then the `group_vars/` and
    /// `host_vars/` beside each source.
    pub fn load(sources: &[PathBuf]) -> Result<Inventory, InventoryError> {
        let mut data = Data::new();
        for source in sources {
            sources::load_source(&mut data, source)?;
        }
        data.reconcile();
        let mut inventory_vars = Vec::new();
        for base in sources.iter().filter_map(|s| sources::vars_base(s)) {
            inventory_vars.push(sources::load_layer(&base, &data)?);
        }
        Ok(Inventory {
            data,
            inventory_vars,
            playbook_vars: Vec::new(),
        })
    }

    /// The inventory used without `-i`: no hosts, only the implicit
    /// localhost (`ansible_connection=local`).
    pub fn localhost_default() -> Inventory {
        Inventory {
            data: Data::new(),
            inventory_vars: Vec::new(),
            playbook_vars: Vec::new(),
        }
    }

    /// Add the `group_vars/` and `host_vars/` beside a playbook; they win
    /// over the inventory's (and later calls over earlier ones).
    pub fn add_playbook_vars_dir(&mut self, dir: &Path) -> Result<(), InventoryError> {
        let base = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        self.playbook_vars
            .push(sources::load_layer(&base, &self.data)?);
        Ok(())
    }

    /// All hosts, in the order `all` selects them (not the implicit localhost).
    pub fn hosts(&self) -> Vec<String> {
        self.data
            .group_hosts(ALL)
            .into_iter()
            .map(|h| self.data.hosts[h].name.clone())
            .collect()
    }

    /// Hosts selected by a host pattern, in ansible-core's order. A part of
    /// the pattern that names no group or host is an error
    /// ([`InventoryError::NoMatch`]); `all` on an empty inventory is empty.
    pub fn select(&self, pattern: &str) -> Result<Vec<String>, InventoryError> {
        Ok(pattern::evaluate(&self.data, pattern)?
            .into_iter()
            .map(|hit| match hit {
                Hit::Host(h) => self.data.hosts[h].name.clone(),
                Hit::Implicit(name) => name,
            })
            .collect())
    }

    /// The host's merged inventory variables, by Ansible's precedence (see
    /// [`vars`]). An implicit localhost gets `ansible_connection: local`;
    /// an unknown host gets nothing.
    pub fn host_vars(&self, host: &str) -> serde_json::Map<String, serde_json::Value> {
        self.merged_vars(host).unwrap_or_default()
    }

    /// The `groups` magic variable: every group (`all` and `ungrouped` too)
    /// with its hosts, child groups' hosts included.
    pub fn groups_map(&self) -> BTreeMap<String, Vec<String>> {
        (0..self.data.groups.len())
            .map(|g| {
                let hosts = self
                    .data
                    .group_hosts(g)
                    .into_iter()
                    .map(|h| self.data.hosts[h].name.clone())
                    .collect();
                (self.data.groups[g].name.clone(), hosts)
            })
            .collect()
    }

    /// The `group_names` magic variable: the host's groups, sorted, without
    /// `all`. As ansible-core 2.19 does, an ungrouped host gets `["ungrouped"]`.
    pub fn group_names(&self, host: &str) -> Vec<String> {
        let Some(h) = self.data.host(host) else {
            return Vec::new();
        };
        let mut names: Vec<String> = self
            .data
            .host_groups(h)
            .into_iter()
            .filter(|&g| g != ALL)
            .map(|g| self.data.groups[g].name.clone())
            .collect();
        names.sort();
        names
    }

    /// True when the host is in the inventory. The implicit localhost is
    /// not (though `select("localhost")` and `host_vars` know it).
    pub fn contains_host(&self, host: &str) -> bool {
        self.data.host(host).is_some()
    }
}

#[cfg(test)]
mod tests;
