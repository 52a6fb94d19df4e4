//! `ini_file` module: sets or removes one option (or a whole section) of an
//! INI file, following community.general's `ini_file.py` line by line so
//! that the rest of the file stays byte-for-byte (comments, order, spacing):
//! an existing `option = value` line (also a commented-out `#option = ...`,
//! with `modify_inactive_option`) is rewritten in place, other occurrences
//! are dropped (`exclusive`), new options go after the section's last
//! non-blank, non-comment line, new sections at the end. A missing final
//! newline is added. The edit is pure ([`edit_ini`]).

use crate::fs_attrs;
use crate::fs_content::{Edited, TextAction, TextEdit, WriteSpec};
use drover_engine::args::{get_bool, get_str, get_str_list, req_str};
use drover_engine::module::{
    Action, Args, Kind, Module, ModuleError, Param, Registry, TaskContext,
};
use regex::Regex;

const PARAMS: &[Param] = &[
    Param::new("path", Kind::Str).required().aliases(&["dest"]),
    Param::new("section", Kind::Str),
    Param::new("option", Kind::Str),
    Param::new("value", Kind::Str),
    Param::new("values", Kind::List),
    Param::new("state", Kind::Str).choices(&["present", "absent"]),
    Param::new("exclusive", Kind::Bool),
    Param::new("no_extra_spaces", Kind::Bool),
    Param::new("ignore_spaces", Kind::Bool),
    Param::new("allow_no_value", Kind::Bool),
    Param::new("modify_inactive_option", Kind::Bool),
    Param::new("create", Kind::Bool),
    Param::new("backup", Kind::Bool),
    fs_attrs::PARAMS[0],
    fs_attrs::PARAMS[1],
    fs_attrs::PARAMS[2],
];

/// The `ini_file` module.
pub struct IniFileModule;

pub fn register(r: &mut Registry) {
    r.add(std::sync::Arc::new(IniFileModule));
}

/// An ini_file edit.
#[derive(Debug, Clone)]
pub struct IniEdit {
    pub section: Option<String>,
    pub option: Option<String>,
    pub values: Vec<String>,
    pub present: bool,
    pub exclusive: bool,
    pub no_extra_spaces: bool,
    pub ignore_spaces: bool,
    pub allow_no_value: bool,
    pub modify_inactive_option: bool,
    pub create: bool,
}

impl Module for IniFileModule {
    fn name(&self) -> &'static str {
        "ini_file"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let path = req_str(args, "path")?;
        let present = match get_str(args, "state")?.as_deref() {
            None | Some("present") => true,
            Some("absent") => false,
            Some(other) => {
                return Err(ModuleError::BadChoice {
                    name: "state".into(),
                    value: other.into(),
                    choices: "present|absent".into(),
                })
            }
        };
        let section = get_str(args, "section")?.filter(|s| !s.is_empty());
        let option = get_str(args, "option")?.filter(|s| !s.is_empty());
        let value = get_str(args, "value")?;
        let list = get_str_list(args, "values")?;
        let mut values: Vec<String> = Vec::new();
        match (value, list.is_empty()) {
            (Some(v), false) => {
                return Err(ModuleError::BadArg {
                    name: "value".into(),
                    value: v,
                    message: "value and values are mutually exclusive".into(),
                })
            }
            (Some(v), true) => values.push(v),
            (None, _) => {
                for v in list {
                    if !values.contains(&v) {
                        values.push(v);
                    }
                }
            }
        }
        let allow_no_value = get_bool(args, "allow_no_value", false)?;
        if present && option.is_some() && !allow_no_value && values.is_empty() {
            return Err(ModuleError::MissingArg(
                "value (or values), required with state=present unless allow_no_value=true".into(),
            ));
        }
        if section.is_none() && option.is_none() {
            return Err(ModuleError::MissingArg("section or option".into()));
        }
        let edit = IniEdit {
            section,
            option,
            values,
            present,
            exclusive: get_bool(args, "exclusive", true)?,
            no_extra_spaces: get_bool(args, "no_extra_spaces", false)?,
            ignore_spaces: get_bool(args, "ignore_spaces", false)?,
            allow_no_value,
            modify_inactive_option: get_bool(args, "modify_inactive_option", true)?,
            create: get_bool(args, "create", true)?,
        };
        Ok(Box::new(TextAction {
            spec: WriteSpec::from_args(path, args)?,
            edit,
        }))
    }
}

