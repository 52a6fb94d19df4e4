//! Shared content planning for modules that compute a whole file and write
//! it (copy, template, lineinfile, blockinfile, ini_file): from the observed
//! stat and content and the wanted bytes to one `Step::Write` (or to plain
//! attribute changes when the content is already right), with a text diff
//! and a `write PATH (+a -d lines)` summary.

use crate::fs_attrs::Attrs;
pub use crate::observed::{content_at, stat_at};
use drover_engine::args::{get_bool, get_str};
use drover_engine::module::{
    Action, Args, Change, Diff, FileKind, FileStat, ModuleError, Observed, Plan, Probe, Step,
};
use serde_json::Value;
use std::sync::Arc;

/// Where and how to write a file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteSpec {
    pub path: String,
    pub attrs: Attrs,
    pub backup: bool,
    pub validate: Option<String>,
}

impl WriteSpec {
    /// Read `mode`/`owner`/`group`/`backup`/`validate` for `path`.
    pub fn from_args(path: String, args: &Args) -> Result<Self, ModuleError> {
        Ok(WriteSpec {
            path,
            attrs: Attrs::from_args(args)?,
            backup: get_bool(args, "backup", false)?,
            validate: validate_arg(args)?,
        })
    }
}

/// The `validate` argument, which must contain `%s`.
pub fn validate_arg(args: &Args) -> Result<Option<String>, ModuleError> {
    match get_str(args, "validate")? {
        Some(v) if !v.contains("%s") => Err(ModuleError::BadArg {
            name: "validate".into(),
            value: v,
            message: "validation command must contain %s".into(),
        }),
        other => Ok(other),
    }
}

/// Text for a diff: the content, or `(binary)`.
pub fn diff_text(bytes: Option<&[u8]>) -> String {
    match bytes {
        None => String::new(),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) if !b.contains(&0) => s.to_string(),
            _ => "(binary)".into(),
        },
    }
}

/// Lines added and removed between two texts.
pub fn line_counts(before: &str, after: &str) -> (usize, usize) {
    let diff = similar::TextDiff::from_lines(before, after);
    let mut add = 0;
    let mut del = 0;
    for change in diff.iter_all_changes() {
        match change.tag() {
            similar::ChangeTag::Insert => add += 1,
            similar::ChangeTag::Delete => del += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    (add, del)
}

/// A compiled regular expression argument (Python `re` syntax mostly
/// carries over; lookaround and backreferences are not supported).
pub fn regex_arg(name: &str, pattern: &str) -> Result<regex::Regex, ModuleError> {
    regex::Regex::new(pattern).map_err(|e| ModuleError::BadArg {
        name: name.into(),
        value: pattern.into(),
        message: format!("not a supported regular expression: {e}"),
    })
}

/// Outcome of a pure text edit: the new text (`None` = leave the file
/// absent) and Ansible's `msg`.
#[derive(Debug, Clone, PartialEq)]
pub struct Edited {
    pub after: Option<String>,
    pub msg: String,
}

/// A pure whole-file text transform (lineinfile, blockinfile, ini_file).
pub trait TextEdit: Send + Sync {
    /// From the current text (`None` = file absent) to the wanted one.
    fn edit(&self, path: &str, before: Option<&str>) -> Result<Edited, ModuleError>;
}

/// Action shared by the in-place text modules: probe, edit, plan one write.
pub struct TextAction<E> {
    pub spec: WriteSpec,
    pub edit: E,
}

impl<E: TextEdit> Action for TextAction<E> {
    fn probes(&self) -> Vec<Probe> {
        text_probes(&self.spec.path)
    }

    // The stat is read for its kind, mode and (when asked to set them)
    // owner and group: see `plan_write` and `observe_text`.
    fn plans_on_written_state(&self) -> bool {
        self.spec.attrs.owner.is_none() && self.spec.attrs.group.is_none()
    }

    fn plan(&self, obs: &[Observed]) -> Result<Plan, ModuleError> {
        let tf = observe_text(&self.spec.path, obs)?;
        let edited = self.edit.edit(&self.spec.path, tf.text.as_deref())?;
        let changes = match edited.after {
            None => Vec::new(),
            Some(after) => {
                let spec = WriteSpec {
                    path: tf.write_path.clone(),
                    ..self.spec.clone()
                };
                let mut changes = plan_write(&spec, tf.stat, tf.raw, after.into_bytes());
                // A new file's folder is created first, as Ansible does.
                if let (None, Some(first), Some((dir, _))) =
                    (tf.stat, changes.first_mut(), spec.path.rsplit_once('/'))
                {
                    if !dir.is_empty() {
                        first
                            .steps
                            .insert(0, Step::exec(["mkdir", "-p", "--", dir]));
                    }
                }
                changes
            }
        };
        let mut plan = if changes.is_empty() {
            Plan::unchanged(format!("{}: {}", self.spec.path, edited.msg))
        } else {
            Plan {
                changes,
                ..Default::default()
            }
        };
        plan.result.insert("msg".into(), Value::String(edited.msg));
        plan.result
            .insert("path".into(), Value::String(self.spec.path.clone()));
        Ok(plan)
    }
}

/// Probes of a text file edited in place: lstat (to write through a
/// symlink), stat, content.
pub fn text_probes(path: &str) -> Vec<Probe> {
    vec![
        Probe::Stat {
            path: path.into(),
            follow: false,
        },
        Probe::Stat {
            path: path.into(),
            follow: true,
        },
        Probe::Read { path: path.into() },
    ]
}

/// What [`text_probes`] saw: the path to write (a symlink's target, as
/// Ansible writes through links), the target's stat and its text.
pub struct TextFile<'a> {
    pub write_path: String,
    pub stat: Option<&'a FileStat>,
    pub text: Option<String>,
    pub raw: Option<&'a [u8]>,
}

/// Read the results of [`text_probes`].
pub fn observe_text<'a>(path: &str, obs: &'a [Observed]) -> Result<TextFile<'a>, ModuleError> {
    let lst = stat_at(obs, 0)?;
    let st = stat_at(obs, 1)?;
    let raw = content_at(obs, 2)?;
    let write_path = match lst {
        Some(l) if l.kind == FileKind::Link => match l.link_target.as_deref() {
            Some(t) if t.starts_with('/') => t.to_string(),
            Some(t) => match path.rsplit_once('/') {
                Some((dir, _)) => format!("{dir}/{t}"),
                None => t.to_string(),
            },
            None => path.to_string(),
        },
        _ => path.to_string(),
    };
    require_file(path, st)?;
    let text = match raw {
        None => None,
        Some(b) => Some(String::from_utf8(b.to_vec()).map_err(|_| {
            ModuleError::Failed(format!("{path} is not UTF-8 text; refusing to edit it"))
        })?),
    };
    Ok(TextFile {
        write_path,
        stat: st,
        text,
        raw,
    })
}

