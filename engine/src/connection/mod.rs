//! Transports to hosts. A [`Connection`] is one long-lived link to one host
//! (one SSH connection, or the local machine) that many tasks use at once:
//! each `exec` is its own channel. `become` is applied by the caller through
//! [`ExecRequest::become_user`], never by modules.
//!
//! [`script`] turns a batch of probes into one shell script so that a task's
//! observations cost one round trip.

pub mod forward;
pub mod local;
pub mod script;
pub mod ssh;

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::time::Duration;

pub use crate::module::ExecOutput;

/// How to become another user on the host (sudo).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Become {
    pub user: String,
    /// Extra sudo flags (`become_flags`), split shell-wise.
    pub flags: Vec<String>,
    /// Sudo password; goes once over stdin, never in argv or env.
    pub password: Option<String>,
}

/// One command to run on the host.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    /// Program and arguments. Never a shell line with values pasted in; use
    /// `["sh", "-c", script]` with a script built by [`script::quote`].
    pub argv: Vec<String>,
    pub stdin: Option<Vec<u8>>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<String>,
    pub become_: Option<Become>,
    /// Deadline for the whole command; None = the connection's default.
    pub timeout: Option<Duration>,
}

impl ExecRequest {
    pub fn new<S: Into<String>>(argv: impl IntoIterator<Item = S>) -> Self {
        ExecRequest {
            argv: argv.into_iter().map(Into::into).collect(),
            ..Default::default()
        }
    }
    pub fn shell(script: impl Into<String>) -> Self {
        Self::new(["/bin/sh".to_string(), "-c".to_string(), script.into()])
    }
}

/// Transport errors. `Unreachable` makes the host UNREACHABLE in the recap;
/// the others fail the task.
#[derive(Debug, thiserror::Error, Clone)]
pub enum ConnectionError {
    #[error("host {host} unreachable: {reason}")]
    Unreachable { host: String, reason: String },
    #[error("host key verification failed for {host}: {reason}")]
    HostKey { host: String, reason: String },
    #[error("authentication failed for {user}@{host}: {reason}")]
    Auth {
        host: String,
        user: String,
        reason: String,
    },
    #[error("command timed out after {secs}s on {host}: {command}")]
    Timeout {
        host: String,
        secs: u64,
        command: String,
    },
    #[error("connection to {host} lost after the command was sent, outcome unknown: {command}")]
    Lost { host: String, command: String },
    #[error("become failed on {host}: {reason}")]
    Become { host: String, reason: String },
    #[error("transfer of {path} to {host} failed: {reason}")]
    Transfer {
        host: String,
        path: String,
        reason: String,
    },
    #[error("{host}: {reason}")]
    Other { host: String, reason: String },
}

impl ConnectionError {
    /// The host counts as UNREACHABLE (recap, exit code 4) and takes no
    /// further part. A connection lost mid-command is one of these: the task
    /// says "outcome unknown" and is never re-run.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ConnectionError::Unreachable { .. }
                | ConnectionError::HostKey { .. }
                | ConnectionError::Auth { .. }
                | ConnectionError::Lost { .. }
        )
    }
}

/// A link to one host, shared by all tasks of a run (`Arc<dyn Connection>`).
#[async_trait]
pub trait Connection: Send + Sync {
    /// Name of the host (inventory name).
    fn host(&self) -> &str;
    /// Run a command; stdout, stderr and status come back separately.
    async fn exec(&self, req: ExecRequest) -> Result<ExecOutput, ConnectionError>;
    /// Copy bytes to `path` on the host, created 0600. The caller makes it
    /// atomic (it puts to a temp path and renames). The default streams the
    /// content over stdin of one exec, which works through `become` too.
    async fn put(
        &self,
        path: &str,
        content: &[u8],
        become_: Option<&Become>,
    ) -> Result<(), ConnectionError> {
        let mut req = ExecRequest::new(["/bin/sh", "-c", "umask 077 && cat > \"$1\"", "sh", path]);
        req.stdin = Some(content.to_vec());
        req.become_ = become_.cloned();
        let out = self.exec(req).await?;
        if out.success() {
            Ok(())
        } else {
            Err(transfer_error(self.host(), path, &out))
        }
    }
    /// Read a file from the host.
    async fn get(&self, path: &str, become_: Option<&Become>) -> Result<Vec<u8>, ConnectionError> {
        let mut req = ExecRequest::new(["cat", "--", path]);
        req.become_ = become_.cloned();
        let out = self.exec(req).await?;
        if out.success() {
            Ok(out.stdout)
        } else {
            Err(transfer_error(self.host(), path, &out))
        }
    }
    /// A byte stream to `host:port` as the host sees it (`127.0.0.1` is
    /// the host itself): SSH opens a `direct-tcpip` channel; the default
    /// (local connection) dials it directly. [`forward`] turns these into
    /// controller-side listening addresses for protocol clients.
    async fn tunnel(&self, host: &str, port: u16) -> Result<Box<dyn Duplex>, ConnectionError> {
        let dial = tokio::net::TcpStream::connect((host, port));
        match tokio::time::timeout(forward::OPEN_TIMEOUT, dial).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                Ok(Box::new(s))
            }
            Ok(Err(e)) => Err(ConnectionError::Other {
                host: self.host().into(),
                reason: format!("cannot connect to {host}:{port}: {e}"),
            }),
            Err(_) => Err(ConnectionError::Other {
                host: self.host().into(),
                reason: format!("connect to {host}:{port} timed out"),
            }),
        }
    }
    /// Close the connection (end of run).
    async fn close(&self) {}
}

/// A bidirectional byte stream (a TCP socket, an SSH channel).
pub trait Duplex: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Duplex for T {}

/// Connection parameters for one host, resolved from inventory variables.
#[derive(Debug, Clone, Default)]
pub struct ConnectionSpec {
    /// Inventory name.
    pub name: String,
    /// `ansible_connection`: "local" or "ssh".
    pub kind: String,
    /// Address to connect to (`ansible_host`, else the name).
    pub address: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub private_key_file: Option<String>,
    pub known_hosts_file: Option<String>,
    pub connect_timeout: Option<Duration>,
}

fn transfer_error(host: &str, path: &str, out: &ExecOutput) -> ConnectionError {
    ConnectionError::Transfer {
        host: host.into(),
        path: path.into(),
        reason: out.stderr_str().trim().to_string(),
    }
}
