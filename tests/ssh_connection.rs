//! The ssh connection against a real OpenSSH sshd on 127.0.0.1 (started per
//! test by `support/sshd.rs`; CI needs the `openssh-server` package):
//! exec, stdin, concurrency, known_hosts policies, transfers, timeouts,
//! unreachable and lost connections, ssh config with ProxyJump, and auth.
//! Become (sudo) is covered by the container tests.

#[path = "support/sshd.rs"]
mod sshd;

use drover_engine::connection::ssh::{HostKeyChecking, SshConnection, SshOptions};
use drover_engine::connection::{Connection, ConnectionError, ConnectionSpec, ExecRequest};
use sshd::Sshd;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn opts(known_hosts: PathBuf, policy: HostKeyChecking) -> SshOptions {
    SshOptions {
        host_key_checking: policy,
        known_hosts: vec![known_hosts],
        connect_timeout: Duration::from_secs(5),
        command_timeout: Some(Duration::from_secs(30)),
        keepalive: Duration::from_secs(5),
        max_channels: 8,
        ssh_config: None,
    }
}

/// A connection that trusts the server through a written known_hosts file.
async fn trusted(server: &Sshd) -> (SshConnection, SshOptions) {
    let kh = server.dir.path().join("known_hosts");
    std::fs::write(&kh, server.known_hosts_line("127.0.0.1")).unwrap();
    let o = opts(kh, HostKeyChecking::Strict);
    let c = SshConnection::connect(&server.spec(), &o).await.unwrap();
    (c, o)
}

fn sh(script: &str) -> ExecRequest {
    ExecRequest::shell(script)
}

#[tokio::test]
async fn exec_separates_streams_and_reports_status() {
    let server = Sshd::start();
    let (c, _) = trusted(&server).await;
    let out = c.exec(sh("echo out; echo err >&2; exit 3")).await.unwrap();
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(out.status, Some(3));
    let ok = c.exec(ExecRequest::new(["true"])).await.unwrap();
    assert!(ok.success());
    // Values with spaces and quotes survive quoting; cwd and env apply.
    let mut req = ExecRequest::new(["printf", "%s|%s|%s", "a b", "it's", "$HOME"]);
    req.cwd = Some("/".into());
    let out = c.exec(req).await.unwrap();
    assert_eq!(out.stdout_str(), "a b|it's|$HOME");
    let mut req = sh("pwd; echo \"$FOO\"");
    req.cwd = Some(server.dir.path().display().to_string());
    req.env.insert("FOO".into(), "x y'z".into());
    let out = c.exec(req).await.unwrap();
    assert_eq!(
        out.stdout_str(),
        format!("{}\nx y'z\n", server.dir.path().display())
    );
    // Killed by a signal: no exit status, which is not success.
    let out = c.exec(sh("kill -9 $$")).await.unwrap();
    assert_eq!(out.status, None);
    assert!(!out.success());
    c.close().await;
}

#[tokio::test]
async fn stdin_is_streamed_then_closed() {
    let server = Sshd::start();
    let (c, _) = trusted(&server).await;
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut req = ExecRequest::new(["cat"]);
    req.stdin = Some(data.clone());
    let out = c.exec(req).await.unwrap();
    assert!(out.success());
    assert_eq!(out.stdout.len(), data.len());
    assert!(out.stdout == data);
    // No stdin: the command sees EOF at once instead of hanging.
    let out = c.exec(ExecRequest::new(["wc", "-c"])).await.unwrap();
    assert_eq!(out.stdout_str().trim(), "0");
}

#[tokio::test]
async fn twenty_concurrent_execs_share_one_connection() {
    let server = Sshd::start();
    let (c, _) = trusted(&server).await;
    let c = Arc::new(c);
    let started = Instant::now();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move { c.exec(sh(&format!("sleep 0.3; echo {i}"))).await })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        let out = t.await.unwrap().unwrap();
        assert_eq!(out.stdout_str(), format!("{i}\n"));
        assert!(out.success());
    }
    // 8 channels at a time: three waves of 0.3 s, not twenty.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Exactly one TCP session to the server, so one sshd child.
    assert_eq!(server.sessions().len(), 1);
}

