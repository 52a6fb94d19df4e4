//! The run's connection pool: one connection per host, dialled on first use
//! and shared by every task of that host. A failed dial is remembered, so an
//! unreachable host is not dialled again by each of its tasks. After a
//! `reboot` step the engine [`Pool::replace`]s the host's connection with
//! the one it re-dialled (host keys verified as on the first dial).

use crate::connection::{Connection, ConnectionError};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::Mutex;

type Slot = Mutex<Option<Result<Arc<dyn Connection>, ConnectionError>>>;

pub(super) struct Pool {
    slots: HashMap<String, Slot>,
}

impl Pool {
    pub(super) fn new(hosts: impl IntoIterator<Item = String>) -> Self {
        Pool {
            slots: hosts.into_iter().map(|h| (h, Mutex::new(None))).collect(),
        }
    }

    /// The host's connection; `dial` runs once, while other tasks of the
    /// host wait for its result. None when the host is not in the pool.
    pub(super) async fn get<F, Fut>(
        &self,
        host: &str,
        dial: F,
    ) -> Option<Result<Arc<dyn Connection>, ConnectionError>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Arc<dyn Connection>, ConnectionError>>,
    {
        let mut slot = self.slots.get(host)?.lock().await;
        if slot.is_none() {
            *slot = Some(dial().await);
        }
        slot.clone()
    }

    /// Use `conn` for the host's later tasks (after a reboot).
    pub(super) async fn replace(&self, host: &str, conn: Arc<dyn Connection>) {
        if let Some(s) = self.slots.get(host) {
            *s.lock().await = Some(Ok(conn));
        }
    }

    /// Close every open connection (end of run).
    pub(super) async fn close_all(&self) {
        for s in self.slots.values() {
            if let Some(Ok(c)) = s.lock().await.as_ref() {
                c.close().await;
            }
        }
    }
}
