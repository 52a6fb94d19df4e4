//! The shipped ssh-keys playbook (`playbooks/ssh-keys`, steps AR-01/02 of
//! `playbooks/STEPS.md`) against two real test hosts (cluster `dta`): the
//! admin key is generated once on the controller (never overwritten), lands
//! in root's authorized_keys (700/600) on every host, and an independent
//! `ssh` with that key alone logs in — which it could not before the key was
//! distributed. Needs Docker and root; fails (never skips) without them.

#[path = "support/playbook.rs"]
mod support;

use std::process::Command;
use support::*;

const PB: &str = "playbooks/ssh-keys/site.yml";

/// `ssh` with only `key` (no agent, no other identity, known host keys only).
fn login(key: &str, known_hosts: &str, ip: &str) -> (bool, String) {
    let o = Command::new("ssh")
        .args([
            "-i",
            key,
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            "-o",
            &format!("UserKnownHostsFile={known_hosts}"),
            "-o",
            "StrictHostKeyChecking=yes",
            &format!("root@{ip}"),
            "hostname",
        ])
        .output()
        .expect("run ssh");
    (o.status.success(), text(&o))
}

#[test]
fn ssh_keys_playbook_on_real_hosts() {
    let c = Cluster::up("dta", 2);
    let hosts = [c.host(1), c.host(2)];
    let dir = tempfile::tempdir().expect("tempdir");
    let key_dir = dir.path().join("admin");
    let key = key_dir.join("id_admin").display().to_string();
    let kh = c.state.join("known_hosts").display().to_string();
    let inv = format!(
        "[arcus]\n{} ansible_host={}\n{} ansible_host={}\n[all:vars]\n{}\
         admin_key_dir={}\nadmin_key_name=id_admin\nadmin_key_comment=arcus-admin\n\
         admin_user=root\nadmin_known_hosts={kh}\n",
        hosts[0],
        c.ip(1),
        hosts[1],
        c.ip(2),
        c.conn_vars(),
        key_dir.display()
    );
    let inv = write(dir.path(), "keys.ini", &inv);
    let keys_before: Vec<String> = hosts
        .iter()
        .map(|h| dx_ok(h, "cat /root/.ssh/authorized_keys"))
        .collect();

    // --check: the key would be made; nothing is created anywhere.
    let r = run_ok(PB, &inv, &["--check"]);
    assert_eq!(changed(&r, "localhost"), 2, "{r}");
    assert!(!key_dir.exists(), "--check created {}", key_dir.display());
    for (h, b) in hosts.iter().zip(&keys_before) {
        assert_eq!(&dx_ok(h, "cat /root/.ssh/authorized_keys"), b, "{h}");
    }

    // AR-01 alone: the key pair exists (dir 700), but it logs in nowhere yet.
    let r = run_ok(PB, &inv, &["--tags", "AR-01"]);
    assert_eq!(changed(&r, "localhost"), 2, "{r}");
    let meta = std::fs::metadata(&key_dir).expect("key dir");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    let private = std::fs::read(&key).expect("private key");
    let public = std::fs::read_to_string(format!("{key}.pub")).expect("public key");
    assert!(public.starts_with("ssh-ed25519 ") && public.trim_end().ends_with(" arcus-admin"));
    let (ok, out) = login(&key, &kh, &c.ip(1));
    assert!(
        !ok,
        "the new key logged in before it was distributed: {out}"
    );

    // The whole playbook: key in authorized_keys, login by key works.
    let r = run_ok(PB, &inv, &[]);
    assert_eq!(changed(&r, "localhost"), 0, "{r}");
    for (i, h) in hosts.iter().enumerate() {
        assert_eq!(changed(&r, h), 1, "{h}: {r}");
        let ak = dx_ok(h, "cat /root/.ssh/authorized_keys");
        assert!(ak.contains(public.trim()), "{h}: {ak}");
        assert!(
            ak.starts_with(&keys_before[i]),
            "{h}: earlier keys lost: {ak}"
        );
        assert_eq!(
            dx_ok(h, "stat -c %a /root/.ssh /root/.ssh/authorized_keys"),
            "700\n600\n"
        );
        let (ok, out) = login(&key, &kh, &c.ip(i + 1));
        assert!(ok, "{h}: key login failed: {out}");
        assert_eq!(out.trim(), h.as_str());
    }

    // Second run: nothing changes, the key pair is not regenerated.
    let r = run_ok(PB, &inv, &[]);
    for h in hosts.iter().map(String::as_str).chain(["localhost"]) {
        assert_eq!(changed(&r, h), 0, "{h}: {r}");
    }
    assert_eq!(std::fs::read(&key).expect("private key"), private);
    let r = run_ok(PB, &inv, &["--check"]);
    for h in hosts.iter().map(String::as_str).chain(["localhost"]) {
        assert_eq!(changed(&r, h), 0, "{h}: {r}");
    }
}
