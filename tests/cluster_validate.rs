//! Cluster test of config validation (`validate:` of copy/template, the
//! engine's atomic write) on a real host (cluster `dtv`, 1 container), with
//! the real validators: `haproxy -c -f %s`, `named-checkzone example.test %s`,
//! `apache2ctl -t -f %s`, `nginx -t -c %s`, `visudo -cf %s`. For each, a good
//! candidate is installed and its notified handler restarts the service; a
//! broken candidate fails the task with the validator's own message, leaves
//! the live file byte for byte as it was (sha256), leaves no temp file, does
//! not fire the handler, and the running service keeps its pid and answers.
//!
//! Apache: `apachectl -t` checks a whole configuration, not one file, so the
//! candidate is the main file `/etc/apache2/apache2.conf` (Debian's own, with
//! `Include ports.conf` replaced by `Listen 8081`) validated as a complete
//! configuration with `apache2ctl -t -f %s` (relative includes resolve
//! against the compiled-in ServerRoot `/etc/apache2`, and `apache2ctl`
//! sources `/etc/apache2/envvars`). A lone vhost file cannot be checked
//! honestly that way: the live copy under sites-enabled would be read too.
//! sudo has no daemon: "still answers" is `sudo -n` still working, and the
//! handler is a marker file.

#[path = "support/playbook.rs"]
mod support;
use support::{drover, recap, root, sh, text};

use std::path::Path;
use std::process::Output;

const H: &str = "dtv1";

