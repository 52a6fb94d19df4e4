//! Helpers of the VM tests (`tests/cluster_kernel.rs`): an OpenSSH client
//! to the cluster's VM (independent of drover), the built `drover` binary
//! run with `--json` (through `support/playbook.rs`), and small playbooks
//! written to a temp dir.
#![allow(dead_code)]

// The generic helpers come from the shared `support/playbook.rs`, which the
// test crate declares as `support`.
pub use crate::support::{drover, recap, root, sh, text};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Vm {
    pub state: PathBuf,
    pub port: String,
}

impl Vm {
    /// Run a shell line on the VM as root over OpenSSH (independent of drover).
    pub fn ssh(&self, script: &str) -> Output {
        let st = self.state.parent().unwrap();
        Command::new("ssh")
            .args(["-i", &st.join("id_ed25519").display().to_string()])
            .args([
                "-o",
                &format!(
                    "UserKnownHostsFile={}",
                    self.state.join("known_hosts").display()
                ),
            ])
            .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
            .args(["-o", "ConnectTimeout=60", "-p", &self.port])
            .args(["root@127.0.0.1", script])
            .output()
            .expect("run ssh")
    }
    pub fn out(&self, script: &str) -> String {
        let o = self.ssh(script);
        assert!(o.status.success(), "ssh `{script}` failed: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

pub fn play(dir: &Path, name: &str, hosts: &str, tasks: &str) -> String {
    let p = dir.join(name);
    std::fs::write(
        &p,
        format!("- hosts: {hosts}\n  gather_facts: no\n  tasks:\n{tasks}"),
    )
    .unwrap();
    p.display().to_string()
}

/// Run a playbook; assert its exit code and the host's `changed` count.
pub fn run(pb: &str, inv: &str, extra: &[&str], host: &str, code: i32, changed: u64) -> Output {
    let mut a = vec!["run", pb, "-i", inv, "--json"];
    a.extend(extra);
    let o = drover(&a);
    assert_eq!(o.status.code(), Some(code), "{}", text(&o));
    assert_eq!(recap(&o)[host]["changed"], changed, "{host}: {}", text(&o));
    o
}

/// `ipvsadm -Ln` lines with runs of blanks collapsed, version line dropped.
pub fn norm_lines(s: &str) -> Vec<String> {
    s.lines()
        .filter(|l| !l.starts_with("IP Virtual Server") && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}
