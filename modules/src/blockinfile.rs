//! `blockinfile` module: keeps a block of lines between two marker lines
//! (`# {mark} ANSIBLE MANAGED BLOCK`, `{mark}` = `marker_begin`/`marker_end`)
//! present or absent, as Ansible's `blockinfile.py`: an existing marked
//! block is replaced in place; a new one goes after the last `insertafter`
//! match / before the last `insertbefore` match, at BOF, or at EOF (default).
//! An empty `block` removes the markers. The edit is pure ([`edit_block`]).

use crate::fs_attrs;
use crate::fs_content::{regex_arg, Edited, TextAction, TextEdit, WriteSpec};
use drover_engine::args::{get_bool, get_str, req_str};
use drover_engine::module::{
    Action, Args, Kind, Module, ModuleError, Param, Registry, TaskContext,
};
use regex::Regex;

const PARAMS: &[Param] = &[
    Param::new("path", Kind::Str)
        .required()
        .aliases(&["dest", "destfile", "name"]),
    Param::new("block", Kind::Str).aliases(&["content"]),
    Param::new("marker", Kind::Str),
    Param::new("marker_begin", Kind::Str),
    Param::new("marker_end", Kind::Str),
    Param::new("state", Kind::Str).choices(&["present", "absent"]),
    Param::new("insertafter", Kind::Str),
    Param::new("insertbefore", Kind::Str),
    Param::new("create", Kind::Bool),
    Param::new("backup", Kind::Bool),
    Param::new("validate", Kind::Str),
    fs_attrs::PARAMS[0],
    fs_attrs::PARAMS[1],
    fs_attrs::PARAMS[2],
];

/// The `blockinfile` module.
pub struct BlockInFileModule;

pub fn register(r: &mut Registry) {
    r.add(std::sync::Arc::new(BlockInFileModule));
}

/// Where a new block goes.
#[derive(Debug, Clone)]
pub enum Place {
    Eof,
    Bof,
    After(Regex),
    Before(Regex),
}

/// A blockinfile edit.
#[derive(Debug, Clone)]
pub struct BlockEdit {
    pub present: bool,
    pub block: String,
    pub begin: String,
    pub end: String,
    pub place: Place,
    pub create: bool,
}

impl Module for BlockInFileModule {
    fn name(&self) -> &'static str {
        "blockinfile"
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
        let marker =
            get_str(args, "marker")?.unwrap_or_else(|| "# {mark} ANSIBLE MANAGED BLOCK".into());
        let begin = get_str(args, "marker_begin")?.unwrap_or_else(|| "BEGIN".into());
        let end = get_str(args, "marker_end")?.unwrap_or_else(|| "END".into());
        if marker.replace("{mark}", &begin) == marker.replace("{mark}", &end) {
            // Identical begin and end lines could never be found again as a
            // block (Ansible accepts it and breaks idempotence; we refuse).
            return Err(ModuleError::BadArg {
                name: "marker".into(),
                value: marker,
                message: "begin and end markers are the same line; use {mark} and distinct marker_begin/marker_end".into(),
            });
        }
        let place = match (
            get_str(args, "insertafter")?,
            get_str(args, "insertbefore")?,
        ) {
            (Some(a), Some(_)) => {
                return Err(ModuleError::BadArg {
                    name: "insertafter".into(),
                    value: a,
                    message: "insertafter and insertbefore are mutually exclusive".into(),
                })
            }
            (Some(a), None) if a == "EOF" => Place::Eof,
            (None, None) => Place::Eof,
            (None, Some(b)) if b == "BOF" => Place::Bof,
            (Some(a), None) => Place::After(regex_arg("insertafter", &a)?),
            (None, Some(b)) => Place::Before(regex_arg("insertbefore", &b)?),
        };
        let edit = BlockEdit {
            present,
            block: get_str(args, "block")?.unwrap_or_default(),
            begin: marker.replace("{mark}", &begin),
            end: marker.replace("{mark}", &end),
            place,
            create: get_bool(args, "create", false)?,
        };
        Ok(Box::new(TextAction {
            spec: WriteSpec::from_args(path, args)?,
            edit,
        }))
    }
}

fn body(l: &str) -> &str {
    l.strip_suffix('\n').unwrap_or(l)
}

