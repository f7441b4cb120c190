//! Turning SIGTERM and SIGINT into a graceful shutdown.

use gpujobs_core::{Shutdown, shutdown_channel};

/// A shutdown signal that fires on the first SIGTERM or SIGINT (Ctrl-C).
pub fn on_signal() -> Shutdown {
    let (trigger, shutdown) = shutdown_channel();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            let mut term = match tokio::signal::unix::signal(
                tokio::signal::unix::SignalKind::terminate(),
            ) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops gracefully");
                    let _ = tokio::signal::ctrl_c().await;
                    trigger.trigger();
                    return;
                }
            };
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: draining"),
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: draining"),
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        trigger.trigger();
        // Keep the trigger alive: dropping it would also count as a shutdown, which is
        // what we want, but be explicit.
        std::future::pending::<()>().await;
    });
    shutdown
}
