//! The webhook calls under way, counted so that a shutdown can wait for them: a disconnect
//! notice sent while the server drains must reach the backend before the process exits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// How many calls are under way, and a wake-up for whoever waits until none is.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    count: AtomicUsize,
    idle: Notify,
}

/// One call under way; it ends when this is dropped (the call's task finished or was dropped).
#[derive(Debug)]
pub(crate) struct PendingCall(Arc<Pending>);

impl Pending {
    /// Counts a call from now on. Taken where the call is decided, before its task is
    /// spawned, so that nothing can look between the decision and the count.
    pub(crate) fn start(self: &Arc<Self>) -> PendingCall {
        self.count.fetch_add(1, Ordering::SeqCst);
        PendingCall(self.clone())
    }

    /// How many calls are under way.
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Resolves once no call is under way.
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Registered before the count is read, so a call ending in between still wakes us.
            notified.as_mut().enable();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for PendingCall {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn idle_waits_for_the_last_call() {
        let pending = Arc::new(Pending::default());
        pending.idle().await;
        let first = pending.start();
        let second = pending.start();
        assert_eq!(pending.count(), 2);
        let waiter = tokio::spawn({
            let pending = pending.clone();
            async move { pending.idle().await }
        });
        drop(first);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "one call is still under way");
        drop(second);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken when the last call ends")
            .expect("the waiter ran");
        assert_eq!(pending.count(), 0);
    }
}
