//! Check mode's memory of what earlier tasks would have done on a host.
//! Ansible's `--check` fails a task whose input an earlier task would have
//! created (lineinfile on a file a copy would write); drover instead feeds
//! the predicted state to later probes, so the dry run predicts the whole
//! play. Only writes and directory creation are tracked.

use crate::module::{FileKind, FileStat, Observed, Plan, Probe, Step};
use std::collections::HashMap;
use std::sync::Arc;

/// A predicted path state.
#[derive(Debug, Clone)]
pub(crate) enum Predicted {
    File {
        content: Arc<Vec<u8>>,
        mode: Option<u32>,
        owner: Option<String>,
        group: Option<String>,
    },
    Dir,
}

/// Remember the effects of a plan that check mode did not apply.
pub(super) fn record(p: &mut HashMap<String, Predicted>, plan: &Plan) {
    for c in &plan.changes {
        for s in &c.steps {
            match s {
                Step::Write {
                    path,
                    content,
                    mode,
                    owner,
                    group,
                    ..
                } => {
                    let mode = mode.or_else(|| match p.get(path) {
                        Some(Predicted::File { mode, .. }) => *mode,
                        _ => None,
                    });
                    p.insert(
                        path.clone(),
                        Predicted::File {
                            content: content.clone(),
                            mode,
                            owner: owner.clone(),
                            group: group.clone(),
                        },
                    );
                }
                Step::Exec { argv, .. } if argv.first().map(String::as_str) == Some("mkdir") => {
                    for a in argv.iter().skip(1).filter(|a| !a.starts_with('-')) {
                        p.insert(a.clone(), Predicted::Dir);
                    }
                }
                Step::Exec { argv, .. }
                    if argv.get(3).map(String::as_str) == Some("drover-mkdir") =>
                {
                    if let Some(a) = argv.get(4) {
                        p.insert(a.clone(), Predicted::Dir);
                    }
                }
                _ => {}
            }
        }
    }
}

fn stat_of(pr: &Predicted) -> FileStat {
    let (kind, mode, size, owner, group) = match pr {
        Predicted::File {
            content,
            mode,
            owner,
            group,
        } => (
            FileKind::File,
            mode.unwrap_or(0o644),
            content.len() as u64,
            owner.clone(),
            group.clone(),
        ),
        Predicted::Dir => (FileKind::Directory, 0o755, 4096, None, None),
    };
    // SAFETY: geteuid/getegid have no preconditions.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    FileStat {
        kind,
        mode,
        uid,
        gid,
        owner: owner.unwrap_or_else(|| {
            if uid == 0 {
                "root".into()
            } else {
                uid.to_string()
            }
        }),
        group: group.unwrap_or_else(|| {
            if gid == 0 {
                "root".into()
            } else {
                gid.to_string()
            }
        }),
        size,
        link_target: None,
        inode: 0,
        dev: 0,
        nlink: 1,
    }
}

/// Replace observations of paths that earlier (unapplied) tasks would change.
pub(super) fn overlay(p: &HashMap<String, Predicted>, probes: &[Probe], observed: &mut [Observed]) {
    if p.is_empty() {
        return;
    }
    for (probe, obs) in probes.iter().zip(observed.iter_mut()) {
        match probe {
            Probe::Stat { path, .. } => {
                if let Some(pr) = p.get(path).or_else(|| p.get(&lexical(path))) {
                    let mut st = stat_of(pr);
                    if let Observed::Stat(Some(old)) = obs {
                        // Keep real ownership/mode where the prediction does not set them.
                        if let Predicted::File {
                            mode: None,
                            owner,
                            group,
                            ..
                        } = pr
                        {
                            st.mode = old.mode;
                            if owner.is_none() {
                                st.owner = old.owner.clone();
                                st.uid = old.uid;
                            }
                            if group.is_none() {
                                st.group = old.group.clone();
                                st.gid = old.gid;
                            }
                        }
                    }
                    *obs = Observed::Stat(Some(st));
                }
            }
            Probe::Read { path } => {
                if let Some(Predicted::File { content, .. }) =
                    p.get(path).or_else(|| p.get(&lexical(path)))
                {
                    *obs = Observed::Content(Some(content.as_ref().clone()));
                }
            }
            Probe::Exec { .. } | Probe::ExecStdin { .. } => {}
        }
    }
}

/// `path` without `.`, empty and `..` components (`/a/b/../c` → `/a/c`), so
/// a link's `src` relative to its folder (`sites-enabled/../sites-available/x`,
/// as `a2ensite` makes) finds the file an earlier task would write. Lexical
/// only: a symlinked folder before `..` would resolve elsewhere on the host.
fn lexical(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let body = parts.join("/");
    if path.starts_with('/') {
        format!("/{body}")
    } else {
        body
    }
}

#[cfg(test)]
mod lexical_tests {
    #[test]
    fn lexical_paths() {
        use super::lexical;
        assert_eq!(lexical("/etc/a/../b/./c"), "/etc/b/c");
        assert_eq!(lexical("/etc//x/"), "/etc/x");
        assert_eq!(lexical("/../x"), "/x");
        assert_eq!(lexical("a/../b"), "b");
    }
}
