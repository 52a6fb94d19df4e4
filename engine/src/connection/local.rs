//! The `local` connection: runs commands on the controller itself, as the
//! user drover runs as (or through sudo for `become`).

use super::{Become, Connection, ConnectionError, ExecOutput, ExecRequest};
use async_trait::async_trait;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Default deadline for one local command.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

pub struct LocalConnection {
    host: String,
}

impl LocalConnection {
    pub fn new(host: impl Into<String>) -> Self {
        LocalConnection { host: host.into() }
    }
}

fn current_user() -> String {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 {
        return "root".into();
    }
    std::env::var("USER").unwrap_or_default()
}

/// Wrap argv in sudo when becoming a user other than the current one.
/// Returns the argv and whether a password line must be sent first on stdin.
pub(crate) fn sudo_wrap(argv: &[String], b: Option<&Become>) -> (Vec<String>, Option<String>) {
    match b {
        Some(b) if b.user != current_user() => {
            let mut v = vec!["sudo".to_string()];
            v.extend(b.flags.iter().cloned());
            if b.password.is_some() {
                v.extend(["-S".into(), "-p".into(), String::new()]);
            } else {
                v.push("-n".into());
            }
            v.extend(["-H".into(), "-u".into(), b.user.clone(), "--".into()]);
            v.extend(argv.iter().cloned());
            (v, b.password.clone())
        }
        _ => (argv.to_vec(), None),
    }
}

#[async_trait]
impl Connection for LocalConnection {
    fn host(&self) -> &str {
        &self.host
    }

    async fn exec(&self, req: ExecRequest) -> Result<ExecOutput, ConnectionError> {
        let (argv, password) = sudo_wrap(&req.argv, req.become_.as_ref());
        let Some((prog, args)) = argv.split_first() else {
            return Err(ConnectionError::Other {
                host: self.host.clone(),
                reason: "empty command".into(),
            });
        };
        let mut cmd = tokio::process::Command::new(prog);
        cmd.args(args)
            .envs(&req.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(cwd) = &req.cwd {
            cmd.current_dir(cwd);
        }
        let mut child = cmd.spawn().map_err(|e| ConnectionError::Other {
            host: self.host.clone(),
            reason: format!("cannot run `{prog}`: {e}"),
        })?;
        let mut stdin = child.stdin.take();
        let input = req.stdin.clone();
        let writer = async move {
            if let Some(w) = stdin.as_mut() {
                if let Some(p) = password {
                    let _ = w.write_all(format!("{p}\n").as_bytes()).await;
                }
                if let Some(data) = input {
                    let _ = w.write_all(&data).await;
                }
            }
            drop(stdin);
        };
        let limit = req.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let run = async {
            let (_, out) = tokio::join!(writer, child.wait_with_output());
            out
        };
        match tokio::time::timeout(limit, run).await {
            Ok(Ok(out)) => Ok(ExecOutput {
                status: out.status.code(),
                stdout: out.stdout,
                stderr: out.stderr,
            }),
            Ok(Err(e)) => Err(ConnectionError::Other {
                host: self.host.clone(),
                reason: e.to_string(),
            }),
            Err(_) => Err(ConnectionError::Timeout {
                host: self.host.clone(),
                secs: limit.as_secs(),
                command: prog.clone(),
            }),
        }
    }
}
