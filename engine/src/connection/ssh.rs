//! The `ssh` connection: one russh session per host, shared by all tasks,
//! with many concurrent exec channels (at most [`SshOptions::max_channels`]
//! at once, the rest queue). This is the only place that uses russh.
//! Children: `config` (inventory + `~/.ssh/config`), `known_hosts`
//! (host-key policy), `auth`, `session` (connect under a deadline) and
//! `exec` (one command on one channel, sudo for `become`).

mod auth;
mod config;
mod exec;
mod forward;
mod known_hosts;
mod session;

pub use auth::PASSPHRASE_ENV;

use super::{Connection, ConnectionError, ConnectionSpec, ExecOutput, ExecRequest};
use async_trait::async_trait;
use exec::RunError;
use russh::client::Handle;
use session::ClientHandler;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::{timeout, timeout_at, Instant};

/// What to do with host keys (`host_key_checking`, `StrictHostKeyChecking`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKeyChecking {
    /// Unknown hosts are refused.
    #[default]
    Strict,
    /// Unknown hosts are learnt (appended to the first known_hosts file).
    AcceptNew,
    /// No checking at all (only when asked for).
    Off,
}

/// A `host_key_checking` value that is none of the known words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad host_key_checking value `{0}` (expected yes, no or accept-new)")]
pub struct BadHostKeyChecking(pub String);

impl std::str::FromStr for HostKeyChecking {
    type Err = BadHostKeyChecking;

    /// Ansible's `host_key_checking` (a boolean) and OpenSSH's
    /// `StrictHostKeyChecking` words.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" | "strict" => Ok(HostKeyChecking::Strict),
            "accept-new" | "accept_new" => Ok(HostKeyChecking::AcceptNew),
            "no" | "false" | "off" | "0" => Ok(HostKeyChecking::Off),
            _ => Err(BadHostKeyChecking(s.to_string())),
        }
    }
}

/// Connection settings shared by all hosts of a run.
#[derive(Debug, Clone)]
pub struct SshOptions {
    pub host_key_checking: HostKeyChecking,
    /// known_hosts files to consult; new keys go into the first one.
    pub known_hosts: Vec<PathBuf>,
    /// Deadline for TCP connect, key exchange and authentication together.
    pub connect_timeout: Duration,
    /// Deadline for one command when the request gives none (None: 1 hour).
    pub command_timeout: Option<Duration>,
    /// Keepalive interval; the session is dropped after 3 missed replies.
    pub keepalive: Duration,
    /// Concurrent exec channels per connection (1..=8; sshd allows 10).
    pub max_channels: usize,
    /// ssh config file to read (None: none).
    pub ssh_config: Option<PathBuf>,
}

impl Default for SshOptions {
    fn default() -> Self {
        let dot_ssh = config::home().map(|h| h.join(".ssh"));
        SshOptions {
            host_key_checking: HostKeyChecking::Strict,
            known_hosts: dot_ssh.iter().map(|d| d.join("known_hosts")).collect(),
            connect_timeout: Duration::from_secs(10),
            command_timeout: None,
            keepalive: Duration::from_secs(15),
            max_channels: 8,
            ssh_config: dot_ssh.map(|d| d.join("config")),
        }
    }
}

const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(3600);
/// sshd's default `MaxSessions` is 10; stay below it.
const MAX_CHANNELS: usize = 8;

/// An authenticated SSH connection to one host.
pub struct SshConnection {
    name: String,
    login_user: String,
    handle: Handle<ClientHandler>,
    jump: Option<Handle<ClientHandler>>,
    channels: Semaphore,
    open_timeout: Duration,
    command_timeout: Duration,
}

impl SshConnection {
    /// Connect and authenticate. The whole of it (TCP, key exchange, auth,
    /// and the bastion hop) finishes within the connect timeout or fails
    /// with [`ConnectionError::Unreachable`].
    pub async fn connect(
        spec: &ConnectionSpec,
        opts: &SshOptions,
    ) -> Result<SshConnection, ConnectionError> {
        let other = |reason: String| ConnectionError::Other {
            host: spec.name.clone(),
            reason,
        };
        let cfg = match &opts.ssh_config {
            Some(p) => config::load(p).map_err(other)?,
            None => None,
        };
        let target = config::resolve(spec, cfg.as_ref()).map_err(other)?;
        let mut files: Vec<PathBuf> = spec
            .known_hosts_file
            .as_deref()
            .map(config::expand_tilde)
            .into_iter()
            .collect();
        files.extend(opts.known_hosts.iter().cloned());
        let limit = spec.connect_timeout.unwrap_or(opts.connect_timeout);
        let link = session::open(
            &spec.name,
            &target,
            spec.password.as_deref(),
            &files,
            opts,
            limit,
        )
        .await?;
        Ok(SshConnection {
            name: spec.name.clone(),
            login_user: target.endpoint.user.clone(),
            handle: link.handle,
            jump: link.jump,
            channels: Semaphore::new(opts.max_channels.clamp(1, MAX_CHANNELS)),
            open_timeout: limit,
            command_timeout: opts.command_timeout.unwrap_or(DEFAULT_COMMAND_TIMEOUT),
        })
    }

