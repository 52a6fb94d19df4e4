//! Cluster tests of the host utility modules (`mount`, `wait_for`, `uri`,
//! `slurp`, `fetch`, `known_hosts`, `unarchive`, `archive`, `get_url`) on
//! real hosts over SSH (`tests/hosts/cluster.sh`, cluster `dtm`, 2 hosts).
//! Every result is checked with an independent command (`docker exec`
//! findmnt, sha256sum, tar, ls; the controller's own filesystem for fetch),
//! and `--check` runs are shown to leave the hosts untouched. HTTP traffic
//! goes only to a `python3 -m http.server` on each host's loopback. Needs
//! Docker and root; fails (never skips) without them.

#[path = "support/playbook.rs"]
mod support;
use support::{cluster, drover, recap, sh, text};

use serde_json::Value;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

const HOSTS: [&str; 2] = ["dtm1", "dtm2"];

/// `sh -c SCRIPT` inside a container; stdout.
fn dx(c: &str, script: &str) -> String {
    let o = sh("docker", &["exec", c, "sh", "-c", script]);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn dx_ok(c: &str, script: &str) -> bool {
    sh("docker", &["exec", c, "sh", "-c", script])
        .status
        .success()
}

/// The `task_done` events of a task, by host.
fn results(o: &Output, task: &str) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "task_done" && v["task"] == task)
        .collect()
}

