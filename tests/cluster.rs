//! Cluster tests: drover over real SSH (russh) to real sshd in Docker test
//! hosts (`tests/hosts/cluster.sh`). Checks are made with `docker exec`, not
//! with drover's own facts. These tests need Docker and root; they fail (never
//! skip) when either is missing.

#[path = "support/playbook.rs"]
mod support;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{cluster, drover, recap, root, sh, text, write};

fn docker_exec(c: &str, cmd: &[&str]) -> String {
    let mut a = vec!["exec", c];
    a.extend(cmd);
    let o = sh("docker", &a);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const PLAY: &str = r#"
- hosts: testhosts
  tasks:
    - name: directory
      file: {path: /srv/drover, state: directory, mode: "0750"}
    - name: per-host file
      copy:
        dest: /srv/drover/host.txt
        content: "{{ inventory_hostname }} {{ ansible_default_ipv4.address }}\n"
    - name: config line
      lineinfile: {path: /srv/drover/app.conf, line: "managed=yes", create: true}
    - name: made once
      command: touch /srv/drover/stamp
      args: {creates: /srv/drover/stamp}
    - name: an /etc/hosts entry (a bind mount in containers, written in place)
      lineinfile: {path: /etc/hosts, line: "10.9.9.9 drover-test-entry"}
"#;

#[test]
fn playbook_over_ssh_as_root_lands_on_each_host_and_is_idempotent() {
    let st = cluster("dtr", 3);
    let dir = tempfile::tempdir().unwrap();
    let pb = write(dir.path(), "pb.yml", PLAY);
    let inv = st.join("inventory.ini").display().to_string();
    let o = drover(&["run", &pb, "-i", &inv, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = recap(&o);
    for i in 1..=3 {
        let h = format!("dtr{i}");
        assert_eq!(r[&h]["changed"], 5, "{}", text(&o));
        assert!(docker_exec(&h, &["cat", "/etc/hosts"]).contains("10.9.9.9 drover-test-entry"));
        let content = docker_exec(&h, &["cat", "/srv/drover/host.txt"]);
        assert!(content.starts_with(&format!("{h} 10.")), "{h}: {content}");
        assert_eq!(
            docker_exec(&h, &["stat", "-c", "%a", "/srv/drover"]).trim(),
            "750"
        );
    }
    let o = drover(&["run", &pb, "-i", &inv, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for (h, v) in recap(&o).as_object().unwrap() {
        assert_eq!(v["changed"], 0, "{h}: {}", text(&o));
    }
}

const SUDO_PLAY: &str = r#"
- hosts: testhosts
  become: true
  tasks:
    - name: root-owned file through sudo
      copy: {dest: /root/by-sudo, content: "hello\n", mode: "0600"}
    - name: who am i
      command: id -un
      register: who
      changed_when: false
    - assert:
        that: (eq who.stdout "root")
"#;

#[test]
fn become_through_sudo_with_and_without_password() {
    let st = cluster("dts", 2);
    let dir = tempfile::tempdir().unwrap();
    let pb = write(dir.path(), "pb.yml", SUDO_PLAY);
    for inv in ["inventory-sudo.ini", "inventory-sudo-pw.ini"] {
        let inv = st.join(inv).display().to_string();
        let o = drover(&["run", &pb, "-i", &inv, "--json"]);
        assert_eq!(o.status.code(), Some(0), "{inv}: {}", text(&o));
        for i in 1..=2 {
            let h = format!("dts{i}");
            assert_eq!(
                docker_exec(&h, &["stat", "-c", "%U %a", "/root/by-sudo"]).trim(),
                "root 600"
            );
        }
        docker_exec("dts1", &["rm", "-f", "/root/by-sudo"]);
        docker_exec("dts2", &["rm", "-f", "/root/by-sudo"]);
    }
}

#[test]
fn wrong_sudo_password_fails_in_time_and_never_shows_the_password() {
    let st = cluster("dts", 2);
    let dir = tempfile::tempdir().unwrap();
    let pb = write(dir.path(), "pb.yml", SUDO_PLAY);
    let canary = "CanaryPw-7f3a9";
    let inv = std::fs::read_to_string(st.join("inventory-sudo-pw.ini")).unwrap();
    let inv: String = inv
        .lines()
        .map(|l| match l.find("ansible_become_password=") {
            Some(i) => format!("{}ansible_become_password={canary}", &l[..i]),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let inv = write(dir.path(), "inv.ini", &inv);
    let t = Instant::now();
    let o = drover(&["run", &pb, "-i", &inv, "-vv", "--diff"]);
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "took {:?}",
        t.elapsed()
    );
    assert!(matches!(o.status.code(), Some(2) | Some(4)), "{}", text(&o));
    assert!(!text(&o).contains(canary), "password leaked: {}", text(&o));
    let o = drover(&["run", &pb, "-i", &inv, "--json"]);
    assert!(
        !text(&o).contains(canary),
        "password leaked in JSON: {}",
        text(&o)
    );
}

fn inventory_with_known_hosts(st: &Path, dir: &Path, kh: &Path) -> String {
    let inv = std::fs::read_to_string(st.join("inventory.ini")).unwrap();
    let inv: String = inv
        .lines()
        .filter(|l| {
            !l.starts_with("drover_known_hosts=") && !l.starts_with("ansible_ssh_common_args")
        })
        .map(|l| l.to_string())
        .chain([format!("[all:vars]\ndrover_known_hosts={}", kh.display())])
        .collect::<Vec<_>>()
        .join("\n");
    write(dir, "inv.ini", &inv)
}

#[test]
fn host_keys_strict_accept_new_and_changed() {
    let st = cluster("dtk", 3);
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, "").unwrap();
    let inv = inventory_with_known_hosts(&st, dir.path(), &kh);
    let pb = write(
        dir.path(),
        "pb.yml",
        "- hosts: testhosts\n  gather_facts: false\n  tasks:\n    - command: hostname\n",
    );
    // Strict (the default): unknown hosts are refused and nothing is written.
    let o = drover(&["run", &pb, "-i", &inv, "--json"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(&kh).unwrap(),
        "",
        "strict mode wrote known_hosts"
    );
    // accept-new learns each host once, in parallel, as well-formed lines.
    let o = drover(&[
        "run",
        &pb,
        "-i",
        &inv,
        "--host-key-checking",
        "accept-new",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let learned = std::fs::read_to_string(&kh).unwrap();
    assert_eq!(learned.lines().count(), 3, "{learned}");
    let check = sh("ssh-keygen", &["-l", "-f", &kh.display().to_string()]);
    assert!(
        check.status.success(),
        "known_hosts not well-formed: {}",
        text(&check)
    );
    let o = drover(&["run", &pb, "-i", &inv, "--host-key-checking", "accept-new"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(&kh).unwrap(),
        learned,
        "a known host was learned twice"
    );
    // A changed key is fatal for that host, with both fingerprints.
    let other = dir.path().join("otherkey");
    let g = sh(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            &other.display().to_string(),
        ],
    );
    assert!(g.status.success());
    let pubkey = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let mut lines: Vec<String> = learned.lines().map(String::from).collect();
    let mut f = lines[0].split_whitespace();
    let host = f.next().unwrap().to_string();
    let mut k = pubkey.split_whitespace();
    lines[0] = format!("{host} {} {}", k.next().unwrap(), k.next().unwrap());
    std::fs::write(&kh, lines.join("\n") + "\n").unwrap();
    let o = drover(&["run", &pb, "-i", &inv, "--host-key-checking", "accept-new"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.matches("SHA256:").count() >= 2,
        "both fingerprints expected: {t}"
    );
}

const SLOW_PLAY: &str = r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - name: first
      command: "true"
    - name: wait
      command: sleep 3
    - name: last
      command: touch /tmp/last
"#;

#[test]
fn faults_paused_host_unreachable_killed_host_reported() {
    let st = cluster("dtf", 3);
    let dir = tempfile::tempdir().unwrap();
    let inv = st.join("inventory.ini").display().to_string();
    let quick = write(
        dir.path(),
        "quick.yml",
        "- hosts: testhosts\n  gather_facts: false\n  tasks:\n    - command: \"true\"\n",
    );
    // A paused (hung) host becomes UNREACHABLE within the connect timeout; the others finish.
    let p = sh("bash", &["tests/hosts/fault.sh", "pause", "dtf2"]);
    assert!(p.status.success(), "{}", text(&p));
    let t = Instant::now();
    let o = drover(&["run", &quick, "-i", &inv, "--timeout", "3", "--json"]);
    let took = t.elapsed();
    let _ = sh("bash", &["tests/hosts/fault.sh", "unpause", "dtf2"]);
    assert!(took < Duration::from_secs(3 + 5), "took {took:?}");
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let r = recap(&o);
    assert_eq!(r["dtf2"]["unreachable"], 1, "{}", text(&o));
    assert_eq!(r["dtf1"]["ok"], 1, "{}", text(&o));
    assert_eq!(r["dtf3"]["ok"], 1, "{}", text(&o));
    // sshd restarted by a task: later tasks still run.
    let restart = write(
        dir.path(),
        "restart.yml",
        "- hosts: testhosts\n  gather_facts: false\n  tasks:\n    - command: service ssh restart\n    - command: hostname\n      changed_when: false\n",
    );
    let o = drover(&["run", &restart, "-i", &inv, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // A host killed mid-play: its remaining tasks are reported, the others finish, exit 4.
    let slow = write(dir.path(), "slow.yml", SLOW_PLAY);
    let child = Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["run", &slow, "-i", &inv, "--timeout", "3", "--json"])
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let k = sh("bash", &["tests/hosts/fault.sh", "kill", "dtf3"]);
    assert!(k.status.success(), "{}", text(&k));
    let o = child.wait_with_output().unwrap();
    let _ = sh("bash", &["tests/hosts/fault.sh", "start", "dtf3"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let r = recap(&o);
    assert_eq!(r["dtf1"]["failed"], 0, "{}", text(&o));
    assert!(docker_exec("dtf1", &["ls", "/tmp/last"]).contains("/tmp/last"));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines()
            .any(|l| l.contains("\"host\":\"dtf3\"") && l.contains("\"task\":\"last\"")),
        "dtf3's remaining task not reported: {out}"
    );
}
