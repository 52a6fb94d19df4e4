//! drover's inventory against the real thing: for each fixture under
//! `tests/inventory/`, `Inventory::list_json()` must equal what
//! `ansible-inventory -i FIXTURE --list` prints (as parsed JSON), `graph()`
//! must equal `--graph`, `host_json()` must equal `--host` for a few hosts,
//! and `select()` must list the same hosts in the same order as
//! `ansible -i FIXTURE PATTERN --list-hosts`.
//!
//! ansible-core is found in `$DROVER_ANSIBLE_BIN_DIR`, else `<repo>/.venv/bin`.
//! Without it the tests fail (they are the inventory's oracle).

use drover_engine::inventory::Inventory;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/inventory").join(name)
}

fn ansible_bin(tool: &str) -> PathBuf {
    let dir = std::env::var_os("DROVER_ANSIBLE_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin"));
    let bin = dir.join(tool);
    assert!(
        bin.is_file(),
        "{} not found. These tests compare drover with ansible-core: run \
         `python3 -m venv .venv && .venv/bin/pip install ansible-core` in {} \
         (or point DROVER_ANSIBLE_BIN_DIR at a directory holding {tool})",
        bin.display(),
        repo().display()
    );
    bin
}

/// Run an ansible tool from an empty directory with an empty config (so that
/// neither the caller's cwd nor ~/.ansible.cfg leaks in) and return stdout.
fn run_ansible(tool: &str, args: &[String]) -> String {
    let bin = ansible_bin(tool);
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("ansible.cfg");
    std::fs::write(&cfg, "").unwrap();
    let cwd = tmp.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let out = Command::new(&bin)
        .args(args)
        .current_dir(&cwd)
        .env("ANSIBLE_CONFIG", &cfg)
        .env("ANSIBLE_HOME", tmp.path().join("home"))
        .env("ANSIBLE_LOCAL_TEMP", tmp.path().join("tmp"))
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "true")
        .env("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "true")
        .env("ANSIBLE_NOCOLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `-i` arguments (and `--playbook-dir`) for a case.
fn inventory_args(sources: &[&str], playbook_dir: Option<&str>) -> Vec<String> {
    let mut args = Vec::new();
    for s in sources {
        args.push("-i".to_string());
        args.push(fixture(s).display().to_string());
    }
    if let Some(dir) = playbook_dir {
        args.push("--playbook-dir".into());
        args.push(fixture(dir).display().to_string());
    }
    args
}

fn load(sources: &[&str], playbook_dir: Option<&str>) -> Inventory {
    let paths: Vec<PathBuf> = sources.iter().map(|s| fixture(s)).collect();
    let mut inv =
        Inventory::load(&paths).unwrap_or_else(|e| panic!("drover cannot load {sources:?}: {e}"));
    if let Some(dir) = playbook_dir {
        inv.add_playbook_vars_dir(&fixture(dir)).unwrap();
    }
    inv
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap()
}

/// Compare `--list`, `--graph [group]` and `--host H` for one case.
fn compare(sources: &[&str], playbook_dir: Option<&str>, hosts: &[&str], graph_groups: &[&str]) {
    let inv = load(sources, playbook_dir);
    let base = inventory_args(sources, playbook_dir);

    let mut args = base.clone();
    args.push("--list".into());
    let expected: Value = serde_json::from_str(&run_ansible("ansible-inventory", &args)).unwrap();
    let got = inv.list_json();
    assert_eq!(
        got,
        expected,
        "--list differs for {sources:?}\ndrover:\n{}\nansible:\n{}",
        pretty(&got),
        pretty(&expected)
    );

    for group in graph_groups {
        let mut args = base.clone();
        args.push("--graph".into());
        args.push(group.to_string());
        let expected = run_ansible("ansible-inventory", &args);
        let got = inv.graph(Some(group)).unwrap();
        assert_eq!(
            got.trim_end(),
            expected.trim_end(),
            "--graph {group} differs for {sources:?}"
        );
    }

    for host in hosts {
        let mut args = base.clone();
        args.push("--host".into());
        args.push(host.to_string());
        let mut expected: Value =
            serde_json::from_str(&run_ansible("ansible-inventory", &args)).unwrap();
        // ansible-core gives its implicit localhost its own Python; drover has none.
        if let Some(m) = expected
            .as_object_mut()
            .filter(|_| inv.select(host).is_ok() && !inv.hosts().contains(&host.to_string()))
        {
            m.remove("ansible_python_interpreter");
        }
        let got = inv.host_json(host).unwrap();
        assert_eq!(
            got,
            expected,
            "--host {host} differs for {sources:?}\ndrover:\n{}\nansible:\n{}",
            pretty(&got),
            pretty(&expected)
        );
    }
}

/// `select(pattern)` against `ansible PATTERN --list-hosts`, in the same
/// order except for the patterns in `unordered`: where hosts come from
/// grandchild groups of several parents, ansible-core's order depends on
/// Python set iteration and changes from run to run.
fn compare_patterns(sources: &[&str], patterns: &[&str], unordered: &[&str]) {
    let inv = load(sources, None);
    for pattern in patterns.iter().chain(unordered) {
        let mut args = inventory_args(sources, None);
        args.push(pattern.to_string());
        args.push("--list-hosts".into());
        let out = run_ansible("ansible", &args);
        let mut expected: Vec<String> = out
            .lines()
            .skip(1)
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        let mut got = inv
            .select(pattern)
            .unwrap_or_else(|e| panic!("select({pattern:?}) failed: {e}"));
        if unordered.contains(pattern) {
            got.sort();
            expected.sort();
        }
        assert_eq!(got, expected, "select({pattern:?}) differs for {sources:?}");
    }
}

#[test]
fn ini_fixture_matches_ansible() {
    compare(
        &["ini_ranges.ini"],
        None,
        &["web01", "db-main", "10.0.0.9", "bastion", "app09"],
        &["all", "prod"],
    );
}

#[test]
fn yaml_fixture_matches_ansible() {
    compare(
        &["yaml_inv.yml"],
        None,
        &["web3", "web-canary", "edgea", "jump.example.com", "db1"],
        &["all", "lb"],
    );
}

#[test]
fn directory_fixture_matches_ansible() {
    compare(
        &["dir_inv"],
        None,
        &["web01", "web02", "web03", "db01", "mon01", "edge01"],
        &["all"],
    );
}

#[test]
fn mixed_fixture_with_playbook_vars_matches_ansible() {
    compare(
        &["mixed"],
        None,
        &["be1", "fe1.example.com", "solo", "2001:db8::1", "localhost"],
        &["all", "web"],
    );
    compare(
        &["mixed"],
        Some("playbook_vars"),
        &["be1", "fe1.example.com", "ops1", "localhost"],
        &["all"],
    );
}

#[test]
fn several_sources_match_ansible() {
    compare(
        &["ini_ranges.ini", "yaml_inv.yml", "dir_inv"],
        None,
        &["web01", "web3", "db01"],
        &["all"],
    );
}

#[test]
fn host_patterns_match_ansible() {
    compare_patterns(
        &["ini_ranges.ini"],
        &[
            "web",
            "web*",
            "prod:!web",
            "prod:&app",
            "app,web",
            "staging:prod",
            "db[0]",
            "app[1:3]",
            "app[-1]",
            "app[2:]",
            "~web0[12]",
            "web01,db-main",
            "*.example.com",
            "db?.example.com",
            "localhost",
            "10.0.0.9",
            "ungrouped",
        ],
        &["all", "*", "!db", "all:!app[0]"],
    );
    compare_patterns(
        &["mixed"],
        &[
            "all",
            "web:backend",
            "backend:&frontend",
            "*:!ops",
            "j*",
            "fe[1-2]*",
            "all[1:2]",
        ],
        &[],
    );
}
