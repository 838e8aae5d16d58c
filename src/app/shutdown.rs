//! Shutdown coordination: one signal every session watches, and a count of live sessions to wait for.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

/// Cloneable; all clones share the signal and the count.
#[derive(Clone)]
pub struct Shutdown {
    signal: watch::Sender<bool>,
    live: Arc<AtomicUsize>,
    idle: Arc<Notify>,
}

/// Held by a live session; dropping it counts the session out.
pub struct SessionGuard {
    shutdown: Shutdown,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if self.shutdown.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.shutdown.idle.notify_waiters();
        }
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self { signal: watch::channel(false).0, live: Arc::default(), idle: Arc::default() }
    }
}

impl Shutdown {
    /// Counts a session in until the guard drops.
    pub fn session(&self) -> SessionGuard {
        self.live.fetch_add(1, Ordering::SeqCst);
        SessionGuard { shutdown: self.clone() }
    }

    /// A receiver that turns `true` when shutdown starts.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.signal.subscribe()
    }

    /// Starts the shutdown.
    pub fn trigger(&self) {
        self.signal.send_replace(true);
    }

    /// Sessions still open.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Waits until no session is open, or `grace` passes; true when all closed.
    pub async fn wait_idle(&self, grace: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let notified = self.idle.notified();
            if self.live() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.live() == 0;
            }
        }
    }
}
