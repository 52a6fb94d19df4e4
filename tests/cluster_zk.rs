//! ZooKeeper acceptance of `zk_ensemble` and `zk_node` on a real three-member
//! ensemble (cluster `dtz`): a playbook renders `zoo.cfg` and `myid` and
//! starts Debian's ZooKeeper on each container; `zk_ensemble` waits for the
//! leader; the shipped Arcus registration tasks
//! (`playbooks/arcus/tasks/register.yml`, STEPS AR-08/AR-09) write the znode
//! layout with JSON payloads. Every end state is read by an independent
//! client: kazoo (Python, from PyPI, in `.venv`) and raw `srvr` from the
//! controller. Needs Docker and root; fails (never skips) without them.

#[path = "support/playbook.rs"]
mod support;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use support::*;

const ENSEMBLE: &str = r#"- name: ZooKeeper members
  hosts: zookeeper
  gather_facts: false
  tasks:
    - name: zookeeper installed
      apt: {name: [zookeeper, zookeeperd], update_cache: true, cache_valid_time: 3600}
    - name: zoo.cfg
      copy:
        dest: /etc/zookeeper/conf/zoo.cfg
        content: |
          # rendered by drover (tests/cluster_zk.rs)
          tickTime=2000
          initLimit=10
          syncLimit=5
          dataDir=/var/lib/zookeeper
          clientPort=2181
          4lw.commands.whitelist=srvr,ruok
          {{#each groups.zookeeper}}
          server.{{lookup (lookup @root.hostvars this) "zk_id"}}={{lookup (lookup @root.hostvars this) "ansible_host"}}:2888:3888
          {{/each}}
      notify: restart zookeeper
    - name: myid
      copy: {dest: /etc/zookeeper/conf/myid, content: "{{ zk_id }}\n"}
      notify: restart zookeeper
    - name: a bounded JVM heap
      lineinfile: {path: /etc/default/zookeeper, regexp: '^JAVA_OPTS=', line: 'JAVA_OPTS="-Xmx128m"'}
      notify: restart zookeeper
    - name: zookeeper running
      service: {name: zookeeper, state: started, enabled: true}
  handlers:
    - name: restart zookeeper
      service: {name: zookeeper, state: restarted}
- name: Leader
  hosts: zookeeper
  gather_facts: false
  tasks:
    - name: a leader elected
      zk_ensemble:
        members: "{{ zk_list }}"
        wait_for: leader
        timeout: 240
      register: ens
    - name: modes
      debug: {var: ens.modes}
"#;

fn layout(root: &str) -> String {
    format!(
        "- hosts: zk_client\n  gather_facts: false\n  tasks:\n    - import_tasks: {root}/playbooks/arcus/tasks/register.yml\n"
    )
}

/// The document's cloud (conf/test.json) on the containers' addresses.
fn cloud(c: &Cluster, drop_last: bool) -> Value {
    let mut servers = Vec::new();
    for i in 1..=3 {
        for port in ["11211", "11212"] {
            let mut conf = json!({"port": port});
            if i == 2 {
                conf["threads"] = json!("4");
            }
            servers.push(
                json!({"hostname": format!("cache00{i}.arcus"), "ip": c.ip(i), "config": conf}),
            );
        }
    }
    if drop_last {
        servers.pop();
    }
    json!({"serviceCode": "test-cloud", "servers": servers,
           "config": {"threads": "6", "memlimit": "100", "connections": "1000"}})
}

/// What the registration must leave in ZooKeeper for `cloud`.
fn expected(cloud: &Value) -> BTreeMap<String, Value> {
    let mut want = BTreeMap::new();
    for p in [
        "/arcus",
        "/arcus/cache_list",
        "/arcus/client_list",
        "/arcus/cache_server_mapping",
        "/arcus/client_list/test-cloud",
    ] {
        want.insert(p.to_string(), json!(""));
    }
    want.insert("/arcus/cache_list/test-cloud".into(), cloud.clone());
    for s in cloud["servers"].as_array().expect("servers") {
        let port = s["config"]["port"].as_str().expect("port");
        let threads = s["config"]
            .get("threads")
            .unwrap_or(&cloud["config"]["threads"]);
        let m = format!(
            "/arcus/cache_server_mapping/{}:{port}",
            s["ip"].as_str().expect("ip")
        );
        want.insert(
            m.clone(),
            json!({"port": port, "threads": threads, "memlimit": "100", "connections": "1000"}),
        );
        want.insert(format!("{m}/test-cloud"), json!(""));
    }
    want
}

/// The tree read by kazoo, JSON payloads parsed (empty data as "").
fn read_tree(zk: &str) -> BTreeMap<String, Value> {
    zk_tree(zk, "/arcus")
        .into_iter()
        .map(|(p, d)| {
            let v = if d.is_empty() {
                json!("")
            } else {
                serde_json::from_str(&d).unwrap_or_else(|e| panic!("{p}: not JSON ({e}): {d}"))
            };
            (p, v)
        })
        .collect()
}

#[test]
fn zookeeper_ensemble_and_arcus_znodes() {
    let py = kazoo_python();
    assert!(py.ends_with("python"), "{py}");
    let c = Cluster::up("dtz", 3);
    let dir = tempfile::tempdir().expect("tempdir");
    let zk_list: Vec<String> = (1..=3).map(|i| format!("{}:2181", c.ip(i))).collect();
    let zk = zk_list.join(",");
    let mut inv = String::from("[zookeeper]\n");
    for i in 1..=3 {
        inv.push_str(&format!(
            "{} ansible_host={} zk_id={i}\n",
            c.host(i),
            c.ip(i)
        ));
    }
    inv.push_str(&format!(
        "[zk_client]\n{}\n[all:vars]\n{}zk_list={zk}\narcus_zk_list={zk}\n",
        c.host(1),
        c.conn_vars()
    ));
    let inv = write(dir.path(), "zk.ini", &inv);

    // The ensemble: rendered, started, a leader waited for (bounded).
    let pb = write(dir.path(), "ensemble.yml", ENSEMBLE);
    let r = run_ok(&pb, &inv, &[]);
    for i in 1..=3 {
        assert!(changed(&r, &c.host(i)) >= 4, "{r}");
    }
    let o = drover(&["run", &pb, "-i", &inv, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for i in 1..=3 {
        assert_eq!(
            changed(&recap(&o), &c.host(i)),
            0,
            "second run: {}",
            text(&o)
        );
    }
    // zk_ensemble saw one leader and two followers; so does raw `srvr`.
    let modes = done_events(&o)
        .into_iter()
        .find(|e| e["task"] == "modes" && e["host"] == c.host(1))
        .map(|e| e["output"]["ens.modes"].clone())
        .unwrap_or_default();
    let mut seen: Vec<String> = zk_list
        .iter()
        .map(|m| modes[m].as_str().unwrap_or("?").to_string())
        .collect();
    seen.sort();
    assert_eq!(seen, ["follower", "follower", "leader"], "{modes}");
    let mut raw: Vec<String> = (1..=3)
        .map(|i| {
            let s = srvr(&c.ip(i));
            s.lines()
                .find_map(|l| l.strip_prefix("Mode: "))
                .unwrap_or_else(|| panic!("no Mode in srvr of {}: {s}", c.ip(i)))
                .to_string()
        })
        .collect();
    raw.sort();
    assert_eq!(raw, ["follower", "follower", "leader"]);

    // --check on the empty ensemble: every znode predicted, none created.
    assert!(
        zk_tree(&zk, "/arcus").is_empty(),
        "the ensemble is not empty"
    );
    let pb = write(
        dir.path(),
        "layout.yml",
        &layout(&root().display().to_string()),
    );
    let vars = write(
        dir.path(),
        "cloud.json",
        &json!({"arcus_cloud": cloud(&c, false)}).to_string(),
    );
    let ev = format!("@{vars}");
    let o = drover(&["run", &pb, "-i", &inv, "-e", &ev, "--check", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let predicted = changed_tasks(&o);
    assert_eq!(predicted.len(), 8, "{predicted:?}");
    assert!(zk_tree(&zk, "/arcus").is_empty(), "--check created znodes");

    // The real run does exactly what was predicted; kazoo reads the layout.
    let o = drover(&["run", &pb, "-i", &inv, "-e", &ev, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        changed_tasks(&o),
        predicted,
        "check mode predicted other changes"
    );
    assert_eq!(read_tree(&zk), expected(&cloud(&c, false)));
    let r = run_ok(&pb, &inv, &["-e", &ev]);
    assert_eq!(changed(&r, &c.host(1)), 0, "re-registering changed: {r}");

    // A server removed from the configuration: its mapping is deleted; a
    // mapping of another cloud stays.
    let other = "/arcus/cache_server_mapping/10.9.9.9:11211";
    zk_create(&zk, &format!("{other}/other-cloud"), "");
    let smaller = write(
        dir.path(),
        "smaller.json",
        &json!({"arcus_cloud": cloud(&c, true)}).to_string(),
    );
    let ev2 = format!("@{smaller}");
    let o = drover(&["run", &pb, "-i", &inv, "-e", &ev2, "--check", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let predicted = changed_tasks(&o);
    assert!(zk_tree(&zk, "/arcus")
        .contains_key(&format!("/arcus/cache_server_mapping/{}:11212", c.ip(3))));
    let o = drover(&["run", &pb, "-i", &inv, "-e", &ev2, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(changed_tasks(&o), predicted);
    let tasks: Vec<&str> = predicted.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(
        tasks,
        [
            "the cloud's configuration in cache_list",
            "mappings of this cloud's removed servers deleted"
        ],
        "{predicted:?}"
    );
    let mut want = expected(&cloud(&c, true));
    want.insert(other.into(), json!(""));
    want.insert(format!("{other}/other-cloud"), json!(""));
    assert_eq!(read_tree(&zk), want);
    let r = run_ok(&pb, &inv, &["-e", &ev2]);
    assert_eq!(changed(&r, &c.host(1)), 0, "{r}");

    // One member down: a quorum of two still takes a zk_node write.
    let o = sh("bash", &["tests/hosts/fault.sh", "stop", &c.host(3)]);
    assert!(o.status.success(), "fault.sh stop: {}", text(&o));
    let write_pb = write(
        dir.path(),
        "quorum.yml",
        &format!(
            "- hosts: zk_client\n  gather_facts: false\n  tasks:\n    \
             - name: the two left elect a leader (if the stopped one led)\n      \
               zk_ensemble: {{members: [\"{}\", \"{}\"], wait_for: leader, timeout: 120}}\n    \
             - zk_node: {{path: /arcus/quorum, value: {{members: 2}}, hosts: \"{{{{ zk_list }}}}\"}}\n",
            zk_list[0], zk_list[1]
        ),
    );
    let r = run_ok(&write_pb, &inv, &[]);
    assert_eq!(changed(&r, &c.host(1)), 1, "{r}");
    let alive = format!("{},{}", zk_list[0], zk_list[1]);
    assert_eq!(
        zk_tree(&alive, "/arcus/quorum")
            .get("/arcus/quorum")
            .map(String::as_str),
        Some("{\"members\":2}")
    );
    let r = run_ok(&write_pb, &inv, &[]);
    assert_eq!(changed(&r, &c.host(1)), 0, "{r}");
}