/// Apply the edit to the file's text (empty for a new file).
pub fn edit_block(e: &BlockEdit, text: &str) -> String {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    let mut block: Vec<String> = Vec::new();
    if e.present && !e.block.is_empty() {
        block.push(format!("{}\n", e.begin));
        block.extend(e.block.lines().map(|l| format!("{l}\n")));
        block.push(format!("{}\n", e.end));
    }
    let mut n0 = None;
    let mut n1 = None;
    for (i, l) in lines.iter().enumerate() {
        let b = l.trim_end_matches(['\r', '\n']);
        if b == e.begin {
            n0 = Some(i);
        }
        if b == e.end {
            n1 = Some(i);
        }
    }
    let at = match (n0, n1) {
        (Some(a), Some(b)) => {
            let (lo, hi) = if a < b { (a, b) } else { (b, a) };
            lines.drain(lo..=hi);
            lo
        }
        _ => match &e.place {
            Place::Eof => lines.len(),
            Place::Bof => 0,
            Place::After(re) => lines
                .iter()
                .rposition(|l| re.is_match(body(l)))
                .map_or(lines.len(), |i| i + 1),
            Place::Before(re) => lines
                .iter()
                .rposition(|l| re.is_match(body(l)))
                .unwrap_or(lines.len()),
        },
    };
    if at > 0 && !block.is_empty() && !lines[at - 1].ends_with('\n') {
        lines[at - 1].push('\n');
    }
    lines.splice(at..at, block);
    lines.concat()
}

impl TextEdit for BlockEdit {
    fn edit(&self, path: &str, before: Option<&str>) -> Result<Edited, ModuleError> {
        let text = match before {
            Some(t) => t,
            None if !self.create => {
                return Err(ModuleError::Failed(format!(
                    "Path {path} does not exist ! (use create=yes to create it)"
                )))
            }
            None if !self.present || self.block.is_empty() => {
                return Ok(Edited {
                    after: None,
                    msg: "file not present".into(),
                })
            }
            None => "",
        };
        let after = edit_block(self, text);
        let msg = if after == text {
            "OK"
        } else if self.present && !self.block.is_empty() {
            "Block inserted"
        } else {
            "Block removed"
        };
        Ok(Edited {
            after: Some(after),
            msg: msg.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ed(block: &str) -> BlockEdit {
        BlockEdit {
            present: true,
            block: block.into(),
            begin: "# BEGIN X".into(),
            end: "# END X".into(),
            place: Place::Eof,
            create: true,
        }
    }

    #[test]
    fn inserts_at_eof_adding_missing_newline() {
        assert_eq!(
            edit_block(&ed("a\nb"), "x"),
            "x\n# BEGIN X\na\nb\n# END X\n"
        );
        assert_eq!(edit_block(&ed("a\n"), ""), "# BEGIN X\na\n# END X\n");
    }

    #[test]
    fn replaces_in_place_and_is_idempotent() {
        let text = "1\n# BEGIN X\nold\n# END X\n2\n";
        let out = edit_block(&ed("new"), text);
        assert_eq!(out, "1\n# BEGIN X\nnew\n# END X\n2\n");
        assert_eq!(edit_block(&ed("new"), &out), out);
    }

    #[test]
    fn places_after_last_match_or_before() {
        let mut e = ed("b");
        e.place = Place::After(Regex::new("^a").unwrap());
        assert_eq!(
            edit_block(&e, "a1\na2\nz\n"),
            "a1\na2\n# BEGIN X\nb\n# END X\nz\n"
        );
        e.place = Place::Before(Regex::new("^a").unwrap());
        assert_eq!(
            edit_block(&e, "a1\na2\n"),
            "a1\n# BEGIN X\nb\n# END X\na2\n"
        );
        e.place = Place::Bof;
        assert_eq!(edit_block(&e, "z\n"), "# BEGIN X\nb\n# END X\nz\n");
    }

    #[test]
    fn absent_or_empty_block_removes() {
        let text = "1\n# BEGIN X\nold\n# END X\n2";
        let mut e = ed("");
        assert_eq!(edit_block(&e, text), "1\n2");
        e.present = false;
        e.block = "ignored".into();
        assert_eq!(edit_block(&e, text), "1\n2");
        assert_eq!(e.edit("/f", Some("1\n")).unwrap().msg, "OK");
    }
}
