//! Helpers of the shipped-playbook tests (`tests/playbook_*.rs`): bring up a
//! test cluster with `tests/hosts/cluster.sh`, read its addresses, run the
//! built `drover` binary with `--json` and read the recap, and look at hosts
//! with `docker exec` (the independent check). Needs Docker and root.
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
}

impl Cluster {
    pub fn up(name: &str, n: usize) -> Cluster {
        let _ = sh("bash", &["tests/hosts/cluster.sh", "down", "--name", name]);
        let o = sh(
            "bash",
            &[
                "tests/hosts/cluster.sh",
                "up",
                &n.to_string(),
                "--name",
                name,
            ],
        );
        assert!(o.status.success(), "cluster.sh up failed: {}", text(&o));
        let state = root().join("tests/hosts/.state").join(name);
        let hosts = std::fs::read_to_string(state.join("hosts")).expect("cluster hosts file");
        let addr = hosts
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(h, a)| (h.to_string(), a.trim().to_string()))
            .collect();
        Cluster {
            name: name.to_string(),
            state,
            addr,
        }
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
        let _ = sh("bash", &["tests/hosts/cluster.sh", "down", "--name", name]);
        let o = sh(
            "bash",
            &[
                "tests/hosts/cluster.sh",
                "up",
                &n.to_string(),
                "--name",
                name,
            ],
        );
        assert!(o.status.success(), "cluster.sh up failed: {}", text(&o));
        up.push(name.to_string());
    }
    root().join("tests/hosts/.state").join(name)
}
