//! The state a write leaves, derived without a probe, for planning the
//! next tasks of a batch (`ahead`). After `Write { path, content, mode }`
//! ran, `path` is a regular file holding exactly `content`: a `Read` of it
//! gives that content, and a `Stat` gives a regular file of that size
//! whose mode is the one written (or the replaced file's, which the write
//! keeps; 0644 when new) and whose owner and group are the replaced
//! file's. What a write does not determine — a new file's owner and group,
//! the inode — is left unknown (`u32::MAX`, empty names, 0), so a derived
//! observation is only ever given to an action that promises not to read
//! those fields ([`Action::plans_on_written_state`]). Only the simulation
//! of a batch holds derived entries; the cache of real observations never
//! does.
//!
//! [`Action::plans_on_written_state`]: crate::module::Action::plans_on_written_state

use crate::module::{FileKind, FileStat, Observed, Probe, Step};

/// A write's outcome for the observations `obs` of `probes`, or None when
/// it cannot be derived (they observed something inside or above the
/// path, a symlink at it, or not it at all).
pub(super) fn after_write(
    step: &Step,
    probes: &[Probe],
    obs: &[Observed],
) -> Option<Vec<Observed>> {
    let Step::Write {
        path: w,
        content,
        mode,
        owner,
        group,
        ..
    } = step
    else {
        return None;
    };
    let mut touched = false;
    let mut out = Vec::with_capacity(obs.len());
    for (p, o) in probes.iter().zip(obs) {
        let path = match p {
            Probe::Stat { path, .. } | Probe::Read { path } => path,
            Probe::Exec { .. } | Probe::ExecStdin { .. } => return None,
        };
        if path != w {
            if super::batch::within(path, w) || super::batch::within(w, path) {
                return None;
            }
            out.push(o.clone());
            continue;
        }
        touched = true;
        out.push(match (p, o) {
            (Probe::Read { .. }, _) => Observed::Content(Some(content.as_ref().clone())),
            (Probe::Stat { .. }, Observed::Stat(before)) => {
                let before = match before {
                    None => None,
                    Some(st) if st.kind == FileKind::File => Some(st),
                    // A link, a folder…: not a plain replacement.
                    Some(_) => return None,
                };
                Observed::Stat(Some(written(before, content.len(), *mode, owner, group)))
            }
            _ => return None,
        });
    }
    touched.then_some(out)
}

fn written(
    before: Option<&FileStat>,
    size: usize,
    mode: Option<u32>,
    owner: &Option<String>,
    group: &Option<String>,
) -> FileStat {
    let (uid, owner_name) = match (owner, before) {
        (Some(o), _) => (u32::MAX, o.clone()),
        (None, Some(b)) => (b.uid, b.owner.clone()),
        (None, None) => (u32::MAX, String::new()),
    };
    let (gid, group_name) = match (group, before) {
        (Some(g), _) => (u32::MAX, g.clone()),
        (None, Some(b)) => (b.gid, b.group.clone()),
        (None, None) => (u32::MAX, String::new()),
    };
    FileStat {
        kind: FileKind::File,
        mode: mode.unwrap_or(before.map_or(0o644, |b| b.mode)),
        uid,
        gid,
        owner: owner_name,
        group: group_name,
        size: size as u64,
        link_target: None,
        inode: 0,
        dev: before.map_or(0, |b| b.dev),
        nlink: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn write(path: &str, content: &[u8], mode: Option<u32>) -> Step {
        Step::Write {
            path: path.into(),
            content: Arc::new(content.to_vec()),
            mode,
            owner: None,
            group: None,
            validate: None,
            backup: false,
        }
    }

    fn text_probes(path: &str) -> Vec<Probe> {
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

    fn file(mode: u32) -> FileStat {
        FileStat {
            kind: FileKind::File,
            mode,
            uid: 7,
            gid: 8,
            owner: "u".into(),
            group: "g".into(),
            size: 3,
            link_target: None,
            inode: 99,
            dev: 5,
            nlink: 1,
        }
    }

    #[test]
    fn a_replaced_file_keeps_mode_and_owner_and_holds_the_content() {
        let p = text_probes("/d/f");
        let before = vec![
            Observed::Stat(Some(file(0o600))),
            Observed::Stat(Some(file(0o600))),
            Observed::Content(Some(b"old".to_vec())),
        ];
        let out = after_write(&write("/d/f", b"new!\n", None), &p, &before).unwrap();
        let Observed::Stat(Some(st)) = &out[1] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (st.kind, st.mode, st.uid, st.gid, st.size),
            (FileKind::File, 0o600, 7, 8, 5)
        );
        assert_eq!(st.owner, "u");
        assert_eq!(out[0], out[1]);
        assert_eq!(out[2], Observed::Content(Some(b"new!\n".to_vec())));
        // A mode written is the mode.
        let out = after_write(&write("/d/f", b"x", Some(0o640)), &p, &before).unwrap();
        assert!(matches!(&out[0], Observed::Stat(Some(s)) if s.mode == 0o640));
    }

    #[test]
    fn a_new_file_is_0644_with_its_owner_unknown() {
        let p = text_probes("/d/f");
        let absent = vec![
            Observed::Stat(None),
            Observed::Stat(None),
            Observed::Content(None),
        ];
        let out = after_write(&write("/d/f", b"x", None), &p, &absent).unwrap();
        let Observed::Stat(Some(st)) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (st.mode, st.uid, st.gid, st.owner.as_str()),
            (0o644, u32::MAX, u32::MAX, "")
        );
    }

    #[test]
    fn links_folders_and_other_paths_are_not_derived() {
        let p = text_probes("/d/f");
        let mut link = file(0o777);
        link.kind = FileKind::Link;
        let linked = vec![
            Observed::Stat(Some(link)),
            Observed::Stat(Some(file(0o644))),
            Observed::Content(Some(b"old".to_vec())),
        ];
        assert!(after_write(&write("/d/f", b"x", None), &p, &linked).is_none());
        let mut dir = file(0o755);
        dir.kind = FileKind::Directory;
        let d = vec![
            Observed::Stat(Some(dir.clone())),
            Observed::Stat(Some(dir)),
            Observed::Content(None),
        ];
        assert!(after_write(&write("/d/f", b"x", None), &p, &d).is_none());
        // Above or inside the written path: unknown; elsewhere: untouched.
        let above = [Probe::Stat {
            path: "/d".into(),
            follow: false,
        }];
        let o = [Observed::Stat(None)];
        assert!(after_write(&write("/d/f", b"x", None), &above, &o).is_none());
        let other = [Probe::Read { path: "/e".into() }];
        assert!(after_write(&write("/d/f", b"x", None), &other, &o).is_none());
        let mixed = [
            Probe::Read { path: "/e".into() },
            Probe::Read {
                path: "/d/f".into(),
            },
        ];
        let o2 = [
            Observed::Content(Some(b"e".to_vec())),
            Observed::Content(None),
        ];
        assert_eq!(
            after_write(&write("/d/f", b"x", None), &mixed, &o2).unwrap(),
            vec![
                Observed::Content(Some(b"e".to_vec())),
                Observed::Content(Some(b"x".to_vec()))
            ]
        );
    }
}
