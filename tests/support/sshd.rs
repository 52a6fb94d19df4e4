//! A real OpenSSH server for tests: a temp dir with generated host keys, a
//! client key in `authorized_keys`, and `/usr/sbin/sshd -D -e` on a free
//! loopback port. Needs the `openssh-server` package (CI installs it).
#![allow(dead_code)]

use drover_engine::connection::ConnectionSpec;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SSHD: &str = "/usr/sbin/sshd";

/// Run ssh-keygen to make a key pair; returns the private key path.
pub fn keygen(dir: &Path, name: &str, kind: &str, passphrase: &str) -> PathBuf {
    let path = dir.join(name);
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", passphrase, "-C", name, "-f"])
        .arg(&path)
        .stdin(Stdio::null())
        .status()
        .expect("run ssh-keygen");
    assert!(st.success(), "ssh-keygen -t {kind} failed");
    path
}

/// `SHA256:…` fingerprint of a key file, as ssh-keygen prints it.
pub fn fingerprint(key: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(key)
        .output()
        .expect("run ssh-keygen -l");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no fingerprint in {text:?}"))
        .to_string()
}

/// `type base64` of a public key file (without the comment).
pub fn public_key(key: &Path) -> String {
    let text = std::fs::read_to_string(key.with_extension("pub"))
        .or_else(|_| std::fs::read_to_string(format!("{}.pub", key.display())))
        .expect("read public key");
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

fn login_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("run id");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub user: String,
    /// Private key authorised for `user`.
    pub client_key: PathBuf,
    /// Host key files (private), in the order given.
    pub host_keys: Vec<PathBuf>,
    child: Child,
}

impl Sshd {
    /// An sshd with an ed25519 host key.
    pub fn start() -> Sshd {
        Self::start_with(&["ed25519"], "")
    }

    /// An sshd with host keys of the given types and extra config lines.
    pub fn start_with(host_key_types: &[&str], extra: &str) -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install openssh-server"
        );
        let _ = std::fs::create_dir_all("/run/sshd");
        let dir = tempfile::tempdir().expect("temp dir");
        let host_keys: Vec<PathBuf> = host_key_types
            .iter()
            .map(|t| keygen(dir.path(), &format!("host_{t}"), t, ""))
            .collect();
        let client_key = keygen(dir.path(), "client", "ed25519", "");
        let auth = dir.path().join("authorized_keys");
        std::fs::write(&auth, format!("{}\n", public_key(&client_key))).expect("authorized_keys");
        let user = login_user();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let mut cfg = format!(
                "Port {port}\nListenAddress 127.0.0.1\nAuthorizedKeysFile {}\nUsePAM no\nStrictModes no\nPidFile none\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nAllowTcpForwarding yes\nLogLevel ERROR\n",
                auth.display()
            );
            for k in &host_keys {
                cfg.push_str(&format!("HostKey {}\n", k.display()));
            }
            cfg.push_str(extra);
            let cfg_path = dir.path().join("sshd_config");
            std::fs::write(&cfg_path, cfg).expect("sshd_config");
            let mut child = Command::new(SSHD)
                .args(["-D", "-e", "-f"])
                .arg(&cfg_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn sshd");
            if wait_banner(port, &mut child) {
                // Drain sshd's log so it never blocks on a full pipe.
                if let Some(err) = child.stderr.take() {
                    std::thread::spawn(move || for _ in BufReader::new(err).lines() {});
                }
                return Sshd {
                    dir,
                    port,
                    user,
                    client_key,
                    host_keys,
                    child,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("sshd did not start");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Connection spec for 127.0.0.1 with the authorised key.
    pub fn spec(&self) -> ConnectionSpec {
        ConnectionSpec {
            name: "testhost".into(),
            kind: "ssh".into(),
            address: "127.0.0.1".into(),
            port: Some(self.port),
            user: Some(self.user.clone()),
            private_key_file: Some(self.client_key.display().to_string()),
            ..Default::default()
        }
    }

    /// A known_hosts line for `host` with the first host key.
    pub fn known_hosts_line(&self, host: &str) -> String {
        format!(
            "[{host}]:{} {}\n",
            self.port,
            public_key(&self.host_keys[0])
        )
    }

    /// Per-connection sshd processes (children of this sshd): one per
    /// open SSH session.
    pub fn sessions(&self) -> Vec<u32> {
        let me = self.child.id().to_string();
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
                continue;
            };
            let ppid = status.lines().find_map(|l| l.strip_prefix("PPid:"));
            if ppid.map(str::trim) == Some(me.as_str()) {
                pids.push(pid);
            }
        }
        pids
    }

    /// Kill the per-connection sshd processes, cutting every open session;
    /// the listener keeps running.
    pub fn cut_sessions(&self) -> usize {
        let pids = self.sessions();
        for pid in &pids {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        pids.len()
    }
}

fn wait_banner(port: u16, child: &mut Child) -> bool {
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 4];
            if s.read_exact(&mut buf).is_ok() && &buf == b"SSH-" {
                // Another server may own the port if ours failed to bind.
                std::thread::sleep(Duration::from_millis(100));
                return matches!(child.try_wait(), Ok(None));
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.cut_sessions();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A stand-in for sudo (this machine runs tests as root and may lack sudo):
/// shows the `-p` prompt on stderr, accepts the password `right`, says
/// "Sorry, try again." otherwise (three tries), and honours `-n`. Install it
/// in sessions with `SetEnv PATH=<dir>:/usr/bin:/bin` in sshd_config.
pub const FAKE_SUDO: &str = r#"#!/bin/sh
prompt="Password:"; nonint=0
while [ $# -gt 0 ]; do case "$1" in
  -p) prompt="$2"; shift 2;;
  -u) shift 2;;
  -n) nonint=1; shift;;
  --) shift; break;;
  *) shift;;
esac; done
if [ "$nonint" = 1 ]; then echo "sudo: a password is required" >&2; exit 1; fi
tries=0
while [ $tries -lt 3 ]; do
  printf '%s' "$prompt" >&2
  IFS= read -r pw || exit 1
  if [ "$pw" = "right" ]; then exec "$@"; fi
  sleep 0.2
  echo "Sorry, try again." >&2
  tries=$((tries+1))
done
echo "sudo: 3 incorrect password attempts" >&2
exit 1
"#;

/// Write [`FAKE_SUDO`] as `<dir>/sudo`; returns `dir`.
pub fn install_fake_sudo(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).expect("fake sudo dir");
    let path = dir.join("sudo");
    std::fs::write(&path, FAKE_SUDO).expect("write fake sudo");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir.to_path_buf()
}
