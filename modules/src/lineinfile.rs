//! `lineinfile` module: makes sure one line is present (replacing the last
//! `regexp`/`search_string` match, or the first with `firstmatch`) or absent
//! (every match removed), following Ansible's `lineinfile.py` step by step:
//! an exact copy of `line` counts as present, inserts go after the last
//! `insertafter` match / before the last `insertbefore` match (else at EOF),
//! `backrefs` never inserts, and a missing final newline is added before an
//! appended line. The edit is pure ([`edit_present`], [`edit_absent`]).

use crate::fs_attrs;
use crate::fs_content::{regex_arg, Edited, TextAction, TextEdit, WriteSpec};
use drover_engine::args::{get_bool, get_str, req_str};
use drover_engine::module::{
    Action, Args, Kind, Module, ModuleError, Param, Registry, TaskContext,
};
use regex::{Captures, Regex};

const PARAMS: &[Param] = &[
    Param::new("path", Kind::Str)
        .required()
        .aliases(&["dest", "destfile", "name"]),
    Param::new("line", Kind::Str).aliases(&["value"]),
    Param::new("regexp", Kind::Str).aliases(&["regex"]),
    Param::new("search_string", Kind::Str),
    Param::new("state", Kind::Str).choices(&["present", "absent"]),
    Param::new("insertafter", Kind::Str),
    Param::new("insertbefore", Kind::Str),
    Param::new("create", Kind::Bool),
    Param::new("backup", Kind::Bool),
    Param::new("backrefs", Kind::Bool),
    Param::new("firstmatch", Kind::Bool),
    Param::new("validate", Kind::Str),
    fs_attrs::PARAMS[0],
    fs_attrs::PARAMS[1],
    fs_attrs::PARAMS[2],
];

/// The `lineinfile` module.
pub struct LineInFileModule;

pub fn register(r: &mut Registry) {
    r.add(std::sync::Arc::new(LineInFileModule));
}

/// How a line is found.
#[derive(Debug, Clone)]
pub enum Matcher {
    Regexp(Regex),
    Search(String),
    /// Only an exact copy of `line` matches.
    Exact,
}

/// Where a missing line goes.
#[derive(Debug, Clone)]
pub enum Insert {
    Eof,
    Bof,
    After(Regex),
    Before(Regex),
}

/// A lineinfile edit.
#[derive(Debug, Clone)]
pub struct LineEdit {
    pub present: bool,
    pub line: Option<String>,
    pub matcher: Matcher,
    pub insert: Insert,
    pub backrefs: bool,
    pub firstmatch: bool,
    pub create: bool,
}

fn bad(name: &str, value: &str, message: &str) -> ModuleError {
    ModuleError::BadArg {
        name: name.into(),
        value: value.into(),
        message: message.into(),
    }
}

