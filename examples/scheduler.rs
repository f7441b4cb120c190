//! A scheduler as a small program: place submitted jobs on the GPU or CPU lane by
//! estimated finish time (`gpujobs scheduler` is the full-featured binary).
//!
//! ```text
//! GPUJOBS_REDIS_URL=redis://127.0.0.1:6379 cargo run --release --features redis --example scheduler
//! ```

use gpujobs::redis::{RedisConfig, RedisQueue};
use gpujobs::{EarliestFinish, Queue, Registry, Scheduler, SchedulerConfig, shutdown_channel};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url =
        std::env::var("GPUJOBS_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let queue: Arc<dyn Queue> =
        Arc::new(RedisQueue::connect_retrying(RedisConfig::new(url), None).await?);
    // The scheduler validates and costs jobs, so it needs every kind it may see
    // (register custom kinds here too), but no executors.
    let kinds = Arc::new(Registry::with_builtin_kinds());
    let scheduler = Scheduler::new(
        queue,
        kinds,
        Arc::new(EarliestFinish::default()),
        SchedulerConfig::default(),
    );
    let (stop, shutdown) = shutdown_channel();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.trigger();
    });
    let report = scheduler.run(shutdown).await;
    println!(
        "stopped: {} placed, {} rejected",
        report.placed, report.rejected
    );
    Ok(())
}
