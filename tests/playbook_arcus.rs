//! The shipped Arcus playbooks (`playbooks/arcus`, steps AR-03..AR-13 of
//! `playbooks/STEPS.md`) against three real test hosts (cluster `dtc`), each
//! a ZooKeeper member with two cache nodes (Debian's memcached), the cloud of
//! Arcus' conf/test.json on the containers' addresses. One cluster, shared
//! by every step, in order: --check leaves the hosts untouched; site.yml;
//! znodes read by kazoo and nodes' `stats` from the controller; a second run
//! changes nothing; list.yml online; stop.yml; list.yml offline;
//! unregister.yml; ZooKeeper stopped; restart.yml; and site.yml without a
//! `zookeeper` group (AR-13). Needs Docker and root; fails (never skips)
//! without them.

#[path = "support/playbook.rs"]
mod support;

use serde_json::{json, Value};
use support::*;

const SITE: &str = "playbooks/arcus/site.yml";
const LIST: &str = "playbooks/arcus/list.yml";
const PORTS: [&str; 2] = ["11211", "11212"];

/// What the playbooks could change on a host, for "check touched nothing".
const SNAPSHOT: &str = "dpkg-query -W -f '${Package} ${Status}\\n' | sort; \
    ls -1 /etc/init.d /etc/arcus /etc/zookeeper/conf 2>&1; cat /etc/default/zookeeper 2>&1; \
    ps -eo args | grep -e memcache[d] -e zookeepe[r]; true";

fn cloud(c: &Cluster) -> Value {
    let mut servers = Vec::new();
    for i in 1..=3 {
        for port in PORTS {
            let mut conf = json!({"port": port});
            if i == 2 {
                conf["threads"] = json!("4");
            }
            servers.push(
                json!({"hostname": format!("cache00{i}.arcus"), "ip": c.ip(i), "config": conf}),
            );
        }
    }
    json!({"serviceCode": "test-cloud", "servers": servers,
           "config": {"threads": "6", "memlimit": "100", "connections": "1000"}})
}

