//! Opening a russh session: TCP (or a `direct-tcpip` channel through a
//! ProxyJump bastion), key exchange with host-key checking, and
//! authentication, all under one deadline so that a blackholed or paused
//! host is reported unreachable in time. Also the russh client `Config`
//! (nodelay, keepalive, no SHA-1 host keys, no compression).

use super::config::{Endpoint, Target};
use super::known_hosts::{self, Verdict};
use super::{auth, HostKeyChecking, SshOptions};
use crate::connection::ConnectionError;
use russh::client::{self, Handle};
use russh::keys::{Algorithm, PublicKey, PublicKeyOrCertificate};
use russh::Preferred;
use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{timeout_at, Instant};

/// Host-key policy for one server; records why it refused a key.
pub(crate) struct ClientHandler {
    host: String,
    port: u16,
    policy: HostKeyChecking,
    files: Vec<PathBuf>,
    refused: Arc<Mutex<Option<String>>>,
}

impl ClientHandler {
    fn refuse(&self, why: String) -> Result<bool, russh::Error> {
        if let Ok(mut slot) = self.refused.lock() {
            *slot = Some(why);
        }
        Ok(false)
    }
}

impl client::Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        presented: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match presented {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(c) => PublicKey::from(c.public_key().clone()),
        };
        if self.policy == HostKeyChecking::Off {
            return Ok(true);
        }
        let entries = known_hosts::lookup(&self.files, &self.host, self.port);
        match known_hosts::verdict(&entries, &self.host, self.port, &key) {
            Verdict::Match => Ok(true),
            Verdict::Mismatch(why) => self.refuse(why),
            Verdict::Unknown if self.policy == HostKeyChecking::AcceptNew => {
                let Some(path) = self.files.first() else {
                    return self.refuse("accept-new needs a known_hosts file to write".into());
                };
                match known_hosts::learn(path, &self.host, self.port, &key).await {
                    Ok(()) => Ok(true),
                    Err(why) => self.refuse(why),
                }
            }
            Verdict::Unknown => self.refuse(format!(
                "{} presented {}, which no known_hosts file lists ({}); host_key_checking is strict",
                known_hosts::host_token(&self.host, self.port),
                known_hosts::describe(&key),
                self.files
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

/// Host key algorithms, those already recorded for the host first (as
/// OpenSSH orders them), so a host known by its ECDSA key is not asked for
/// its Ed25519 key. SHA-1 `ssh-rsa` signatures are not offered.
fn host_key_order(known: &[Algorithm]) -> Vec<Algorithm> {
    let all: Vec<Algorithm> = Preferred::DEFAULT
        .key
        .iter()
        .filter(|a| !matches!(a, Algorithm::Rsa { hash: None }))
        .cloned()
        .collect();
    let recorded = |a: &Algorithm| {
        known.iter().any(|k| match (k, a) {
            (Algorithm::Rsa { .. }, Algorithm::Rsa { .. }) => true,
            (k, a) => k == a,
        })
    };
    let (mut first, rest): (Vec<_>, Vec<_>) = all.into_iter().partition(|a| recorded(a));
    first.extend(rest);
    first
}

fn client_config(opts: &SshOptions, known: &[Algorithm]) -> client::Config {
    let keepalive = opts.keepalive.max(std::time::Duration::from_secs(1));
    client::Config {
        nodelay: true,
        keepalive_interval: Some(keepalive),
        keepalive_max: 3,
        inactivity_timeout: Some(keepalive * 5),
        preferred: Preferred {
            key: Cow::Owned(host_key_order(known)),
            ..Preferred::DEFAULT
        },
        ..Default::default()
    }
}

/// An authenticated session, plus the bastion session it runs through.
pub(crate) struct Link {
    pub handle: Handle<ClientHandler>,
    pub jump: Option<Handle<ClientHandler>>,
}

struct Ctx<'a> {
    name: &'a str,
    opts: &'a SshOptions,
    files: &'a [PathBuf],
    deadline: Instant,
    limit_secs: u64,
}

impl Ctx<'_> {
    fn unreachable(&self, reason: String) -> ConnectionError {
        ConnectionError::Unreachable {
            host: self.name.to_string(),
            reason,
        }
    }
    fn late(&self, what: &str, ep: &Endpoint) -> ConnectionError {
        self.unreachable(format!(
            "{what} {}:{} did not finish within {}s (connect timeout)",
            ep.host, ep.port, self.limit_secs
        ))
    }

    /// Key exchange and authentication over an established byte stream.
    async fn handshake<S>(
        &self,
        ep: &Endpoint,
        stream: S,
        password: Option<&str>,
    ) -> Result<Handle<ClientHandler>, ConnectionError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let known: Vec<Algorithm> = known_hosts::lookup(self.files, &ep.host, ep.port)
            .iter()
            .filter(|e| !e.revoked)
            .map(|e| e.key.algorithm())
            .collect();
        let refused = Arc::new(Mutex::new(None));
        let handler = ClientHandler {
            host: ep.host.clone(),
            port: ep.port,
            policy: self.opts.host_key_checking,
            files: self.files.to_vec(),
            refused: refused.clone(),
        };
        let config = Arc::new(client_config(self.opts, &known));
        let connected = timeout_at(
            self.deadline,
            client::connect_stream(config, stream, handler),
        )
        .await
        .map_err(|_| self.late("SSH handshake with", ep))?;
        let mut handle = match connected {
            Ok(h) => h,
            Err(e) => {
                let why = refused.lock().ok().and_then(|mut s| s.take());
                return Err(match why {
                    Some(reason) => ConnectionError::HostKey {
                        host: self.name.to_string(),
                        reason,
                    },
                    None => self.unreachable(format!(
                        "SSH handshake with {}:{} failed: {e}",
                        ep.host, ep.port
                    )),
                });
            }
        };
        let authed = timeout_at(
            self.deadline,
            auth::authenticate(&mut handle, &ep.user, &ep.identity_files, password),
        )
        .await
        .map_err(|_| self.late("authentication on", ep))?;
        authed.map_err(|reason| ConnectionError::Auth {
            host: self.name.to_string(),
            user: ep.user.clone(),
            reason,
        })?;
        Ok(handle)
    }

    async fn tcp(&self, ep: &Endpoint) -> Result<tokio::net::TcpStream, ConnectionError> {
        let tcp = timeout_at(
            self.deadline,
            tokio::net::TcpStream::connect((ep.host.as_str(), ep.port)),
        )
        .await
        .map_err(|_| self.late("TCP connect to", ep))?
        .map_err(|e| self.unreachable(format!("cannot connect to {}:{}: {e}", ep.host, ep.port)))?;
        // Without nodelay every exchange waits for a delayed ACK.
        let _ = tcp.set_nodelay(true);
        Ok(tcp)
    }
}

