//! Fixtures of `zk_node`: arguments + an observed znode → the planned
//! changes and the result.

use super::*;

use crate::test_ctx::NoCtx;

fn action(v: Value) -> Result<Box<dyn Action>, ModuleError> {
    let Value::Object(m) = v else { panic!("args") };
    ZkNodeModule.prepare(&m, &NoCtx)
}

fn targets(a: &dyn Action) -> Vec<String> {
    a.remote_probes()[0]
        .targets()
        .iter()
        .map(Endpoint::to_string)
        .collect()
}

#[test]
fn servers_default_to_the_host_or_come_from_hosts() {
    let a = action(json!({"path": "/a"})).unwrap();
    assert_eq!(targets(a.as_ref()), ["127.0.0.1:2181"]);
    let a = action(json!({"path": "/a", "port": 2182})).unwrap();
    assert_eq!(targets(a.as_ref()), ["127.0.0.1:2182"]);
    let a = action(json!({"path": "/a", "hosts": "10.0.0.1:2181,10.0.0.2"})).unwrap();
    assert_eq!(targets(a.as_ref()), ["10.0.0.1:2181", "10.0.0.2:2181"]);
    let a = action(json!({"path": "/a", "hosts": ["zk1:2200", "[::1]:2181"]})).unwrap();
    assert_eq!(targets(a.as_ref()), ["zk1:2200", "::1:2181"]);
    for bad in ["zk1:x", "-oProxy", "zk1:0", "a b:1"] {
        let e = action(json!({"path": "/a", "hosts": [bad]})).err().unwrap();
        assert!(e.to_string().contains(bad), "{bad}: {e}");
    }
}

fn observed(st: NodeState) -> Vec<Observed> {
    vec![Observed::Remote(serde_json::to_value(st).unwrap())]
}

#[test]
fn result_lists_children_and_plans_nothing_when_as_wanted() {
    let a = action(json!({"path": "/arcus/cache_server_mapping"})).unwrap();
    let st = NodeState {
        exists: true,
        version: 0,
        acl: vec![DEFAULT_ACL.into()],
        children: vec!["10.0.0.1:11211".into(), "10.0.0.9:11211".into()],
        ..Default::default()
    };
    let p = a.plan(&observed(st)).unwrap();
    assert!(p.changes.is_empty());
    assert_eq!(
        p.result["children"],
        json!(["10.0.0.1:11211", "10.0.0.9:11211"])
    );
    let p = a.plan(&observed(NodeState::default())).unwrap();
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.result["children"], json!([]));
}

#[test]
fn a_mapping_value_is_compact_json_and_set_in_place() {
    let a = action(json!({"path": "/m", "value": {"port": "11211", "threads": "6"}})).unwrap();
    let st = NodeState {
        exists: true,
        value: "{\"port\":\"11211\",\"threads\":\"4\"}".into(),
        version: 3,
        ..Default::default()
    };
    let p = a.plan(&observed(st.clone())).unwrap();
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].summary, "set znode /m (version 3)");
    let same = NodeState {
        value: "{\"port\":\"11211\",\"threads\":\"6\"}".into(),
        ..st
    };
    assert!(a.plan(&observed(same)).unwrap().changes.is_empty());
}