#[tokio::test]
async fn strict_refuses_unknown_host_and_writes_nothing() {
    let server = Sshd::start();
    let kh = server.dir.path().join("kh_missing");
    let err = SshConnection::connect(&server.spec(), &opts(kh.clone(), HostKeyChecking::Strict))
        .await
        .err()
        .expect("unknown host accepted");
    assert!(matches!(err, ConnectionError::HostKey { .. }), "{err}");
    assert!(err.is_unreachable());
    assert!(
        err.to_string()
            .contains(&sshd::fingerprint(&server.host_keys[0])),
        "{err}"
    );
    assert!(!kh.exists(), "strict checking wrote {}", kh.display());
    // Off connects without looking.
    SshConnection::connect(&server.spec(), &opts(kh.clone(), HostKeyChecking::Off))
        .await
        .unwrap();
    assert!(!kh.exists());
}

#[tokio::test]
async fn accept_new_learns_each_host_once_under_parallel_connects() {
    let server = Sshd::start();
    let kh = server.dir.path().join("ssh/known_hosts");
    let o = opts(kh.clone(), HostKeyChecking::AcceptNew);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let mut spec = server.spec();
        spec.address = if i % 2 == 0 { "127.0.0.1" } else { "localhost" }.into();
        let o = o.clone();
        tasks.push(tokio::spawn(async move {
            SshConnection::connect(&spec, &o).await.map(|_| ())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let text = std::fs::read_to_string(&kh).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    let key = sshd::public_key(&server.host_keys[0]);
    assert_eq!(
        lines,
        vec![
            format!("[127.0.0.1]:{} {key}", server.port),
            format!("[localhost]:{} {key}", server.port)
        ],
        "{text}"
    );
    // What was learnt is trusted under strict checking.
    let strict = opts(kh.clone(), HostKeyChecking::Strict);
    SshConnection::connect(&server.spec(), &strict)
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), text);
}

#[tokio::test]
async fn changed_or_retyped_host_key_is_fatal_with_both_fingerprints() {
    let server = Sshd::start();
    let other = sshd::keygen(server.dir.path(), "impostor", "ed25519", "");
    let kh = server.dir.path().join("known_hosts");
    std::fs::write(
        &kh,
        format!("[127.0.0.1]:{} {}\n", server.port, sshd::public_key(&other)),
    )
    .unwrap();
    for policy in [HostKeyChecking::Strict, HostKeyChecking::AcceptNew] {
        let err = SshConnection::connect(&server.spec(), &opts(kh.clone(), policy))
            .await
            .err()
            .expect("changed key accepted");
        let msg = err.to_string();
        assert!(matches!(err, ConnectionError::HostKey { .. }), "{msg}");
        assert!(msg.contains("CHANGED"), "{msg}");
        assert!(msg.contains(&sshd::fingerprint(&other)), "{msg}");
        assert!(
            msg.contains(&sshd::fingerprint(&server.host_keys[0])),
            "{msg}"
        );
    }
    // Known with an ECDSA key, but the server only has Ed25519.
    let ecdsa = sshd::keygen(server.dir.path(), "other_ecdsa", "ecdsa", "");
    std::fs::write(
        &kh,
        format!("[127.0.0.1]:{} {}\n", server.port, sshd::public_key(&ecdsa)),
    )
    .unwrap();
    let err = SshConnection::connect(
        &server.spec(),
        &opts(kh.clone(), HostKeyChecking::AcceptNew),
    )
    .await
    .err()
    .expect("other key type accepted");
    let msg = err.to_string();
    assert!(msg.contains("another key type"), "{msg}");
    assert!(msg.contains(&sshd::fingerprint(&ecdsa)), "{msg}");
    assert!(
        msg.contains(&sshd::fingerprint(&server.host_keys[0])),
        "{msg}"
    );
    assert_eq!(std::fs::read_to_string(&kh).unwrap().lines().count(), 1);
}

#[tokio::test]
async fn recorded_key_type_is_negotiated_first() {
    // The server has Ed25519 and ECDSA keys; known_hosts has only ECDSA.
    let server = Sshd::start_with(&["ed25519", "ecdsa"], "");
    let kh = server.dir.path().join("known_hosts");
    std::fs::write(
        &kh,
        format!(
            "# comment\n|1|bm9pc2U=|bm9pc2U= ssh-ed25519 AAAA\n[127.0.0.1]:{} {}\n",
            server.port,
            sshd::public_key(&server.host_keys[1])
        ),
    )
    .unwrap();
    SshConnection::connect(&server.spec(), &opts(kh, HostKeyChecking::Strict))
        .await
        .unwrap();
}

#[tokio::test]
async fn put_creates_0600_and_get_reads_back() {
    let server = Sshd::start();
    let (c, _) = trusted(&server).await;
    let path = server.dir.path().join("dest file");
    let p = path.display().to_string();
    let content: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    c.put(&p, &content, None).await.unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(c.get(&p, None).await.unwrap(), content);
    let missing = format!("{p}.missing");
    let err = c.get(&missing, None).await.unwrap_err();
    assert!(matches!(err, ConnectionError::Transfer { .. }), "{err}");
    assert!(err.to_string().contains("No such file"), "{err}");
}

#[tokio::test]
async fn command_timeout_then_connection_still_usable() {
    let server = Sshd::start();
    let (c, _) = trusted(&server).await;
    let mut req = ExecRequest::new(["sleep", "5"]);
    req.timeout = Some(Duration::from_secs(1));
    let t = Instant::now();
    let err = c.exec(req).await.unwrap_err();
    assert!(
        matches!(err, ConnectionError::Timeout { secs: 1, .. }),
        "{err}"
    );
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t.elapsed()
    );
    assert!(c.exec(ExecRequest::new(["true"])).await.unwrap().success());
}

