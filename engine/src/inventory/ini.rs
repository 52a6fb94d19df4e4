//! The INI inventory format, read as ansible-core's `ini` plugin reads it:
//! `[group]`, `[group:children]`, `[group:vars]` sections, hosts outside any
//! section go to `ungrouped`, `#`/`;` comment lines, host lines split like
//! `shlex` with `key=value` variables, ranges and `host:port`, and every
//! value typed through `literal_eval` rules (see [`super::pyliteral`]).
//! Groups named in `:children`/`:vars` before they are defined are resolved
//! at the end, with ansible-core's errors for the ones never defined.

use super::data::Data;
use super::hostrange::{expand, parse_address};
use super::pyliteral::ini_value;
use super::{shlex, InventoryError};
use regex::Regex;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

static SECTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$")
        .unwrap_or_else(|e| panic!("section regex: {e}"))
});
static GROUPNAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([^:\]\s]+)\s*(?:#.*)?$").unwrap_or_else(|e| panic!("group regex: {e}"))
});

#[derive(Clone, Copy, PartialEq)]
enum State {
    Hosts,
    Children,
    Vars,
}

/// A group named before it was defined.
struct Pending {
    name: String,
    line: usize,
    state: State,
    parents: Vec<String>,
}

struct Parser<'a> {
    data: &'a mut Data,
    file: PathBuf,
    line: usize,
    pending: Vec<Pending>,
}

/// Python's `str.splitlines()` for the line breaks inventories contain.
fn lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find(['\n', '\r']) {
            Some(i) => {
                out.push(&rest[..i]);
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + skip..];
            }
            None => {
                out.push(rest);
                rest = "";
            }
        }
    }
    out
}

/// Parse INI inventory `text` read from `file` into `data`.
pub(super) fn parse(text: &str, file: &Path, data: &mut Data) -> Result<(), InventoryError> {
    let mut p = Parser {
        data,
        file: file.to_path_buf(),
        line: 0,
        pending: Vec::new(),
    };
    let mut group = "ungrouped".to_string();
    let mut state = State::Hosts;
    for raw in lines(text) {
        p.line += 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(m) = SECTION.captures(line) {
            group = m[1].to_string();
            state = match m.get(2).map(|t| t.as_str()) {
                None | Some("hosts") => State::Hosts,
                Some("children") => State::Children,
                Some("vars") => State::Vars,
                Some(other) => {
                    return Err(p.err(format!(
                        "Section [{group}:{other}] has unknown type: {other}"
                    )))
                }
            };
            p.section(&group, state)?;
            continue;
        } else if line.starts_with('[') && line.ends_with(']') {
            return Err(p.err(format!(
                "Invalid section entry: '{line}'. Please make sure that there are no spaces in the section entry, and that there are no other invalid characters"
            )));
        }
        match state {
            State::Hosts => p.host_line(line, &group)?,
            State::Vars => {
                let Some((k, v)) = line.split_once('=') else {
                    return Err(p.err(format!("Expected key=value, got: {line}")));
                };
                let g = p.data.add_group(&group);
                let value = ini_value(v.trim());
                p.data
                    .set_group_var(g, k.trim(), value)
                    .map_err(|m| p.err(m))?;
            }
            State::Children => p.child_line(line, &group)?,
        }
    }
    if let Some(d) = p.pending.first() {
        p.line = d.line;
        let msg = match d.state {
            State::Vars => format!(
                "Section [{}:vars] not valid for undefined group '{}'.",
                d.name, d.name
            ),
            _ => format!(
                "Section [{}:children] includes undefined group '{}'.",
                d.parents.last().map_or("", String::as_str),
                d.name
            ),
        };
        return Err(p.err(msg));
    }
    Ok(())
}

