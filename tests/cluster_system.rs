//! Cluster tests of the system modules (`package`/`apt`, `service`) on real
//! hosts over SSH (`tests/hosts/cluster.sh`, cluster `dtp`), installing from
//! the local apt repository the cluster script serves. Results are checked
//! with `docker exec` (dpkg, a TCP connect to memcached). Needs Docker and
//! root; fails (never skips) without them.

#[path = "support/playbook.rs"]
mod support;
use support::{cluster, drover, recap, sh, text};

use std::path::Path;
use std::process::Output;

const HOSTS: [&str; 2] = ["dtp1", "dtp2"];

fn docker_exec(c: &str, cmd: &[&str]) -> Output {
    let mut a = vec!["exec", c];
    a.extend(cmd);
    sh("docker", &a)
}

fn play(dir: &Path, name: &str, tasks: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, format!("- hosts: testhosts\n  tasks:\n{tasks}")).unwrap();
    p.display().to_string()
}

/// Run a playbook; assert its exit code and every host's `changed` count.
fn run(pb: &str, inv: &str, extra: &[&str], code: i32, changed: u64) -> Output {
    let mut a = vec!["run", pb, "-i", inv, "--json"];
    a.extend(extra);
    let o = drover(&a);
    assert_eq!(o.status.code(), Some(code), "{}", text(&o));
    let r = recap(&o);
    for h in HOSTS {
        assert_eq!(r[h]["changed"], changed, "{h}: {}", text(&o));
    }
    o
}

fn installed(h: &str, pkg: &str) -> bool {
    text(&docker_exec(h, &["dpkg", "-s", pkg])).contains("Status: install ok installed")
}

fn port_answers(h: &str) -> bool {
    docker_exec(h, &["bash", "-c", "echo > /dev/tcp/127.0.0.1/11211"])
        .status
        .success()
}

#[test]
fn apt_and_service_on_real_hosts() {
    let st = cluster("dtp", 2);
    let inv = st.join("inventory.ini").display().to_string();
    let dir = tempfile::tempdir().unwrap();

    // The hosts start without package lists.
    let cache = play(dir.path(), "cache.yml", "    - apt: {update_cache: yes}\n");
    run(&cache, &inv, &[], 0, 1);

    // Check mode predicts the install (with versions) and touches nothing.
    let install = play(
        dir.path(),
        "install.yml",
        "    - apt: {name: memcached, state: present}\n",
    );
    // dpkg's view and apt's logs (its simulation used to write eipp.log.xz).
    let state = |h: &str| {
        text(&docker_exec(
            h,
            &["sh", "-c", "dpkg -l; ls -la --full-time /var/log/apt"],
        ))
    };
    let before: Vec<_> = HOSTS.iter().map(|h| state(h)).collect();
    let o = run(&install, &inv, &["--check", "-v"], 0, 1);
    let out = text(&o);
    assert!(
        out.contains("install ") && out.contains("memcached ("),
        "{out}"
    );
    for (h, b) in HOSTS.iter().zip(&before) {
        assert_eq!(&state(h), b, "{h}: dpkg or /var/log/apt changed");
        assert!(!installed(h, "memcached"));
    }

    // The real run installs it; the second changes nothing.
    run(&install, &inv, &[], 0, 1);
    for h in HOSTS {
        assert!(installed(h, "memcached"), "{h}");
    }
    run(&install, &inv, &[], 0, 0);

    // Service: started answers on 11211, stopped refuses; both idempotent.
    let started = play(
        dir.path(),
        "started.yml",
        "    - service: {name: memcached, state: started}\n",
    );
    let stopped = play(
        dir.path(),
        "stopped.yml",
        "    - service: {name: memcached, state: stopped}\n",
    );
    // The package's postinst started it (the hosts' policy-rc.d allows it).
    run(&started, &inv, &[], 0, 0);
    run(&stopped, &inv, &[], 0, 1);
    for h in HOSTS {
        assert!(!port_answers(h), "{h}: memcached still answers");
    }
    run(&stopped, &inv, &[], 0, 0);
    run(&started, &inv, &[], 0, 1);
    for h in HOSTS {
        assert!(port_answers(h), "{h}: memcached does not answer");
    }

    // An unknown package fails on its host only; the other host goes on.
    let unknown = play(
        dir.path(),
        "unknown.yml",
        "    - apt: {name: nosuchpkg-drover}\n      when: (eq inventory_hostname \"dtp1\")\n    - command: touch /tmp/went-on\n",
    );
    let o = drover(&["run", &unknown, "-i", &inv, "--json"]);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("nosuchpkg-drover"), "{}", text(&o));
    let r = recap(&o);
    assert_eq!(r["dtp1"]["failed"], 1, "{}", text(&o));
    assert_eq!(r["dtp2"]["failed"], 0, "{}", text(&o));
    assert!(!docker_exec("dtp1", &["test", "-e", "/tmp/went-on"])
        .status
        .success());
    assert!(docker_exec("dtp2", &["test", "-e", "/tmp/went-on"])
        .status
        .success());

    // Removal.
    let absent = play(
        dir.path(),
        "absent.yml",
        "    - apt: {name: memcached, state: absent}\n",
    );
    run(&absent, &inv, &[], 0, 1);
    for h in HOSTS {
        assert!(!installed(h, "memcached"), "{h}");
    }
    run(&absent, &inv, &[], 0, 0);
    let _ = sh("bash", &["tests/hosts/cluster.sh", "down", "--name", "dtp"]);
}
