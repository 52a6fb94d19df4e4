//! Cluster tests of the SQL modules on real MariaDB servers in test
//! containers (`tests/hosts/cluster.sh`): the Seafile databases, user and
//! `avatar_uploaded` table (STEPS SF-09) on cluster `dtq`, and a three-node
//! Galera cluster (SF-04) on cluster `dtg`. MariaDB comes from the local apt
//! repository through drover's own `apt`/`service` modules. Results are
//! checked with the `mysql` client inside the containers (`docker exec`),
//! never with drover's own facts. Needs Docker and root; fails (never
//! skips) without them.

#[path = "support/playbook.rs"]
mod support;
use support::{cluster, drover, recap, root, sh, text, write};

use std::process::Output;

fn docker_exec(c: &str, cmd: &[&str]) -> Output {
    let mut a = vec!["exec", c];
    a.extend(cmd);
    sh("docker", &a)
}

/// Run SQL as root over the socket inside a container, independently of drover.
fn sql(c: &str, q: &str) -> String {
    let o = docker_exec(c, &["mysql", "-N", "-B", "-e", q]);
    assert!(o.status.success(), "{c}: mysql -e {q}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// (task, host, changes) of every changed task, in order.
fn changes(o: &Output) -> Vec<(String, String, Vec<String>)> {
    json_lines(o)
        .iter()
        .filter(|v| v["event"] == "task_done" && v["status"] == "changed")
        .map(|v| {
            let ch = v["changes"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|c| c.as_str().unwrap_or("").to_string())
                        .collect()
                })
                .unwrap_or_default();
            (
                v["task"].as_str().unwrap_or("").into(),
                v["host"].as_str().unwrap_or("").into(),
                ch,
            )
        })
        .collect()
}

/// Run a playbook with `--json`; assert its exit code and each host's `changed`.
fn run(pb: &str, inv: &str, extra: &[&str], code: i32, changed: &[(&str, u64)]) -> Output {
    let mut a = vec!["run", pb, "-i", inv, "--json"];
    a.extend(extra);
    let o = drover(&a);
    assert_eq!(o.status.code(), Some(code), "{}", text(&o));
    let r = recap(&o);
    for (h, n) in changed {
        assert_eq!(r[h]["changed"], *n, "{h}: {}", text(&o));
    }
    o
}

const CACHE: &str = "- hosts: testhosts\n  tasks:\n    - apt: {update_cache: yes}\n";

const INSTALL: &str = "- hosts: testhosts
  tasks:
    - apt: {name: [mariadb-server, mariadb-client]}
    - service: {name: mariadb, state: started}
    - name: an admin account with a password, for the login_password path
      mysql_user:
        name: dbadmin
        password: \"{{ admin_pw }}\"
        priv: \"*.*:ALL,GRANT\"
";

const SEAFILE: &str = "- hosts: testhosts
  tasks:
    - name: seafile databases
      mysql_db: {name: [ccnet_db, seafile_db, seahub_db], encoding: utf8mb4}
    - name: seafile user
      mysql_user:
        name: seafile
        host: \"%\"
        password: \"{{ seafile_pw }}\"
        priv: \"ccnet_db.*:ALL/seafile_db.*:ALL/seahub_db.*:ALL\"
        login_user: dbadmin
        login_password: \"{{ admin_pw }}\"
    - name: avatar_uploaded (SF-09)
      mysql_table:
        db: seahub_db
        name: avatar_uploaded
        login_user: dbadmin
        login_password: \"{{ admin_pw }}\"
        login_host: 127.0.0.1
        columns:
          - {name: filename, type: TEXT, null: false}
          - {name: filename_md5, type: CHAR(32), primary_key: true}
          - {name: data, type: MEDIUMTEXT, null: false}
          - {name: size, type: INTEGER, null: false}
          - {name: mtime, type: DATETIME, null: false}
";