/// Fail unless an existing object at `path` is a regular file.
pub fn require_file(path: &str, st: Option<&FileStat>) -> Result<(), ModuleError> {
    match st.map(|s| s.kind) {
        None | Some(FileKind::File) => Ok(()),
        Some(k) => Err(ModuleError::Failed(format!(
            "{path} exists but is a {}, not a regular file",
            format!("{k:?}").to_lowercase()
        ))),
    }
}

/// Plan bringing `spec.path` to `after`. `st`/`before` are what is there
/// (both `None` when absent). Returns no changes when content and attributes
/// already match.
pub fn plan_write(
    spec: &WriteSpec,
    st: Option<&FileStat>,
    before: Option<&[u8]>,
    after: Vec<u8>,
) -> Vec<Change> {
    let path = &spec.path;
    let exists = st.is_some() || before.is_some();
    if before == Some(after.as_slice()) {
        return match st {
            Some(st) => spec.attrs.diff(st, false, true).changes(path, false),
            None => Vec::new(),
        };
    }
    let before_text = diff_text(before);
    let after_text = diff_text(Some(&after));
    let (add, del) = line_counts(&before_text, &after_text);
    let mut summary = if exists {
        format!("write {path} (+{add} -{del} lines)")
    } else {
        format!(
            "create {path} ({add} line{})",
            if add == 1 { "" } else { "s" }
        )
    };
    let (mode, attr_note) = match st {
        Some(st) => {
            let d = spec.attrs.diff(st, false, true);
            (d.mode.map(|(_, m)| m), d.fragments())
        }
        None => (spec.attrs.resolve_mode(0o644, false), Vec::new()),
    };
    if !attr_note.is_empty() {
        summary = format!("{summary}; {}", attr_note.join(", "));
    }
    let step = Step::Write {
        path: path.clone(),
        content: Arc::new(after),
        mode,
        owner: spec.attrs.owner.clone(),
        group: spec.attrs.group.clone(),
        validate: spec.validate.clone(),
        backup: spec.backup && exists,
    };
    vec![Change::new(summary, vec![step]).with_diff(Diff {
        label: path.clone(),
        before: before_text,
        after: after_text,
    })]
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_engine::args::Mode;

    fn file(mode: u32) -> FileStat {
        FileStat {
            kind: FileKind::File,
            mode,
            uid: 0,
            gid: 0,
            owner: "root".into(),
            group: "root".into(),
            size: 3,
            link_target: None,
            inode: 1,
            dev: 1,
            nlink: 1,
        }
    }

    #[test]
    fn same_content_same_attrs_is_empty() {
        let spec = WriteSpec {
            path: "/x".into(),
            ..Default::default()
        };
        assert!(plan_write(&spec, Some(&file(0o644)), Some(b"a\n"), b"a\n".to_vec()).is_empty());
    }

    #[test]
    fn mode_only_is_chmod() {
        let spec = WriteSpec {
            path: "/x".into(),
            attrs: Attrs {
                mode: Some(Mode::Octal(0o600)),
                ..Default::default()
            },
            ..Default::default()
        };
        let c = plan_write(&spec, Some(&file(0o644)), Some(b"a\n"), b"a\n".to_vec());
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].summary, "set mode 0600 on /x (was 0644)");
    }

    #[test]
    fn content_change_counts_lines_and_keeps_mode() {
        let spec = WriteSpec {
            path: "/x".into(),
            backup: true,
            ..Default::default()
        };
        let c = plan_write(
            &spec,
            Some(&file(0o640)),
            Some(b"a\nb\n"),
            b"a\nc\nd\n".to_vec(),
        );
        assert_eq!(c[0].summary, "write /x (+2 -1 lines)");
        match &c[0].steps[0] {
            Step::Write { mode, backup, .. } => {
                assert_eq!(*mode, None);
                assert!(*backup);
            }
            other => panic!("{other:?}"),
        }
        let c = plan_write(&spec, None, None, b"a\n".to_vec());
        assert_eq!(c[0].summary, "create /x (1 line)");
    }

    #[test]
    fn binary_diff_text() {
        assert_eq!(diff_text(Some(&[0, 159, 146])), "(binary)");
        assert_eq!(diff_text(None), "");
    }
}
