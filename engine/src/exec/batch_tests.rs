//! Tests of the probe cache's invalidation rules.

use super::*;
use crate::module::{FileKind, FileStat};

fn st(path: &str) -> Probe {
    Probe::Stat {
        path: path.into(),
        follow: false,
    }
}

fn some_stat() -> Observed {
    Observed::Stat(Some(FileStat {
        kind: FileKind::Directory,
        mode: 0o755,
        uid: 0,
        gid: 0,
        owner: "root".into(),
        group: "root".into(),
        size: 4096,
        link_target: None,
        inode: 1,
        dev: 1,
        nlink: 2,
    }))
}

fn cache(entries: &[(&str, Observed, bool)]) -> HostCache {
    let mut c = HostCache::default();
    for (p, o, safe) in entries {
        c.entries.push(Entry {
            key: String::new(),
            probes: vec![st(p)],
            observed: vec![o.clone()],
            safe: *safe,
            derived: false,
        });
        if *safe {
            c.canonical.insert(p.to_string());
        }
    }
    c
}

fn left(c: &HostCache) -> Vec<String> {
    c.entries
        .iter()
        .filter_map(|e| path_of(&e.probes[0]).map(String::from))
        .collect()
}

#[test]
fn a_change_drops_its_path_parents_and_contents() {
    let mut c = cache(&[
        ("/r/d1", Observed::Stat(None), true),
        ("/r/d1/t.conf", Observed::Stat(None), true),
        ("/r/d1/old", some_stat(), true),
        ("/r", some_stat(), true),
        ("/r/d2", Observed::Stat(None), true),
        ("/r/d10", Observed::Stat(None), true),
    ]);
    c.forget(&Step::exec(["mkdir", "-p", "--", "/r/d1"]));
    // Inside a new folder, what was absent stays absent.
    assert_eq!(left(&c), ["/r/d1/t.conf", "/r/d2", "/r/d10"]);
    c.forget(&Step::Write {
        path: "/r/d1/t.conf".into(),
        content: std::sync::Arc::new(vec![]),
        mode: None,
        owner: None,
        group: None,
        validate: None,
        backup: false,
    });
    assert_eq!(left(&c), ["/r/d2", "/r/d10"]);
    c.forget(&Step::exec(["rm", "-rf", "--", "/r"]));
    assert!(left(&c).is_empty());
}

#[test]
fn unknown_steps_symlinks_and_unknown_paths_drop_everything() {
    let base = || {
        cache(&[
            ("/a/x", Observed::Stat(None), true),
            ("/b/y", Observed::Stat(None), true),
        ])
    };
    let mut c = base();
    c.forget(&Step::exec(["systemctl", "restart", "x"]));
    assert!(left(&c).is_empty() && c.canonical.is_empty());
    // A path never seen canonical (it could be an alias of /b/y).
    let mut c = base();
    c.forget(&Step::exec(["touch", "--", "/c/z"]));
    assert!(left(&c).is_empty());
    // A relative path or a chmod without `--` is not understood.
    let mut c = base();
    c.forget(&Step::exec(["chmod", "0644", "/a/x"]));
    assert!(left(&c).is_empty());
    // An entry with a non-canonical path goes with any change.
    let mut c = cache(&[
        ("/a/x", Observed::Stat(None), true),
        ("/l/y", Observed::Stat(None), false),
    ]);
    c.forget(&Step::exec(["chmod", "0644", "--", "/a/x"]));
    assert!(left(&c).is_empty());
    let mut c = base();
    c.forget(&Step::exec(["ln", "-s", "--", "rel/target", "/a/x"]));
    assert_eq!(left(&c), ["/b/y"]);
    assert!(!c.known_canonical("/a/x"));
    let mut c = base();
    c.forget(&Step::Fetch {
        src: "/a/x".into(),
        dest: "/tmp/x".into(),
    });
    assert_eq!(left(&c).len(), 2);
}
