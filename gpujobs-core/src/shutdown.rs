//! A shutdown signal shared by the scheduler and worker loops.

use tokio::sync::watch;

/// Triggers a [`Shutdown`]. Dropping every trigger counts as triggering, so loops
/// never outlive whoever started them.
#[derive(Debug, Clone)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// A signal that loops check between steps and can wait on.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A new signal and its trigger.
pub fn shutdown_channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    /// Asks every holder of the signal to stop.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }
}

impl Shutdown {
    /// A signal that never fires (for loops that run until the process ends).
    pub fn never() -> Self {
        let (tx, rx) = watch::channel(false);
        // Keep the sender alive for the life of the process so `wait` never returns.
        std::mem::forget(tx);
        Shutdown(rx)
    }

    /// Whether stopping was asked for.
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    /// Waits until stopping is asked for (or every trigger is gone).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|&v| v).await;
    }
}
