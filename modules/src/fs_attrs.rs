//! Shared owner/group/mode planning for the file-touching modules (file, copy,
//! template, lineinfile, blockinfile, ini_file): reading the `mode`/`owner`/
//! `group` arguments, comparing them with an observed [`FileStat`], and
//! turning differences into summaries and `chmod`/`chown` steps.

use drover_engine::args::{get_mode, get_str, Mode};
use drover_engine::module::{Args, Change, FileStat, Kind, ModuleError, Param, Step};

/// The three attribute parameters every file-touching module accepts.
pub const PARAMS: [Param; 3] = [
    Param::new("mode", Kind::Mode),
    Param::new("owner", Kind::Str),
    Param::new("group", Kind::Str),
];

/// Wanted attributes of a path (each optional: `None` keeps what is there).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attrs {
    pub mode: Option<Mode>,
    pub owner: Option<String>,
    pub group: Option<String>,
}

/// How an existing path's attributes differ from the wanted ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttrDiff {
    /// (was, wanted) permission bits.
    pub mode: Option<(u32, u32)>,
    /// (was, wanted) owner.
    pub owner: Option<(String, String)>,
    /// (was, wanted) group.
    pub group: Option<(String, String)>,
}

/// Does an observed name/id match a wanted name or numeric id?
fn same_principal(want: &str, name: &str, id: u32) -> bool {
    if !want.is_empty() && want.bytes().all(|b| b.is_ascii_digit()) {
        want.parse::<u32>().ok() == Some(id)
    } else {
        want == name
    }
}

impl Attrs {
    /// Read `mode`, `owner` and `group` from the arguments.
    pub fn from_args(args: &Args) -> Result<Self, ModuleError> {
        let name = |n: &str| -> Result<Option<String>, ModuleError> {
            match get_str(args, n)? {
                Some(s) if s.trim().is_empty() || s.contains(':') => Err(ModuleError::BadArg {
                    name: n.into(),
                    value: s,
                    message: "expected a user or group name".into(),
                }),
                other => Ok(other),
            }
        };
        Ok(Attrs {
            mode: get_mode(args, "mode")?,
            owner: name("owner")?,
            group: name("group")?,
        })
    }

    /// Permission bits after applying the wanted mode to `current`.
    pub fn resolve_mode(&self, current: u32, is_dir: bool) -> Option<u32> {
        self.mode.as_ref().map(|m| m.apply(current, is_dir))
    }

    /// Compare with an observed object. `with_mode` is false for symlinks,
    /// whose mode Linux cannot change.
    pub fn diff(&self, st: &FileStat, is_dir: bool, with_mode: bool) -> AttrDiff {
        let mode = match self.resolve_mode(st.mode, is_dir) {
            Some(m) if with_mode && m != st.mode => Some((st.mode, m)),
            _ => None,
        };
        let owner = match &self.owner {
            Some(o) if !same_principal(o, &st.owner, st.uid) => Some((st.owner.clone(), o.clone())),
            _ => None,
        };
        let group = match &self.group {
            Some(g) if !same_principal(g, &st.group, st.gid) => Some((st.group.clone(), g.clone())),
            _ => None,
        };
        AttrDiff { mode, owner, group }
    }
}

impl AttrDiff {
    /// Short fragments, e.g. `mode 0600 (was 0644)`, for a combined summary.
    pub fn fragments(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((was, want)) = self.mode {
            out.push(format!("mode {want:04o} (was {was:04o})"));
        }
        if let Some((was, want)) = &self.owner {
            out.push(format!("owner {want} (was {was})"));
        }
        if let Some((was, want)) = &self.group {
            out.push(format!("group {want} (was {was})"));
        }
        out
    }

