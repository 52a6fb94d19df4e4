//! `direct-tcpip` channels: a byte stream from the controller to a TCP
//! port as the host sees it, over the host's one SSH session. The generic
//! listener side is `connection::forward`; this file only opens the channel,
//! under the connection's open deadline.

use super::session::ClientHandler;
use crate::connection::{ConnectionError, Duplex};
use russh::client::Handle;
use std::time::Duration;
use tokio::time::timeout;

/// Open a channel to `host:port` (seen from the SSH server).
pub(super) async fn open(
    name: &str,
    handle: &Handle<ClientHandler>,
    host: &str,
    port: u16,
    limit: Duration,
) -> Result<Box<dyn Duplex>, ConnectionError> {
    let other = |reason: String| ConnectionError::Other {
        host: name.to_string(),
        reason,
    };
    let opened = timeout(
        limit,
        handle.channel_open_direct_tcpip(host, u32::from(port), "127.0.0.1", 0),
    )
    .await
    .map_err(|_| {
        other(format!(
            "forwarding to {host}:{port}: no channel within {}s",
            limit.as_secs()
        ))
    })?;
    if handle.is_closed() {
        return Err(ConnectionError::Unreachable {
            host: name.to_string(),
            reason: format!("connection closed (forwarding to {host}:{port})"),
        });
    }
    let channel = opened.map_err(|e| other(format!("forwarding to {host}:{port}: {e}")))?;
    Ok(Box::new(channel.into_stream()))
}
