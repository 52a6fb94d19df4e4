//! Helpers of the shipped-playbook tests (`tests/playbook_*.rs`): bring up a
//! test cluster with `tests/hosts/cluster.sh`, read its addresses, run the
//! built `drover` binary with `--json` and read the recap, and look at hosts
//! with `docker exec` / OpenSSH for the VMs (the independent check). Needs
//! Docker and root.
#![allow(dead_code)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn sh(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e} (the cluster tests need Docker)"))
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A cluster `name` of `n` containers, brought up fresh; `down` on drop.
pub struct Cluster {
    pub name: String,
    pub state: PathBuf,
    /// container name → address
    pub addr: BTreeMap<String, String>,
    /// VM name (vm1..) → (ssh port on 127.0.0.1, address on the cluster network)
    pub vms: BTreeMap<String, (String, String)>,
}

impl Cluster {
    pub fn up(name: &str, n: usize) -> Cluster {
        Cluster::up_with(name, n, &[])
    }

    /// `cluster.sh up N --name NAME EXTRA...` (e.g. `--vm 2`, `--net-sysctl`).
    pub fn up_with(name: &str, n: usize, extra: &[&str]) -> Cluster {
        up_fresh(name, n, extra);
        let state = root().join("tests/hosts/.state").join(name);
        let hosts = std::fs::read_to_string(state.join("hosts")).expect("cluster hosts file");
        let addr = hosts
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(h, a)| (h.to_string(), a.trim().to_string()))
            .collect();
        // .state/NAME/vm: `vmI ansible_host=127.0.0.1 ansible_port=P vm_addr=A`
        let vms = std::fs::read_to_string(state.join("vm"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let host = w.next()?.to_string();
                let kv: BTreeMap<&str, &str> = w.filter_map(|x| x.split_once('=')).collect();
                let port = kv.get("ansible_port")?.to_string();
                let a = kv.get("vm_addr").map(|a| a.to_string()).unwrap_or_default();
                Some((host, (port, a)))
            })
            .collect();
        Cluster {
            name: name.to_string(),
            state,
            addr,
            vms,
        }
    }

    /// The network's first three octets ("10.231.3"), for extra addresses.
    pub fn net(&self) -> String {
        let s = std::fs::read_to_string(self.state.join("subnet")).expect("subnet file");
        let a = s.split('/').next().expect("subnet").trim();
        a.rsplit_once('.').expect("dotted subnet").0.to_string()
    }

    /// Inventory line of VM `vm` (reached on its 127.0.0.1 ssh port).
    pub fn vm_line(&self, vm: &str) -> String {
        format!(
            "{vm} ansible_host=127.0.0.1 ansible_port={}",
            self.vms[vm].0
        )
    }

    /// Address of VM `vm` on the cluster network.
    pub fn vm_addr(&self, vm: &str) -> String {
        self.vms[vm].1.clone()
    }

    /// OpenSSH (not drover) to VM `vm` as root: (exit code, stdout + stderr).
    pub fn vx(&self, vm: &str, cmd: &str) -> (i32, String) {
        let key = self.state.join("../id_ed25519");
        let kh = format!(
            "UserKnownHostsFile={}",
            self.state.join("known_hosts").display()
        );
        let o = sh(
            "ssh",
            &[
                "-q",
                "-i",
                &key.display().to_string(),
                "-o",
                &kh,
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-p",
                &self.vms[vm].0,
                "root@127.0.0.1",
                cmd,
            ],
        );
        (o.status.code().unwrap_or(-1), text(&o))
    }

    /// [`Self::vx`] that must succeed; its output.
    pub fn vx_ok(&self, vm: &str, cmd: &str) -> String {
        let (rc, out) = self.vx(vm, cmd);
        assert_eq!(rc, 0, "{vm}: `{cmd}` failed: {out}");
        out
    }

    pub fn host(&self, i: usize) -> String {
        format!("{}{i}", self.name)
    }

    pub fn ip(&self, i: usize) -> String {
        self.addr[&self.host(i)].clone()
    }

    /// Connection variables for an inventory `[...:vars]` section.
    pub fn conn_vars(&self) -> String {
        let key = std::fs::canonicalize(self.state.join("../id_ed25519")).expect("client key");
        format!(
            "ansible_user=root\nansible_ssh_private_key_file={}\ndrover_known_hosts={}\n",
            key.display(),
            self.state.join("known_hosts").display()
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = sh(
            "bash",
            &["tests/hosts/cluster.sh", "down", "--name", &self.name],
        );
    }
}

pub fn drover(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("run drover")
}

/// `docker exec C sh -c CMD`: (exit code, stdout + stderr).
pub fn dx(c: &str, cmd: &str) -> (i32, String) {
    let o = sh("docker", &["exec", c, "sh", "-c", cmd]);
    (o.status.code().unwrap_or(-1), text(&o))
}