/// Run a shell line in the container; returns stdout (trimmed) or panics.
fn dsh(script: &str) -> String {
    let o = sh("docker", &["exec", H, "bash", "-c", script]);
    assert!(o.status.success(), "`{script}`: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Names of the tasks (and handlers) that reported a result.
fn tasks_run(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("task").and_then(|t| t.as_str()).map(String::from))
        .collect()
}

struct Case {
    name: &'static str,
    dest: &'static str,
    validate: &'static str,
    mode: &'static str,
    good: String,
    bad: String,
    /// What the validator says about `bad`.
    message: &'static str,
    /// Handler task (its name is `restart NAME`).
    handler: String,
    /// Prints the service's pid.
    pid: &'static str,
    /// Prints what the service answers.
    answer: &'static str,
    answer_want: &'static str,
}

/// The broken run is preceded by a task that notifies the same handler:
/// the failed host must still not run it (as Ansible without force_handlers).
fn playbook(dir: &Path, c: &Case, which: &str, content: &str) -> String {
    let src = dir.join(format!("{}-{which}", c.name));
    std::fs::write(&src, content).unwrap();
    let pb = dir.join(format!("{}-{which}.yml", c.name));
    std::fs::write(
        &pb,
        format!(
            "- hosts: {H}\n  gather_facts: no\n  tasks:\n{pre}    - name: install {name} config\n      copy: {{src: {src}, dest: {dest}, validate: \"{v}\", mode: \"{mode}\"}}\n      notify: restart {name}\n  handlers:\n    - name: restart {name}\n{handler}",
            pre = if which == "bad" {
                format!("    - name: another change\n      command: \"true\"\n      notify: restart {}\n", c.name)
            } else {
                String::new()
            },
            name = c.name,
            src = src.display(),
            dest = c.dest,
            v = c.validate,
            mode = c.mode,
            handler = c.handler
        ),
    )
    .unwrap();
    pb.display().to_string()
}

fn run_case(dir: &Path, inv: &str, c: &Case) {
    let handler = format!("restart {}", c.name);
    let good = playbook(dir, c, "good", &c.good);
    let bad = playbook(dir, c, "bad", &c.bad);
    // The good candidate passes its validator and the handler restarts.
    let pid0 = dsh(&format!("{} 2>/dev/null || true", c.pid));
    let o = drover(&["run", &good, "-i", inv, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}: {}", c.name, text(&o));
    assert!(tasks_run(&o).contains(&handler), "{}: {}", c.name, text(&o));
    let pid1 = dsh(c.pid);
    assert_ne!(pid0, pid1, "{}: the handler did not restart it", c.name);
    assert_eq!(dsh(c.answer), c.answer_want, "{}", c.name);
    let o = drover(&["run", &good, "-i", inv, "--json"]);
    assert_eq!(recap(&o)[H]["changed"], 0, "{}: {}", c.name, text(&o));

    // The broken one fails with the validator's message and changes nothing.
    let sum = format!("sha256sum {}", c.dest);
    let before = dsh(&sum);
    let o = drover(&["run", &bad, "-i", inv, "--json"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{}: {out}", c.name);
    assert_eq!(recap(&o)[H]["failed"], 1, "{}: {out}", c.name);
    assert!(out.contains("validation failed"), "{}: {out}", c.name);
    let msg: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["status"] == "failed")
        .map(|v| v["msg"].to_string())
        .collect();
    eprintln!("{}: {msg:?}", c.name);
    assert!(
        out.contains(c.message),
        "{}: want `{}` in {out}",
        c.name,
        c.message
    );
    assert!(
        !tasks_run(&o).contains(&handler),
        "{}: handler ran: {out}",
        c.name
    );
    assert_eq!(dsh(&sum), before, "{}: live file changed", c.name);
    let dirname = Path::new(c.dest).parent().unwrap().display().to_string();
    assert_eq!(
        dsh(&format!(
            "ls -a {dirname} | grep -c '^\\.drover\\.' || true"
        )),
        "0",
        "{}: temp file left in {dirname}",
        c.name
    );
    assert_eq!(dsh(c.pid), pid1, "{}: service was restarted", c.name);
    assert_eq!(
        dsh(c.answer),
        c.answer_want,
        "{}: stopped answering",
        c.name
    );
}

#[test]
fn validate_keeps_live_config_and_service() {
    let _ = sh("bash", &["tests/hosts/cluster.sh", "down", "--name", "dtv"]);
    let o = sh(
        "bash",
        &["tests/hosts/cluster.sh", "up", "1", "--name", "dtv"],
    );
    assert!(o.status.success(), "cluster.sh up failed: {}", text(&o));
    let inv = root()
        .join("tests/hosts/.state/dtv/inventory.ini")
        .display()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // Packages, and named serving the test zone (its file is validated too).
    let setup = d.join("setup.yml");
    std::fs::write(
        &setup,
        format!(
            "- hosts: {H}\n  gather_facts: no\n  tasks:\n    - apt: {{name: [haproxy, bind9, bind9-dnsutils, apache2, nginx, curl], update_cache: yes}}\n    - copy:\n        dest: /etc/bind/named.conf.local\n        content: \"zone \\\"example.test\\\" {{ type master; file \\\"/etc/bind/db.example.test\\\"; }};\\n\"\n        validate: named-checkconf %s\n"
        ),
    )
    .unwrap();
    let o = drover(&["run", &setup.display().to_string(), "-i", &inv, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let restart = |svc: &str| format!("      service: {{name: {svc}, state: restarted}}\n");
    let haproxy = "global\n  daemon\n  stats socket /run/haproxy/admin.sock mode 660 level admin\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\nfrontend fe\n  bind 127.0.0.1:8083\n  http-request return status 200 content-type text/plain string \"haproxy ok\"\n";
    let zone = |serial: u32, extra: &str| {
        format!("$TTL 60\n@ IN SOA ns.example.test. admin.example.test. ( {serial} 3600 600 86400 60 )\n@ IN NS ns.example.test.\nns IN A 127.0.0.1\nwww IN A 10.0.0.80\n{extra}")
    };
    let apache =
        dsh("cat /etc/apache2/apache2.conf").replace("Include ports.conf", "Listen 8081") + "\n";
    assert!(apache.contains("Listen 8081"));
    let nginx = "user www-data;\npid /run/nginx.pid;\nevents { worker_connections 64; }\nhttp {\n  server {\n    listen 127.0.0.1:8082;\n    location / { return 200 \"nginx ok\\n\"; }\n  }\n}\n";
    let cases = [
        Case {
            name: "haproxy",
            dest: "/etc/haproxy/haproxy.cfg",
            validate: "haproxy -c -f %s",
            mode: "0644",
            good: haproxy.into(),
            bad: format!("{haproxy}  bogus_keyword on\n"),
            message: "bogus_keyword",
            handler: restart("haproxy"),
            pid: "cat /run/haproxy.pid",
            answer: "curl -s http://127.0.0.1:8083/",
            answer_want: "haproxy ok",
        },
        Case {
            name: "named",
            dest: "/etc/bind/db.example.test",
            validate: "named-checkzone example.test %s",
            mode: "0644",
            good: zone(1, ""),
            bad: zone(2, "www2 IN A 10.0.0.999\n"),
            message: "bad dotted quad",
            handler: restart("named"),
            pid: "cat /run/named/named.pid",
            answer: "dig +short @127.0.0.1 www.example.test",
            answer_want: "10.0.0.80",
        },
        Case {
            name: "apache2",
            dest: "/etc/apache2/apache2.conf",
            validate: "apache2ctl -t -f %s",
            mode: "0644",
            good: apache.clone(),
            bad: format!("{apache}BogusDirective on\n"),
            message: "Invalid command 'BogusDirective'",
            handler: restart("apache2"),
            pid: "cat /run/apache2/apache2.pid",
            answer: "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8081/",
            answer_want: "200",
        },
        Case {
            name: "nginx",
            dest: "/etc/nginx/nginx.conf",
            validate: "nginx -t -c %s",
            mode: "0644",
            good: nginx.into(),
            bad: nginx.replace(
                "listen 127.0.0.1:8082;",
                "listen 127.0.0.1:8082;\n    bogus_directive on;",
            ),
            message: "unknown directive \\\"bogus_directive\\\"",
            handler: restart("nginx"),
            pid: "cat /run/nginx.pid",
            answer: "curl -s http://127.0.0.1:8082/",
            answer_want: "nginx ok",
        },
        Case {
            name: "sudo",
            dest: "/etc/sudoers.d/drover_validate",
            validate: "visudo -cf %s",
            mode: "0440",
            good: "drover_pw ALL=(ALL) NOPASSWD: /usr/bin/id\n".into(),
            bad: "drover_pw ALL=(ALL NOPASSWD: /usr/bin/id\n".into(),
            message: "syntax error",
            handler: "      shell: echo ran >> /tmp/sudo-handler\n".into(),
            pid: "wc -l < /tmp/sudo-handler",
            answer: "su -s /bin/sh drover_pw -c 'sudo -n /usr/bin/id -u'",
            answer_want: "0",
        },
    ];
    for c in &cases {
        run_case(d, &inv, c);
    }
    let _ = sh("bash", &["tests/hosts/cluster.sh", "down", "--name", "dtv"]);
}