#[test]
fn seafile_databases_on_real_mariadb() {
    let st = cluster("dtq", 1);
    let h = "dtq1";
    let inv = st.join("inventory.ini").display().to_string();
    let dir = tempfile::tempdir().unwrap();
    // Canary passwords with every character the quoting has to survive.
    let seafile_pw = "Sf-canary'\"#\\ x9";
    let admin_pw = "Adm-canary;$(id)`q";
    let vars = write(
        dir.path(),
        "pw.json",
        &serde_json::json!({"seafile_pw": seafile_pw, "admin_pw": admin_pw}).to_string(),
    );
    let ev = format!("@{vars}");
    let cache = write(dir.path(), "cache.yml", CACHE);
    run(&cache, &inv, &[], 0, &[]);
    let install = write(dir.path(), "install.yml", INSTALL);
    run(&install, &inv, &["-e", &ev], 0, &[]);
    run(&install, &inv, &["-e", &ev], 0, &[(h, 0)]);
    assert!(sql(h, "SELECT plugin FROM mysql.user WHERE User='dbadmin'")
        .contains("mysql_native_password"));

    let seafile = write(dir.path(), "seafile.yml", SEAFILE);
    let dbs = || sql(h, "SHOW DATABASES");
    let users = || sql(h, "SELECT User, Host FROM mysql.user ORDER BY 1, 2");
    let (dbs0, users0) = (dbs(), users());
    assert!(!dbs0.contains("seahub_db"), "{dbs0}");

    // Check mode on the empty server: three changes predicted, none made.
    let check = run(
        &seafile,
        &inv,
        &["-e", &ev, "--check", "--diff", "-v"],
        0,
        &[(h, 3)],
    );
    assert_eq!(dbs(), dbs0, "check mode created a database");
    assert_eq!(users(), users0, "check mode created a user");

    // Sample every process's argv inside the host during the real run.
    let _ = docker_exec(h, &["rm", "-f", "/tmp/ps.stop", "/tmp/ps.log"]);
    let o = docker_exec(
        h,
        &["sh", "-c", "nohup sh -c 'while [ ! -e /tmp/ps.stop ]; do ps -eo args >>/tmp/ps.log; done' >/dev/null 2>&1 &"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let real = run(&seafile, &inv, &["-e", &ev, "--diff", "-v"], 0, &[(h, 3)]);
    let _ = docker_exec(h, &["touch", "/tmp/ps.stop"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let ps = text(&docker_exec(h, &["cat", "/tmp/ps.log"]));
    assert!(
        ps.contains("drover-sql"),
        "the ps sampler saw no client run"
    );
    assert_eq!(
        changes(&check),
        changes(&real),
        "check mode predicted other changes"
    );

    // The independent client sees the schema, the grants and the password.
    let create = sql(h, "SHOW CREATE TABLE seahub_db.avatar_uploaded");
    for col in [
        "`filename` text NOT NULL",
        "`filename_md5` char(32) NOT NULL",
        "`data` mediumtext NOT NULL",
        "`size` int(11) NOT NULL",
        "`mtime` datetime NOT NULL",
        "PRIMARY KEY (`filename_md5`)",
    ] {
        assert!(create.contains(col), "{col} missing in {create}");
    }
    for db in ["ccnet_db", "seafile_db", "seahub_db"] {
        let cs = sql(h, &format!("SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='{db}'"));
        assert_eq!(cs.trim(), "utf8mb4", "{db}");
    }
    let grants = sql(h, "SHOW GRANTS FOR 'seafile'@'%'");
    for db in ["ccnet_db", "seafile_db", "seahub_db"] {
        assert!(
            grants.contains(&format!(
                "GRANT ALL PRIVILEGES ON `{db}`.* TO `seafile`@`%`"
            )),
            "{grants}"
        );
    }
    let login = docker_exec(
        h,
        &[
            "mysql",
            "-useafile",
            &format!("-p{seafile_pw}"),
            "-h127.0.0.1",
            "-N",
            "-e",
            "SELECT CURRENT_USER(); USE seahub_db; SELECT COUNT(*) FROM avatar_uploaded",
        ],
    );
    assert!(text(&login).contains("seafile@%"), "{}", text(&login));
    let wrong = docker_exec(
        h,
        &[
            "mysql",
            "-useafile",
            "-pwrong",
            "-h127.0.0.1",
            "-e",
            "SELECT 1",
        ],
    );
    assert!(!wrong.status.success());

    // No password, and no hash of one, in drover's output or any argv.
    let hashes = sql(
        h,
        "SELECT authentication_string FROM mysql.user WHERE User IN ('seafile','dbadmin')",
    );
    for (what, out) in [
        ("check", text(&check)),
        ("real", text(&real)),
        ("ps", ps.clone()),
    ] {
        for secret in [seafile_pw, admin_pw, "canary"] {
            assert!(!out.contains(secret), "{what} output shows `{secret}`");
        }
        for hash in hashes.split_whitespace() {
            assert!(!out.contains(hash), "{what} output shows the hash {hash}");
        }
    }

    // Second run: nothing to do.
    let t0 = std::time::Instant::now();
    run(&seafile, &inv, &["-e", &ev], 0, &[(h, 0)]);
    eprintln!("no-op run of the 3 SQL tasks: {:?}", t0.elapsed());

    // Quoting against the real server: a database name with a quote, a
    // backtick, a backslash and a space is created, seen, and dropped.
    let name = r"q'`\x y";
    let odd_pb = |state: &str| {
        let yaml_name = name.replace('\\', "\\\\");
        write(
            dir.path(),
            &format!("odd-{state}.yml"),
            &format!("- hosts: testhosts\n  tasks:\n    - mysql_db: {{name: \"{yaml_name}\", state: {state}}}\n"),
        )
    };
    // `mysql -B` prints a backslash as `\\`.
    let listed = name.replace('\\', "\\\\");
    let name = listed.as_str();
    run(&odd_pb("present"), &inv, &[], 0, &[(h, 1)]);
    assert!(dbs().lines().any(|l| l == name), "{}", dbs());
    run(&odd_pb("present"), &inv, &[], 0, &[(h, 0)]);
    run(&odd_pb("absent"), &inv, &[], 0, &[(h, 1)]);
    assert!(!dbs().lines().any(|l| l == name), "{}", dbs());

    // A column of another type fails clearly and alters nothing.
    let bad = write(
        dir.path(),
        "bad.yml",
        "- hosts: testhosts\n  tasks:\n    - name: wider size\n      mysql_table:\n        db: seahub_db\n        name: avatar_uploaded\n        columns: [{name: size, type: BIGINT, null: false}]\n",
    );
    let o = run(&bad, &inv, &[], 2, &[(h, 0)]);
    let t = text(&o);
    assert!(
        t.contains("column `size` differs") && t.contains("wider size") && t.contains(h),
        "{t}"
    );
    assert_eq!(
        sql(h, "SHOW CREATE TABLE seahub_db.avatar_uploaded"),
        create
    );

    // A wrong login password fails with the server's answer, not the password.
    let o = drover(&[
        "run",
        &seafile,
        "-i",
        &inv,
        "-e",
        &ev,
        "-e",
        "admin_pw=nope-Wr0ng",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("Access denied"), "{}", text(&o));
    assert!(!text(&o).contains("nope-Wr0ng"), "{}", text(&o));

    let _ = sh("bash", &["tests/hosts/cluster.sh", "down", "--name", "dtq"]);
}

/// Index of the first JSON event matching (event, task, host).
fn event_at(events: &[serde_json::Value], ev: &str, task: &str, host: &str) -> usize {
    events
        .iter()
        .position(|v| v["event"] == ev && v["task"] == task && v["host"] == host)
        .unwrap_or_else(|| panic!("no {ev} of `{task}` on {host}"))
}

#[test]
fn galera_three_nodes() {
    let st = cluster("dtg", 3);
    let hosts = ["dtg1", "dtg2", "dtg3"];
    let dir = tempfile::tempdir().unwrap();
    let addrs: Vec<String> = std::fs::read_to_string(st.join("hosts"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(String::from))
        .collect();
    assert_eq!(addrs.len(), 3, "{addrs:?}");
    let base = std::fs::read_to_string(st.join("inventory.ini")).unwrap();
    let inv = write(
        dir.path(),
        "galera.ini",
        &format!(
            "{base}\n[galera:children]\ntesthosts\n[galera:vars]\ngalera_cluster_name=drover\ngalera_cluster_address=gcomm://{}\ngalera_size=3\n[galera_bootstrap]\ndtg1\n[galera_join_first]\ndtg2\n[galera_join_rest]\ndtg3\n",
            addrs.join(",")
        ),
    );
    let cache = write(dir.path(), "cache.yml", CACHE);
    run(&cache, &inv, &[], 0, &[]);
    let site = root()
        .join("playbooks/galera/site.yml")
        .display()
        .to_string();
    let first = run(
        &site,
        &inv,
        &[],
        0,
        &[("dtg1", 3), ("dtg2", 3), ("dtg3", 3)],
    );

    // The DAG kept the join order across hosts.
    let ev = json_lines(&first);
    assert!(
        event_at(&ev, "task_done", "bootstrap the first node", "dtg1")
            < event_at(&ev, "task_start", "join the second node", "dtg2")
    );
    assert!(
        event_at(&ev, "task_done", "join the second node", "dtg2")
            < event_at(&ev, "task_start", "join the other nodes", "dtg3")
    );
    for h in hosts {
        let s = sql(
            h,
            "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_size','wsrep_ready') ",
        );
        assert!(
            s.contains("wsrep_cluster_size\t3") && s.contains("wsrep_ready\tON"),
            "{h}: {s}"
        );
        let cnf = text(&docker_exec(
            h,
            &["cat", "/etc/mysql/mariadb.conf.d/60-galera.cnf"],
        ));
        assert!(
            cnf.contains(&format!(
                "wsrep_cluster_address = gcomm://{}",
                addrs.join(",")
            )),
            "{cnf}"
        );
    }

    // A row written on node 1 (through drover) is read on node 3.
    let write_row = write(
        dir.path(),
        "row.yml",
        "- hosts: galera_bootstrap\n  tasks:\n    - mysql_db: {name: galera_probe}\n    - mysql_table:\n        db: galera_probe\n        name: t\n        columns: [{name: id, type: INT, primary_key: true}, {name: v, type: VARCHAR(64), null: false}]\n    - sql: {query: \"REPLACE INTO t VALUES (1, 'written on dtg1')\", login_db: galera_probe}\n",
    );
    run(&write_row, &inv, &[], 0, &[("dtg1", 3)]);
    let got = sql("dtg3", "SELECT v FROM galera_probe.t WHERE id = 1");
    assert_eq!(got.trim(), "written on dtg1");

    // Second run of the cluster playbook: nothing to do, still three nodes.
    let again = run(
        &site,
        &inv,
        &[],
        0,
        &[("dtg1", 0), ("dtg2", 0), ("dtg3", 0)],
    );
    assert!(
        text(&again).contains("\"wsrep_cluster_size\":3"),
        "{}",
        text(&again)
    );
    let _ = sh("bash", &["tests/hosts/cluster.sh", "down", "--name", "dtg"]);
}
