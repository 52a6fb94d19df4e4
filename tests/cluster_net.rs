//! Cluster tests of the network modules (`firewall` on nftables,
//! `synchronize` with rsync) on real hosts over SSH (`tests/hosts/cluster.sh`,
//! cluster `dtn`, 3 containers). Results are checked independently: TCP
//! connects from one container to another (`docker exec dtn3 …`), `nft list
//! ruleset`, file listings and checksums. Needs Docker and root; fails (never
//! skips) without them.

#[path = "support/playbook.rs"]
mod support;
use support::{cluster, drover, recap, sh, text};

use std::path::Path;
use std::process::{Command, Output};

fn dx(c: &str, cmd: &[&str]) -> Output {
    let mut a = vec!["exec", c];
    a.extend(cmd);
    sh("docker", &a)
}

fn dsh(c: &str, script: &str) -> String {
    let o = dx(c, &["sh", "-c", script]);
    assert!(o.status.success(), "{c}: `{script}`: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every change summary the run reported, in order.
fn changes(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("changes").and_then(|c| c.as_array()).cloned())
        .flatten()
        .filter_map(|c| c.as_str().map(String::from))
        .collect()
}

fn play(dir: &Path, name: &str, hosts: &str, tasks: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, format!("- hosts: {hosts}\n  tasks:\n{tasks}")).unwrap();
    p.display().to_string()
}

/// Run a playbook; assert its exit code and the `changed` count of `hosts`.
fn run(pb: &str, inv: &str, extra: &[&str], code: i32, hosts: &[(&str, u64)]) -> Output {
    let mut a = vec!["run", pb, "-i", inv, "--json"];
    a.extend(extra);
    let o = drover(&a);
    assert_eq!(o.status.code(), Some(code), "{}", text(&o));
    let r = recap(&o);
    for (h, changed) in hosts {
        assert_eq!(r[*h]["changed"], *changed, "{h}: {}", text(&o));
    }
    o
}

/// A TCP connect from container `from` to `to:port` (2 s bound).
fn connects(from: &str, to: &str, port: u16) -> bool {
    dx(
        from,
        &[
            "timeout",
            "2",
            "bash",
            "-c",
            &format!("echo > /dev/tcp/{to}/{port}"),
        ],
    )
    .status
    .success()
}

fn ruleset(h: &str) -> String {
    dsh(h, "nft list ruleset")
}

