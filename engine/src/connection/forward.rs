//! Port forwarding for controller-side protocol clients (ZooKeeper's, a
//! database's): [`with_forwards`] opens one loopback listener on the
//! controller per endpoint, runs the caller's work with those addresses, and
//! pipes every connection the work makes through [`Connection::tunnel`] (an
//! SSH `direct-tcpip` channel; a plain dial for the local connection). The
//! listeners live only while the work runs, so nothing outlives a task and a
//! reconnected session is picked up by the next one.
//!
//! Limits: tunnels open concurrently (a target that does not answer holds
//! up no other), each bounded by [`OPEN_TIMEOUT`]; at most
//! [`MAX_PIPES`] tunnels are open at once per call (forwarded channels do not
//! count against sshd's `MaxSessions`, which caps sessions only, but they
//! share the connection); when the work ends, open pipes get a short grace
//! to finish (a client's close request) and are then cut.

use super::{Connection, ConnectionError};
use crate::module::Endpoint;
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

/// Deadline for opening one tunnel (channel open, or the local dial).
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Tunnels open at once within one [`with_forwards`] call.
pub const MAX_PIPES: usize = 8;
/// How long pipes may finish after the work is done.
const GRACE: Duration = Duration::from_millis(250);

/// The work's value and the tunnels that could not be opened (each message
/// names the endpoint), to explain a client's "connection closed".
#[derive(Debug)]
pub struct Forwarded<T> {
    pub value: T,
    pub tunnel_errors: Vec<String>,
}