/// `docker exec` that must succeed; its stdout.
pub fn dx_ok(c: &str, cmd: &str) -> String {
    let o = sh("docker", &["exec", c, "sh", "-c", cmd]);
    assert!(o.status.success(), "{c}: `{cmd}` failed: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn recap(o: &Output) -> Value {
    let out = String::from_utf8_lossy(&o.stdout);
    let last = out
        .lines()
        .rev()
        .find(|l| l.starts_with("{\"recap\""))
        .unwrap_or_else(|| panic!("no recap in {}", text(o)));
    serde_json::from_str::<Value>(last).expect("recap JSON")["recap"].clone()
}

/// Run `drover run PB -i INV --json EXTRA`; exit code 0; the recap.
pub fn run_ok(pb: &str, inv: &str, extra: &[&str]) -> Value {
    let mut a = vec!["run", pb, "-i", inv, "--json"];
    a.extend(extra);
    let o = drover(&a);
    assert_eq!(o.status.code(), Some(0), "{pb} {extra:?}: {}", text(&o));
    recap(&o)
}

pub fn changed(r: &Value, host: &str) -> u64 {
    r[host]["changed"]
        .as_u64()
        .unwrap_or_else(|| panic!("no recap for {host}: {r}"))
}

pub fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write test file");
    p.display().to_string()
}

/// Bring cluster `name` of `n` containers up fresh, once per test process
/// (later calls return at once); its state dir. Torn down by run-all.sh.
pub fn cluster(name: &str, n: usize) -> PathBuf {
    static UP: std::sync::OnceLock<std::sync::Mutex<Vec<String>>> = std::sync::OnceLock::new();
    let lock = UP.get_or_init(Default::default);
    let mut up = lock.lock().unwrap_or_else(|e| e.into_inner());
    if !up.iter().any(|u| u == name) {
        up_fresh(name, n, &[]);
        up.push(name.to_string());
    }
    root().join("tests/hosts/.state").join(name)
}

/// `cluster.sh down` then `up N EXTRA...`: cluster `name` brought up fresh.
fn up_fresh(name: &str, n: usize, extra: &[&str]) {
    let _ = sh("bash", &["tests/hosts/cluster.sh", "down", "--name", name]);
    let count = n.to_string();
    let mut args = vec!["tests/hosts/cluster.sh", "up", &count, "--name", name];
    args.extend(extra);
    let o = sh("bash", &args);
    assert!(o.status.success(), "cluster.sh up failed: {}", text(&o));
}

/// Every `task_done` event of a `--json` run.
pub fn done_events(o: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "task_done")
        .collect()
}

/// (task, host, number of changes) of every changed task, in order: what a
/// `--check` run predicts and what the real run then does.
pub fn changed_tasks(o: &Output) -> Vec<(String, String, usize)> {
    done_events(o)
        .iter()
        .filter(|v| v["status"] == "changed")
        .map(|v| {
            (
                v["task"].as_str().unwrap_or("").to_string(),
                v["host"].as_str().unwrap_or("").to_string(),
                v["changes"].as_array().map(Vec::len).unwrap_or(0),
            )
        })
        .collect()
}

/// The Python of `.venv` with `kazoo` (ZooKeeper's Python client, from
/// PyPI): the independent ZooKeeper client of the tests. Installed here
/// when missing (tests/run-all.sh installs it too); never skipped.
pub fn kazoo_python() -> String {
    let py = root().join(".venv/bin/python");
    let ok = |p: &Path| {
        Command::new(p)
            .args(["-c", "import kazoo"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    if !ok(&py) {
        if !py.exists() {
            let o = sh("python3", &["-m", "venv", ".venv"]);
            assert!(o.status.success(), "python3 -m venv .venv: {}", text(&o));
        }
        let o = sh(".venv/bin/pip", &["install", "-q", "kazoo"]);
        assert!(o.status.success(), "pip install kazoo: {}", text(&o));
    }
    py.display().to_string()
}

/// kazoo: print the subtree under argv[2] as JSON {path: data}, `{}` when
/// it does not exist; argv[1] is the connect string.
const ZK_TREE: &str = r#"
import json, sys
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1], timeout=15)
zk.start(timeout=30)
out = {}
def walk(p):
    data, _ = zk.get(p)
    out[p] = data.decode()
    for c in sorted(zk.get_children(p)):
        walk(p.rstrip("/") + "/" + c)
if zk.exists(sys.argv[2]):
    walk(sys.argv[2])
zk.stop()
print(json.dumps(out))
"#;

/// The znodes under `path` and their data, read by kazoo from the
/// controller (`hosts`: `ip:port,ip:port`).
pub fn zk_tree(hosts: &str, path: &str) -> BTreeMap<String, String> {
    let o = Command::new(kazoo_python())
        .args(["-c", ZK_TREE, hosts, path])
        .output()
        .expect("run kazoo");
    assert!(o.status.success(), "kazoo: {}", text(&o));
    serde_json::from_slice(&o.stdout).expect("kazoo JSON")
}

/// kazoo: create `path` (and parents) holding `data`.
pub fn zk_create(hosts: &str, path: &str, data: &str) {
    let py = "import sys\nfrom kazoo.client import KazooClient\nzk = KazooClient(hosts=sys.argv[1], timeout=15)\nzk.start(timeout=30)\nzk.create(sys.argv[2], sys.argv[3].encode(), makepath=True)\nzk.stop()\n";
    let o = Command::new(kazoo_python())
        .args(["-c", py, hosts, path, data])
        .output()
        .expect("run kazoo");
    assert!(o.status.success(), "kazoo create {path}: {}", text(&o));
}

/// ZooKeeper's `srvr` answer of `ip:2181`, asked from the controller.
pub fn srvr(ip: &str) -> String {
    use std::io::{Read, Write};
    let addr: std::net::SocketAddr = format!("{ip}:2181").parse().expect("address");
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(5))
    else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    let _ = s.write_all(b"srvr");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}
