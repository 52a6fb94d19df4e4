//! The atomic write scripts, run by a real `sh` on local files.

use super::*;
use crate::connection::local::LocalConnection;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

fn sh(script: &str, args: &[&str], stdin: &[u8]) -> std::process::Output {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Nothing but the named files is left in `dir` (no temp file).
fn only(dir: &Path, names: &[&str]) {
    let mut have: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    have.sort();
    let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(have, want);
}

#[test]
fn a_write_sets_the_mode_asked_for_or_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("kept"), b"old").unwrap();
    std::fs::set_permissions(p("kept"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(p("narrowed"), b"old").unwrap();
    std::fs::set_permissions(p("narrowed"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let cases: [(&str, Option<u32>, u32); 6] = [
        ("plain", Some(0o644), 0o644),
        ("exec", Some(0o755), 0o755),
        ("setgid", Some(0o2750), 0o2750),
        ("new", None, 0o644),
        ("kept", None, 0o600),
        ("narrowed", Some(0o600), 0o600),
    ];
    for (name, m, want) in cases {
        let script = write_script(m, None, None, None, false).unwrap();
        let path = p(name).display().to_string();
        let out = sh(&script, &["drover-write", &path], b"new\n\x00content");
        assert!(out.status.success(), "{name}: {out:?}");
        assert_eq!(
            std::fs::read(p(name)).unwrap(),
            b"new\n\x00content",
            "{name}"
        );
        assert_eq!(mode(&p(name)), want, "{name}");
    }
    only(
        dir.path(),
        &["plain", "exec", "setgid", "new", "kept", "narrowed"],
    );
}

#[test]
fn writes_in_one_script_take_exactly_their_bytes_of_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    let body = |n| write_body(Some(0o640), None, None, None, false, Input::Exact(n)).unwrap();
    let script = format!(
        "(set -- \"$1\"\n{}) || exit 1\n(set -- \"$2\"\n{}) || exit 1\n(set -- \"$3\"\n{}) || exit 1\ncat",
        body(3),
        body(0),
        body(5 + 70_000)
    );
    let (pa, pb, pc) = (
        a.display().to_string(),
        b.display().to_string(),
        c.display().to_string(),
    );
    let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let mut input = b"abcdefgh".to_vec();
    input.extend_from_slice(&big);
    input.extend_from_slice(b"TAIL");
    let out = sh(&script, &["x", &pa, &pb, &pc], &input);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read(&a).unwrap(), b"abc");
    assert_eq!(std::fs::read(&b).unwrap(), b"");
    let mut want_c = b"defgh".to_vec();
    want_c.extend_from_slice(&big);
    assert_eq!(std::fs::read(&c).unwrap(), want_c);
    assert_eq!(out.stdout, b"TAIL");
    assert_eq!((mode(&a), mode(&b), mode(&c)), (0o640, 0o640, 0o640));
}

#[test]
fn a_taken_temp_name_falls_back_to_mktemp_with_the_same_mode() {
    // The script's shell keeps the pid of the shell that took the name
    // (`exec`), so its first choice of temp name is taken.
    let dir = tempfile::tempdir().unwrap();
    for (name, m, want) in [("a", Some(0o644), 0o644), ("b", None, 0o644)] {
        let script = write_script(m, None, None, None, false).unwrap();
        let path = dir.path().join(name).display().to_string();
        let outer = "d=${2%/*}; : > \"$d/.drover.$$\"; exec sh -c \"$1\" drover-write \"$2\"";
        let out = sh(outer, &["x", &script, &path], b"data");
        assert!(out.status.success(), "{out:?}");
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
        assert_eq!(mode(Path::new(&path)), want, "{name}");
        for e in std::fs::read_dir(dir.path()).unwrap() {
            let e = e.unwrap();
            if e.file_name().to_string_lossy().starts_with(".drover.") {
                std::fs::remove_file(e.path()).unwrap();
            }
        }
    }
    only(dir.path(), &["a", "b"]);
}

// Steps through a local connection.

fn env() -> (BTreeMap<String, String>,) {
    (BTreeMap::new(),)
}

#[tokio::test]
async fn atomic_write_validates_and_keeps_mode() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f.conf");
    std::fs::write(&p, "old\n").unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let conn = LocalConnection::new("localhost");
    let e = env();
    let env = ExecEnv {
        become_: None,
        env: &e.0,
        timeout: None,
    };
    let step = |content: &str, validate: Option<&str>| Step::Write {
        path: p.display().to_string(),
        content: Arc::new(content.as_bytes().to_vec()),
        mode: None,
        owner: None,
        group: None,
        validate: validate.map(String::from),
        backup: false,
    };
    // A failing validation leaves the old file in place and no temp file.
    let r = run_step(&conn, &env, &step("bad\n", Some("grep -q good %s"))).await;
    assert!(matches!(r, Err(StepError::Failed { .. })));
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "old\n");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    run_step(&conn, &env, &step("good\n", Some("grep -q good %s")))
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "good\n");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&p).unwrap().permissions());
    assert_eq!(mode & 0o7777, 0o640);
}

#[tokio::test]
async fn fetch_copies_to_the_controller_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("remote.txt");
    std::fs::write(&src, b"from the host\n\x00").unwrap();
    let dest = dir.path().join("fetched/h1/etc/remote.txt");
    let conn = LocalConnection::new("localhost");
    let e = env();
    let env = ExecEnv {
        become_: None,
        env: &e.0,
        timeout: None,
    };
    let step = Step::Fetch {
        src: src.display().to_string(),
        dest: dest.clone(),
    };
    run_step(&conn, &env, &step).await.unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), b"from the host\n\x00");
    // Only the file itself in its folder: no temp file left behind.
    assert_eq!(
        std::fs::read_dir(dest.parent().unwrap()).unwrap().count(),
        1
    );
    // A missing source fails the step and writes nothing.
    let missing = Step::Fetch {
        src: dir.path().join("nope").display().to_string(),
        dest: dir.path().join("other"),
    };
    assert!(run_step(&conn, &env, &missing).await.is_err());
    assert!(!dir.path().join("other").exists());
}
