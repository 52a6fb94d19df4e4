//! Whole-inventory unit tests: patterns, variable precedence (inventory
//! files, `group_vars`/`host_vars` beside the inventory and the playbook),
//! magic variables, the implicit localhost and error messages.

use super::{Inventory, InventoryError};
use serde_json::json;
use std::path::{Path, PathBuf};

fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

const INI: &str = "\
lone
[web]
web[1:3]
[db]
db1
db2
web2
[prod:children]
web
db
[empty]
";

fn sample() -> (tempfile::TempDir, Inventory) {
    let t = tempfile::tempdir().unwrap();
    let f = write(t.path(), "hosts.ini", INI);
    let inv = Inventory::load(&[f]).unwrap();
    (t, inv)
}

#[test]
fn patterns_union_intersection_exclusion() {
    let (_t, inv) = sample();
    assert_eq!(inv.hosts(), ["lone", "web1", "web2", "web3", "db1", "db2"]);
    assert_eq!(
        inv.select("web:db").unwrap(),
        ["web1", "web2", "web3", "db1", "db2"]
    );
    assert_eq!(
        inv.select("db,web").unwrap(),
        ["db1", "db2", "web2", "web1", "web3"]
    );
    assert_eq!(inv.select("web:&db").unwrap(), ["web2"]);
    assert_eq!(inv.select("prod:!db").unwrap(), ["web1", "web3"]);
    assert_eq!(inv.select("!prod").unwrap(), ["lone"]);
    assert_eq!(inv.select("&web").unwrap(), ["web1", "web2", "web3"]);
    assert_eq!(inv.select("db1").unwrap(), ["db1"]);
    assert_eq!(inv.select("empty").unwrap(), Vec::<String>::new());
}

#[test]
fn patterns_globs_regex_subscripts() {
    let (_t, inv) = sample();
    assert_eq!(inv.select("web*").unwrap(), ["web1", "web2", "web3"]);
    assert_eq!(inv.select("[dw]*1").unwrap(), ["web1", "db1"]);
    assert_eq!(inv.select("db[!1]").unwrap(), ["db2"]);
    // A trailing `[x-y]` is an (old-style) subscript, not a glob class.
    assert_eq!(inv.select("db[0-9]").unwrap(), ["db1", "db2", "web2"]);
    assert_eq!(inv.select("~(web|db)1").unwrap(), ["web1", "db1"]);
    assert_eq!(inv.select("web[0]").unwrap(), ["web1"]);
    assert_eq!(inv.select("web[-1]").unwrap(), ["web3"]);
    assert_eq!(inv.select("web[0:1]").unwrap(), ["web1", "web2"]);
    assert_eq!(inv.select("web[1:]").unwrap(), ["web2", "web3"]);
    assert_eq!(inv.select("*").unwrap(), inv.hosts());
    assert!(matches!(
        inv.select("web[7]"),
        Err(InventoryError::BadSubscript { .. })
    ));
    let e = inv.select("~web(").unwrap_err();
    assert!(
        matches!(e, InventoryError::BadPattern { .. }) && e.to_string().contains("~web("),
        "{e}"
    );
}

#[test]
fn unknown_patterns_are_errors_naming_the_part() {
    let (_t, inv) = sample();
    for (pattern, part) in [
        ("nope", "nope"),
        ("web:nope", "nope"),
        ("web:!gone", "gone"),
        ("zz*", "zz*"),
    ] {
        match inv.select(pattern) {
            Err(InventoryError::NoMatch { pattern: p }) => assert_eq!(p, part),
            other => panic!("{pattern}: {other:?}"),
        }
    }
    let empty = Inventory::load(&[]).unwrap();
    assert_eq!(empty.select("all").unwrap(), Vec::<String>::new());
    assert!(empty.select("web").is_err());
}

#[test]
fn implicit_localhost() {
    let inv = Inventory::localhost_default();
    assert!(inv.hosts().is_empty());
    assert_eq!(inv.select("all").unwrap(), Vec::<String>::new());
    assert_eq!(inv.select("localhost").unwrap(), ["localhost"]);
    assert_eq!(inv.host_vars("localhost")["ansible_connection"], "local");
    assert!(!inv.contains_host("localhost") && !inv.contains_host("web1"));
    assert!(inv.group_names("localhost").is_empty());
    assert!(inv.groups_map()["all"].is_empty());
    // An explicit 127.0.0.1 answers to `localhost`, as in ansible-core.
    let t = tempfile::tempdir().unwrap();
    let f = write(t.path(), "h", "[g]\n127.0.0.1 a=1\n");
    let inv = Inventory::load(&[f]).unwrap();
    assert_eq!(inv.select("localhost").unwrap(), ["127.0.0.1"]);
    assert_eq!(inv.host_json("localhost").unwrap(), json!({"a": 1}));
    assert!(inv.contains_host("127.0.0.1") && !inv.contains_host("localhost"));
}

#[test]
fn magic_variables() {
    let (t, inv) = sample();
    assert_eq!(inv.group_names("web2"), ["db", "prod", "web"]);
    assert_eq!(inv.group_names("lone"), ["ungrouped"]);
    let groups = inv.groups_map();
    assert_eq!(groups["prod"], ["web1", "web2", "web3", "db1", "db2"]);
    assert_eq!(groups["ungrouped"], ["lone"]);
    assert!(groups["empty"].is_empty());
    let m = inv.magic_vars("web1");
    assert_eq!(m["inventory_hostname_short"], "web1");
    assert_eq!(
        m["inventory_file"],
        json!(t.path().join("hosts.ini").display().to_string())
    );
    assert_eq!(
        inv.magic_vars("10.0.0.1")["inventory_hostname_short"],
        "10.0.0.1"
    );
    assert_eq!(inv.magic_vars("a.b.c")["inventory_hostname_short"], "a");
}

