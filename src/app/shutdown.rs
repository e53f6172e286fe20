//! Stopping a process: the one place that waits for SIGINT/SIGTERM, and
//! the token and tracker every task of the process is started under.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Waits for SIGINT or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: a signal sent right after
/// a line we printed (a harness reacting to `done`) is then never missed.
pub fn signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{signal, Signal, SignalKind};
    let int = signal(SignalKind::interrupt()).ok();
    let term = signal(SignalKind::terminate()).ok();
    let wait = |s: Option<Signal>| async move {
        match s {
            Some(mut s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    async move {
        tokio::select! {
            _ = wait(int) => {}
            _ = wait(term) => {}
        }
    }
}

/// Every task of one process, and the token that stops them.
#[derive(Clone, Default)]
pub struct Shutdown {
    /// Cancelled when the process stops; tasks watch it or a child of it.
    cancel: CancellationToken,
    /// Every task of the process, so that stopping can wait for them.
    tracker: TaskTracker,
}

impl Shutdown {
    /// A token cancelled when the process stops.
    pub fn token(&self) -> CancellationToken {
        self.cancel.child_token()
    }

    /// The tracker to start the process's tasks under.
    pub fn tracker(&self) -> TaskTracker {
        self.tracker.clone()
    }

    /// Starts `task` as one of the process's tasks.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(task);
    }

    /// Cancels every task and waits for them, at most `limit`.
    pub async fn stop(&self, limit: Duration) {
        self.cancel.cancel();
        self.tracker.close();
        let _ = tokio::time::timeout(limit, self.tracker.wait()).await;
    }
}