/// Connect and authenticate to the target, through its bastion if any.
pub(crate) async fn open(
    name: &str,
    target: &Target,
    password: Option<&str>,
    files: &[PathBuf],
    opts: &SshOptions,
    limit: std::time::Duration,
) -> Result<Link, ConnectionError> {
    let ctx = Ctx {
        name,
        opts,
        files,
        deadline: Instant::now() + limit,
        limit_secs: limit.as_secs().max(1),
    };
    let ep = &target.endpoint;
    let Some(jump_ep) = &target.jump else {
        let tcp = ctx.tcp(ep).await?;
        let handle = ctx.handshake(ep, tcp, password).await?;
        return Ok(Link { handle, jump: None });
    };
    let via = |e: ConnectionError| match e {
        ConnectionError::Unreachable { host, reason } => ConnectionError::Unreachable {
            host,
            reason: format!("via ProxyJump {}: {reason}", jump_ep.alias),
        },
        other => other,
    };
    let tcp = ctx.tcp(jump_ep).await.map_err(via)?;
    let jump = ctx.handshake(jump_ep, tcp, None).await.map_err(via)?;
    let channel = timeout_at(
        ctx.deadline,
        jump.channel_open_direct_tcpip(ep.host.as_str(), u32::from(ep.port), "127.0.0.1", 0),
    )
    .await
    .map_err(|_| ctx.late("tunnel through the bastion to", ep))?
    .map_err(|e| {
        ctx.unreachable(format!(
            "bastion {} cannot reach {}:{}: {e}",
            jump_ep.alias, ep.host, ep.port
        ))
    })?;
    let handle = ctx.handshake(ep, channel.into_stream(), password).await?;
    Ok(Link {
        handle,
        jump: Some(jump),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::EcdsaCurve;

    #[test]
    fn recorded_key_types_come_first_and_sha1_rsa_is_gone() {
        let ecdsa = Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP256,
        };
        let order = host_key_order(std::slice::from_ref(&ecdsa));
        assert_eq!(order[0], ecdsa);
        assert!(order.contains(&Algorithm::Ed25519));
        assert!(!order.contains(&Algorithm::Rsa { hash: None }));
        let rsa = host_key_order(&[Algorithm::Rsa { hash: None }]);
        assert!(matches!(rsa[0], Algorithm::Rsa { hash: Some(_) }));
        assert_eq!(host_key_order(&[])[0], Algorithm::Ed25519);
    }

    #[test]
    fn keepalive_is_shorter_than_inactivity() {
        let c = client_config(&SshOptions::default(), &[]);
        assert!(c.nodelay);
        assert!(c.keepalive_interval.unwrap() < c.inactivity_timeout.unwrap());
    }
}