    /// The user the session logged in as.
    pub fn login_user(&self) -> &str {
        &self.login_user
    }

    fn describe(req: &ExecRequest) -> String {
        let mut s = super::script::quote_argv(&req.argv);
        if s.len() > 200 {
            let cut = (0..=200)
                .rev()
                .find(|&i| s.is_char_boundary(i))
                .unwrap_or(0);
            s.truncate(cut);
            s.push('…');
        }
        s
    }

    fn gone(&self, what: String) -> ConnectionError {
        if self.handle.is_closed() {
            ConnectionError::Unreachable {
                host: self.name.clone(),
                reason: format!("connection closed ({what})"),
            }
        } else {
            ConnectionError::Other {
                host: self.name.clone(),
                reason: what,
            }
        }
    }
}

#[async_trait]
impl Connection for SshConnection {
    fn host(&self) -> &str {
        &self.name
    }

    async fn exec(&self, req: ExecRequest) -> Result<ExecOutput, ConnectionError> {
        let command = Self::describe(&req);
        let plan = exec::render(&req, &self.login_user);
        let _permit = self
            .channels
            .acquire()
            .await
            .map_err(|e| self.gone(format!("channel limiter closed: {e}")))?;
        let limit = req.timeout.unwrap_or(self.command_timeout);
        let deadline = Instant::now() + limit;
        let open_by = deadline.min(Instant::now() + self.open_timeout);
        let channel = timeout_at(open_by, self.handle.channel_open_session())
            .await
            .map_err(|_| {
                self.gone(format!(
                    "no exec channel within {}s for {command}",
                    self.open_timeout.as_secs()
                ))
            })?
            .map_err(|e| self.gone(format!("cannot open an exec channel: {e}")))?;
        let (mut rd, wr) = channel.split();
        wr.exec(true, plan.command.as_bytes())
            .await
            .map_err(|e| self.gone(format!("cannot send `{command}`: {e}")))?;
        let run = exec::collect(&mut rd, &wr, plan.sudo.as_ref(), req.stdin.as_deref());
        let result = timeout_at(deadline, run).await;
        let failed = !matches!(result, Ok(Ok(_)));
        if failed {
            let _ = timeout(Duration::from_secs(1), wr.close()).await;
        }
        match result {
            Ok(Ok(out)) => Ok(out),
            Err(_) => Err(ConnectionError::Timeout {
                host: self.name.clone(),
                secs: limit.as_secs(),
                command,
            }),
            Ok(Err(RunError::Lost)) => Err(ConnectionError::Lost {
                host: self.name.clone(),
                command,
            }),
            Ok(Err(RunError::Refused)) => Err(ConnectionError::Other {
                host: self.name.clone(),
                reason: format!("the server refused to run `{command}`"),
            }),
            Ok(Err(RunError::Become(reason))) => Err(ConnectionError::Become {
                host: self.name.clone(),
                reason,
            }),
        }
    }

    async fn tunnel(
        &self,
        host: &str,
        port: u16,
    ) -> Result<Box<dyn super::Duplex>, ConnectionError> {
        forward::open(&self.name, &self.handle, host, port, self.open_timeout).await
    }

    async fn close(&self) {
        for h in std::iter::once(&self.handle).chain(self.jump.as_ref()) {
            let _ = timeout(
                Duration::from_secs(2),
                h.disconnect(russh::Disconnect::ByApplication, "", "en"),
            )
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_key_checking_words() {
        assert_eq!("yes".parse(), Ok(HostKeyChecking::Strict));
        assert_eq!("False".parse(), Ok(HostKeyChecking::Off));
        assert_eq!("accept-new".parse(), Ok(HostKeyChecking::AcceptNew));
        let e = "maybe".parse::<HostKeyChecking>().unwrap_err();
        assert!(e.to_string().contains("`maybe`"));
    }

    #[test]
    fn defaults_follow_the_brief() {
        let o = SshOptions::default();
        assert_eq!(o.host_key_checking, HostKeyChecking::Strict);
        assert_eq!(o.connect_timeout, Duration::from_secs(10));
        assert!(o.max_channels <= MAX_CHANNELS);
    }
}
