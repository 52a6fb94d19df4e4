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
        let _ = sh("bash", &["tests/hosts/cluster.sh", "down", "--name", name]);
        let count = n.to_string();
        let mut args = vec!["tests/hosts/cluster.sh", "up", &count, "--name", name];
        args.extend(extra);
        let o = sh("bash", &args);
        assert!(o.status.success(), "cluster.sh up failed: {}", text(&o));
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