    /// Stand-alone changes (`chown`, then `chmod`) for an existing path.
    /// `no_deref` changes a symlink itself rather than its target.
    pub fn changes(&self, path: &str, no_deref: bool) -> Vec<Change> {
        let mut out = Vec::new();
        let chown = |spec: String| {
            let mut argv = vec!["chown".to_string()];
            if no_deref {
                argv.push("-h".into());
            }
            argv.extend([spec, "--".into(), path.into()]);
            Step::exec(argv)
        };
        match (&self.owner, &self.group) {
            (Some((wo, o)), Some((wg, g))) => out.push(Change::new(
                format!("set owner {o}:{g} on {path} (was {wo}:{wg})"),
                vec![chown(format!("{o}:{g}"))],
            )),
            (Some((wo, o)), None) => out.push(Change::new(
                format!("set owner {o} on {path} (was {wo})"),
                vec![chown(o.clone())],
            )),
            (None, Some((wg, g))) => out.push(Change::new(
                format!("set group {g} on {path} (was {wg})"),
                vec![chown(format!(":{g}"))],
            )),
            (None, None) => {}
        }
        if let Some((was, want)) = self.mode {
            out.push(Change::new(
                format!("set mode {want:04o} on {path} (was {was:04o})"),
                vec![Step::exec([
                    "chmod".to_string(),
                    format!("{want:04o}"),
                    "--".into(),
                    path.into(),
                ])],
            ));
        }
        out
    }
}

/// Steps that give a freshly created object the wanted attributes
/// (`chown` then `chmod`; nothing for what is not given). `base` is the
/// mode the object is created with, used to resolve symbolic modes.
pub fn fresh_steps(attrs: &Attrs, path: &str, base: u32, is_dir: bool) -> Vec<Step> {
    let mut out = Vec::new();
    let spec = match (&attrs.owner, &attrs.group) {
        (Some(o), Some(g)) => Some(format!("{o}:{g}")),
        (Some(o), None) => Some(o.clone()),
        (None, Some(g)) => Some(format!(":{g}")),
        (None, None) => None,
    };
    if let Some(spec) = spec {
        out.push(Step::exec([
            "chown".to_string(),
            spec,
            "--".into(),
            path.into(),
        ]));
    }
    if let Some(m) = attrs.resolve_mode(base, is_dir) {
        out.push(Step::exec([
            "chmod".to_string(),
            format!("{m:04o}"),
            "--".into(),
            path.into(),
        ]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_engine::module::FileKind;
    use serde_json::json;

    fn st(mode: u32, owner: &str, uid: u32) -> FileStat {
        FileStat {
            kind: FileKind::File,
            mode,
            uid,
            gid: uid,
            owner: owner.into(),
            group: owner.into(),
            size: 0,
            link_target: None,
            inode: 1,
            dev: 1,
            nlink: 1,
        }
    }

    #[test]
    fn numeric_owner_matches_uid() {
        let a =
            Attrs::from_args(json!({"owner": "1000", "group": 1000}).as_object().unwrap()).unwrap();
        assert!(a.diff(&st(0o644, "app", 1000), false, true) == AttrDiff::default());
        let d = a.diff(&st(0o644, "root", 0), false, true);
        assert_eq!(d.owner, Some(("root".into(), "1000".into())));
    }

    #[test]
    fn symbolic_mode_resolves_against_current() {
        let a = Attrs::from_args(json!({"mode": "u+x"}).as_object().unwrap()).unwrap();
        let d = a.diff(&st(0o644, "root", 0), false, true);
        assert_eq!(d.mode, Some((0o644, 0o744)));
        assert!(a.diff(&st(0o744, "root", 0), false, true) == AttrDiff::default());
        assert!(a.diff(&st(0o644, "root", 0), false, false) == AttrDiff::default());
    }

    #[test]
    fn owner_and_group_make_one_chown() {
        let a = Attrs::from_args(
            json!({"owner": "app", "group": "adm", "mode": "0600"})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        let c = a
            .diff(&st(0o644, "root", 0), false, true)
            .changes("/x", false);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].summary, "set owner app:adm on /x (was root:root)");
        assert_eq!(c[1].steps, vec![Step::exec(["chmod", "0600", "--", "/x"])]);
    }

    #[test]
    fn bad_owner_rejected() {
        assert!(Attrs::from_args(json!({"owner": "a:b"}).as_object().unwrap()).is_err());
    }
}