impl Parser<'_> {
    fn err(&self, message: String) -> InventoryError {
        InventoryError::Ini {
            file: self.file.clone(),
            line: self.line,
            message,
        }
    }

    fn pending_ix(&self, name: &str) -> Option<usize> {
        self.pending.iter().position(|d| d.name == name)
    }

    fn section(&mut self, group: &str, state: State) -> Result<(), InventoryError> {
        if self.data.group(group).is_none() {
            if state == State::Vars && self.pending_ix(group).is_none() {
                let line = self.line;
                self.pending.push(Pending {
                    name: group.to_string(),
                    line,
                    state,
                    parents: Vec::new(),
                });
            }
            self.data.add_group(group);
        }
        if state != State::Vars {
            if let Some(i) = self.pending_ix(group) {
                if self.pending[i].state == State::Children {
                    self.add_pending_children(group)?;
                } else {
                    self.pending.remove(i);
                }
            }
        }
        Ok(())
    }

    fn add_pending_children(&mut self, group: &str) -> Result<(), InventoryError> {
        let Some(i) = self.pending_ix(group) else {
            return Ok(());
        };
        let parents = self.pending[i].parents.clone();
        for parent in parents {
            let (p, c) = (self.data.add_group(&parent), self.data.add_group(group));
            self.data.add_child(p, c).map_err(|m| self.err(m))?;
            if self
                .pending_ix(&parent)
                .is_some_and(|j| self.pending[j].state == State::Children)
            {
                self.add_pending_children(&parent)?;
            }
        }
        if let Some(i) = self.pending_ix(group) {
            self.pending.remove(i);
        }
        Ok(())
    }

    fn child_line(&mut self, line: &str, group: &str) -> Result<(), InventoryError> {
        let Some(m) = GROUPNAME.captures(line) else {
            return Err(self.err(format!("Expected group name, got: {line}")));
        };
        let child = m[1].to_string();
        match self.data.group(&child) {
            Some(c) => {
                let p = self.data.add_group(group);
                self.data.add_child(p, c).map_err(|m| self.err(m))
            }
            None => {
                match self.pending_ix(&child) {
                    Some(i) => self.pending[i].parents.push(group.to_string()),
                    None => {
                        let line = self.line;
                        self.pending.push(Pending {
                            name: child,
                            line,
                            state: State::Children,
                            parents: vec![group.to_string()],
                        });
                    }
                }
                Ok(())
            }
        }
    }

    fn host_line(&mut self, line: &str, group: &str) -> Result<(), InventoryError> {
        let tokens = shlex::split(line)
            .map_err(|e| self.err(format!("Error parsing host definition '{line}': {e}")))?;
        let Some(pattern) = tokens.first() else {
            return Ok(());
        };
        let (hosts, port) = self.expand_pattern(pattern)?;
        let mut vars: Vec<(String, serde_json::Value)> = Vec::new();
        for t in &tokens[1..] {
            let Some((k, v)) = t.split_once('=') else {
                return Err(self.err(format!(
                    "Expected key=value host variable assignment, got: {t}"
                )));
            };
            let value = ini_value(v);
            match vars.iter_mut().find(|(name, _)| name == k) {
                Some(slot) => slot.1 = value,
                None => vars.push((k.to_string(), value)),
            }
        }
        let g = self.data.add_group(group);
        let source = Some(self.file.clone());
        for name in hosts {
            if name.is_empty() {
                return Err(self.err(format!("Invalid empty host name provided in line: {line}")));
            }
            let h = self.data.add_host(&name, Some(g), port, source.as_ref());
            for (k, v) in &vars {
                self.data.hosts[h].vars.insert(k.clone(), v.clone());
            }
        }
        Ok(())
    }

    fn expand_pattern(&self, pattern: &str) -> Result<(Vec<String>, Option<u64>), InventoryError> {
        let (base, port) =
            parse_address(pattern, true).unwrap_or_else(|| (pattern.to_string(), None));
        let hosts = expand(&base).map_err(|m| self.err(m))?;
        if pattern.trim().ends_with(':') && port.is_none() {
            return Err(self.err(format!(
                "Invalid host pattern '{pattern}' supplied, ending in ':' is not allowed, this character is reserved to provide a port."
            )));
        }
        if hosts.iter().any(|h| h.trim() == "---") {
            return Err(self.err(format!(
                "Invalid host pattern '{pattern}' supplied, '---' is normally a sign this is a YAML file."
            )));
        }
        Ok((hosts, port))
    }
}

#[cfg(test)]
mod tests {
    use super::super::data::UNGROUPED;
    use super::*;
    use serde_json::json;

    fn load(text: &str) -> Result<Data, InventoryError> {
        let mut d = Data::new();
        parse(text, Path::new("inv.ini"), &mut d)?;
        d.reconcile();
        Ok(d)
    }

    #[test]
    fn sections_vars_and_typing() {
        let d = load("top a=1\n[web]\nweb[01:02]:2222 x='03' y=yes\n; c\n[web:vars]\nthreads=6\nflag=yes\n[p:children]\nweb\n")
            .unwrap();
        let w = &d.hosts[d.host("web01").unwrap()];
        assert_eq!(w.vars["ansible_port"], json!(2222));
        assert_eq!(w.vars["x"], json!("03"));
        assert_eq!(w.vars["y"], json!("yes"));
        let web = &d.groups[d.group("web").unwrap()];
        assert_eq!(web.vars["threads"], json!(6));
        assert_eq!(web.vars["flag"], json!("yes"));
        assert_eq!(d.groups[web.parents[0]].name, "p");
        assert_eq!(d.groups[UNGROUPED].hosts, [d.host("top").unwrap()]);
    }

    #[test]
    fn children_declared_before_groups() {
        let d = load("[p:children]\nc\n[c]\nh\n").unwrap();
        assert_eq!(
            d.groups[d.group("c").unwrap()].parents,
            [d.group("p").unwrap()]
        );
    }

    #[test]
    fn errors_name_file_line_and_value() {
        let e = load("[a]\nh1\n[b:vars]\nx=1\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "inv.ini:3: Section [b:vars] not valid for undefined group 'b'."
        );
        let e = load("[p:children]\nghost\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "inv.ini:2: Section [p:children] includes undefined group 'ghost'."
        );
        let e = load("[a]\nh1 novalue\n").unwrap_err().to_string();
        assert!(e.starts_with("inv.ini:2:") && e.contains("novalue"), "{e}");
        let e = load("[a:bogus]\n").unwrap_err().to_string();
        assert!(e.contains("unknown type: bogus"), "{e}");
        let e = load("[a]\nh1:\n").unwrap_err().to_string();
        assert!(e.contains("'h1:'"), "{e}");
        let e = load("---\n").unwrap_err().to_string();
        assert!(e.contains("YAML"), "{e}");
        let e = load("[a b]\n").unwrap_err().to_string();
        assert!(e.contains("[a b]"), "{e}");
        let e = load("[a:children]\nb\n[b:children]\na\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("recursive dependency loop"), "{e}");
    }
}
