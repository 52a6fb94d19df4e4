//! The inventory graph, as ansible-core's `InventoryData`/`Group`/`Host`
//! keep it: groups and hosts in insertion order, parent/child links between
//! groups (no cycles), direct host membership, group depth and priority, the
//! `reconcile` step that hangs parentless groups under `all` and puts
//! group-less hosts in `ungrouped`, and `get_hosts()` ordering. No I/O here.

use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

pub(super) const ALL: usize = 0;
pub(super) const UNGROUPED: usize = 1;

#[derive(Clone, Debug)]
pub(super) struct Group {
    pub name: String,
    pub vars: Map<String, Value>,
    pub children: Vec<usize>,
    pub parents: Vec<usize>,
    /// Hosts placed directly in this group, in the order they were added.
    pub hosts: Vec<usize>,
    pub priority: i64,
}

#[derive(Clone, Debug)]
pub(super) struct Host {
    pub name: String,
    pub vars: Map<String, Value>,
    /// Groups holding this host directly.
    pub direct: Vec<usize>,
    /// The inventory file that first named the host (`inventory_file`).
    pub source: Option<PathBuf>,
}

#[derive(Clone, Debug)]
pub(super) struct Data {
    pub groups: Vec<Group>,
    pub hosts: Vec<Host>,
    group_ix: HashMap<String, usize>,
    host_ix: HashMap<String, usize>,
}

impl Data {
    /// An empty inventory: `all` with its child `ungrouped`.
    pub fn new() -> Data {
        let mut d = Data {
            groups: Vec::new(),
            hosts: Vec::new(),
            group_ix: HashMap::new(),
            host_ix: HashMap::new(),
        };
        d.add_group("all");
        d.add_group("ungrouped");
        d.groups[ALL].children.push(UNGROUPED);
        d.groups[UNGROUPED].parents.push(ALL);
        d
    }

    pub fn group(&self, name: &str) -> Option<usize> {
        self.group_ix.get(name).copied()
    }

    pub fn host(&self, name: &str) -> Option<usize> {
        self.host_ix.get(name).copied()
    }

    /// The first inventory host named `localhost`, `127.0.0.1` or `::1`:
    /// ansible-core answers any of those names with it.
    pub fn localhost_alias(&self) -> Option<usize> {
        self.hosts
            .iter()
            .position(|h| super::LOCALHOST.contains(&h.name.as_str()))
    }

    pub fn add_group(&mut self, name: &str) -> usize {
        if let Some(g) = self.group(name) {
            return g;
        }
        self.groups.push(Group {
            name: name.to_string(),
            vars: Map::new(),
            children: Vec::new(),
            parents: Vec::new(),
            hosts: Vec::new(),
            priority: 1,
        });
        self.group_ix
            .insert(name.to_string(), self.groups.len() - 1);
        self.groups.len() - 1
    }

    /// Add a host (if new: with `ansible_port` from `port`, as ansible-core
    /// sets it only when the host is created) and put it in `group`.
    pub fn add_host(
        &mut self,
        name: &str,
        group: Option<usize>,
        port: Option<u64>,
        source: Option<&PathBuf>,
    ) -> usize {
        let h = match self.host(name) {
            Some(h) => h,
            None => {
                let mut vars = Map::new();
                if let Some(p) = port.filter(|p| *p != 0) {
                    vars.insert("ansible_port".into(), Value::from(p));
                }
                self.hosts.push(Host {
                    name: name.to_string(),
                    vars,
                    direct: Vec::new(),
                    source: source.cloned(),
                });
                self.host_ix.insert(name.to_string(), self.hosts.len() - 1);
                self.hosts.len() - 1
            }
        };
        if let Some(g) = group {
            self.add_host_to_group(g, h);
        }
        h
    }

    pub fn add_host_to_group(&mut self, g: usize, h: usize) {
        if !self.groups[g].hosts.contains(&h) {
            self.groups[g].hosts.push(h);
            self.hosts[h].direct.push(g);
        }
    }

    fn remove_host_from_group(&mut self, g: usize, h: usize) {
        self.groups[g].hosts.retain(|x| *x != h);
        self.hosts[h].direct.retain(|x| *x != g);
    }

    /// Make `child` a child group of `parent`; the error is ansible-core's
    /// message for a loop.
    pub fn add_child(&mut self, parent: usize, child: usize) -> Result<(), String> {
        if parent == child {
            return Err(format!(
                "can't add group {:?} to itself",
                self.groups[parent].name
            ));
        }
        if self.groups[parent].children.contains(&child) {
            return Ok(());
        }
        if self.ancestors(parent).contains(&child) {
            return Err(format!(
                "Adding group '{}' as child to '{}' creates a recursive dependency loop.",
                self.groups[child].name, self.groups[parent].name
            ));
        }
        self.groups[parent].children.push(child);
        if !self.groups[child].parents.contains(&parent) {
            self.groups[child].parents.push(parent);
        }
        Ok(())
    }

