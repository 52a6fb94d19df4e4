//! Port forwarding for controller-side protocol clients (ZooKeeper's, a
//! database's): [`with_forwards`] opens one loopback listener on the
//! controller per endpoint, runs the caller's work with those addresses, and
//! pipes every connection the work makes through [`Connection::tunnel`] (an
//! SSH `direct-tcpip` channel; a plain dial for the local connection). The
//! listeners live only while the work runs, so nothing outlives a task and a
//! reconnected session is picked up by the next one.
//!
//! Limits: opening a tunnel is bounded by [`OPEN_TIMEOUT`]; at most
//! [`MAX_PIPES`] tunnels are open at once per call (forwarded channels do not
//! count against sshd's `MaxSessions`, which caps sessions only, but they
//! share the connection); when the work ends, open pipes get a short grace
//! to finish (a client's close request) and are then cut.

use super::{Connection, ConnectionError};
use crate::module::Endpoint;
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
    let opener = async {
        while let Some((i, mut sock)) = rx.recv().await {
            let Ok(permit) = limit.clone().acquire_owned().await else {
                break;
            };
            let t = &targets[i];
            let opened = tokio::time::timeout(OPEN_TIMEOUT, conn.tunnel(&t.host, t.port)).await;
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
}