fn result_of(o: &Output, task: &str, host: &str) -> Value {
    results(o, task)
        .into_iter()
        .find(|v| v["host"] == host)
        .unwrap_or_else(|| panic!("no result of `{task}` on {host}: {}", text(o)))
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

/// Everything the state playbook touches on a host, as one string.
fn snapshot(h: &str) -> String {
    dx(
        h,
        "sha256sum /etc/fstab; findmnt -rn -o TARGET,FSTYPE,OPTIONS /mnt/dtm-tmp; \
         for p in /mnt/dtm-tmp /opt/app /opt/app2 /tmp/www.tgz /tmp/dl.txt /root/.ssh/known_hosts_dtm; do \
           if [ -e $p ]; then echo \"$p exists\"; find $p -printf '%p %s %m\\n' | sort; fi; done",
    )
}

const HELLO_SHA256: &str = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";

/// Serve /srv/www on 127.0.0.1:PORT after DELAY seconds, logging requests.
fn serve(h: &str, port: u16, delay: u32) {
    let o = sh(
        "docker",
        &[
            "exec",
            "-d",
            h,
            "sh",
            "-c",
            &format!(
                "sleep {delay}; cd /srv/www && exec python3 -m http.server {port} --bind 127.0.0.1 >/tmp/http-{port}.log 2>&1"
            ),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn utility_modules_on_real_hosts() {
    let st = cluster("dtm", 2);
    let inv = st.join("inventory.ini").display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // curl for uri/get_url comes from the local apt repository.
    let curl = play(
        d,
        "curl.yml",
        "    - apt: {name: curl, update_cache: yes}\n",
    );
    run(&curl, &inv, &[], 0, 1);
    for h in HOSTS {
        assert!(dx_ok(
            h,
            "mkdir -p /srv/www && echo hello > /srv/www/index.txt"
        ));
        serve(h, 8765, 0);
    }

    // A controller-side archive for unarchive.
    std::fs::create_dir_all(d.join("files/src/app")).unwrap();
    std::fs::write(d.join("files/src/app/VERSION"), "1.2.3\n").unwrap();
    std::fs::write(d.join("files/src/app/run.sh"), "#!/bin/sh\necho run\n").unwrap();
    let o = sh(
        "tar",
        &[
            "-czf",
            &d.join("files/app.tgz").display().to_string(),
            "-C",
            &d.join("files/src").display().to_string(),
            "app",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let fetched = d.join("fetched");

    // --- one playbook with every state-changing module ---
    let key =
        "example.test ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFt0c3Rrb3lkcm92ZXJrZXlmb3J0ZXN0aW5nMDAw";
    let state = play(
        d,
        "state.yml",
        &format!(
            "    - name: tmpfs\n      mount: {{path: /mnt/dtm-tmp, src: tmpfs, fstype: tmpfs, opts: size=1m, state: mounted}}\n\
             \x20   - file: {{path: /opt/app, state: directory}}\n\
             \x20   - name: unpack once\n      unarchive: {{src: app.tgz, dest: /opt/app, creates: /opt/app/app/VERSION}}\n\
             \x20   - file: {{path: /opt/app2, state: directory}}\n\
             \x20   - name: unpack compared\n      unarchive: {{src: app.tgz, dest: /opt/app2}}\n\
             \x20   - archive: {{path: [/srv/www], dest: /tmp/www.tgz, format: gz}}\n\
             \x20   - known_hosts: {{path: /root/.ssh/known_hosts_dtm, name: example.test, key: \"{key}\"}}\n\
             \x20   - get_url: {{url: \"http://127.0.0.1:8765/index.txt\", dest: /tmp/dl.txt, checksum: \"sha256:{HELLO_SHA256}\", mode: \"0600\"}}\n\
             \x20   - name: fetch hostname\n      fetch: {{src: /etc/hostname, dest: {}}}\n",
            fetched.display()
        ),
    );
    let fstab_before: Vec<String> = HOSTS.iter().map(|h| dx(h, "cat /etc/fstab")).collect();
    let before: Vec<String> = HOSTS.iter().map(|h| snapshot(h)).collect();
    let o = run(&state, &inv, &["--check", "--diff"], 0, 9);
    assert!(
        text(&o).contains("tmpfs /mnt/dtm-tmp tmpfs size=1m 0 0"),
        "{}",
        text(&o)
    );
    for (h, b) in HOSTS.iter().zip(&before) {
        assert_eq!(&snapshot(h), b, "{h}: --check changed the host");
    }
    assert!(!fetched.exists(), "--check fetched a file");

    run(&state, &inv, &[], 0, 9);
    for (i, h) in HOSTS.iter().enumerate() {
        // mount: a real tmpfs, and its fstab line after the untouched old ones.
        let m = dx(h, "findmnt -rn -o FSTYPE,OPTIONS /mnt/dtm-tmp");
        assert!(
            m.starts_with("tmpfs ") && m.contains("size=1024k"),
            "{h}: {m}"
        );
        let fstab = dx(h, "cat /etc/fstab");
        assert_eq!(
            fstab,
            format!("{}tmpfs /mnt/dtm-tmp tmpfs size=1m 0 0\n", fstab_before[i]),
            "{h}"
        );
        assert_eq!(dx(h, "cat /opt/app/app/VERSION"), "1.2.3\n", "{h}");
        assert_eq!(dx(h, "cat /opt/app2/app/run.sh"), "#!/bin/sh\necho run\n");
        assert_eq!(
            dx(h, "tar -tzf /tmp/www.tgz | sort"),
            "www/\nwww/index.txt\n"
        );
        assert_eq!(dx(h, "cat /root/.ssh/known_hosts_dtm"), format!("{key}\n"));
        assert_eq!(
            dx(h, "cat /tmp/dl.txt; stat -c %a /tmp/dl.txt"),
            "hello\n600\n"
        );
        let f = fetched.join(h).join("etc/hostname");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), format!("{h}\n"));
    }
    let after_first: Vec<String> = HOSTS.iter().map(|h| snapshot(h)).collect();
    let o = run(&state, &inv, &[], 0, 0);
    for (h, a) in HOSTS.iter().zip(&after_first) {
        assert_eq!(&snapshot(h), a, "{h}: the second run changed the host");
    }
    // Register fields as Ansible's.
    let r = &result_of(&o, "fetch hostname", "dtm1")["output"];
    assert_eq!(r["file"], "/etc/hostname", "{r}");
    assert!(r["checksum"].as_str().is_some_and(|c| c.len() == 40), "{r}");
    let r = &result_of(&o, "unpack once", "dtm1")["msg"];
    assert!(r.as_str().unwrap_or("").contains("exists"), "{r}");

    // A changed file on the host is fetched again; the other host is not.
    assert!(dx_ok("dtm1", "echo renamed > /etc/hostname"));
    let fetch = play(
        d,
        "fetch.yml",
        &format!(
            "    - fetch: {{src: /etc/hostname, dest: {}}}\n",
            fetched.display()
        ),
    );
    let o = drover(&["run", &fetch, "-i", &inv, "--json"]);
    let r = recap(&o);
    assert_eq!(
        (r["dtm1"]["changed"].as_u64(), r["dtm2"]["changed"].as_u64()),
        (Some(1), Some(0)),
        "{}",
        text(&o)
    );
    assert_eq!(
        std::fs::read_to_string(fetched.join("dtm1/etc/hostname")).unwrap(),
        "renamed\n"
    );

    // mount: new options remount; absent unmounts and drops the fstab line.
    let opts2 = play(
        d,
        "opts2.yml",
        "    - mount: {path: /mnt/dtm-tmp, src: tmpfs, fstype: tmpfs, opts: size=2m, state: mounted}\n",
    );
    run(&opts2, &inv, &[], 0, 1);
    for h in HOSTS {
        let m = dx(h, "findmnt -rn -o OPTIONS /mnt/dtm-tmp");
        assert!(m.contains("size=2048k"), "{h}: {m}");
    }
    run(&opts2, &inv, &[], 0, 0);
    let absent = play(
        d,
        "absent.yml",
        "    - mount: {path: /mnt/dtm-tmp, state: absent}\n",
    );
    let before: Vec<String> = HOSTS.iter().map(|h| snapshot(h)).collect();
    run(&absent, &inv, &["--check"], 0, 1);
    for (h, b) in HOSTS.iter().zip(&before) {
        assert_eq!(&snapshot(h), b, "{h}: --check changed the host");
    }
    run(&absent, &inv, &[], 0, 1);
    for (i, h) in HOSTS.iter().enumerate() {
        assert!(!dx_ok(h, "findmnt /mnt/dtm-tmp"), "{h}: still mounted");
        assert!(!dx_ok(h, "test -e /mnt/dtm-tmp"), "{h}: mount point left");
        assert_eq!(
            dx(h, "cat /etc/fstab"),
            fstab_before[i],
            "{h}: fstab not restored"
        );
    }
    run(&absent, &inv, &[], 0, 0);

    // unarchive with remote_src: compared with tar --compare.
    let remote = play(
        d,
        "remote.yml",
        "    - file: {path: /opt/restore, state: directory}\n    - unarchive: {src: /tmp/www.tgz, dest: /opt/restore, remote_src: yes}\n",
    );
    run(&remote, &inv, &["--check"], 0, 2);
    assert!(!dx_ok("dtm1", "test -e /opt/restore"));
    run(&remote, &inv, &[], 0, 2);
    assert_eq!(dx("dtm2", "cat /opt/restore/www/index.txt"), "hello\n");
    run(&remote, &inv, &[], 0, 0);

    // get_url: a wrong checksum fails and leaves no file behind.
    let badsum = play(
        d,
        "badsum.yml",
        "    - get_url: {url: \"http://127.0.0.1:8765/index.txt\", dest: /tmp/bad.txt, checksum: \"sha256:0000\"}\n",
    );
    let o = run(&badsum, &inv, &[], 2, 0);
    assert!(text(&o).contains("did not match"), "{}", text(&o));
    assert!(!dx_ok(
        "dtm1",
        "ls -a /tmp | grep -q -e bad.txt -e drover-get_url"
    ));

    // slurp: the file's bytes, base64.
    let slurp = play(
        d,
        "slurp.yml",
        "    - name: slurp\n      slurp: {src: /srv/www/index.txt}\n",
    );
    let o = run(&slurp, &inv, &["--check"], 0, 0);
    let r = &result_of(&o, "slurp", "dtm2")["output"];
    assert_eq!(r["content"], "aGVsbG8K", "{r}");
    assert_eq!(r["encoding"], "base64");

    // uri: 200 with content; a 404 fails against 200 and passes as expected.
    let uri = play(
        d,
        "uri.yml",
        "    - name: get\n      uri: {url: \"http://127.0.0.1:8765/index.txt\", return_content: yes}\n",
    );
    let o = run(&uri, &inv, &["--check"], 0, 0);
    let r = &result_of(&o, "get", "dtm1")["output"];
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["content"], "hello\n", "{r}");
    let notfound = play(
        d,
        "404.yml",
        "    - name: missing\n      uri: {url: \"http://127.0.0.1:8765/nope\"}\n",
    );
    let o = run(&notfound, &inv, &[], 2, 0);
    assert!(
        text(&o).contains("Status code was 404 and not [200]"),
        "{}",
        text(&o)
    );
    let expected = play(
        d,
        "404ok.yml",
        "    - uri: {url: \"http://127.0.0.1:8765/nope\", status_code: [404, 410]}\n",
    );
    run(&expected, &inv, &[], 0, 0);
    // POST is a change: --check does not send it, the real run does.
    let post = play(
        d,
        "post.yml",
        "    - name: post\n      uri: {url: \"http://127.0.0.1:8765/form\", method: POST, body: \"a=1\", status_code: 501}\n",
    );
    run(&post, &inv, &["--check"], 0, 1);
    assert!(!dx_ok("dtm1", "grep -q POST /tmp/http-8765.log"));
    let o = run(&post, &inv, &[], 0, 1);
    assert_eq!(result_of(&o, "post", "dtm1")["output"]["status"], 501);
    assert!(dx_ok("dtm1", "grep -q '\"POST /form' /tmp/http-8765.log"));

    // wait_for: a port that opens after 3 s, waited for under --check too.
    for h in HOSTS {
        serve(h, 8766, 3);
    }
    let wait = play(
        d,
        "wait.yml",
        "    - name: wait\n      wait_for: {port: 8766, timeout: 30}\n",
    );
    let t0 = Instant::now();
    let o = run(&wait, &inv, &["--check"], 0, 0);
    assert!(t0.elapsed() >= Duration::from_secs(2), "{:?}", t0.elapsed());
    let r = &result_of(&o, "wait", "dtm1")["output"];
    assert!(
        r["elapsed"].as_u64().is_some_and(|e| (1..30).contains(&e)),
        "{r}"
    );
    assert!(dx_ok("dtm2", "curl -sf http://127.0.0.1:8766/index.txt"));
    // uri retried with until: a server that starts later; the registered
    // status of the failed attempts is -1, then 200.
    for h in HOSTS {
        serve(h, 8767, 3);
        assert!(dx_ok(
            h,
            "rm -f /tmp/ready.log; (sleep 2; echo server ready > /tmp/ready.log) >/dev/null 2>&1 &"
        ));
    }
    let retry = play(
        d,
        "retry.yml",
        "    - name: retry\n      uri: {url: \"http://127.0.0.1:8767/index.txt\"}\n      register: r\n      until: (eq r.status 200)\n      retries: 20\n      delay: 1\n    - name: file\n      wait_for: {path: /tmp/ready.log, search_regex: \"serv[a-z]+ ready\", timeout: 20}\n    - name: gone\n      uri: {url: \"http://127.0.0.1:8767/nope\"}\n      register: g\n      ignore_errors: yes\n    - assert: {that: [\"(eq g.status 404)\", \"g.failed\"]}\n",
    );
    let o = run(&retry, &inv, &[], 0, 0);
    assert_eq!(result_of(&o, "retry", "dtm1")["output"]["status"], 200);
    assert!(
        result_of(&o, "gone", "dtm2")["ignored"] == true,
        "{}",
        text(&o)
    );

    // A closed port times out within its timeout, with a clear message.
    let closed = play(
        d,
        "closed.yml",
        "    - wait_for: {port: 8799, timeout: 2}\n",
    );
    let t0 = Instant::now();
    let o = run(&closed, &inv, &[], 2, 0);
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(20),
        "{took:?}"
    );
    assert!(
        text(&o).contains("Timeout when waiting for 127.0.0.1:8799"),
        "{}",
        text(&o)
    );
    // state: stopped on the closed port is met at once.
    let stopped = play(
        d,
        "stopped.yml",
        "    - wait_for: {port: 8799, state: stopped, timeout: 5}\n",
    );
    run(&stopped, &inv, &[], 0, 0);

    // uri on a host without curl: GNU wget makes the request.
    let wget = play(
        d,
        "wget.yml",
        "    - apt: {name: wget}\n    - apt: {name: curl, state: absent}\n      when: (eq inventory_hostname \"dtm2\")\n",
    );
    let o = drover(&["run", &wget, "-i", &inv, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!dx_ok("dtm2", "command -v curl") && dx_ok("dtm2", "command -v wget"));
    let o = run(&uri, &inv, &[], 0, 0);
    let r = &result_of(&o, "get", "dtm2")["output"];
    assert_eq!(
        (&r["status"], &r["content"]),
        (&Value::from(200), &Value::from("hello\n")),
        "{r}"
    );
    let o = run(&notfound, &inv, &[], 2, 0);
    let r = &result_of(&o, "missing", "dtm2");
    assert_eq!(r["output"]["status"], 404, "{r}");
    let o = run(&post, &inv, &[], 0, 1);
    assert_eq!(result_of(&o, "post", "dtm2")["output"]["status"], 501);

    // Bad arguments name the task, the host and the value.
    let badmount = play(
        d,
        "badmount.yml",
        "    - name: bad fstype\n      mount: {path: /mnt/x, src: tmpfs, fstype: \"\", state: mounted}\n",
    );
    let o = drover(&["run", &badmount, "-i", &inv]);
    assert_ne!(o.status.code(), Some(0));
    let t = text(&o);
    assert!(
        t.contains("bad fstype") && t.contains("dtm1") && t.contains("fstype"),
        "{t}"
    );
    let badstate = play(
        d,
        "badstate.yml",
        "    - name: bad state\n      mount: {path: /mnt/x, src: tmpfs, fstype: tmpfs, state: mountd}\n",
    );
    let o = drover(&["run", &badstate, "-i", &inv]);
    assert_ne!(o.status.code(), Some(0));
    let t = text(&o);
    assert!(t.contains("bad state") && t.contains("mountd"), "{t}");
    let badtimeout = play(
        d,
        "badtimeout.yml",
        "    - name: bad timeout\n      wait_for: {port: 22, timeout: \"{{ t }}\"}\n      vars: {t: soon}\n",
    );
    let o = drover(&["run", &badtimeout, "-i", &inv]);
    assert_ne!(o.status.code(), Some(0));
    let t = text(&o);
    assert!(
        t.contains("bad timeout") && t.contains("dtm2") && t.contains("soon"),
        "{t}"
    );

    let _ = sh("bash", &["tests/hosts/cluster.sh", "down", "--name", "dtm"]);
}