impl Module for LineInFileModule {
    fn name(&self) -> &'static str {
        "lineinfile"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn prepare(&self, args: &Args, _ctx: &dyn TaskContext) -> Result<Box<dyn Action>, ModuleError> {
        let path = req_str(args, "path")?;
        let state = get_str(args, "state")?.unwrap_or_else(|| "present".into());
        let present = match state.as_str() {
            "present" => true,
            "absent" => false,
            other => {
                return Err(ModuleError::BadChoice {
                    name: "state".into(),
                    value: other.into(),
                    choices: "present|absent".into(),
                })
            }
        };
        let line = get_str(args, "line")?;
        let regexp = get_str(args, "regexp")?;
        let search = get_str(args, "search_string")?;
        let backrefs = get_bool(args, "backrefs", false)?;
        let matcher = match (regexp, search) {
            (Some(r), Some(_)) => {
                return Err(bad(
                    "regexp",
                    &r,
                    "regexp and search_string are mutually exclusive",
                ))
            }
            (Some(r), None) => Matcher::Regexp(regex_arg("regexp", &r)?),
            (None, Some(s)) => Matcher::Search(s),
            (None, None) => Matcher::Exact,
        };
        let after = get_str(args, "insertafter")?;
        let before = get_str(args, "insertbefore")?;
        let insert = match (after.as_deref(), before.as_deref()) {
            (Some(a), Some(_)) => {
                return Err(bad(
                    "insertafter",
                    a,
                    "insertafter and insertbefore are mutually exclusive",
                ))
            }
            (Some("EOF") | None, None) => Insert::Eof,
            (Some("BOF"), None) | (None, Some("BOF")) => Insert::Bof,
            (Some(a), None) => Insert::After(regex_arg("insertafter", a)?),
            (None, Some(b)) => Insert::Before(regex_arg("insertbefore", b)?),
        };
        if present {
            if backrefs && !matches!(matcher, Matcher::Regexp(_)) {
                return Err(ModuleError::MissingArg(
                    "regexp (required with backrefs=true)".into(),
                ));
            }
            if line.is_none() {
                return Err(ModuleError::MissingArg(
                    "line (required with state=present)".into(),
                ));
            }
        } else if line.is_none() && matches!(matcher, Matcher::Exact) {
            return Err(ModuleError::MissingArg(
                "one of line, search_string or regexp (required with state=absent)".into(),
            ));
        }
        let edit = LineEdit {
            present,
            line,
            matcher,
            insert,
            backrefs,
            firstmatch: get_bool(args, "firstmatch", false)?,
            create: get_bool(args, "create", false)?,
        };
        Ok(Box::new(TextAction {
            spec: WriteSpec::from_args(path, args)?,
            edit,
        }))
    }
}

/// A line without its final `\n` (regexes see it so, as Python's `$`
/// matches before a final newline).
fn body(l: &str) -> &str {
    l.strip_suffix('\n').unwrap_or(l)
}

/// Expand Python-style backreferences (`\1`, `\g<1>`, `\g<name>`) in `tpl`.
pub fn expand(caps: &Captures, tpl: &str) -> String {
    let mut out = String::new();
    let mut chars = tpl.chars().peekable();
    let group = |out: &mut String, name: &str| {
        let m = match name.parse::<usize>() {
            Ok(i) => caps.get(i),
            Err(_) => caps.name(name),
        };
        out.push_str(m.map_or("", |m| m.as_str()));
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek().copied() {
            Some(d) if d.is_ascii_digit() => {
                let mut n = String::new();
                while let Some(d) = chars
                    .peek()
                    .copied()
                    .filter(|d| d.is_ascii_digit() && n.len() < 2)
                {
                    n.push(d);
                    chars.next();
                }
                group(&mut out, &n);
            }
            Some('g') => {
                chars.next();
                let mut name = String::new();
                if chars.peek() == Some(&'<') {
                    chars.next();
                    for d in chars.by_ref() {
                        if d == '>' {
                            break;
                        }
                        name.push(d);
                    }
                    group(&mut out, &name);
                } else {
                    out.push_str("\\g");
                }
            }
            Some('n') => {
                chars.next();
                out.push('\n');
            }
            Some('t') => {
                chars.next();
                out.push('\t');
            }
            Some('\\') => {
                chars.next();
                out.push('\\');
            }
            _ => out.push('\\'),
        }
    }
    out
}