#[tokio::test]
async fn silent_server_is_unreachable_within_connect_timeout() {
    // Accepts TCP but never speaks (a paused host).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let spec = ConnectionSpec {
        name: "paused".into(),
        address: "127.0.0.1".into(),
        port: Some(port),
        user: Some("nobody".into()),
        connect_timeout: Some(Duration::from_secs(1)),
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let err = SshConnection::connect(&spec, &opts(dir.path().join("kh"), HostKeyChecking::Strict))
        .await
        .err()
        .expect("connected to a silent server");
    assert!(matches!(err, ConnectionError::Unreachable { .. }), "{err}");
    assert!(
        t.elapsed() < Duration::from_millis(2000),
        "{:?}",
        t.elapsed()
    );
    holder.abort();
    // A closed port fails at once, also as unreachable.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut spec = spec.clone();
    spec.port = Some(closed.local_addr().unwrap().port());
    drop(closed);
    let err = SshConnection::connect(&spec, &opts(dir.path().join("kh"), HostKeyChecking::Strict))
        .await
        .err()
        .expect("connected to a closed port");
    assert!(matches!(err, ConnectionError::Unreachable { .. }), "{err}");
}

#[tokio::test]
async fn cut_connection_mid_command_is_lost_not_rerun() {
    let server = Sshd::start();
    let (c, _) = trusted(&server).await;
    let marker = server.dir.path().join("runs");
    let script = format!("echo x >> '{}'; sleep 5", marker.display());
    let c = Arc::new(c);
    let running = {
        let c = c.clone();
        tokio::spawn(async move { c.exec(sh(&script)).await })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(server.cut_sessions() >= 1);
    let err = tokio::time::timeout(Duration::from_secs(4), running)
        .await
        .expect("lost connection not noticed")
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, ConnectionError::Lost { .. }), "{err}");
    assert!(err.to_string().contains("outcome unknown"), "{err}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "x\n");
    // The next command fails fast instead of hanging.
    let next = tokio::time::timeout(Duration::from_secs(5), c.exec(ExecRequest::new(["true"])))
        .await
        .expect("exec on a dead connection hung");
    assert!(next.is_err());
}

