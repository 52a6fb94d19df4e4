//! Integration tests that run the `drover` binary on this machine (local
//! connection): the quick start's check → run → no-op cycle, the Ansible
//! side-by-side comparison, and bad input failing before anything runs.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn drover(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// path → (mode, sha256) of every file and directory under `dir`.
fn tree(dir: &Path) -> BTreeMap<String, (u32, String)> {
    let mut out = BTreeMap::new();
    fn walk(base: &Path, d: &Path, out: &mut BTreeMap<String, (u32, String)>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            let mode = md.permissions().mode() & 0o7777;
            if md.is_dir() {
                out.insert(rel, (mode, "dir".into()));
                walk(base, &p, out);
            } else {
                let h = hex(&Sha256::digest(std::fs::read(&p).unwrap()));
                out.insert(rel, (mode, h));
            }
        }
    }
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The last NDJSON line's recap for `host`.
fn recap(o: &Output, host: &str) -> serde_json::Value {
    let out = String::from_utf8_lossy(&o.stdout);
    let last = out
        .lines()
        .rev()
        .find(|l| l.starts_with("{\"recap\""))
        .unwrap_or_else(|| panic!("no recap in {}", text(o)));
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    v["recap"][host].clone()
}

/// (task, host) pairs reported as changed (or would change).
fn changed_tasks(o: &Output) -> Vec<String> {
    let mut v: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "task_done" && e["status"] == "changed")
        .map(|e| {
            format!(
                "{}@{}",
                e["task"].as_str().unwrap(),
                e["host"].as_str().unwrap()
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn quickstart_check_then_run_then_noop() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let ev = format!("out_dir={}", out.display());
    let pb = "playbooks/quickstart/site.yml";
    // Seed part of the tree so check mode has something to leave alone.
    std::fs::create_dir_all(out.join("memcached")).unwrap();
    std::fs::write(out.join("memcached/memcached.conf"), "-m 64\n-p 11211\n").unwrap();
    let before = tree(&out);
    let check = drover(&["run", pb, "-e", &ev, "--check", "--diff", "--json"]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    assert_eq!(tree(&out), before, "check mode changed the tree");
    let predicted = changed_tasks(&check);
    assert!(predicted.len() >= 7, "{predicted:?}");
    let run = drover(&["run", pb, "-e", &ev, "--json"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    assert_eq!(
        changed_tasks(&run),
        predicted,
        "the real run changed other tasks than check predicted"
    );
    let conf = std::fs::read_to_string(out.join("memcached/memcached.conf")).unwrap();
    assert_eq!(conf, "-m 100\n-p 11211\n-l 0.0.0.0\n");
    let zoo = std::fs::read_to_string(out.join("zookeeper/zoo.cfg")).unwrap();
    assert!(zoo.contains("server.3=10.0.0.13:2888:3888\n"), "{zoo}");
    let again = drover(&["run", pb, "-e", &ev, "--json"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(recap(&again, "localhost")["changed"], 0, "{}", text(&again));
    let check2 = drover(&["run", pb, "-e", &ev, "--check", "--json"]);
    assert_eq!(
        recap(&check2, "localhost")["changed"],
        0,
        "{}",
        text(&check2)
    );
}

fn ansible_bin(name: &str) -> PathBuf {
    let dir = std::env::var_os("DROVER_ANSIBLE_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/bin"));
    let p = dir.join(name);
    assert!(p.exists(), "{} is missing: run `python3 -m venv .venv && .venv/bin/pip install ansible-core` (tests compare against Ansible)", p.display());
    p
}

#[test]
fn same_playbook_same_tree_as_ansible() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("ansible");
    let d = dir.path().join("drover");
    let py = ansible_bin("python3");
    let o = Command::new(ansible_bin("ansible-playbook"))
        .args([
            "-i",
            "tests/compat/inventory.ini",
            "tests/compat/site.yml",
            "-e",
        ])
        .arg(format!(
            "out={} ansible_python_interpreter={}",
            a.display(),
            py.display()
        ))
        .current_dir(root())
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_LOCALHOST_WARNING", "0")
        .output()
        .unwrap();
    assert!(o.status.success(), "ansible-playbook failed: {}", text(&o));
    let o = drover(&[
        "run",
        "tests/compat/site.yml",
        "-i",
        "tests/compat/inventory.ini",
        "-e",
        &format!("out={}", d.display()),
    ]);
    assert!(o.status.success(), "drover failed: {}", text(&o));
    let (ta, td) = (tree(&a), tree(&d));
    assert!(!ta.is_empty());
    assert_eq!(ta, td, "ansible and drover left different trees");
    // Both are idempotent on their own tree.
    let o = drover(&[
        "run",
        "tests/compat/site.yml",
        "-i",
        "tests/compat/inventory.ini",
        "-e",
        &format!("out={}", d.display()),
        "--json",
    ]);
    assert_eq!(recap(&o, "localhost")["changed"], 0, "{}", text(&o));
}

fn bad(file: &str, code: i32, needles: &[&str]) {
    let marker = std::env::temp_dir().join("drover-bad-input-marker");
    let o = drover(&["run", &format!("tests/bad/{file}")]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(code), "{file}: {t}");
    for n in needles {
        assert!(t.contains(n), "{file}: expected `{n}` in: {t}");
    }
    assert!(
        !t.contains("ok: [") && !t.contains("changed: ["),
        "{file}: a task ran: {t}"
    );
    let _ = marker;
}

#[test]
fn bad_yaml_names_file_and_line() {
    bad(
        "yaml_syntax.yml",
        1,
        &["tests/bad/yaml_syntax.yml:5:", "did not find expected"],
    );
}

#[test]
fn unknown_module_names_line_and_suggests() {
    bad(
        "unknown_module.yml",
        1,
        &[
            "tests/bad/unknown_module.yml:6",
            "unknown module `fiel`",
            "file",
        ],
    );
}

#[test]
fn unknown_argument_names_task() {
    bad(
        "unknown_arg.yml",
        1,
        &[
            "unknown_arg.yml:4",
            "typo in argument",
            "unknown argument `stat`",
        ],
    );
}

#[test]
fn bad_state_names_value() {
    bad(
        "bad_state.yml",
        1,
        &["bad_state.yml:4", "state typo", "directroy"],
    );
}

#[test]
fn undefined_variable_names_task_and_variable() {
    bad(
        "undefined_var.yml",
        1,
        &[
            "undefined_var.yml:4",
            "uses an undefined variable",
            "nowhere_defined",
            "localhost",
        ],
    );
}

#[test]
fn dag_cycle_names_tasks() {
    bad("cycle.yml", 1, &["cycle", "first", "second"]);
}

#[test]
fn unknown_host_pattern_fails() {
    bad("unknown_pattern.yml", 1, &["no_such_group"]);
}

#[test]
fn missing_template_fails_before_running() {
    bad(
        "missing_template.yml",
        1,
        &["missing_template.yml:4", "nowhere.j2"],
    );
}

#[test]
fn bad_option_exit_code_5() {
    let o = drover(&["run", "--no-such-flag", "x.yml"]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
}

#[test]
fn graph_prints_dot() {
    let o = drover(&["graph", "playbooks/quickstart/site.yml"]);
    assert!(o.status.success(), "{}", text(&o));
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(t.starts_with("digraph drover {"), "{t}");
    assert!(
        t.contains("ZooKeeper ensemble configuration @ localhost"),
        "{t}"
    );
}

#[test]
fn handlers_run_once_blocks_rescue_and_always() {
    let dir = tempfile::tempdir().unwrap();
    let ev = format!("out={}", dir.path().display());
    let o = drover(&["run", "tests/semantics/handlers.yml", "-e", &ev, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let p = dir.path();
    assert_eq!(
        std::fs::read_to_string(p.join("stamp")).unwrap(),
        "x\n",
        "handler must run exactly once"
    );
    assert!(!p.join("never").exists());
    assert!(p.join("rescued").exists() && p.join("always").exists() && p.join("after").exists());
    let r = recap(&o, "localhost");
    assert_eq!(r["failed"], 0, "{}", text(&o));
    assert_eq!(r["rescued"], 1, "{}", text(&o));
    assert_eq!(r["ignored"], 1, "{}", text(&o));
    // Nothing changed on the second run, so the handler is not notified again.
    let o = drover(&["run", "tests/semantics/handlers.yml", "-e", &ev, "--json"]);
    assert_eq!(
        std::fs::read_to_string(p.join("stamp")).unwrap(),
        "x\n",
        "{}",
        text(&o)
    );
}

#[test]
fn a_failed_task_skips_the_rest_of_the_host_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let ev = format!("out={}", dir.path().display());
    let o = drover(&["run", "tests/semantics/failure.yml", "-e", &ev, "--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!dir.path().join("nope").exists());
    assert_eq!(recap(&o, "localhost")["failed"], 1);
}

#[test]
fn facts_set_fact_register_loop_and_when() {
    let dir = tempfile::tempdir().unwrap();
    let ev = format!("out={}", dir.path().display());
    let o = drover(&["run", "tests/semantics/vars.yml", "-e", &ev, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let p = dir.path();
    assert_eq!(
        std::fs::read_to_string(p.join("v-one")).unwrap(),
        "sweet hello one\n"
    );
    assert_eq!(
        std::fs::read_to_string(p.join("v-two")).unwrap(),
        "sweet hello two\n"
    );
    assert!(!p.join("skipped").exists(), "{}", text(&o));
    let r = recap(&o, "localhost");
    assert_eq!(r["changed"], 1, "{}", text(&o));
    assert_eq!(r["skipped"], 1, "{}", text(&o));
}

#[test]
fn ctrl_c_finishes_running_steps_skips_the_rest_and_prints_the_recap() {
    let dir = tempfile::tempdir().unwrap();
    let ev = format!("out={}", dir.path().display());
    let child = Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["run", "tests/semantics/interrupt.yml", "-e", &ev])
        .current_dir(root())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    let k = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(k.success());
    let o = child.wait_with_output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(99), "{t}");
    assert!(
        t.contains("changed: [localhost] long"),
        "the running step must finish: {t}"
    );
    assert!(t.contains("after the interrupt => interrupted"), "{t}");
    assert!(t.contains("PLAY RECAP"), "{t}");
    assert!(!dir.path().join("after").exists());
}

fn events(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn roles_defaults_params_templates_and_handlers() {
    let dir = tempfile::tempdir().unwrap();
    let ev = format!("out={}", dir.path().display());
    let o = drover(&[
        "run",
        "tests/semantics/roles.yml",
        "-i",
        "tests/semantics/local3.ini",
        "-e",
        &ev,
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for h in ["h1", "h2", "h3"] {
        let c = std::fs::read_to_string(dir.path().join(format!("{h}.conf"))).unwrap();
        assert_eq!(c, "listen 9090\nsay hello\n");
        assert!(dir.path().join(format!("{h}.handled")).exists());
    }
}

#[test]
fn serial_batches_finish_before_the_next_starts() {
    let o = drover(&[
        "run",
        "tests/semantics/serial.yml",
        "-i",
        "tests/semantics/local3.ini",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let ev = events(&o);
    let pos = |kind: &str, host: &str, task: &str| {
        ev.iter()
            .position(|e| e["event"] == kind && e["host"] == host && e["task"] == task)
            .unwrap()
    };
    assert!(
        pos("task_done", "h1", "two") < pos("task_start", "h2", "one"),
        "{}",
        text(&o)
    );
    assert!(
        pos("task_done", "h2", "two") < pos("task_start", "h3", "one"),
        "{}",
        text(&o)
    );
}

#[test]
fn any_errors_fatal_stops_the_play_for_every_host() {
    let dir = tempfile::tempdir().unwrap();
    let ev = format!("out={}", dir.path().display());
    let o = drover(&[
        "run",
        "tests/semantics/fatal.yml",
        "-i",
        "tests/semantics/local3.ini",
        "-e",
        &ev,
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    for h in ["h1", "h2", "h3"] {
        assert!(
            !dir.path().join(format!("{h}.reached")).exists(),
            "{h} went on: {}",
            text(&o)
        );
    }
}
