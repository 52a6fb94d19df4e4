//! `state: link` and `state: hard` of the `file` module: when to create,
//! repoint or refuse (`force`) a symbolic or hard link, and which owner
//! changes follow (a symlink's own owner via `chown -h`; a hard link shares
//! its inode, so attributes are compared with `src`).

use crate::file::{kind_word, state_diff, FileAction};
use crate::fs_attrs::{self, AttrDiff};
use drover_engine::module::{Change, FileKind, FileStat, ModuleError, Step};

impl FileAction {
    pub(crate) fn plan_link(
        &self,
        lst: Option<&FileStat>,
        src_st: Option<&FileStat>,
    ) -> Result<Vec<Change>, ModuleError> {
        let path = self.path.as_str();
        let src = self.src.as_deref().unwrap_or_default();
        let owner_steps = |d: AttrDiff| d.changes(path, true);
        if src_st.is_none() && !self.force {
            return Err(ModuleError::Failed(format!(
                "src file does not exist, use \"force=yes\" if you really want to create the link: {}",
                self.src_check.as_deref().unwrap_or(src)
            )));
        }
        let fresh = || -> Vec<Step> {
            let mut a = self.attrs.clone();
            a.mode = None;
            let mut steps = fs_attrs::fresh_steps(&a, path, 0o777, false);
            for s in &mut steps {
                if let Step::Exec { argv, .. } = s {
                    argv.insert(1, "-h".into());
                }
            }
            steps
        };
        let prev = kind_word(lst);
        let mut steps = match lst {
            Some(st) if st.kind == FileKind::Link && st.link_target.as_deref() == Some(src) => {
                return Ok(owner_steps(self.attrs.diff(st, false, false)));
            }
            None => {
                let mut s = vec![Step::exec(["ln", "-s", "--", src, path])];
                s.extend(fresh());
                return Ok(vec![Change::new(format!("create link {path} -> {src}"), s)
                    .with_diff(state_diff(path, "absent", "link"))]);
            }
            Some(st) if st.kind == FileKind::Link => {
                let was = st.link_target.clone().unwrap_or_default();
                let mut s = vec![Step::exec(["ln", "-sfn", "--", src, path])];
                s.extend(fresh());
                return Ok(vec![Change::new(
                    format!("change link {path} -> {src} (was -> {was})"),
                    s,
                )]);
            }
            Some(_) if !self.force => {
                return Err(ModuleError::Failed(format!(
                    "refusing to convert from {prev} to symlink for {path} (use force=yes)"
                )))
            }
            Some(st) if st.kind == FileKind::Directory => vec![
                Step::exec(["rmdir", "--", path]),
                Step::exec(["ln", "-s", "--", src, path]),
            ],
            Some(_) => vec![Step::exec(["ln", "-sfn", "--", src, path])],
        };
        steps.extend(fresh());
        Ok(vec![Change::new(
            format!("replace {prev} {path} with link -> {src}"),
            steps,
        )
        .with_diff(state_diff(path, prev, "link"))])
    }

    pub(crate) fn plan_hard(
        &self,
        lst: Option<&FileStat>,
        src_st: Option<&FileStat>,
    ) -> Result<Vec<Change>, ModuleError> {
        let path = self.path.as_str();
        let src = self.src.as_deref().unwrap_or_default();
        let Some(s) = src_st else {
            return Err(ModuleError::Failed(format!(
                "src does not exist: {}",
                self.src_check.as_deref().unwrap_or(src)
            )));
        };
        if s.kind == FileKind::Directory {
            return Err(ModuleError::Failed(format!(
                "cannot hard link a directory: {src}"
            )));
        }
        // Attributes belong to the shared inode: compare against src.
        let attr_steps = || -> Vec<Step> {
            self.attrs
                .diff(s, false, s.kind != FileKind::Link)
                .changes(path, false)
                .into_iter()
                .flat_map(|c| c.steps)
                .collect()
        };
        let prev = kind_word(lst);
        let mut steps = match lst {
            Some(st) if st.inode == s.inode && st.dev == s.dev => {
                return Ok(self.attrs.diff(st, false, true).changes(path, false));
            }
            None => vec![Step::exec(["ln", "--", src, path])],
            Some(st) if st.kind == FileKind::Directory => {
                return Err(ModuleError::Failed(format!(
                    "Cannot link, directory exists at destination {path}"
                )))
            }
            Some(_) if !self.force => {
                return Err(ModuleError::Failed(format!(
                    "Cannot link, {prev} exists at destination {path} (use force=yes)"
                )))
            }
            Some(_) => vec![Step::exec(["ln", "-f", "--", src, path])],
        };
        steps.extend(attr_steps());
        let summary = match lst {
            None => format!("create hard link {path} => {src}"),
            Some(_) => format!("replace {prev} {path} with hard link => {src}"),
        };
        Ok(vec![
            Change::new(summary, steps).with_diff(state_diff(path, prev, "hard"))
        ])
    }
}