/// Raw memcached `stats` from the controller; "" when nothing answers.
fn stats(ip: &str, port: &str) -> String {
    use std::io::{Read, Write};
    let addr: std::net::SocketAddr = format!("{ip}:{port}").parse().expect("address");
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(3))
    else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(3)));
    let _ = s.write_all(b"stats\r\nquit\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// list.yml's lines: the registration message and one "ip:port state" per node.
fn list(inv: &str, ev: &str) -> (String, Vec<String>) {
    let o = drover(&["run", LIST, "-i", inv, "-e", ev, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let ev = done_events(&o);
    for h in recap(&o).as_object().expect("recap").keys() {
        assert_eq!(changed(&recap(&o), h), 0, "list.yml changed {h}");
    }
    let msg = |task: &str| {
        ev.iter()
            .find(|e| e["task"] == task && e["status"] != "skipped")
            .unwrap_or_else(|| panic!("no `{task}` in {}", text(&o)))["output"]
            .clone()
    };
    let reg = msg("registration")["msg"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let nodes = msg("node")["results"]
        .as_array()
        .expect("node results")
        .iter()
        .map(|r| r["msg"].as_str().unwrap_or("").to_string())
        .collect();
    (reg, nodes)
}

fn all_nodes(c: &Cluster, state: &str) -> Vec<String> {
    (1..=3)
        .flat_map(|i| PORTS.map(|p| format!("{}:{p} {state}", c.ip(i))))
        .collect()
}

#[test]
fn arcus_playbooks_on_real_hosts() {
    let c = Cluster::up("dtc", 3);
    let hosts: Vec<String> = (1..=3).map(|i| c.host(i)).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let zk = (1..=3)
        .map(|i| format!("{}:2181", c.ip(i)))
        .collect::<Vec<_>>()
        .join(",");
    let mut members = String::new();
    for i in 1..=3 {
        members.push_str(&format!(
            "{} ansible_host={ip} arcus_ip={ip} zk_id={i}\n",
            c.host(i),
            ip = c.ip(i)
        ));
    }
    let vars = format!(
        "[all:vars]\n{}arcus_zk_list={zk}\narcus_zk_heap_mb=128\n",
        c.conn_vars()
    );
    let inv = write(
        dir.path(),
        "arcus.ini",
        &format!("[zookeeper]\n{members}[arcus_cache:children]\nzookeeper\n{vars}"),
    );
    let cloud_file = write(
        dir.path(),
        "cloud.json",
        &json!({"arcus_cloud": cloud(&c)}).to_string(),
    );
    let ev = format!("@{cloud_file}");

    // --check on fresh hosts: changes predicted, none made.
    let before: Vec<String> = hosts.iter().map(|h| dx_ok(h, SNAPSHOT)).collect();
    let r = run_ok(SITE, &inv, &["-e", &ev, "--check"]);
    for h in &hosts {
        assert!(changed(&r, h) >= 5, "{h}: check predicted too little: {r}");
    }
    for (h, snap) in hosts.iter().zip(&before) {
        assert_eq!(&dx_ok(h, SNAPSHOT), snap, "{h}: --check changed the host");
    }

    // The real run (AR-03..AR-10).
    let r = run_ok(SITE, &inv, &["-e", &ev]);
    for h in &hosts {
        assert!(changed(&r, h) >= 8, "{h}: {r}");
    }
    // AR-05/07: zoo.cfg from the group, myid per host, one leader.
    let mut modes = Vec::new();
    for i in 1..=3 {
        let cfg = dx_ok(
            &c.host(i),
            "cat /etc/zookeeper/conf/zoo.cfg /var/lib/zookeeper/myid",
        );
        for j in 1..=3 {
            assert!(
                cfg.contains(&format!("server.{j}={}:2888:3888", c.ip(j))),
                "{cfg}"
            );
        }
        assert!(cfg.ends_with(&format!("\n{i}\n")), "{cfg}");
        let s = srvr(&c.ip(i));
        modes.push(
            s.lines()
                .find_map(|l| l.strip_prefix("Mode: "))
                .unwrap_or("?")
                .to_string(),
        );
    }
    modes.sort();
    assert_eq!(modes, ["follower", "follower", "leader"]);
    // AR-08/09: the znodes, read by kazoo.
    let tree = zk_tree(&zk, "/arcus");
    let got: Value = serde_json::from_str(&tree["/arcus/cache_list/test-cloud"]).expect("JSON");
    assert_eq!(got, cloud(&c));
    assert_eq!(tree["/arcus/client_list/test-cloud"], "");
    let mappings: Vec<&String> = tree
        .keys()
        .filter(|k| k.starts_with("/arcus/cache_server_mapping/") && k.ends_with("/test-cloud"))
        .collect();
    assert_eq!(mappings.len(), 6, "{tree:?}");
    let m2: Value =
        serde_json::from_str(&tree[&format!("/arcus/cache_server_mapping/{}:11212", c.ip(2))])
            .expect("JSON");
    assert_eq!(
        m2,
        json!({"port": "11212", "threads": "4", "memlimit": "100", "connections": "1000"})
    );
    // AR-04: the rendered configuration file.
    let conf: Value =
        serde_json::from_str(&dx_ok(&c.host(3), "cat /etc/arcus/test-cloud.json")).expect("JSON");
    assert_eq!(conf, cloud(&c));
    // AR-10: every node answers `stats` with its limits.
    for i in 1..=3 {
        for p in PORTS {
            let s = stats(&c.ip(i), p);
            let threads = if i == 2 { 4 } else { 6 };
            for want in [
                format!("STAT threads {threads}\r\n"),
                "STAT limit_maxbytes 104857600\r\n".to_string(),
                "STAT max_connections 1000\r\n".to_string(),
            ] {
                assert!(s.contains(&want), "{}:{p}: no `{want}` in {s}", c.ip(i));
            }
        }
    }

    // Converged: a second run changes nothing.
    let r = run_ok(SITE, &inv, &["-e", &ev]);
    for h in &hosts {
        assert_eq!(changed(&r, h), 0, "{h}: second run: {r}");
    }

    // AR-11: list.yml, online.
    let (reg, nodes) = list(&inv, &ev);
    assert!(reg.starts_with("test-cloud registered"), "{reg}");
    assert_eq!(nodes, all_nodes(&c, "online"));

    // AR-12: stop the nodes; list says offline; a second stop changes nothing.
    let stop = "playbooks/arcus/stop.yml";
    let r = run_ok(stop, &inv, &["-e", &ev]);
    for h in &hosts {
        assert_eq!(changed(&r, h), 1, "{h}: {r}");
    }
    assert_eq!(list(&inv, &ev).1, all_nodes(&c, "offline"));
    assert_eq!(stats(&c.ip(1), "11211"), "");
    let r = run_ok(stop, &inv, &["-e", &ev]);
    for h in &hosts {
        assert_eq!(changed(&r, h), 0, "{h}: {r}");
    }

    // AR-12: unregister; only the /arcus structure stays.
    let unreg = "playbooks/arcus/unregister.yml";
    let r = run_ok(unreg, &inv, &["-e", &ev]);
    assert!(changed(&r, &c.host(1)) >= 3, "{r}");
    let left: Vec<String> = zk_tree(&zk, "/arcus").into_keys().collect();
    assert_eq!(
        left,
        [
            "/arcus",
            "/arcus/cache_list",
            "/arcus/cache_server_mapping",
            "/arcus/client_list"
        ]
    );
    let r = run_ok(unreg, &inv, &["-e", &ev]);
    assert_eq!(changed(&r, &c.host(1)), 0, "{r}");
    assert!(list(&inv, &ev).0.contains("not registered"));

    // AR-12: ZooKeeper stopped too, then restart.yml brings everything back.
    run_ok(stop, &inv, &["-e", &ev, "-e", "arcus_stop_zookeeper=true"]);
    for i in 1..=3 {
        assert!(
            !srvr(&c.ip(i)).contains("Mode:"),
            "zookeeper still serves on {}",
            c.ip(i)
        );
    }
    let restart = "playbooks/arcus/restart.yml";
    let r = run_ok(restart, &inv, &["-e", &ev]);
    for h in &hosts {
        // zookeeper started, the two cache nodes started
        assert_eq!(changed(&r, h), 2, "{h}: {r}");
    }
    assert_eq!(list(&inv, &ev).1, all_nodes(&c, "online"));
    let r = run_ok(restart, &inv, &["-e", &ev]);
    for h in &hosts {
        assert_eq!(changed(&r, h), 0, "{h}: {r}");
    }

    // AR-13: no `zookeeper` group; the same site.yml registers the cloud in
    // the existing ensemble and touches no ZooKeeper member.
    let mut cache_only = String::from("[arcus_cache]\n");
    cache_only.push_str(&members);
    let inv13 = write(
        dir.path(),
        "existing-zk.ini",
        &format!("{cache_only}{vars}"),
    );
    let o = drover(&["run", SITE, "-i", &inv13, "-e", &ev, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let zk_tasks: Vec<Value> = done_events(&o)
        .into_iter()
        .filter(|e| {
            [
                "zookeeper installed",
                "zoo.cfg with every member",
                "every member serves under one leader",
            ]
            .contains(&e["task"].as_str().unwrap_or(""))
        })
        .collect();
    assert!(
        !zk_tasks.is_empty() && zk_tasks.iter().all(|e| e["status"] == "skipped"),
        "{zk_tasks:?}"
    );
    let got: Value = serde_json::from_str(&zk_tree(&zk, "/arcus")["/arcus/cache_list/test-cloud"])
        .expect("JSON");
    assert_eq!(got, cloud(&c));
    let r = run_ok(SITE, &inv13, &["-e", &ev]);
    for h in &hosts {
        assert_eq!(changed(&r, h), 0, "{h}: {r}");
    }
}