/// State `present` on the file's lines (each keeping its `\n`).
pub fn edit_present(e: &LineEdit, lines: &mut Vec<String>) -> &'static str {
    let line = e.line.as_deref().unwrap_or_default();
    let mut found: Option<usize> = None;
    let mut caps_line: Option<String> = None;
    let mut matched = false;
    match &e.matcher {
        Matcher::Regexp(re) => {
            for (i, l) in lines.iter().enumerate() {
                if let Some(c) = re.captures(body(l)) {
                    found = Some(i);
                    matched = true;
                    caps_line = e.backrefs.then(|| expand(&c, line));
                    if e.firstmatch {
                        break;
                    }
                }
            }
        }
        Matcher::Search(s) => {
            for (i, l) in lines.iter().enumerate() {
                if l.contains(s.as_str()) {
                    found = Some(i);
                    matched = true;
                    if e.firstmatch {
                        break;
                    }
                }
            }
        }
        Matcher::Exact => {}
    }
    let mut ins: Option<usize> = None;
    if !matched {
        for (i, l) in lines.iter().enumerate() {
            if l.trim_end_matches(['\r', '\n']) == line {
                found = Some(i);
            } else {
                match &e.insert {
                    Insert::After(re) if re.is_match(body(l)) => {
                        ins = Some(i + 1);
                        if e.firstmatch {
                            break;
                        }
                    }
                    Insert::Before(re) if re.is_match(body(l)) => {
                        ins = Some(i);
                        if e.firstmatch {
                            break;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    if let Some(i) = found {
        let mut new = caps_line.unwrap_or_else(|| line.to_string());
        if !new.ends_with('\n') {
            new.push('\n');
        }
        if lines[i] != new {
            lines[i] = new;
            return "line replaced";
        }
        return "";
    }
    if e.backrefs {
        return "";
    }
    let new = format!("{line}\n");
    match (&e.insert, ins) {
        (Insert::Bof, _) => lines.insert(0, new),
        (Insert::Eof | Insert::After(_), None) | (Insert::Before(_), None) => {
            if let Some(last) = lines.last_mut() {
                if !last.ends_with('\n') {
                    last.push('\n');
                }
            }
            lines.push(new);
        }
        (Insert::After(_), Some(i)) => {
            if i == lines.len() {
                // Ansible appends right after a last line lacking its
                // newline (gluing the two); we add the newline first.
                if lines[i - 1].trim_end_matches(['\r', '\n']) == line {
                    return "";
                }
                if !lines[i - 1].ends_with('\n') {
                    lines[i - 1].push('\n');
                }
                lines.push(new);
            } else if lines[i].trim_end_matches(['\r', '\n']) == line {
                return "";
            } else {
                lines.insert(i, new);
            }
        }
        (_, Some(i)) => lines.insert(i, new),
    }
    "line added"
}

/// State `absent`: drop every matching line; returns how many.
pub fn edit_absent(e: &LineEdit, lines: &mut Vec<String>) -> usize {
    let before = lines.len();
    let line = e.line.as_deref().unwrap_or_default();
    lines.retain(|l| match &e.matcher {
        Matcher::Regexp(re) => !re.is_match(body(l)),
        Matcher::Search(s) => !l.contains(s.as_str()),
        Matcher::Exact => l.trim_end_matches(['\r', '\n']) != line,
    });
    before - lines.len()
}

impl TextEdit for LineEdit {
    fn edit(&self, path: &str, before: Option<&str>) -> Result<Edited, ModuleError> {
        let Some(text) = before else {
            if !self.present {
                return Ok(Edited {
                    after: None,
                    msg: "file not present".into(),
                });
            }
            if !self.create {
                return Err(ModuleError::Failed(format!(
                    "Destination {path} does not exist ! (use create=yes to create it)"
                )));
            }
            let mut lines = Vec::new();
            let msg = edit_present(self, &mut lines);
            if lines.is_empty() {
                return Ok(Edited {
                    after: None,
                    msg: "nothing to add (backrefs without a match)".into(),
                });
            }
            return Ok(Edited {
                after: Some(lines.concat()),
                msg: msg.into(),
            });
        };
        let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
        let msg = if self.present {
            let m = edit_present(self, &mut lines);
            if m.is_empty() {
                "line already present".to_string()
            } else {
                m.to_string()
            }
        } else {
            match edit_absent(self, &mut lines) {
                0 => "no matching line".to_string(),
                1 => "1 line(s) removed".to_string(),
                n => format!("{n} line(s) removed"),
            }
        };
        Ok(Edited {
            after: Some(lines.concat()),
            msg,
        })
    }
}

#[cfg(test)]
#[path = "fs_lineinfile_tests.rs"]
mod tests;