#[test]
fn precedence_of_every_layer() {
    let t = tempfile::tempdir().unwrap();
    let inv_dir = t.path().join("inv");
    let f = write(
        &inv_dir,
        "hosts",
        "[child]\nh1 v_host=inline\n[child:vars]\nv_child=child\nv_parent=child\n\
         [parent:children]\nchild\n[parent:vars]\nv_parent=parent\nv_all=parent\n\
         [all:vars]\nv_all=all\nv_gv_all=all\nv_gv=all\nv_host=all\n",
    );
    write(
        &inv_dir,
        "group_vars/all.yml",
        "v_gv_all: inv_gv_all\nv_child: inv_gv_all\nv_pb_all: inv\n",
    );
    write(
        &inv_dir,
        "group_vars/child.yml",
        "v_gv: inv_gv_child\nv_pb_group: inv\n",
    );
    write(
        &inv_dir,
        "host_vars/h1.yml",
        "v_host: inv_host_vars\nv_pb_host: inv\n",
    );
    let pb = t.path().join("pb");
    write(
        &pb,
        "group_vars/all.yml",
        "v_pb_all: playbook\nv_gv: pb_all\n",
    );
    write(&pb, "group_vars/child.yaml", "v_pb_group: playbook\n");
    write(&pb, "host_vars/h1", "v_pb_host: playbook\n");
    let mut inv = Inventory::load(&[f]).unwrap();
    let v = inv.host_vars("h1");
    assert_eq!(
        v["v_child"], "inv_gv_all",
        "group_vars/all beats inventory group vars"
    );
    assert_eq!(v["v_parent"], "child", "child group beats parent");
    assert_eq!(v["v_all"], "parent", "any group beats all");
    assert_eq!(v["v_gv_all"], "inv_gv_all");
    assert_eq!(v["v_gv"], "inv_gv_child");
    assert_eq!(v["v_host"], "inv_host_vars");
    inv.add_playbook_vars_dir(&pb).unwrap();
    let v = inv.host_vars("h1");
    assert_eq!(v["v_pb_all"], "playbook");
    assert_eq!(
        v["v_gv"], "inv_gv_child",
        "inventory group_vars/<group> beats playbook group_vars/all"
    );
    assert_eq!(v["v_pb_group"], "playbook");
    assert_eq!(v["v_pb_host"], "playbook");
}

#[test]
fn group_priority_and_depth_order() {
    let t = tempfile::tempdir().unwrap();
    let f = write(t.path(), "h.yml", "a:\n  hosts: {h: }\n  vars: {x: a, ansible_group_priority: 3}\nb:\n  hosts: {h: }\n  vars: {x: b}\n");
    let inv = Inventory::load(&[f]).unwrap();
    assert_eq!(
        inv.host_vars("h")["x"],
        "a",
        "higher priority wins at the same depth"
    );
    assert!(!inv.host_vars("h").contains_key("ansible_group_priority"));
}

#[test]
fn host_list_source() {
    let inv = Inventory::load(&[PathBuf::from("a.example.com, b:2222,")]).unwrap();
    assert_eq!(inv.hosts(), ["a.example.com", "b"]);
    assert_eq!(inv.host_vars("b")["ansible_port"], 2222);
}

#[test]
fn errors_name_the_file_line_and_value() {
    let t = tempfile::tempdir().unwrap();
    let missing = t.path().join("nope.ini");
    let e = Inventory::load(std::slice::from_ref(&missing))
        .unwrap_err()
        .to_string();
    assert!(e.contains(&missing.display().to_string()), "{e}");
    let f = write(t.path(), "bad.ini", "[web]\nweb1\n[web:kids]\n");
    let e = Inventory::load(&[f]).unwrap_err().to_string();
    assert!(e.contains("bad.ini:3:") && e.contains("kids"), "{e}");
    let f = write(t.path(), "bad.yml", "all:\n  hosts: [a\n");
    let e = Inventory::load(&[f]).unwrap_err().to_string();
    assert!(e.contains("bad.yml") && e.contains("line"), "{e}");
    let d = t.path().join("d");
    let f = write(&d, "hosts", "[web]\nw1\n");
    write(&d, "group_vars/web.yml", "- not a mapping\n");
    let e = Inventory::load(&[f]).unwrap_err().to_string();
    assert!(e.contains("web.yml") && e.contains("mapping"), "{e}");
    let (_t, inv) = sample();
    let e = inv.host_json("web").unwrap_err().to_string();
    assert!(e.contains("\"web\"") && e.contains('3'), "{e}");
    assert!(inv
        .graph(Some("nogroup"))
        .unwrap_err()
        .to_string()
        .contains("nogroup"));
}

#[test]
fn graph_and_list_views() {
    let (_t, inv) = sample();
    let g = inv.graph(Some("prod")).unwrap();
    assert_eq!(g, "@prod:\n  |--@web:\n  |  |--web1\n  |  |--web2\n  |  |--web3\n  |--@db:\n  |  |--db1\n  |  |--db2\n  |  |--web2");
    let l = inv.list_json();
    assert_eq!(l["all"]["children"], json!(["ungrouped", "prod", "empty"]));
    assert!(l.get("empty").is_none());
    assert_eq!(l["_meta"]["hostvars"], json!({}));
}
