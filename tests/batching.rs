//! The executor's batching (engine/src/exec/batch.rs, ahead.rs) on this
//! machine (local connection): the probes of a host's coming tasks go in
//! one exec and the steps of independent tasks run together, and yet every
//! task reports its own result, a failure inside a batch stops the host
//! where it happened (with the failing task's own error), nothing after it
//! runs, and a second run changes nothing.

use std::path::PathBuf;
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(playbook: &str, out: &std::path::Path, extra: &[&str]) -> Output {
    let ev = format!("out={}", out.display());
    Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["run", playbook, "-e", &ev, "--json"])
        .args(extra)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// (task, status, msg) of every task_done event.
fn results(o: &Output) -> Vec<(String, String, String)> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "task_done")
        .map(|e| {
            (
                e["task"].as_str().unwrap_or("").to_string(),
                e["status"].as_str().unwrap_or("").to_string(),
                e["msg"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn status_of(r: &[(String, String, String)], task: &str) -> String {
    r.iter()
        .find(|(t, _, _)| t == task)
        .map(|(_, s, _)| s.clone())
        .unwrap_or_else(|| panic!("no result for `{task}` in {r:?}"))
}

#[test]
fn a_failing_step_of_the_current_task_in_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let pb = "tests/semantics/batch_own_fail.yml";
    // --check first: predicts, touches nothing.
    let o = run(pb, dir.path(), &["--check"]);
    assert!(!dir.path().join("a").exists());
    let r = results(&o);
    assert_eq!(status_of(&r, "dir a"), "changed", "{r:?}");
    let o = run(pb, dir.path(), &[]);
    assert_eq!(o.status.code(), Some(2), "{:?}", results(&o));
    let r = results(&o);
    for t in ["dir a", "file in a", "line in g"] {
        assert_eq!(status_of(&r, t), "changed", "{t}: {r:?}");
    }
    let (_, s, msg) = r.iter().find(|(t, _, _)| t == "dir under a file").unwrap();
    assert_eq!(s, "failed");
    assert!(msg.contains("a/f/sub"), "{msg}");
    assert_ne!(status_of(&r, "never written"), "changed");
    assert!(!dir.path().join("never").exists());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("a/f")).unwrap()
            + "|"
            + &std::fs::read_to_string(dir.path().join("a/g")).unwrap(),
        "one\n|two\n"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.path().join("a"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o7777, 0o750);
    // The same again: the three done tasks are ok, the failure repeats.
    let o = run(pb, dir.path(), &[]);
    let r = results(&o);
    for t in ["dir a", "file in a", "line in g"] {
        assert_eq!(status_of(&r, t), "ok", "{t}: {r:?}");
    }
    assert_eq!(status_of(&r, "dir under a file"), "failed");
}

#[test]
fn a_failing_step_of_a_later_task_in_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let o = run("tests/semantics/batch_member_fail.yml", dir.path(), &[]);
    assert_eq!(o.status.code(), Some(2), "{:?}", results(&o));
    let r = results(&o);
    assert_eq!(status_of(&r, "dir b"), "changed", "{r:?}");
    let (_, s, msg) = r.iter().find(|(t, _, _)| t == "dir in procfs").unwrap();
    assert_eq!(s, "failed", "{r:?}");
    assert!(msg.contains("drover-batch-test"), "{msg}");
    assert_ne!(status_of(&r, "never written"), "changed");
    assert!(dir.path().join("b").is_dir());
    assert!(!dir.path().join("never").exists());
}

#[test]
fn a_chain_of_edits_of_one_file_plans_from_what_the_last_one_wrote() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let kept = dir.path().join("kept.conf");
    std::fs::write(&kept, "x\n").unwrap();
    std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o600)).unwrap();
    let pb = "tests/semantics/batch_line_chain.yml";
    let o = run(pb, dir.path(), &[]);
    assert_eq!(o.status.code(), Some(0), "{:?}", results(&o));
    let r = results(&o);
    assert_eq!(r.len(), 7, "{r:?}");
    assert!(r.iter().all(|(_, s, _)| s == "changed"), "{r:?}");
    // What ansible-playbook leaves from the same playbook (checked by hand
    // against ansible-core 2.19).
    let new = dir.path().join("new/lines.conf");
    assert_eq!(
        std::fs::read_to_string(&new).unwrap(),
        "k1=1\nk2=2\n# BEGIN ANSIBLE MANAGED BLOCK\nb=1\n# END ANSIBLE MANAGED BLOCK\n"
    );
    assert_eq!(
        std::fs::read_to_string(&kept).unwrap(),
        "b=2\nx\na=1\nc=3\nd=4\n"
    );
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!((mode(&new), mode(&kept)), (0o644, 0o640));
    let o = run(pb, dir.path(), &[]);
    let r = results(&o);
    assert!(r.iter().all(|(_, s, _)| s == "ok"), "{r:?}");
}

#[test]
fn a_run_of_new_folders_is_made_together_and_stops_where_one_fails() {
    use std::os::unix::fs::PermissionsExt;
    let pb = "tests/semantics/batch_mkdir_run.yml";
    let mode = |p: std::path::PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    let dir = tempfile::tempdir().unwrap();
    let c = format!("c={}/top/c", dir.path().display());
    let o = run(pb, dir.path(), &["-e", &c]);
    assert_eq!(o.status.code(), Some(0), "{:?}", results(&o));
    assert!(results(&o).iter().all(|(_, s, _)| s == "changed"));
    for d in ["top", "top/a", "top/b", "top/c", "top/d", "top/e"] {
        assert_eq!(mode(dir.path().join(d)), 0o750, "{d}");
    }
    let o = run(pb, dir.path(), &["-e", &c]);
    assert!(results(&o).iter().all(|(_, s, _)| s == "ok"));
    // c in procfs: b is made, c fails with mkdir's own error, d and e are
    // neither made nor left behind by the shared mkdir.
    let dir = tempfile::tempdir().unwrap();
    let o = run(pb, dir.path(), &["-e", "c=/proc/drover-batch-test"]);
    assert_eq!(o.status.code(), Some(2), "{:?}", results(&o));
    let r = results(&o);
    assert_eq!(status_of(&r, "dir b"), "changed", "{r:?}");
    let (_, s, msg) = r.iter().find(|(t, _, _)| t == "dir c").unwrap();
    assert_eq!(s, "failed", "{r:?}");
    assert!(msg.contains("cannot create directory"), "{msg}");
    assert_ne!(status_of(&r, "dir d"), "changed");
    let mut left: Vec<String> = std::fs::read_dir(dir.path().join("top"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["a", "b"]);
}