fn firewall(dir: &Path, inv: &str, addr: &dyn Fn(&str) -> String) {
    // Listeners on dtn1 (the firewall's host): 11211 guarded, 8080 open.
    for port in ["11211", "8080"] {
        let o = sh(
            "docker",
            &["exec", "-d", "dtn1", "python3", "-m", "http.server", port],
        );
        assert!(o.status.success(), "{}", text(&o));
    }
    // A foreign table drover must never touch.
    dsh(
        "dtn1",
        "nft add table inet mine && nft add chain inet mine c '{ type filter hook input priority 10; }' && nft add rule inet mine c tcp dport 9999 drop",
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    for from in ["dtn2", "dtn3"] {
        assert!(connects(from, "dtn1", 11211), "{from}: no listener");
    }
    let fw = play(
        dir,
        "fw.yml",
        "dtn1",
        &format!(
            "    - firewall: {{name: memcached, port: 11211, sources: [\"{}\"]}}\n    - firewall: {{name: web, port: [8080], proto: tcp}}\n",
            addr("dtn2")
        ),
    );
    // Check: predicts the chains and rules, creates nothing.
    let before = ruleset("dtn1");
    let o = run(&fw, inv, &["--check", "--diff"], 0, &[("dtn1", 2)]);
    let c = changes(&o);
    let want_rule = format!(
        "add rule inet drover memcached: ip saddr {{ {} }} tcp dport {{ 11211 }} accept",
        addr("dtn2")
    );
    assert!(c.contains(&want_rule), "{c:?}");
    assert!(
        c.contains(
            &"add rule inet drover memcached: tcp dport { 11211 } reject with tcp reset"
                .to_string()
        ),
        "{c:?}"
    );
    assert!(
        c.contains(&"add chain inet drover web".to_string()),
        "{c:?}"
    );
    let diffs: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("diffs").and_then(|d| d.as_array()).cloned())
        .flatten()
        .collect();
    let d = diffs
        .iter()
        .find(|d| d["label"] == "table inet drover chain memcached")
        .unwrap_or_else(|| panic!("no diff for the chain: {diffs:?}"));
    assert_eq!(d["before"], "", "{d}");
    assert!(
        d["after"]
            .as_str()
            .unwrap_or("")
            .contains("reject with tcp reset"),
        "{d}"
    );
    assert_eq!(ruleset("dtn1"), before, "check mode changed the ruleset");
    assert!(!before.contains("table inet drover"));
    assert!(connects("dtn3", "dtn1", 11211));

    // Real run: dtn2 (allowed) connects, dtn3 is refused; 8080 stays open.
    run(&fw, inv, &[], 0, &[("dtn1", 2)]);
    assert!(connects("dtn2", "dtn1", 11211), "allowed host refused");
    assert!(!connects("dtn3", "dtn1", 11211), "outside host got through");
    assert!(connects("dtn3", "dtn1", 8080), "open port closed");
    assert!(
        dx("dtn1", &["bash", "-c", "echo > /dev/tcp/127.0.0.1/11211"])
            .status
            .success()
    );
    let after = ruleset("dtn1");
    assert!(after.contains("table inet mine") && after.contains("tcp dport 9999 drop"));
    assert!(after.contains("table ip nat"), "docker's table is gone");
    run(&fw, inv, &[], 0, &[("dtn1", 0)]);
    assert_eq!(ruleset("dtn1"), after);

    // Moving the allowed host: only the memcached chain is rewritten.
    let moved = play(
        dir,
        "moved.yml",
        "dtn1",
        &format!(
            "    - firewall: {{name: memcached, port: 11211, sources: [\"{}/32\"], deny: drop}}\n",
            addr("dtn3")
        ),
    );
    run(&moved, inv, &[], 0, &[("dtn1", 1)]);
    assert!(connects("dtn3", "dtn1", 11211));
    assert!(!connects("dtn2", "dtn1", 11211), "dropped host got through");
    run(&moved, inv, &[], 0, &[("dtn1", 0)]);

    // Persist: the chain's script is installed and reproduces the chain.
    let persist = play(
        dir,
        "persist.yml",
        "dtn1",
        "    - firewall: {name: web, port: 8080, persist: yes}\n",
    );
    run(&persist, inv, &[], 0, &[("dtn1", 1)]);
    run(&persist, inv, &[], 0, &[("dtn1", 0)]);
    let conf = dsh("dtn1", "cat /etc/nftables.conf");
    assert!(conf.contains("include \"/etc/nftables.d/*.nft\""), "{conf}");
    let r0 = ruleset("dtn1");
    dsh("dtn1", "nft -f /etc/nftables.d/drover-web.nft");
    assert_eq!(ruleset("dtn1"), r0, "persisted script is not idempotent");
    dsh("dtn1", "nft -c -f /etc/nftables.conf");

    // Absent: one chain, then the whole table; foreign tables survive.
    let absent = play(
        dir,
        "absent.yml",
        "dtn1",
        "    - firewall: {name: memcached, state: absent}\n",
    );
    run(&absent, inv, &["--check"], 0, &[("dtn1", 1)]);
    assert!(!connects("dtn2", "dtn1", 11211));
    run(&absent, inv, &[], 0, &[("dtn1", 1)]);
    assert!(connects("dtn2", "dtn1", 11211));
    assert!(ruleset("dtn1").contains("chain web"));
    run(&absent, inv, &[], 0, &[("dtn1", 0)]);
    let all = play(dir, "all.yml", "dtn1", "    - firewall: {state: absent}\n");
    run(&all, inv, &[], 0, &[("dtn1", 1)]);
    let end = ruleset("dtn1");
    assert!(!end.contains("table inet drover"), "{end}");
    assert!(
        end.contains("table inet mine") && end.contains("table ip nat"),
        "{end}"
    );
    run(&all, inv, &[], 0, &[("dtn1", 0)]);

    // Bad input names task, host and value; the other hosts go on.
    let bad = play(
        dir,
        "bad.yml",
        "testhosts",
        "    - name: guard\n      firewall: {port: 11211, sources: \"{{#if (eq inventory_hostname \\\"dtn2\\\")}}nohost{{else}}10.0.0.1{{/if}}\"}\n",
    );
    let o = drover(&["run", &bad, "-i", inv, "--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("nohost") && out.contains("guard"), "{out}");
    let r = recap(&o);
    assert_eq!(r["dtn2"]["failed"], 1, "{out}");
    assert_eq!(r["dtn1"]["changed"], 1, "{out}");
    assert_eq!(r["dtn3"]["changed"], 1, "{out}");
    let clean = play(
        dir,
        "clean.yml",
        "testhosts",
        "    - firewall: {state: absent}\n",
    );
    run(
        &clean,
        inv,
        &[],
        0,
        &[("dtn1", 1), ("dtn2", 0), ("dtn3", 1)],
    );
}

/// dtn3 without nft: the iptables backend, checked the same way.
fn firewall_iptables(dir: &Path, inv: &str, addr: &dyn Fn(&str) -> String) {
    let rm = play(
        dir,
        "rm-nft.yml",
        "dtn3",
        "    - apt: {name: nftables, state: absent}\n",
    );
    run(&rm, inv, &[], 0, &[("dtn3", 1)]);
    assert!(!dx("dtn3", &["sh", "-c", "command -v nft"]).status.success());
    let o = sh(
        "docker",
        &[
            "exec",
            "-d",
            "dtn3",
            "python3",
            "-m",
            "http.server",
            "11211",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    dsh(
        "dtn3",
        "iptables -N MINE && iptables -A MINE -p tcp --dport 9999 -j DROP && iptables -A INPUT -j MINE",
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    let fw = play(
        dir,
        "fw-ipt.yml",
        "dtn3",
        &format!(
            "    - firewall: {{name: mc, port: 11211, sources: [\"{}\"]}}\n",
            addr("dtn2")
        ),
    );
    let save = || dsh("dtn3", "iptables -S");
    let before = save();
    let o = run(&fw, inv, &["--check"], 0, &[("dtn3", 1)]);
    let c = changes(&o);
    let allow = format!(
        "add rule -A DROVER-mc -s {}/32 -p tcp -m multiport --dports 11211 -j ACCEPT",
        addr("dtn2")
    );
    assert!(c.contains(&allow), "{c:?}");
    assert_eq!(save(), before, "check mode changed iptables");
    assert!(connects("dtn1", "dtn3", 11211));
    run(&fw, inv, &[], 0, &[("dtn3", 1)]);
    assert!(connects("dtn2", "dtn3", 11211), "allowed host refused");
    assert!(!connects("dtn1", "dtn3", 11211), "outside host got through");
    run(&fw, inv, &[], 0, &[("dtn3", 0)]);
    let absent = play(
        dir,
        "absent-ipt.yml",
        "dtn3",
        "    - firewall: {name: mc, state: absent}\n",
    );
    run(&absent, inv, &[], 0, &[("dtn3", 1)]);
    assert!(connects("dtn1", "dtn3", 11211));
    assert_eq!(save(), before, "iptables not back as it was");
    assert!(
        before.contains("-A MINE -p tcp -m tcp --dport 9999 -j DROP"),
        "{before}"
    );
    run(&absent, inv, &[], 0, &[("dtn3", 0)]);
}

fn tree(h: &str, dir: &str) -> String {
    dsh(
        h,
        &format!("cd {dir} && find . -type f | sort | xargs -r sha256sum"),
    )
}

fn synchronize(dir: &Path, inv: &str, addr: &dyn Fn(&str) -> String) {
    let src = dir.join("site");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("index.html"), "<h1>drover</h1>\n").unwrap();
    std::fs::write(src.join("sub/app.js"), "let x = 1;\n").unwrap();
    let push = play(
        dir,
        "push.yml",
        "dtn1:dtn2",
        &format!(
            "    - synchronize: {{src: \"{}/\", dest: /srv/site/, delete: yes}}\n",
            src.display()
        ),
    );
    // Check lists exactly the files and creates nothing.
    let o = run(&push, inv, &["--check"], 0, &[("dtn1", 1), ("dtn2", 1)]);
    let c = changes(&o);
    for f in ["create file index.html", "create file sub/app.js"] {
        assert_eq!(
            c.iter().filter(|x| x.starts_with(f)).count(),
            2,
            "{f}: {c:?}"
        );
    }
    assert!(!dx("dtn1", &["test", "-e", "/srv/site"]).status.success());
    run(&push, inv, &[], 0, &[("dtn1", 1), ("dtn2", 1)]);
    let local = String::from_utf8_lossy(
        &Command::new("sh")
            .args(["-c", "find . -type f | sort | xargs -r sha256sum"])
            .current_dir(&src)
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(local.contains("index.html"), "{local}");
    for h in ["dtn1", "dtn2"] {
        assert_eq!(tree(h, "/srv/site"), local, "{h}");
    }
    run(&push, inv, &[], 0, &[("dtn1", 0), ("dtn2", 0)]);

    // delete: an extra file on the host is listed by --check, kept by it,
    // and removed by the real run; a changed local file is updated.
    dsh("dtn1", "echo stray > /srv/site/extra.txt");
    std::fs::write(src.join("index.html"), "<h1>drover 2</h1>\n").unwrap();
    let o = run(&push, inv, &["--check"], 0, &[("dtn1", 1), ("dtn2", 1)]);
    let c = changes(&o);
    assert!(c.contains(&"delete extra.txt".to_string()), "{c:?}");
    assert!(
        c.iter().any(|x| x.starts_with("update file index.html")),
        "{c:?}"
    );
    assert!(dx("dtn1", &["test", "-e", "/srv/site/extra.txt"])
        .status
        .success());
    run(&push, inv, &[], 0, &[("dtn1", 1), ("dtn2", 1)]);
    assert!(!dx("dtn1", &["test", "-e", "/srv/site/extra.txt"])
        .status
        .success());
    assert!(dsh("dtn2", "cat /srv/site/index.html").contains("drover 2"));
    run(&push, inv, &[], 0, &[("dtn1", 0), ("dtn2", 0)]);

    // Between hosts: an rsync daemon on dtn2 (module [www], only dtn3
    // allowed), pulled by dtn3; written and started by drover itself.
    let daemon = play(
        dir,
        "daemon.yml",
        "dtn2",
        &format!(
            "    - copy:\n        dest: /etc/rsyncd.conf\n        content: \"[www]\\n  path = /srv/site\\n  read only = yes\\n  uid = root\\n  gid = root\\n  use chroot = yes\\n  hosts allow = {}\\n\"\n    - command: rsync --daemon\n",
            addr("dtn3")
        ),
    );
    run(&daemon, inv, &[], 0, &[("dtn2", 2)]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pull = play(
        dir,
        "pull.yml",
        "dtn3:dtn1",
        "    - synchronize: {src_host: dtn2, src: www/, dest: /srv/mirror/, delete: yes}\n",
    );
    let o = drover(&["run", &pull, "-i", inv, "--json", "--check"]);
    let r = recap(&o);
    assert_eq!(r["dtn3"]["changed"], 1, "{}", text(&o));
    assert_eq!(r["dtn1"]["failed"], 1, "dtn1 is not allowed: {}", text(&o));
    assert!(text(&o).contains("access denied"), "{}", text(&o));
    assert!(!dx("dtn3", &["test", "-e", "/srv/mirror"]).status.success());
    let pull = play(
        dir,
        "pull.yml",
        "dtn3",
        "    - synchronize: {src_host: dtn2, src: www/, dest: /srv/mirror/, delete: yes}\n",
    );
    run(&pull, inv, &[], 0, &[("dtn3", 1)]);
    assert_eq!(tree("dtn3", "/srv/mirror"), tree("dtn2", "/srv/site"));
    run(&pull, inv, &[], 0, &[("dtn3", 0)]);
    dsh(
        "dtn2",
        "echo new > /srv/site/new.txt && rm /srv/site/sub/app.js",
    );
    let o = run(&pull, inv, &[], 0, &[("dtn3", 1)]);
    let c = changes(&o);
    assert!(c.contains(&"delete sub/app.js".to_string()), "{c:?}");
    assert!(
        c.iter().any(|x| x.starts_with("create file new.txt")),
        "{c:?}"
    );
    assert_eq!(tree("dtn3", "/srv/mirror"), tree("dtn2", "/srv/site"));
    run(&pull, inv, &[], 0, &[("dtn3", 0)]);
}

#[test]
fn firewall_and_synchronize_on_real_hosts() {
    let st = cluster("dtn", 3);
    let inv = st.join("inventory.ini").display().to_string();
    let hosts = std::fs::read_to_string(st.join("hosts")).unwrap();
    let addr = move |h: &str| -> String {
        hosts
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{h} ")))
            .unwrap_or_else(|| panic!("no {h} in hosts"))
            .trim()
            .to_string()
    };
    let dir = tempfile::tempdir().unwrap();
    let pkgs = play(
        dir.path(),
        "pkgs.yml",
        "testhosts",
        "    - apt: {name: [nftables, iptables, rsync], update_cache: yes}\n",
    );
    run(&pkgs, &inv, &[], 0, &[]);
    firewall(dir.path(), &inv, &addr);
    firewall_iptables(dir.path(), &inv, &addr);
    synchronize(dir.path(), &inv, &addr);
    let _ = sh("bash", &["tests/hosts/cluster.sh", "down", "--name", "dtn"]);
}