#[tokio::test]
async fn ssh_config_alias_and_proxy_jump() {
    let server = Sshd::start();
    let kh = server.dir.path().join("known_hosts");
    std::fs::write(&kh, server.known_hosts_line("127.0.0.1")).unwrap();
    let key = server.client_key.display();
    let cfg = server.dir.path().join("ssh_config");
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    std::fs::write(
        &cfg,
        format!(
            "Host web\n  HostName 127.0.0.1\n  Port {p}\n  User {u}\n  IdentityFile {key}\n  ProxyJump bastion\n\nHost broken\n  HostName 127.0.0.1\n  Port {p}\n  User {u}\n  IdentityFile {key}\n  ProxyJump {u}@127.0.0.1:{dead_port}\n\nHost bastion\n  HostName 127.0.0.1\n  Port {p}\n  User {u}\n  IdentityFile {key}\n",
            p = server.port,
            u = server.user
        ),
    )
    .unwrap();
    let mut o = opts(kh, HostKeyChecking::Strict);
    o.ssh_config = Some(cfg);
    let spec = |addr: &str| ConnectionSpec {
        name: addr.into(),
        address: addr.into(),
        ..Default::default()
    };
    let c = SshConnection::connect(&spec("web"), &o).await.unwrap();
    let out = c
        .exec(ExecRequest::new(["echo", "via", "bastion"]))
        .await
        .unwrap();
    assert_eq!(out.stdout_str(), "via bastion\n");
    assert_eq!(c.login_user(), server.user);
    // Two sessions on the server: the bastion's and the tunnelled one.
    assert_eq!(server.sessions().len(), 2);
    let err = SshConnection::connect(&spec("broken"), &o)
        .await
        .err()
        .expect("dead bastion");
    assert!(matches!(err, ConnectionError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains("ProxyJump"), "{err}");
}

#[tokio::test]
async fn auth_failure_and_encrypted_key() {
    let server = Sshd::start();
    let kh = server.dir.path().join("known_hosts");
    std::fs::write(&kh, server.known_hosts_line("127.0.0.1")).unwrap();
    let o = opts(kh, HostKeyChecking::Strict);
    let stranger = sshd::keygen(server.dir.path(), "stranger", "ed25519", "");
    let mut spec = server.spec();
    spec.private_key_file = Some(stranger.display().to_string());
    spec.password = Some("hunter2-not-a-password".into());
    let err = SshConnection::connect(&spec, &o)
        .await
        .err()
        .expect("stranger key accepted");
    assert!(matches!(err, ConnectionError::Auth { .. }), "{err}");
    assert!(err.to_string().contains("refused"), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");

    // An encrypted authorised key opens with DROVER_SSH_PASSPHRASE.
    let locked = sshd::keygen(server.dir.path(), "locked", "ed25519", "open sesame");
    let auth = server.dir.path().join("authorized_keys");
    let mut keys = std::fs::read_to_string(&auth).unwrap();
    keys.push_str(&format!("{}\n", sshd::public_key(&locked)));
    std::fs::write(&auth, keys).unwrap();
    spec.private_key_file = Some(locked.display().to_string());
    spec.password = None;
    let err = SshConnection::connect(&spec, &o)
        .await
        .err()
        .expect("no passphrase");
    assert!(err.to_string().contains("DROVER_SSH_PASSPHRASE"), "{err}");
    // SAFETY-free in edition 2021; no other test reads this variable.
    std::env::set_var("DROVER_SSH_PASSPHRASE", "open sesame");
    let c = SshConnection::connect(&spec, &o).await;
    std::env::remove_var("DROVER_SSH_PASSPHRASE");
    let c = c.unwrap();
    assert!(c.exec(ExecRequest::new(["true"])).await.unwrap().success());
}

#[tokio::test]
async fn become_dialogue_with_a_stand_in_sudo() {
    // Real sudo is exercised by the container tests; here a stand-in checks
    // the prompt, the password on stdin, the marker and the stripping.
    let bin = tempfile::tempdir().unwrap();
    sshd::install_fake_sudo(bin.path());
    let server = Sshd::start_with(
        &["ed25519"],
        &format!("SetEnv PATH={}:/usr/bin:/bin\n", bin.path().display()),
    );
    let (c, _) = trusted(&server).await;
    let become_ = |pw: Option<&str>| drover_engine::connection::Become {
        user: "nobody".into(),
        flags: vec![],
        password: pw.map(Into::into),
    };
    let mut req = ExecRequest::new(["sh", "-c", "cat; echo done >&2"]);
    req.stdin = Some(b"payload\n".to_vec());
    req.become_ = Some(become_(Some("right")));
    let out = c.exec(req.clone()).await.unwrap();
    assert_eq!(out.stdout_str(), "payload\n");
    assert_eq!(out.stderr_str(), "done\n");
    assert!(out.success());

    req.become_ = Some(become_(Some("wrong-pass-123")));
    let t = Instant::now();
    let err = c.exec(req.clone()).await.unwrap_err();
    assert!(matches!(err, ConnectionError::Become { .. }), "{err}");
    assert!(err.to_string().contains("incorrect"), "{err}");
    assert!(!err.to_string().contains("wrong-pass-123"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(5));

    req.become_ = Some(become_(None));
    let err = c.exec(req.clone()).await.unwrap_err();
    assert!(matches!(err, ConnectionError::Become { .. }), "{err}");
    assert!(err.to_string().contains("password is required"), "{err}");

    // Becoming the login user needs no sudo at all.
    req.become_ = Some(drover_engine::connection::Become {
        user: c.login_user().into(),
        ..Default::default()
    });
    assert_eq!(c.exec(req).await.unwrap().stdout_str(), "payload\n");
    // put through become goes over the same dialogue.
    let path = server.dir.path().join("as-nobody");
    c.put(
        &path.display().to_string(),
        b"x",
        Some(&become_(Some("right"))),
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"x");
}