const FAKE: &str = "[ad01e11446efb704fcdbdb21f2c43757423d91c5]";

/// A line's option match: (commented out?, value).
struct OptMatcher {
    any: Regex,
    active: Regex,
}

impl OptMatcher {
    fn new(option: &str) -> Result<Self, ModuleError> {
        let o = regex::escape(option);
        let mk = |p: String| {
            Regex::new(&p).map_err(|e| ModuleError::BadArg {
                name: "option".into(),
                value: option.into(),
                message: format!("cannot be matched: {e}"),
            })
        };
        Ok(OptMatcher {
            any: mk(format!(r"^([#;]?)[ \t]*({o})[ \t]*(=|$)[ \t]*(.*)"))?,
            active: mk(format!(r"^[ \t]*({o})[ \t]*(=|$)[ \t]*(.*)"))?,
        })
    }
    /// `match_opt` (commented lines too) → (commented, value).
    fn any(&self, line: &str) -> Option<(bool, String)> {
        let c = self.any.captures(body(line))?;
        Some((!c[1].is_empty(), c[4].to_string()))
    }
    fn active(&self, line: &str) -> Option<String> {
        self.active.captures(body(line)).map(|c| c[3].to_string())
    }
    /// Ansible's `match_function`.
    fn matches(&self, line: &str, inactive_too: bool) -> bool {
        if inactive_too {
            self.any(line).is_some()
        } else {
            self.active(line).is_some()
        }
    }
}

fn body(l: &str) -> &str {
    l.strip_suffix('\n').unwrap_or(l)
}

fn blank_or_comment(l: &str) -> bool {
    let t = body(l).trim_start_matches([' ', '\t']);
    t.is_empty() || t.starts_with(['#', ';'])
}

