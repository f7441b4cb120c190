//! A worker as a small program: serve the CPU lane of a Redis-backed cluster, the way a
//! service embedding gpujobs would (`gpujobs worker` is the full-featured binary).
//!
//! ```text
//! GPUJOBS_REDIS_URL=redis://127.0.0.1:6379 cargo run --release --features redis --example worker
//! ```
//! Stop it with Ctrl-C: it finishes (or gives back) its jobs and exits.

use gpujobs::redis::{RedisConfig, RedisQueue};
use gpujobs::{DeviceInfo, Queue, Worker, WorkerConfig, shutdown_channel};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url =
        std::env::var("GPUJOBS_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    // Retries with backoff until Redis answers.
    let queue: Arc<dyn Queue> =
        Arc::new(RedisQueue::connect_retrying(RedisConfig::new(url), None).await?);
    let mut config = WorkerConfig::new(DeviceInfo::host_cpu());
    config.concurrency = 2;
    println!("worker {} serving the cpu lane", config.id);
    let (stop, shutdown) = shutdown_channel();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.trigger();
    });
    let report = Worker::new(queue, Arc::new(gpujobs::cpu::registry()), config)
        .run(shutdown)
        .await;
    println!(
        "stopped: {} jobs done, {} failed attempts, {} given back",
        report.done, report.failed, report.released
    );
    Ok(())
}