    /// Set a group variable; `ansible_group_priority` sets the priority instead.
    pub fn set_group_var(&mut self, g: usize, key: &str, value: Value) -> Result<(), String> {
        if key != "ansible_group_priority" {
            self.groups[g].vars.insert(key.to_string(), value);
            return Ok(());
        }
        let bad = || {
            format!(
                "invalid ansible_group_priority {value} for group {:?}: not an integer",
                self.groups[g].name
            )
        };
        let p = match &value {
            Value::Null => return Ok(()),
            Value::Bool(b) => i64::from(*b),
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f.trunc() as i64))
                .ok_or_else(bad)?,
            Value::String(s) => s.trim().replace('_', "").parse().map_err(|_| bad())?,
            _ => return Err(bad()),
        };
        self.groups[g].priority = p;
        Ok(())
    }

    /// All ancestors of a group (not the group itself), nearest first.
    pub fn ancestors(&self, g: usize) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        let mut todo: Vec<usize> = self.groups[g].parents.clone();
        while let Some(p) = todo.first().copied() {
            todo.remove(0);
            if !out.contains(&p) {
                out.push(p);
                todo.extend(self.groups[p].parents.iter().copied());
            }
        }
        out
    }

    /// Every group the host belongs to, directly or through a child group.
    pub fn host_groups(&self, h: usize) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        for &g in &self.hosts[h].direct {
            for x in std::iter::once(g).chain(self.ancestors(g)) {
                if !out.contains(&x) {
                    out.push(x);
                }
            }
        }
        out
    }

    /// The length of the longest parent chain above a group (`all` is 0).
    pub fn depth(&self, g: usize) -> usize {
        fn walk(d: &Data, g: usize, memo: &mut HashMap<usize, usize>) -> usize {
            if let Some(v) = memo.get(&g) {
                return *v;
            }
            let v = d.groups[g]
                .parents
                .iter()
                .map(|&p| walk(d, p, memo) + 1)
                .max()
                .unwrap_or(0);
            memo.insert(g, v);
            v
        }
        walk(self, g, &mut HashMap::new())
    }

    /// Groups ordered as ansible-core merges their variables: by depth, then
    /// `ansible_group_priority`, then name.
    pub fn sort_groups(&self, groups: &[usize]) -> Vec<usize> {
        let mut v: Vec<(usize, i64, &str, usize)> = groups
            .iter()
            .map(|&g| {
                (
                    self.depth(g),
                    self.groups[g].priority,
                    self.groups[g].name.as_str(),
                    g,
                )
            })
            .collect();
        v.sort();
        v.into_iter().map(|t| t.3).collect()
    }

    /// `Group.get_hosts()`: the group's own hosts, then its child groups'
    /// level by level, without duplicates.
    pub fn group_hosts(&self, g: usize) -> Vec<usize> {
        let mut ordered = vec![g];
        ordered.extend(self.groups[g].children.iter().copied());
        let mut seen: HashSet<usize> = HashSet::new();
        let mut level = ordered.clone();
        while !level.is_empty() {
            seen.extend(level.iter().copied());
            let mut next = Vec::new();
            for &p in &level {
                for &c in &self.groups[p].children {
                    if !seen.contains(&c) && !next.contains(&c) {
                        next.push(c);
                        if !ordered.contains(&c) {
                            ordered.push(c);
                        }
                    }
                }
            }
            level = next;
        }
        let mut hosts = Vec::new();
        let mut have = HashSet::new();
        for grp in ordered {
            for &h in &self.groups[grp].hosts {
                if have.insert(h) {
                    hosts.push(h);
                }
            }
        }
        hosts
    }

    /// ansible-core's `reconcile_inventory()`, run once all sources are read.
    pub fn reconcile(&mut self) {
        for g in 0..self.groups.len() {
            if g != ALL && self.groups[g].parents.is_empty() {
                // `all` has no parents, so this cannot make a loop.
                let _ = self.add_child(ALL, g);
            }
        }
        for h in 0..self.hosts.len() {
            let groups = self.host_groups(h);
            if groups.contains(&UNGROUPED) {
                if groups.iter().any(|&g| g != ALL && g != UNGROUPED) {
                    self.remove_host_from_group(UNGROUPED, h);
                }
            } else if groups.is_empty() || groups == [ALL] {
                self.add_host_to_group(UNGROUPED, h);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Data {
        let mut d = Data::new();
        let web = d.add_group("web");
        let db = d.add_group("db");
        let prod = d.add_group("prod");
        d.add_child(prod, web).unwrap();
        d.add_child(prod, db).unwrap();
        d.add_host("w1", Some(web), Some(2222), None);
        d.add_host("d1", Some(db), None, None);
        d.add_host("lone", None, None, None);
        d.add_host("w1", Some(db), Some(1), None);
        d.reconcile();
        d
    }

    #[test]
    fn reconcile_and_order() {
        let d = sample();
        let names = |v: Vec<usize>| {
            v.into_iter()
                .map(|h| d.hosts[h].name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(d.group_hosts(ALL)), ["lone", "w1", "d1"]);
        assert_eq!(
            d.groups[ALL]
                .children
                .iter()
                .map(|&g| d.groups[g].name.as_str())
                .collect::<Vec<_>>(),
            ["ungrouped", "prod"]
        );
        assert_eq!(d.hosts[d.host("w1").unwrap()].vars["ansible_port"], 2222);
        assert_eq!(d.depth(d.group("web").unwrap()), 2);
        assert_eq!(d.depth(ALL), 0);
    }

    #[test]
    fn loops_and_priority() {
        let mut d = sample();
        let (web, prod) = (d.group("web").unwrap(), d.group("prod").unwrap());
        assert!(d
            .add_child(web, prod)
            .unwrap_err()
            .contains("recursive dependency loop"));
        d.set_group_var(web, "ansible_group_priority", Value::from("10"))
            .unwrap();
        assert_eq!(d.groups[web].priority, 10);
        assert!(d
            .set_group_var(web, "ansible_group_priority", Value::from("x"))
            .is_err());
        let db = d.group("db").unwrap();
        assert_eq!(d.sort_groups(&[web, prod, db]), [prod, db, web]);
    }
}