/// Apply the edit; returns the new text, whether it changed, and `msg`.
pub fn edit_ini(e: &IniEdit, text: &str) -> Result<(String, bool, &'static str), ModuleError> {
    let mut ini: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    let mut changed = false;
    if let Some(last) = ini.last_mut() {
        if !last.ends_with('\n') {
            last.push('\n');
            changed = true;
        }
    }
    ini.insert(0, FAKE.to_string());
    ini.push("[".to_string());
    let header = match &e.section {
        Some(s) => format!("[{s}]"),
        None => FAKE.to_string(),
    };
    let mut within = false;
    let (mut start, mut end) = (0, 0);
    for (i, l) in ini.iter().enumerate() {
        if within && l.starts_with('[') {
            end = i;
            break;
        }
        if l.starts_with(&header) {
            within = true;
            start = i;
        }
    }
    let after = ini.split_off(end);
    let mut sec = ini.split_off(start);
    let before = ini;
    let mut touched = vec![false; sec.len()];
    let mut msg = "OK";
    let mut values = e.values.clone();
    let fmt = |o: &str, v: &str| {
        if e.no_extra_spaces {
            format!("{o}={v}\n")
        } else {
            format!("{o} = {v}\n")
        }
    };
    let m = e.option.as_deref().map(OptMatcher::new).transpose()?;
    let opt = e.option.as_deref().unwrap_or_default();
    let inactive = e.modify_inactive_option;
    let update = |sec: &mut Vec<String>, touched: &mut Vec<bool>, i: usize, new: String| -> bool {
        let mut differs = None;
        if let (true, Some(m)) = (e.ignore_spaces, &m) {
            if let (Some((false, old)), Some((_, nv))) = (m.any(&sec[i]), m.any(&new)) {
                differs = Some(old != nv);
            }
        }
        touched[i] = true;
        if differs.unwrap_or(sec[i] != new) {
            sec[i] = new;
            return true;
        }
        false
    };
    let mut no_value_present = false;
    if let (true, Some(m)) = (e.present, &m) {
        for i in 0..sec.len() {
            let Some((commented, val)) = m.any(&sec[i]) else {
                continue;
            };
            if commented && !inactive {
                continue;
            }
            if let Some(pos) = values.iter().position(|v| *v == val) {
                let new = if val.is_empty() && e.allow_no_value {
                    no_value_present = true;
                    format!("{opt}\n")
                } else {
                    fmt(opt, &val)
                };
                if update(&mut sec, &mut touched, i, new) {
                    changed = true;
                    msg = "option changed";
                }
                values.remove(pos);
            } else if values.is_empty() && e.allow_no_value {
                if update(&mut sec, &mut touched, i, format!("{opt}\n")) {
                    changed = true;
                    msg = "option changed";
                }
                no_value_present = true;
                break;
            }
        }
        if e.exclusive && !e.allow_no_value {
            if !values.is_empty() {
                for i in 0..sec.len() {
                    if !touched[i] && m.matches(&sec[i], inactive) {
                        let v = values.remove(0);
                        if update(&mut sec, &mut touched, i, fmt(opt, &v)) {
                            changed = true;
                            msg = "option changed";
                        }
                        if values.is_empty() {
                            break;
                        }
                    }
                }
            }
            for i in (1..sec.len()).rev() {
                if !touched[i] && m.matches(&sec[i], inactive) {
                    sec.remove(i);
                    touched.remove(i);
                    changed = true;
                    msg = "option changed";
                }
            }
        }
    }
    if e.present {
        if let Some(i) = (1..=sec.len())
            .rev()
            .find(|&i| !blank_or_comment(&sec[i - 1]))
        {
            if e.option.is_some() && !values.is_empty() {
                for v in values.iter().rev() {
                    sec.insert(i, fmt(opt, v));
                }
                msg = "option added";
                changed = true;
            } else if e.option.is_some()
                && values.is_empty()
                && e.allow_no_value
                && !no_value_present
            {
                sec.insert(i, format!("{opt}\n"));
                msg = "option added";
                changed = true;
            }
        }
    } else if let Some(m) = &m {
        let keep: Vec<String> = sec
            .iter()
            .filter(|l| match m.active(l) {
                None => true,
                Some(v) => !(e.exclusive || values.contains(&v)),
            })
            .cloned()
            .collect();
        if keep != sec {
            sec = keep;
            changed = true;
            msg = "option changed";
        }
    } else if !sec.is_empty() {
        sec.clear();
        changed = true;
        msg = "section removed";
    }
    let mut out: Vec<String> = before;
    out.extend(sec);
    out.extend(after);
    out.remove(0);
    out.pop();
    if !within && e.present {
        out.push(format!("{header}\n"));
        msg = "section and option added";
        if e.option.is_some() && !values.is_empty() {
            out.extend(values.iter().map(|v| fmt(opt, v)));
        } else if e.option.is_some() && e.allow_no_value {
            out.push(format!("{opt}\n"));
        } else {
            msg = "only section added";
        }
        changed = true;
    }
    Ok((out.concat(), changed, msg))
}

impl TextEdit for IniEdit {
    fn edit(&self, path: &str, before: Option<&str>) -> Result<Edited, ModuleError> {
        if before.is_none() && !self.create {
            return Err(ModuleError::Failed(format!(
                "Destination {path} does not exist! (create=no)"
            )));
        }
        let (after, changed, msg) = edit_ini(self, before.unwrap_or(""))?;
        let after = if changed {
            Some(after)
        } else {
            before.map(str::to_string)
        };
        Ok(Edited {
            after,
            msg: msg.into(),
        })
    }
}

#[cfg(test)]
#[path = "fs_ini_tests.rs"]
mod tests;
