//! Cluster tests of the account modules (`group`, `user`, `authorized_key`,
//! `cron`) on real hosts over SSH (`tests/hosts/cluster.sh`, cluster `dtu`).
//! Results are checked with `docker exec`; a key installed by
//! `authorized_key` must really log the new user in. Needs Docker and root;
//! fails (never skips) without them.

#[path = "support/playbook.rs"]
mod support;
use support::{cluster, drover, recap, sh, text, write};

use std::process::Command;

const HOSTS: [&str; 2] = ["dtu1", "dtu2"];

fn docker_exec(c: &str, cmd: &[&str]) -> String {
    let mut a = vec!["exec", c];
    a.extend(cmd);
    let o = sh("docker", &a);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Run a playbook; it must succeed and change `changed` tasks on every host.
fn run_expect(pb: &str, inv: &str, extra: &[&str], changed: u64) {
    let mut a = vec!["run", pb, "-i", inv, "--json"];
    a.extend(extra);
    let o = drover(&a);
    assert_eq!(o.status.code(), Some(0), "{extra:?}: {}", text(&o));
    let r = recap(&o);
    for h in HOSTS {
        assert_eq!(r[h]["changed"], changed, "{h} {extra:?}: {}", text(&o));
    }
}

const ACCOUNTS: &str = r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - group: {name: drvdevs, gid: 2500}
    - user:
        name: alice
        uid: 2501
        group: drvdevs
        groups: [users]
        shell: /bin/bash
        comment: Alice Test
        password: "*"
"#;

const APT: &str = r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - shell: apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y cron
      args: {creates: /usr/bin/crontab}
"#;

const KEYS_AND_CRON: &str = r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - authorized_key: {user: alice, key: "PUBKEY"}
    - cron: {name: drover-test, job: /bin/true, minute: "17", hour: "3", user: alice}
    - cron: {name: drover-file, job: /bin/date, minute: "*/5", user: alice, cron_file: drover-acct}
"#;

const WHOAMI: &str = r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - command: id -un
      register: who
      changed_when: false
    - assert:
        that: (eq who.stdout "alice")
"#;

const REMOVE: &str = r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - cron: {name: drover-test, user: alice, state: absent}
    - cron: {name: drover-file, user: alice, cron_file: drover-acct, state: absent}
    - authorized_key: {user: alice, key: "PUBKEY", state: absent}
"#;

const REMOVE_ACCOUNTS: &str = r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - user: {name: alice, state: absent, remove: yes}
    - group: {name: drvdevs, state: absent}
"#;

#[test]
fn users_groups_keys_and_cron_on_real_hosts() {
    let st = cluster("dtu", 2);
    for h in HOSTS {
        docker_exec(h, &["userdel", "-r", "alice"]);
        docker_exec(h, &["groupdel", "drvdevs"]);
        docker_exec(h, &["rm", "-f", "/etc/cron.d/drover-acct"]);
    }
    let dir = tempfile::tempdir().unwrap();
    let inv = st.join("inventory.ini").display().to_string();

    // group + user: check predicts, changes nothing; run; rerun is a no-op.
    let pb = write(dir.path(), "accounts.yml", ACCOUNTS);
    run_expect(&pb, &inv, &["--check"], 2);
    for h in HOSTS {
        assert_eq!(docker_exec(h, &["getent", "passwd", "alice"]), "", "{h}");
    }
    run_expect(&pb, &inv, &[], 2);
    for h in HOSTS {
        assert_eq!(
            docker_exec(h, &["getent", "passwd", "alice"]).trim(),
            "alice:x:2501:2500:Alice Test:/home/alice:/bin/bash"
        );
        assert_eq!(
            docker_exec(h, &["id", "-Gn", "alice"]).trim(),
            "drvdevs users"
        );
    }
    run_expect(&pb, &inv, &[], 0);

    // cron needs the package; install it through drover.
    let apt = write(dir.path(), "apt.yml", APT);
    let o = drover(&["run", &apt, "-i", &inv, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // A fresh key, installed by authorized_key, plus two cron entries.
    let key = dir.path().join("alice_key");
    let o = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "alice@test", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(o.status.success(), "ssh-keygen: {}", text(&o));
    let pubkey = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let body = KEYS_AND_CRON.replace("PUBKEY", pubkey.trim());
    let pb = write(dir.path(), "keys.yml", &body);
    run_expect(&pb, &inv, &["--check"], 3);
    for h in HOSTS {
        assert_eq!(
            docker_exec(h, &["ls", "/home/alice/.ssh", "/etc/cron.d/drover-acct"]),
            ""
        );
    }
    run_expect(&pb, &inv, &[], 3);
    run_expect(&pb, &inv, &[], 0);
    for h in HOSTS {
        assert_eq!(
            docker_exec(
                h,
                &[
                    "stat",
                    "-c",
                    "%U %a",
                    "/home/alice/.ssh",
                    "/home/alice/.ssh/authorized_keys"
                ]
            ),
            "alice 700\nalice 600\n"
        );
        let tab = docker_exec(h, &["crontab", "-l", "-u", "alice"]);
        assert!(
            tab.contains("#Ansible: drover-test\n17 3 * * * /bin/true\n"),
            "{h}: {tab}"
        );
        let f = docker_exec(h, &["cat", "/etc/cron.d/drover-acct"]);
        assert_eq!(f, "#Ansible: drover-file\n*/5 * * * * alice /bin/date\n");
    }

    // The key really logs alice in over SSH.
    let root_inv = std::fs::read_to_string(&inv).unwrap();
    let root_key = st.join("../id_ed25519");
    let root_key = std::fs::canonicalize(root_key).unwrap();
    let alice_inv = root_inv
        .replace("ansible_user=root", "ansible_user=alice")
        .replace(&root_key.display().to_string(), &key.display().to_string());
    assert_ne!(alice_inv, root_inv);
    let alice_inv = write(dir.path(), "alice.ini", &alice_inv);
    let who = write(dir.path(), "who.yml", WHOAMI);
    let o = drover(&["run", &who, "-i", &alice_inv, "--json"]);
    assert_eq!(o.status.code(), Some(0), "login as alice: {}", text(&o));

    // Removal.
    let pb = write(
        dir.path(),
        "remove.yml",
        &REMOVE.replace("PUBKEY", pubkey.trim()),
    );
    run_expect(&pb, &inv, &["--check"], 3);
    run_expect(&pb, &inv, &[], 3);
    run_expect(&pb, &inv, &[], 0);
    for h in HOSTS {
        let tab = docker_exec(h, &["crontab", "-l", "-u", "alice"]);
        assert!(!tab.contains("drover-test"), "{h}: {tab}");
        let keys = docker_exec(h, &["cat", "/home/alice/.ssh/authorized_keys"]);
        assert!(!keys.contains("alice@test"), "{h}: {keys}");
    }
    let pb = write(dir.path(), "remove2.yml", REMOVE_ACCOUNTS);
    run_expect(&pb, &inv, &["--check"], 2);
    run_expect(&pb, &inv, &[], 2);
    for h in HOSTS {
        assert_eq!(docker_exec(h, &["getent", "passwd", "alice"]), "", "{h}");
        assert_eq!(docker_exec(h, &["getent", "group", "drvdevs"]), "", "{h}");
        assert!(!docker_exec(h, &["cat", "/etc/cron.d/drover-acct"]).contains("drover-file"));
    }
    run_expect(&pb, &inv, &[], 0);
}