/// Run `work` with a controller-side address for each of `targets` (same
/// order); every TCP connection to one of them reaches that endpoint as the
/// host sees it.
pub async fn with_forwards<T, Fut>(
    conn: &dyn Connection,
    targets: &[Endpoint],
    work: impl FnOnce(Vec<SocketAddr>) -> Fut,
) -> Result<Forwarded<T>, ConnectionError>
where
    Fut: Future<Output = T>,
{
    let local = |e: std::io::Error| ConnectionError::Other {
        host: conn.host().to_string(),
        reason: format!("cannot open a local listener for port forwarding: {e}"),
    };
    let (tx, mut rx) = mpsc::channel::<(usize, tokio::net::TcpStream)>(MAX_PIPES);
    let mut accepts = JoinSet::new();
    let mut addrs = Vec::new();
    for i in 0..targets.len() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(local)?;
        addrs.push(l.local_addr().map_err(local)?);
        let tx = tx.clone();
        accepts.spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let _ = s.set_nodelay(true);
                if tx.send((i, s)).await.is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let mut pipes = JoinSet::new();
    let mut tunnel_errors = Vec::new();
    let limit = Arc::new(Semaphore::new(MAX_PIPES));
    // Tunnels open concurrently: a target that does not answer (a stopped
    // member) must not hold up the connections to the others.
    let opener = async {
        let mut opening = FuturesUnordered::new();
        let mut accepting = true;
        loop {
            tokio::select! {
                got = rx.recv(), if accepting => match got {
                    Some((i, sock)) => {
                        let limit = limit.clone();
                        let t = &targets[i];
                        opening.push(async move {
                            let permit = limit.acquire_owned().await.ok();
                            let opened =
                                tokio::time::timeout(OPEN_TIMEOUT, conn.tunnel(&t.host, t.port)).await;
                            (t, sock, permit, opened)
                        });
                    }
                    None => accepting = false,
                },
                Some((t, mut sock, permit, opened)) = opening.next(), if !opening.is_empty() => {
                    match opened {
                        Ok(Ok(mut tunnel)) => {
                            pipes.spawn(async move {
                                let _ = tokio::io::copy_bidirectional(&mut sock, &mut tunnel).await;
                                drop(permit);
                            });
                        }
                        Ok(Err(e)) => tunnel_errors.push(format!("tunnel to {t}: {e}")),
                        Err(_) => tunnel_errors.push(format!(
                            "tunnel to {t}: not opened within {}s",
                            OPEN_TIMEOUT.as_secs()
                        )),
                    }
                }
                else => break,
            }
        }
    };
    let work = work(addrs);
    tokio::pin!(work);
    let value = tokio::select! {
        v = &mut work => v,
        // Every listener failed (out of descriptors): let the work end.
        _ = opener => work.await,
    };
    accepts.abort_all();
    let _ = tokio::time::timeout(GRACE, async { while pipes.join_next().await.is_some() {} }).await;
    pipes.abort_all();
    Ok(Forwarded {
        value,
        tunnel_errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::local::LocalConnection;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn forwards_to_the_hosts_port_and_reports_refused_tunnels() {
        let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = server.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = server.accept().await {
                tokio::spawn(async move {
                    let mut b = [0u8; 4];
                    if s.read_exact(&mut b).await.is_ok() {
                        let _ = s.write_all(&b.map(|c| c.to_ascii_uppercase())).await;
                    }
                });
            }
        });
        // A port nobody listens on: bind and drop.
        let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead_port = dead.local_addr().unwrap().port();
        drop(dead);
        let conn = LocalConnection::new("localhost");
        let targets = [Endpoint::local(port), Endpoint::local(dead_port)];
        let f = with_forwards(&conn, &targets, |addrs| async move {
            assert_ne!(addrs[0].port(), port);
            let mut s = tokio::net::TcpStream::connect(addrs[0]).await.unwrap();
            s.write_all(b"srvr").await.unwrap();
            let mut b = [0u8; 4];
            s.read_exact(&mut b).await.unwrap();
            let mut d = tokio::net::TcpStream::connect(addrs[1]).await.unwrap();
            let mut rest = Vec::new();
            let n = d.read_to_end(&mut rest).await.unwrap_or(0);
            (b, n)
        })
        .await
        .unwrap();
        assert_eq!(&f.value.0, b"SRVR");
        assert_eq!(f.value.1, 0, "a refused tunnel closes the client's socket");
        assert_eq!(f.tunnel_errors.len(), 1, "{:?}", f.tunnel_errors);
        assert!(f.tunnel_errors[0].contains(&dead_port.to_string()));
    }

    /// A connection whose tunnel to `gate_port` opens only when told to.
    struct Gated {
        inner: LocalConnection,
        gate_port: u16,
        open: Arc<tokio::sync::Notify>,
        /// Set when the gated attempt ends (returns or is dropped).
        ended: Arc<std::sync::atomic::AtomicBool>,
    }

    struct SetOnDrop(Arc<std::sync::atomic::AtomicBool>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[async_trait::async_trait]
    impl Connection for Gated {
        fn host(&self) -> &str {
            self.inner.host()
        }
        async fn exec(
            &self,
            req: crate::connection::ExecRequest,
        ) -> Result<crate::module::ExecOutput, ConnectionError> {
            self.inner.exec(req).await
        }
        async fn tunnel(
            &self,
            host: &str,
            port: u16,
        ) -> Result<Box<dyn crate::connection::Duplex>, ConnectionError> {
            if port == self.gate_port {
                let _guard = SetOnDrop(self.ended.clone());
                self.open.notified().await;
                return Err(ConnectionError::Other {
                    host: host.into(),
                    reason: "gated".into(),
                });
            }
            self.inner.tunnel(host, port).await
        }
    }

    #[tokio::test]
    async fn a_tunnel_that_does_not_open_holds_up_no_other() {
        let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = server.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = server.accept().await {
                let _ = s.write_all(b"ok").await;
            }
        });
        let open = Arc::new(tokio::sync::Notify::new());
        let ended = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let conn = Gated {
            inner: LocalConnection::new("localhost"),
            gate_port: 1,
            open: open.clone(),
            ended: ended.clone(),
        };
        let targets = [Endpoint::local(1), Endpoint::local(port)];
        let run = with_forwards(&conn, &targets, |addrs| async move {
            // The stuck one first, as a client trying members in order does.
            let mut stuck = tokio::net::TcpStream::connect(addrs[0]).await.unwrap();
            let mut live = tokio::net::TcpStream::connect(addrs[1]).await.unwrap();
            let mut b = [0u8; 2];
            live.read_exact(&mut b).await.unwrap();
            // The live exchange did not wait for the stuck tunnel to give up.
            let stuck_ended = ended.load(std::sync::atomic::Ordering::SeqCst);
            open.notify_one();
            let mut rest = Vec::new();
            let n = stuck.read_to_end(&mut rest).await.unwrap_or(0);
            (b, n, stuck_ended)
        });
        let f = tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("the live tunnel waited for the stuck one")
            .unwrap();
        assert_eq!(&f.value.0, b"ok");
        assert!(
            !f.value.2,
            "the live tunnel opened only after the stuck one ended"
        );
        assert_eq!(f.value.1, 0);
        assert_eq!(f.tunnel_errors.len(), 1, "{:?}", f.tunnel_errors);
    }
}
