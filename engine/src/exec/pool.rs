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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::local::LocalConnection;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn local(name: &str) -> Result<Arc<dyn Connection>, ConnectionError> {
        Ok(Arc::new(LocalConnection::new(name)) as Arc<dyn Connection>)
    }

    #[tokio::test]
    async fn dials_once_remembers_failure_and_replaces() {
        let pool = Pool::new(["a".to_string(), "b".to_string()]);
        let dials = AtomicUsize::new(0);
        for _ in 0..3 {
            let c = pool
                .get("a", || async {
                    dials.fetch_add(1, Ordering::SeqCst);
                    local("a")
                })
                .await;
            assert_eq!(c.unwrap().unwrap().host(), "a");
        }
        assert_eq!(dials.load(Ordering::SeqCst), 1);
        let down = || async {
            Err(ConnectionError::Unreachable {
                host: "b".into(),
                reason: "down".into(),
            })
        };
        assert!(pool.get("b", down).await.unwrap().is_err());
        // The failure is kept: no second dial.
        assert!(pool
            .get("b", || async { local("b") })
            .await
            .unwrap()
            .is_err());
        assert!(pool.get("zz", || async { local("zz") }).await.is_none());
        // After a reboot the re-dialled connection takes the slot.
        pool.replace("b", local("b2").unwrap()).await;
        let c = pool.get("b", || async { local("x") }).await.unwrap();
        assert_eq!(c.unwrap().host(), "b2");
    }
}
